// Importers (atomic, CSV, Amazon JSON lines, sessions) on small fixtures, including malformed
// input: every error names the file, the line and what was expected (tier 5).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "recdistill/data/amazon.hpp"
#include "recdistill/data/atomic.hpp"
#include "recdistill/data/csv.hpp"
#include "recdistill/data/sessions.hpp"
#include "recdistill/data/split.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::data;

namespace {

const std::string dir = std::string(RECDISTILL_FIXTURE_DIR) + "/import/";

// Expects an Error whose message contains every fragment.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing " << fragments.at(0);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& x : fragments)
      EXPECT_NE(msg.find(x), std::string::npos) << "message: " << msg << "\nmissing: " << x;
  }
}

std::string rdtest_read(const std::string& path) { return detail::read_whole_file(path); }

std::vector<int32_t> seq_of(const Interactions& d, const std::string& user) {
  return to_sequences(d).items.at(size_t(d.users.find(user)));
}

}  // namespace

// ---------------------------------------------------------------- atomic

TEST(ImportAtomic, AnyColumnOrderBomCrlfRatingAndSideFilesInternedFirst) {
  const auto d = read_atomic(dir + "small.inter", dir + "small.item", dir + "small.user");
  ASSERT_EQ(d.size(), 5u);
  // Item file rows first, in file order; i9 (only in .inter) after them.
  EXPECT_EQ(d.items.tokens(), (std::vector<std::string>{"[PAD]", "i1", "i2", "i3", "i9"}));
  EXPECT_EQ(d.users.tokens(), (std::vector<std::string>{"[PAD]", "u2", "u1"}));
  EXPECT_EQ(d.item_meta.columns, (std::vector<std::string>{"title", "year"}));
  ASSERT_EQ(d.item_meta.rows.size(), 5u);
  EXPECT_EQ(d.item_meta.rows[2], (std::vector<std::string>{"Second", "1996"}));
  EXPECT_EQ(d.item_meta.rows[4], (std::vector<std::string>{"", ""}));  // i9: no metadata
  EXPECT_EQ(d.user_meta.rows[size_t(d.users.find("u1"))], (std::vector<std::string>{"20"}));
  EXPECT_EQ(d.rating, (std::vector<float>{4, 5, 2, 4, 3}));
  EXPECT_EQ(d.duplicates, 1u);  // (u1, i2, 10) twice
  EXPECT_EQ(seq_of(d, "u1"), (std::vector<int32_t>{2, 2, 1}));
  // Without side files ids follow first appearance in the .inter file.
  const auto plain = read_atomic_inter(dir + "small.inter");
  EXPECT_EQ(plain.items.tokens(), (std::vector<std::string>{"[PAD]", "i2", "i1", "i3", "i9"}));
  EXPECT_TRUE(plain.item_meta.columns.empty());
}

TEST(ImportAtomic, MalformedFilesNameFileLineAndExpectation) {
  expect_error([] { read_atomic_inter(dir + "wrong_sep.inter"); },
               {"wrong_sep.inter:3", "expected 3 tab-separated fields, found 1", "comma-separated?"});
  expect_error([] { read_atomic_inter(dir + "missing_col.inter"); },
               {"missing_col.inter:1", "missing: timestamp"});
  expect_error([] { read_atomic_inter(dir + "nonnumeric.inter"); },
               {"nonnumeric.inter:3", "column 'rating'", "expected a number", "'good'"});
  expect_error([] { read_atomic_inter(dir + "truncated.inter"); },
               {"truncated.inter:3", "expected 3 tab-separated fields, found 2", "truncated"});
  expect_error([] { read_atomic_inter(dir + "empty.inter"); }, {"empty.inter", "empty", "name:type"});
  expect_error([] { read_atomic(dir + "small.inter", dir + "dup.item"); },
               {"dup.item:4", "duplicate row", "'i1'", "line 2"});
  expect_error([] { read_atomic_inter(dir + "no_such_file.inter"); }, {"no_such_file.inter", "cannot open"});
  expect_error([] { parse_atomic_inter("a:token\tb:token\n", "x.inter"); }, {"x.inter:1", "missing"});
  expect_error([] { parse_atomic_inter("user_id:token\tuser_id:token\n", "x.inter"); },
               {"x.inter:1", "column 2", "also column 1"});
}

// ---------------------------------------------------------------- CSV

TEST(ImportCsv, QuotedFieldsBomCrlfAndMetadata) {
  const auto d = read_csv(dir + "interactions.csv", dir + "items.csv", dir + "users.csv");
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d.items.tokens(), (std::vector<std::string>{"[PAD]", "i1", "i2", "i3"}));
  EXPECT_EQ(d.item_meta.columns, (std::vector<std::string>{"title", "genres"}));
  EXPECT_EQ(d.item_meta.rows[1], (std::vector<std::string>{"Toy Story (1995)", "Animation|Comedy"}));
  EXPECT_EQ(d.item_meta.rows[2], (std::vector<std::string>{"Heat, the \"movie\"", "Action"}));
  EXPECT_EQ(d.item_meta.rows[3], (std::vector<std::string>{"Third", ""}));
  EXPECT_EQ(d.user_meta.columns, (std::vector<std::string>{"age", "gender"}));
  EXPECT_EQ(d.rating, (std::vector<float>{4, 5, 2, 4}));
  EXPECT_EQ(d.timestamp, (std::vector<double>{10, 20, 15, 10}));
  EXPECT_EQ(d.duplicates, 1u);
  EXPECT_EQ(seq_of(d, "u1"), (std::vector<int32_t>{2, 2, 1}));
}

TEST(ImportCsv, RemappedColumnNames) {
  const auto d = read_csv(dir + "renamed.csv", "", "", {"uid", "iid", "ts", "rating"});
  EXPECT_EQ(d.size(), 2u);
  EXPECT_TRUE(d.rating.empty());
  expect_error([] { read_csv(dir + "renamed.csv"); },
               {"renamed.csv:1", "missing column 'user_id'", "found: uid, iid, ts"});
}

TEST(ImportCsv, QuotesSpanningLinesKeepLineNumbers) {
  // The third record spans lines 3-4, so the bad field of the next one is on line 5.
  const std::string text = "user_id,item_id,timestamp,c\nu,a,1,x\nu,b,2,\"p\nq\"\nu,c,zz,y\n";
  Interactions d;
  expect_error([&] { parse_csv_interactions_into(d, text, "q.csv"); },
               {"q.csv:5", "'zz'"});
}

TEST(ImportCsv, MalformedFilesNameFileLineAndExpectation) {
  expect_error([] { read_csv(dir + "semicolon.csv"); },
               {"semicolon.csv:1", "expected a comma-separated header", "separator ';'"});
  expect_error([] { read_csv(dir + "semicolon_row.csv"); },
               {"semicolon_row.csv:3", "expected 3 comma-separated fields, found 1", "wrong separator"});
  expect_error([] { read_csv(dir + "missing_col.csv"); },
               {"missing_col.csv:1", "missing column 'timestamp'"});
  expect_error([] { read_csv(dir + "nonnumeric.csv"); },
               {"nonnumeric.csv:3", "column 'timestamp'", "expected a number", "'yesterday'"});
  expect_error([] { read_csv(dir + "truncated.csv"); },
               {"truncated.csv:3", "expected 3 comma-separated fields, found 2", "truncated"});
  expect_error([] { read_csv(dir + "empty.csv"); }, {"empty.csv", "empty", "header"});
  expect_error([] { read_csv(dir + "unclosed_quote.csv"); },
               {"unclosed_quote.csv:3", "column 2", "not closed"});
  expect_error([] { read_csv(dir + "stray_quote.csv"); },
               {"stray_quote.csv:2", "column 2", "unquoted field"});
  expect_error([] { read_csv(dir + "dup_rows.csv", dir + "dup_items.csv"); },
               {"dup_items.csv:4", "duplicate row", "'i2'", "line 3"});
  // Duplicate interactions are counted, not an error.
  EXPECT_EQ(read_csv(dir + "dup_rows.csv").duplicates, 2u);
}

// ---------------------------------------------------------------- Amazon

TEST(ImportAmazon, ReviewsWithMetadata) {
  const auto d = read_amazon(dir + "reviews.jsonl", dir + "meta.jsonl");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.items.tokens(), (std::vector<std::string>{"[PAD]", "B1", "B2", "B3"}));
  EXPECT_EQ(d.users.tokens(), (std::vector<std::string>{"[PAD]", "A1", "A2"}));
  EXPECT_EQ(d.item_meta.columns, (std::vector<std::string>{"title", "category"}));
  EXPECT_EQ(d.item_meta.rows[1], (std::vector<std::string>{"Book One", "Books | Fiction"}));  // first record kept
  EXPECT_EQ(d.item_meta.rows[2], (std::vector<std::string>{"Book Two", ""}));
  EXPECT_EQ(d.item_meta.rows[3], (std::vector<std::string>{"", ""}));
  EXPECT_EQ(d.rating, (std::vector<float>{5, 3, 4}));
  EXPECT_EQ(d.timestamp, (std::vector<double>{1514764800, 1514764700, 1514764900}));
  EXPECT_EQ(seq_of(d, "A1"), (std::vector<int32_t>{2, 3}));
  // From a string (not padded by the caller) gives the same.
  EXPECT_EQ(parse_amazon(rdtest_read(dir + "reviews.jsonl"), dir + "reviews.jsonl").item,
            read_amazon(dir + "reviews.jsonl").item);
}

TEST(ImportAmazon, MalformedFilesNameFileLineAndExpectation) {
  expect_error([] { read_amazon(dir + "missing_key.jsonl"); },
               {"missing_key.jsonl:2", "key 'asin'", "expected a string", "no such key"});
  expect_error([] { read_amazon(dir + "nonnumeric.jsonl"); },
               {"nonnumeric.jsonl:1", "key 'unixReviewTime'", "expected a number, found a string"});
  expect_error([] { read_amazon(dir + "truncated.jsonl"); },
               {"truncated.jsonl:2", "invalid JSON", "truncated"});
  expect_error([] { read_amazon(dir + "empty.jsonl"); }, {"empty.jsonl", "empty"});
  expect_error([] { read_amazon(dir + "not_object.jsonl"); },
               {"not_object.jsonl:1", "expected a JSON object, found an array"});
  expect_error([] { read_amazon(dir + "wrong_sep.jsonl"); }, {"wrong_sep.jsonl:1", "invalid JSON"});
  expect_error([] { parse_amazon("{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": 5, \"unixReviewTime\": 1}\n\n{}\n", "gap.jsonl"); },
               {"gap.jsonl:2", "empty line"});
  // A repeated review is counted, not an error.
  const std::string line = "{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": 5, \"unixReviewTime\": 1}\n";
  EXPECT_EQ(parse_amazon(line + line + line, "dup.jsonl").duplicates, 2u);
}

// ---------------------------------------------------------------- sessions

TEST(ImportSessions, OneUserPerSessionItemsShiftedByOne) {
  const auto d = read_sessions(dir + "sessions.tsv", dir + "items.tsv");
  EXPECT_EQ(d.items.size(), 5);  // pad + 4
  EXPECT_EQ(d.items.token(1), "0");
  EXPECT_EQ(d.item_meta.columns, (std::vector<std::string>{"raw_item_id", "title"}));
  EXPECT_EQ(d.item_meta.rows[2], (std::vector<std::string>{"2", "Jumanji"}));
  EXPECT_EQ(d.users.tokens(), (std::vector<std::string>{"[PAD]", "10", "11", "12", "13"}));
  EXPECT_EQ(d.session_split, (std::vector<std::string>{"", "train", "train", "valid", "test"}));
  // Session 10: items 0 1 2, target 3 -> ids 1 2 3 4 at positions 0..3.
  EXPECT_EQ(seq_of(d, "10"), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(seq_of(d, "12"), (std::vector<int32_t>{4, 4, 2}));
  EXPECT_EQ(d.timestamp[3], 3.0);
  EXPECT_EQ(d.size(), 4u + 3 + 3 + 2);
}

TEST(ImportSessions, MalformedFilesNameFileLineAndExpectation) {
  auto rd = [](const char* s, const char* i = "items.tsv") { read_sessions(dir + s, dir + i); };
  expect_error([&] { rd("sessions_bad_index.tsv"); },
               {"sessions_bad_index.tsv:2", "column 'items'", "below 4", "found 7"});
  expect_error([&] { rd("sessions_nonnumeric.tsv"); },
               {"sessions_nonnumeric.tsv:2", "column 'items'", "non-negative integer", "'x'"});
  expect_error([&] { rd("sessions_dup.tsv"); }, {"sessions_dup.tsv:3", "duplicate row", "line 2"});
  expect_error([&] { rd("sessions_truncated.tsv"); },
               {"sessions_truncated.tsv:3", "expected 4 tab-separated fields, found 3", "truncated"});
  expect_error([&] { rd("sessions_comma.tsv"); },
               {"sessions_comma.tsv:1", "missing column 'session_id'", "comma-separated?"});
  expect_error([&] { rd("sessions_label.tsv"); },
               {"sessions_label.tsv:2", "column 'split'", "train, valid or test", "'training'"});
  expect_error([&] { rd("sessions_no_target.tsv"); },
               {"sessions_no_target.tsv:3", "column 'target'", "non-negative integer", "''"});
  expect_error([&] { rd("empty.tsv"); }, {"empty.tsv", "empty"});
  expect_error([&] { rd("sessions.tsv", "items_gap.tsv"); },
               {"items_gap.tsv:3", "column 'item_index'", "expected 1", "'2'"});
}

TEST(ImportSessions, ShippedAlkdrecFileReadsCompletely) {
  const std::string base = std::string(RECDISTILL_FIXTURE_DIR) + "/../../data/alkdrec-ml/";
  const auto d = read_sessions(base + "sessions.tsv", base + "items.tsv");
  EXPECT_EQ(d.users.size() - 1, 12323);
  EXPECT_EQ(d.items.size() - 1, 8475);
  EXPECT_EQ(d.items.token(1), "0");
  EXPECT_EQ(d.item_meta.rows[1][1], "Toy story");
  // First session: "265 2015 1313 528 0" -> 1240.
  EXPECT_EQ(to_sequences(d).items[1], (std::vector<int32_t>{266, 2016, 1314, 529, 1, 1241}));
}

// data.expected_counts: the shipped data's load-time facts; a copy that disagrees is refused,
// naming every count that differs.
TEST(ImportSessions, ExpectedCountsAreChecked) {
  const auto d = read_sessions(dir + "sessions.tsv", dir + "items.tsv");
  const auto split = split_sessions(d);
  auto check = [&](const std::vector<int>& want) { check_expected_counts(want, d, split, "sessions.tsv"); };
  check({});            // no check
  check({4, 2, 1, 1});  // 4 items, sessions 10 and 11 train, 12 valid, 13 test
  expect_error([&] { check({4, 3, 1, 2}); },
               {"sessions.tsv", "expected_counts", "training sequences: expected 3, found 2", "test cases: expected 2, found 1"});
  expect_error([&] { check({4, 2}); }, {"data.expected_counts", "found 2 numbers"});
}

}  // namespace RD_TEST_FILE
