// Profile embeddings: JSON and .npy readers, multi-profile table, validation messages.
#include "recdistill/data/profiles.hpp"

#include "recdistill/io/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace recdistill;
using data::NonFiniteProfile;
using data::ProfileOptions;
using data::UnknownProfileUsers;

const std::string kDir = std::string(RECDISTILL_FIXTURE_DIR) + "/profiles/";

// Users u1..u4 (internal ids 1..4); u4 has no profile in any fixture.
data::IdMap test_users() {
  data::IdMap m;
  for (const char* u : {"u1", "u2", "u3", "u4"}) m.intern(u);
  return m;
}

ProfileOptions quiet() {
  ProfileOptions o;
  o.log = nullptr;
  return o;
}

// Runs f, which must throw recdistill::Error whose message contains every fragment.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments)
      EXPECT_NE(msg.find(frag), std::string::npos) << "message: " << msg << "\nmissing: " << frag;
    return;
  }
  ADD_FAILURE() << "no error thrown; expected one containing " << fragments[0];
}

void expect_file_error(const std::string& name, const std::vector<std::string>& fragments) {
  SCOPED_TRACE(name);
  expect_error([&] { data::read_profile_file(kDir + name); }, fragments);
}

TEST(ProfilesJson, ReadsKeysAndValuesInFileOrder) {
  const auto f = data::read_profile_file(kDir + "good.json");
  EXPECT_EQ(f.dim, 3);
  ASSERT_EQ(f.keys, (std::vector<std::string>{"u1", "u2", "stranger", "u3"}));
  ASSERT_EQ(f.values.size(), 12u);
  EXPECT_EQ(f.values[0], 0.5f);
  EXPECT_EQ(f.values[1], -1.0f);
  EXPECT_EQ(f.values[3], 1.0f);   // integer literals are numbers too
  EXPECT_EQ(f.values[8], 1e-3f);
  EXPECT_EQ(f.values[11], 1e38f);  // large but finite as float32
}

TEST(ProfilesJson, InMemoryMatchesFile) {
  const auto f = data::parse_profile_json(R"({"a": [1.5, 2], "b\"c": [3, -4e-2]})", "mem.json");
  EXPECT_EQ(f.dim, 2);
  ASSERT_EQ(f.keys, (std::vector<std::string>{"a", "b\"c"}));  // keys are unescaped
  EXPECT_EQ(f.values, (std::vector<float>{1.5f, 2.0f, 3.0f, -4e-2f}));
}

TEST(ProfilesJson, AcceptsBomAndCrlf) {
  const auto f = data::read_profile_file(kDir + "bom_crlf.json");
  EXPECT_EQ(f.keys, (std::vector<std::string>{"u1", "u\"q"}));
  EXPECT_EQ(f.values[5], 6.0f);
}

TEST(ProfilesJson, WrongDimensionNamesPathExpectedAndFound) {
  expect_file_error("wrong_dim.json", {"wrong_dim.json", "$[\"A1B2\"]", "expected 3", "found 4"});
}

TEST(ProfilesJson, NonFiniteValuesAreErrorsNamingKeyAndIndex) {
  expect_file_error("nan.json", {"nan.json", "$[\"u2\"][1]", "finite", "'NaN'"});
  expect_file_error("infinity.json", {"infinity.json", "$[\"u1\"][2]", "finite", "'-Infinity'"});
  expect_file_error("huge.json", {"huge.json", "$[\"u2\"][2]", "finite", "1e400"});
  expect_file_error("overflow_f32.json", {"overflow_f32.json", "$[\"u1\"][1]", "finite as float32"});
}

TEST(ProfilesJson, Float32OverflowThresholdIsExact) {
  // FLT_MAX itself is finite; FLT_MAX + half an ulp rounds to infinity.
  EXPECT_NO_THROW(data::parse_profile_json(R"({"a": [3.4028234663852886e38]})", "m.json"));
  EXPECT_NO_THROW(data::parse_profile_json(R"({"a": [3.40282356779733e38]})", "m.json"));
  expect_error([] { data::parse_profile_json(R"({"a": [3.4028235677973366e38]})", "m.json"); },
               {"$[\"a\"][0]", "finite"});
}

TEST(ProfilesJson, DropUserPolicySkipsNonFiniteRows) {
  const auto f = data::read_profile_file(kDir + "nan.json", NonFiniteProfile::drop_user);
  EXPECT_EQ(f.keys, (std::vector<std::string>{"u1"}));
  EXPECT_EQ(f.dropped_nonfinite, 1);
  const auto g = data::read_profile_file(kDir + "huge.json", NonFiniteProfile::drop_user);
  EXPECT_EQ(g.keys, (std::vector<std::string>{"u1"}));
}

TEST(ProfilesJson, StructuralErrors) {
  expect_file_error("not_object.json", {"not_object.json", "expected a JSON object", "found an array"});
  expect_file_error("truncated.json", {"truncated.json", "invalid JSON"});
  expect_file_error("empty.json", {"empty.json", "empty"});
  expect_file_error("empty_object.json", {"empty_object.json", "object is empty"});
  expect_file_error("empty_array.json", {"empty_array.json", "$[\"u1\"]", "non-empty array"});
  expect_file_error("duplicate.json", {"duplicate.json", "duplicate key", "$[\"u1\"]"});
  expect_file_error("string_value.json", {"string_value.json", "$[\"u1\"][1]", "expected a number", "a string"});
  expect_file_error("nested.json", {"nested.json", "$[\"u1\"][1]", "expected a number", "an array"});
  expect_file_error("object_value.json", {"object_value.json", "$[\"u1\"]", "expected an array", "an object"});
  expect_file_error("trailing.json", {"trailing.json", "after the top-level object"});
  expect_file_error("does_not_exist.json", {"does_not_exist.json", "cannot read"});
}

TEST(ProfilesJson, KeysInMessagesAreEscaped) {
  expect_error([] { data::parse_profile_json("{\"a\\n\\\"b\": [1, NaN]}", "m.json"); },
               {"$[\"a\\u000a\\\"b\"][1]"});
}

TEST(ProfilesNpy, ReadsFloat32AndFloat64WithSidecar) {
  for (const char* name : {"good.npy", "good64.npy"}) {
    SCOPED_TRACE(name);
    const auto f = data::read_profile_file(kDir + name);
    EXPECT_EQ(f.dim, 3);
    EXPECT_EQ(f.keys, (std::vector<std::string>{"u1", "u2", "stranger"}));
    EXPECT_EQ(f.values, (std::vector<float>{0.5f, -1, 2, 1, 2, 3, 7, 8, 9}));
  }
  EXPECT_EQ(data::profile_ids_path("x/p.npy"), "x/p.npy.ids");
}

TEST(ProfilesNpy, Errors) {
  expect_file_error("missing_sidecar.npy", {"missing_sidecar.npy", "sidecar", "missing_sidecar.npy.ids"});
  expect_file_error("wrong_rows.npy", {"wrong_rows.npy.ids", "has 2 user ids", "3 rows"});
  expect_file_error("nan.npy", {"nan.npy", "row 1", "'u2'", "index 2", "finite"});
  expect_file_error("overflow_f32.npy", {"overflow_f32.npy", "row 0", "index 1", "finite as float32"});
  expect_file_error("three_d.npy", {"three_d.npy", "2-D", "found 3"});
  expect_file_error("int.npy", {"int.npy", "float32 or float64", "<i4"});
  expect_file_error("dup_ids.npy", {"dup_ids.npy.ids:3", "duplicate user id 'u1'", "line 1"});
  expect_error([] { data::parse_profile_npy("garbage", "u1\n", "mem.npy", "mem.npy.ids"); },
               {"mem.npy", "not a valid .npy"});
  expect_error([] { data::parse_profile_ids("u1\n\nu2\n", "x.ids"); }, {"x.ids:2", "empty user id"});
  expect_error([] { data::parse_profile_ids("", "x.ids"); }, {"x.ids", "empty"});
}

TEST(ProfilesNpy, DropUserPolicy) {
  const auto f = data::read_profile_file(kDir + "nan.npy", NonFiniteProfile::drop_user);
  EXPECT_EQ(f.keys, (std::vector<std::string>{"u1", "stranger"}));
  EXPECT_EQ(f.dropped_nonfinite, 1);
}

TEST(ProfileTable, SingleFileMapsThroughIdMapAndCountsMissing) {
  const auto users = test_users();
  std::ostringstream log;
  ProfileOptions o;
  o.log = &log;
  const auto t = data::load_profiles({kDir + "good.json"}, users, o);
  EXPECT_EQ(t.n_users, 5);
  EXPECT_EQ(t.n_profiles, 1);
  EXPECT_EQ(t.dim, 3);
  ASSERT_EQ(t.values.size(), 5u * 1 * 3);
  EXPECT_FALSE(t.has(0, 0));  // the pad
  EXPECT_TRUE(t.has(1, 0));
  EXPECT_TRUE(t.has(2, 0));
  EXPECT_TRUE(t.has(3, 0));
  EXPECT_FALSE(t.has(4, 0));
  EXPECT_EQ(t.row(3, 0)[0], -0.25f);  // u3 came after the stranger in the file
  EXPECT_EQ(t.row(2, 0)[2], 3.0f);
  EXPECT_EQ(t.row(4, 0)[0], 0.0f);
  const auto& s = t.summary;
  EXPECT_EQ(s.dataset_users, 4);
  EXPECT_EQ(s.users_with_profile, 3);
  EXPECT_EQ(s.users_without_profile, 1);
  EXPECT_EQ(s.unknown_keys, 1);
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].rows, 4);
  EXPECT_EQ(s.files[0].matched, 3);
  EXPECT_EQ(s.files[0].first_unknown, "stranger");
  EXPECT_NE(log.str().find("1 of 4 profiles belong to users that are not in the dataset"), std::string::npos)
      << log.str();
}

TEST(ProfileTable, UnknownUsersCanBeAnError) {
  ProfileOptions o = quiet();
  o.unknown_users = UnknownProfileUsers::error;
  expect_error([&] { data::load_profiles({kDir + "good.json"}, test_users(), o); },
               {"good.json", "1 of 4", "not users of the dataset", "$[\"stranger\"]"});
  // The pad token is not a user either.
  data::IdMap m;
  m.intern("u1");
  expect_error([&] { data::load_profiles({kDir + "second.json"}, m, o); }, {"second.json", "$[\"u3\"]"});
}

TEST(ProfileTable, MultiProfileAvailabilityFlags) {
  const auto t = data::load_profiles({kDir + "good.json", kDir + "second.json", kDir + "good.npy"},
                                     test_users(), quiet());
  EXPECT_EQ(t.n_profiles, 3);
  ASSERT_EQ(t.values.size(), 5u * 3 * 3);
  // u1 is in all three, u2 in files 0 and 2, u3 in files 0 and 1, u4 in none.
  EXPECT_TRUE(t.has(1, 0) && t.has(1, 1) && t.has(1, 2));
  EXPECT_TRUE(t.has(2, 0) && !t.has(2, 1) && t.has(2, 2));
  EXPECT_TRUE(t.has(3, 0) && t.has(3, 1) && !t.has(3, 2));
  EXPECT_TRUE(!t.has_any(4));
  EXPECT_EQ(t.row(3, 1)[2], 3.0f);
  EXPECT_EQ(t.row(1, 1)[0], 1.0f);
  EXPECT_EQ(t.row(2, 2)[1], 2.0f);
  EXPECT_EQ(t.row(2, 1)[0], 0.0f);  // unavailable entries stay zero
  EXPECT_EQ(t.summary.users_with_profile, 3);
  EXPECT_EQ(t.summary.users_partial, 2);
  EXPECT_EQ(t.summary.users_without_profile, 1);
  EXPECT_EQ(t.summary.unknown_keys, 2);
}

TEST(ProfileTable, FilesMustShareTheDimension) {
  expect_error([] { data::load_profiles({kDir + "good.json", kDir + "dim4.json"}, test_users(), quiet()); },
               {"dim4.json", "$[\"u1\"]", "expected 3", "good.json", "found 4"});
}

TEST(ProfileTable, WarnsWhenMostUsersHaveNoProfile) {
  data::IdMap m;
  for (int i = 0; i < 10; ++i) m.intern(std::string("x") + std::to_string(i));  // (GCC 12 -Wrestrict on "x" + string&&)
  m.intern("u1");
  std::ostringstream log;
  ProfileOptions o;
  o.log = &log;
  const auto t = data::load_profiles({kDir + "second.json"}, m, o);
  EXPECT_EQ(t.summary.users_without_profile, 10);
  EXPECT_NE(log.str().find("10 of 11 dataset users have no profile"), std::string::npos) << log.str();
  EXPECT_EQ(t.summary.training_users, 11);
  // Counted over the split's training users (spec §10.6) when they are given: u1 and one x user
  // train, and u1 has a profile, so 1 of 2 lack one and nothing is warned about.
  o.training_users.assign(12, 0);
  o.training_users[1] = o.training_users[11] = 1;  // x0 and u1
  log.str("");
  const auto s = data::load_profiles({kDir + "second.json"}, m, o);
  EXPECT_EQ(s.summary.training_users, 2);
  EXPECT_EQ(s.summary.training_users_without_profile, 1);
  EXPECT_EQ(log.str().find("have no profile"), std::string::npos) << log.str();
  o.training_users[11] = 0;  // now only x0 trains: 1 of 1 without a profile
  (void)data::load_profiles({kDir + "second.json"}, m, o);
  EXPECT_NE(log.str().find("1 of 1 training users have no profile"), std::string::npos) << log.str();
  o.training_users.resize(5);
  expect_error([&] { data::load_profiles({kDir + "second.json"}, m, o); },
               {"training_users", "one flag per user id (12)", "found 5"});
}

TEST(ProfileTable, EmptyListIsAnError) {
  expect_error([] { data::load_profiles({}, test_users(), quiet()); }, {"no profile files"});
}

// data.profile_key_normalize: integer (spec §10.8).
TEST(ProfileKeys, IntegerCanonicalForm) {
  std::string c;
  for (auto [in, want] : std::vector<std::pair<std::string, std::string>>{
           {"123", "123"}, {"123.0", "123"}, {"123.", "123"}, {"0123", "123"}, {"+123", "123"},
           {"-5.00", "-5"}, {"-0", "0"}, {"000", "0"}, {"0.0", "0"}, {"-007", "-7"}}) {
    EXPECT_TRUE(data::integer_key(in, c)) << in;
    EXPECT_EQ(c, want) << in;
  }
  for (const char* in : {"", "+", "-", ".0", "12.5", "12.05", "1e3", "u7", " 7", "7 ", "0x1F", "7.0.0", "--7"})
    EXPECT_FALSE(data::integer_key(in, c)) << in;
}

// A profile file written to the test's temporary folder.
std::string temp_profile(const std::string& name, const std::string& json) {
  const std::string path = testing::TempDir() + "/recdistill_profiles_" + name;
  std::ofstream(path) << json;
  return path;
}

data::IdMap integer_users() {
  data::IdMap m;
  for (const char* u : {"7", "123", "u9", "-4"}) m.intern(u);  // ids 1..4
  return m;
}

TEST(ProfileKeys, IntegerNormalisationMatchesFloatWrittenIds) {
  const std::string path =
      temp_profile("floats.json", R"({"7.0": [1, 2], "0123": [3, 4], "u9": [5, 6], "-4.": [7, 8], "9.0": [0, 0]})");
  // Exact matching (the default) finds only "u9".
  const auto exact = data::load_profiles({path}, integer_users(), quiet());
  EXPECT_EQ(exact.summary.users_with_profile, 1);
  EXPECT_EQ(exact.summary.unknown_keys, 4);
  EXPECT_EQ(exact.summary.normalized_keys, 0);
  ProfileOptions o = quiet();
  o.key_normalize = data::ProfileKeyNormalize::integer;
  const auto t = data::load_profiles({path}, integer_users(), o);
  EXPECT_EQ(t.summary.users_with_profile, 4);
  EXPECT_EQ(t.summary.unknown_keys, 1);  // "9.0": no user 9
  EXPECT_EQ(t.summary.files[0].first_unknown, "9.0");
  EXPECT_EQ(t.summary.normalized_keys, 3);  // all but "u9", which matched as written
  EXPECT_EQ(t.row(1, 0)[0], 1.0f);  // "7" <- "7.0"
  EXPECT_EQ(t.row(2, 0)[1], 4.0f);  // "123" <- "0123"
  EXPECT_EQ(t.row(3, 0)[0], 5.0f);  // "u9" exactly
  EXPECT_EQ(t.row(4, 0)[1], 8.0f);  // "-4" <- "-4."
  // A key that is not an integer is still matched exactly: "u9.0" is nobody.
  const auto u = data::load_profiles({temp_profile("u90.json", R"({"u9.0": [1, 2]})")}, integer_users(), o);
  EXPECT_EQ(u.summary.users_with_profile, 0);
  EXPECT_EQ(u.summary.unknown_keys, 1);
}

TEST(ProfileKeys, IntegerNormalisationRefusesTwoKeysOfOneUserAndAmbiguousUsers) {
  ProfileOptions o = quiet();
  o.key_normalize = data::ProfileKeyNormalize::integer;
  expect_error([&] { data::load_profiles({temp_profile("dup.json", R"({"7": [1], "7.0": [2]})")}, integer_users(), o); },
               {"dup.json", "$[\"7.0\"] and $[\"7\"] are both user '7'", "profile_key_normalize: integer"});
  // Without normalisation the two keys are two ids: "7.0" is unknown, no error.
  EXPECT_EQ(data::load_profiles({temp_profile("dup.json", R"({"7": [1], "7.0": [2]})")}, integer_users(), quiet())
                .summary.unknown_keys,
            1);
  // Users "7" and "007" are one integer: a key reaching them is an error naming both; other keys load.
  data::IdMap m = integer_users();
  m.intern("007");
  expect_error([&] { data::load_profiles({temp_profile("amb.json", R"({"123": [1], "7.0": [2]})")}, m, o); },
               {"amb.json", "$[\"7.0\"]", "users '7' and '007' read as the same integer", "use none"});
  EXPECT_EQ(data::load_profiles({temp_profile("amb2.json", R"({"123.0": [1], "u9": [2]})")}, m, o)
                .summary.users_with_profile,
            2);
}

// The sidecar's profile_kind (spec §16), which the app prints for each profile file.
TEST(ProfileKeys, ProfileKindFromTheSidecar) {
  std::string why;
  EXPECT_EQ(data::profile_kind_from_json(R"({"profile_kind": "metadata", "dim": 384})", why), "metadata");
  EXPECT_EQ(data::profile_kind_from_json(R"({"dim": 3, "profile_kind": "llm"})", why), "llm");
  for (auto [text, reason] : std::vector<std::pair<std::string, std::string>>{
           {"", "not a JSON object"}, {"[1]", "not a JSON object"}, {"{\"dim\": 3}", "no profile_kind"},
           {"{\"profile_kind\": 1}", "profile_kind is not a string"}}) {
    why.clear();
    EXPECT_EQ(data::profile_kind_from_json(text, why), "") << text;
    EXPECT_EQ(why, reason) << text;
  }
  EXPECT_EQ(data::profile_meta_path("p/x.json"), "p/x.json.meta.json");
}

TEST(ProfileConfig, OnePathOrAListAndThePolicies) {
  auto parse = [](const std::string& yaml) { return io::parse_config_text(yaml, "c.yaml"); };
  EXPECT_TRUE(parse("seed: 1").data.user_profile_embeddings_files.empty());
  EXPECT_EQ(parse("data: {user_profile_embeddings_files: p.json}").data.user_profile_embeddings_files,
            (std::vector<std::string>{"p.json"}));
  const auto c = parse(
      "data:\n  user_profile_embeddings_files: [a.json, b.npy]\n  profile_unknown_users: error\n"
      "  on_nonfinite: drop_user\n");
  EXPECT_EQ(c.data.user_profile_embeddings_files, (std::vector<std::string>{"a.json", "b.npy"}));
  const auto o = data::profile_options(c.data.profile_unknown_users, c.data.on_nonfinite);
  EXPECT_EQ(o.unknown_users, UnknownProfileUsers::error);
  EXPECT_EQ(o.on_nonfinite, NonFiniteProfile::drop_user);
  const auto d = data::profile_options(parse("seed: 1").data.profile_unknown_users,
                                       parse("seed: 1").data.on_nonfinite);
  EXPECT_EQ(d.unknown_users, UnknownProfileUsers::warn);
  EXPECT_EQ(d.on_nonfinite, NonFiniteProfile::error);
  // An empty list is the default (no profiles), as the resolved config writes it.
  EXPECT_TRUE(parse("data: {user_profile_embeddings_files: []}").data.user_profile_embeddings_files.empty());
  expect_error([&] { parse("data: {user_profile_embeddings_files: {a: 1}}"); },
               {"c.yaml:1", "user_profile_embeddings_files", "a mapping"});
  expect_error([&] { parse("data: {profile_unknown_users: ignore}"); },
               {"c.yaml", "profile_unknown_users", "warn, error", "ignore"});
  expect_error([&] { parse("data: {on_nonfinite: zero}"); }, {"c.yaml", "on_nonfinite", "zero"});
  EXPECT_EQ(d.key_normalize, data::ProfileKeyNormalize::none);
  const auto n = parse("data: {profile_key_normalize: integer}");
  EXPECT_EQ(data::profile_options(n.data.profile_unknown_users, n.data.on_nonfinite, n.data.profile_key_normalize)
                .key_normalize,
            data::ProfileKeyNormalize::integer);
  expect_error([&] { parse("data: {profile_key_normalize: float}"); },
               {"c.yaml", "profile_key_normalize", "none, integer", "float"});
  expect_error([] { data::profile_options("warn", "error", "int"); }, {"data.profile_key_normalize", "'int'"});
}

}  // namespace
