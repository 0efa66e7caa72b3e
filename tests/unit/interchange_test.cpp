// The seed's data files as JSON (data/interchange.hpp; specs/profile-distillation.md §9): a
// split written by `prepare --export-json` reads back identically, and malformed files get
// errors naming the file and the JSON place.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "../common/test_util.hpp"
#include "recdistill/data/interchange.hpp"
#include "recdistill/data/split.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
namespace fs = std::filesystem;

namespace {

data::InterchangePaths paths_in(const fs::path& d) {
  const auto p = [&](const char* n) { return (d / n).string(); };
  return {p("train_sequences.json"), "", p("valid_sequences.json"), p("test_sequences.json"), p("mappings.json"),
          p("counts.json")};
}

using test::error_of;

const data::InterchangeCounts kCounts{3, 5};

// Users with 1..12 interactions at random times; ids with characters JSON must escape.
data::Interactions random_interactions(unsigned seed) {
  std::mt19937 g(seed);
  data::Interactions d;
  for (int i = 0; i < 25; ++i) d.items.intern(i == 3 ? std::string("it\"em\\3") : "item" + std::to_string(i));
  for (int u = 0; u < 40; ++u) {
    const int32_t uid = d.users.intern("user " + std::to_string(u));
    const int n = 1 + int(g() % 12);
    for (int k = 0; k < n; ++k) {
      d.user.push_back(uid);
      d.item.push_back(int32_t(1 + g() % 25));
      d.timestamp.push_back(double(g() % 100000));
    }
  }
  return d;
}

}  // namespace

TEST(Interchange, ExportedSplitReadsBackIdentically) {
  const data::Interactions d = random_interactions(7);
  const data::Split s = data::split_temporal(d, 0.8, 0.2, 11);
  const test::TempDir tmp("recdistill_interchange");
  const fs::path dir = tmp.path / "split";
  const auto files = data::write_interchange(dir.string(), d, s);
  ASSERT_EQ(files.size(), 5u);
  const auto back = data::read_interchange(paths_in(dir));
  EXPECT_EQ(back.split.train, s.train);
  EXPECT_EQ(back.split.valid, s.valid);
  EXPECT_EQ(back.split.test, s.test);
  EXPECT_EQ(back.split.n_items, s.n_items);
  EXPECT_EQ(back.split.n_users, s.n_users);
  EXPECT_EQ(back.split.protocol, "interchange");
  EXPECT_EQ(back.dataset.users.tokens(), d.users.tokens());
  EXPECT_EQ(back.dataset.items.tokens(), d.items.tokens());
  // Never overwrites.
  EXPECT_NE(error_of([&] { data::write_interchange(dir.string(), d, s); }).find("already exists"), std::string::npos);
  // finetune_train_sequences: the same content under another name is accepted, other content is not.
  auto p = paths_in(dir);
  fs::copy_file(p.train, dir / "ft.json");
  p.finetune = (dir / "ft.json").string();
  EXPECT_EQ(data::read_interchange(p).split.train, s.train);
  p.finetune = p.valid;
  EXPECT_NE(error_of([&] { data::read_interchange(p); }).find("holds other sequences than data.profile_train_sequences"),
            std::string::npos);
}

TEST(Interchange, IdsShiftByOneAndShortSequencesGiveNoCase) {
  const auto maps = data::parse_interchange_mappings(
      R"({"users": {"u7": 0, "u8": 1, "u9": 2}, "items": {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4}})", "m.json", kCounts);
  const auto train = data::parse_interchange_sequences(R"({"0": [0, 1, 2], "2": [4]})", "t.json", kCounts);
  const auto valid = data::parse_interchange_sequences(R"({"1": [3, 0]})", "v.json", kCounts);
  const auto test = data::parse_interchange_sequences(R"({"0": [0, 1, 2, 3], "1": [2]})", "x.json", kCounts);
  const auto x = data::build_interchange(kCounts, maps, train, valid, test, "t.json");
  EXPECT_EQ(x.split.train[1], (std::vector<int32_t>{1, 2, 3}));  // item index 0 is item id 1: never the pad
  EXPECT_EQ(x.split.train[3], (std::vector<int32_t>{5}));
  ASSERT_EQ(x.split.valid.size(), 1u);
  EXPECT_EQ(x.split.valid[0], (data::SplitCase{2, {4}, 1}));
  ASSERT_EQ(x.split.test.size(), 1u);  // user index 1's one-item test sequence gives no case
  EXPECT_EQ(x.split.test[0], (data::SplitCase{1, {1, 2, 3}, 4}));
  EXPECT_EQ(x.dataset.users.token(1), "u7");
  EXPECT_EQ(x.dataset.items.token(5), "e");
  EXPECT_EQ(x.dataset.size(), 4u + 2u + 1u);  // each user's longest sequence
}

TEST(Interchange, MalformedFilesNameFileAndPlace) {
  auto seq = [](const char* text) {
    return error_of([&] { data::parse_interchange_sequences(text, "s.json", kCounts); });
  };
  auto maps = [](const char* text) {
    return error_of([&] { data::parse_interchange_mappings(text, "m.json", kCounts); });
  };
  auto counts = [](const char* text) { return error_of([&] { data::parse_interchange_counts(text, "c.json"); }); };
  EXPECT_NE(seq("").find("s.json: the file is empty"), std::string::npos);
  EXPECT_NE(seq("{\"0\": [1,").find("s.json: invalid JSON"), std::string::npos);
  EXPECT_NE(seq("[1, 2]").find("s.json: $: expected an object of user index -> [item index, ...], found an array"),
            std::string::npos);
  EXPECT_NE(seq(R"({"3": [1]})").find("s.json: $[\"3\"]: user index 3 is not below num_users = 3"), std::string::npos);
  EXPECT_NE(seq(R"({"x": [1]})").find("$[\"x\"]: expected a user index as a decimal string key"), std::string::npos);
  EXPECT_NE(seq(R"({"01": [1]})").find("decimal string key"), std::string::npos);
  EXPECT_NE(seq(R"({"0": [1], "0": [2]})").find("s.json: $[\"0\"]: duplicate user index"), std::string::npos);
  EXPECT_NE(seq(R"({"0": [1, 2.0]})").find("s.json: $[\"0\"][1]: expected an item index (a non-negative integer), "
                                           "found a number with a fraction or exponent"),
            std::string::npos);
  EXPECT_NE(seq(R"({"0": [1, 5]})").find("$[\"0\"][1]: expected an item index in [0, 5), found 5"), std::string::npos);
  EXPECT_NE(seq(R"({"0": [-1]})").find("found -1"), std::string::npos);
  EXPECT_NE(seq(R"({"0": [18446744073709551615]})").find("found 18446744073709551615"), std::string::npos);
  EXPECT_NE(seq(R"({"0": "abc"})").find("$[\"0\"]: expected an array of item indices, found a string"), std::string::npos);
  EXPECT_NE(maps(R"({"users": {"a": 0, "b": 1, "c": 2}})").find("m.json: $: missing key \"items\""), std::string::npos);
  EXPECT_NE(maps(R"({"users": {"a": 0, "b": 1}, "items": {}})").find("$[\"users\"]: 2 ids, but data.counts says 3 users"),
            std::string::npos);
  EXPECT_NE(maps(R"({"users": {"a": 0, "b": 0, "c": 2}, "items": {}})").find("$[\"users\"][\"b\"]: index 0 is given to two ids"),
            std::string::npos);
  EXPECT_NE(maps(R"({"users": {"a": 0, "a": 1, "c": 2}, "items": {}})").find("duplicate original id"), std::string::npos);
  EXPECT_NE(maps(R"({"x": 1, "users": {}, "items": {}})").find("m.json: $: unexpected key"), std::string::npos);
  EXPECT_NE(counts("[3]").find("c.json: $: expected two counts [num_users, num_items], found 1"), std::string::npos);
  EXPECT_NE(counts("{\"a\": 1}").find("c.json: $: expected [num_users, num_items], found an object"), std::string::npos);
  EXPECT_NE(counts("[0, 4]").find("at least one user and one item"), std::string::npos);
  EXPECT_NE(maps(R"({"users": {"a": 0}, "items": {}})").find("m.json: $[\"users\"]: 1 ids, but data.counts says 3 users"),
            std::string::npos);
  // A count the file cannot hold is refused before anything is sized from it.
  EXPECT_NE(error_of([] { data::parse_interchange_mappings(R"({"users": {}, "items": {}})", "m.json", {1000000, 5}); })
                .find("data.counts says 1000000 users, more than this 26-byte file can hold"),
            std::string::npos);
  // A UTF-8 byte-order mark is accepted, as by every other reader.
  EXPECT_EQ(data::parse_interchange_counts("\xEF\xBB\xBF[3, 5]", "c.json").items, 5);
  EXPECT_NE(counts("[3, true]").find("c.json: $[1]: expected num_items (a non-negative integer), found a boolean"),
            std::string::npos);
}

TEST(Interchange, PicklesAndMissingKeysAreRefusedWithAHint) {
  data::InterchangePaths p{"t.json", "", "v.json", "x.json", "m.pkl", "c.json"};
  const std::string e = error_of([&] { data::check_interchange_paths(p); });
  EXPECT_NE(e.find("data.mappings: 'm.pkl' is a Python pickle"), std::string::npos) << e;
  EXPECT_NE(e.find("tools/seed_pickles_to_json.py"), std::string::npos) << e;
  p.mappings = "m.json";
  p.counts = "";
  EXPECT_NE(error_of([&] { data::check_interchange_paths(p); }).find("data.counts: missing"), std::string::npos);
}

}  // namespace RD_TEST_FILE
