// Atomic-file import, leave-one-out split and training windows; malformed input (tier 5).
#include <gtest/gtest.h>

#include "recdistill/data/atomic.hpp"
#include "recdistill/backbones/window_batching.hpp"
#include "recdistill/data/dataset.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::data;

namespace {
// Expects an Error whose message contains every fragment.
void expect_error(const std::string& text, std::vector<std::string> fragments) {
  try {
    parse_atomic_inter(text, "ex.inter");
    ADD_FAILURE() << "no error for:\n" << text;
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "message: " << msg << "\nmissing: " << f;
  }
}
}  // namespace

TEST(Atomic, ReadsAnyColumnOrderWithBomAndCrlf) {
  const std::string text =
      "\xEF\xBB\xBFtimestamp:float\titem_id:token\trating:float\tuser_id:token\r\n"
      "5\ta\t3\tu1\r\n"
      "3\tb\t4\tu1\r\n"
      "3\tc\t4\tu1\r\n"
      "1\ta\t1\tu2\r\n";
  const auto in = parse_atomic_inter(text, "ex.inter");
  ASSERT_EQ(in.size(), 4u);
  EXPECT_EQ(in.users.size(), 3);  // pad + 2
  EXPECT_EQ(in.items.size(), 4);  // pad + 3
  EXPECT_EQ(in.items.token(1), "a");
  const auto seqs = to_sequences(in);
  // u1: b and c share timestamp 3 and keep file order; a (t=5) is last.
  const int32_t a = in.items.find("a"), b = in.items.find("b"), c = in.items.find("c");
  EXPECT_EQ(seqs.items[size_t(in.users.find("u1"))], (std::vector<int32_t>{b, c, a}));
  EXPECT_EQ(seqs.items[size_t(in.users.find("u2"))], (std::vector<int32_t>{a}));
}

TEST(Atomic, MalformedInputGivesErrorsNamingFileAndLine) {
  expect_error("", {"ex.inter", "empty"});
  expect_error("user_id\titem_id:token\ttimestamp:float\n1\t2\t3\n",
               {"ex.inter:1", "column 1", "name:type", "'user_id'"});
  expect_error("user_id:token,item_id:token,timestamp:float\n1,2,3\n", {"ex.inter:1", "tab"});
  expect_error("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n4\t5\n",
               {"ex.inter:3", "expected 3 tab-separated fields, found 2"});
  expect_error("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tyesterday\n",
               {"ex.inter:2", "timestamp", "expected a number", "'yesterday'"});
  expect_error("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n1\t2\t3x",
               {"ex.inter:3", "'3x'"});
  expect_error("user_id:token\titem_id:token\n1\t2\n", {"ex.inter:1", "missing: timestamp"});
  expect_error("user_id:token\titem_id:token\ttimestamp:float\n", {"no interactions"});
  expect_error("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n\n4\t5\t6\n",
               {"ex.inter:3", "empty line"});
  expect_error("user_id:token\titem_id:token\ttimestamp:date\n1\t2\t3\n", {"type", "'date'"});
}

TEST(Atomic, TruncatedLastLineWithoutNewlineIsReadWhenComplete) {
  const auto in = parse_atomic_inter("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3", "x");
  EXPECT_EQ(in.size(), 1u);
}

TEST(Split, LeaveOneOutHoldsOutLastTwo) {
  UserSequences s;
  s.n_items = 10;
  s.n_users = 4;
  s.items = {{}, {1, 2, 3, 4, 5}, {6, 7}, {8}};
  const auto sp = split_leave_one_out(s);
  EXPECT_EQ(sp.train[1], (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(sp.valid[1], 4);
  EXPECT_EQ(sp.test[1], 5);
  EXPECT_EQ(sp.train[2], (std::vector<int32_t>{6}));  // n = 2: test only
  EXPECT_EQ(sp.valid[2], 0);
  EXPECT_EQ(sp.test[2], 7);
  EXPECT_EQ(sp.train[3], (std::vector<int32_t>{8}));  // n = 1: nothing held out
  EXPECT_EQ(sp.test[3], 0);
}

TEST(Windows, EveryPairIsATargetExactlyOnceAndTheLastWindowIsMostRecent) {
  std::vector<std::vector<int32_t>> train(3);
  for (int i = 1; i <= 12; ++i) train[1].push_back(i);  // 11 pairs
  train[2] = {3, 4};                                    // 1 pair
  const int L = 4;
  const auto w = WindowBatching(L, 0, false, false).rows(train);
  std::vector<int> seen(13, 0);
  std::vector<int32_t> seq(L), tgt(L);
  for (const auto& x : w) {
    if (x.user != 1) continue;
    WindowBatching(L, 0, false, false).layout(seq.data(), tgt.data(), train[1], x);
    for (int j = 0; j < L; ++j)
      if (tgt[j]) {
        ++seen[size_t(tgt[j])];
        EXPECT_EQ(tgt[j], seq[j] + 1);
      }
  }
  for (int i = 2; i <= 12; ++i) EXPECT_EQ(seen[size_t(i)], 1) << i;
  EXPECT_EQ(seen[1], 0);
  EXPECT_EQ(w[0].user, 1);
  EXPECT_EQ(w[0].begin, 7);  // pairs 8..11 (items 8..12) come first
  EXPECT_EQ(w[0].pairs, 4);
  EXPECT_EQ(w.back().user, 2);
}

TEST(Windows, OverlappingStrideGivesEveryTargetContextAndEachPairOnce) {
  std::vector<std::vector<int32_t>> train(2);
  for (int i = 1; i <= 12; ++i) train[1].push_back(i);  // 11 pairs, item i -> i + 1
  const int L = 4, stride = 2;
  const auto w = WindowBatching(L, stride, false, false).rows(train);
  std::vector<int> seen(13, 0);
  std::vector<int32_t> seq(L), tgt(L);
  for (const auto& x : w) {
    WindowBatching(L, 0, false, false).layout(seq.data(), tgt.data(), train[1], x);
    for (int j = 0; j < L; ++j) {
      if (!tgt[j]) continue;
      ++seen[size_t(tgt[j])];
      EXPECT_EQ(tgt[j], seq[j] + 1);
      // Context = items in slots 0..j: at least L - stride, or all items since the start.
      EXPECT_GE(j + 1, std::min(L - stride + 1, int(seq[j]))) << "target " << tgt[j];
    }
  }
  for (int i = 2; i <= 12; ++i) EXPECT_EQ(seen[size_t(i)], 1) << i;
  // stride 1 is RecBole's prefix objective: every target has min(t, L) items of context.
  for (const auto& x : WindowBatching(L, 1, false, false).rows(train)) {
    EXPECT_EQ(x.pairs - x.first_target, 1);
    EXPECT_EQ(x.pairs, std::min(L, x.begin + x.pairs));
  }
}

TEST(Windows, LeftPaddingAndThePmixerFirstItemQuirk) {
  const std::vector<int32_t> items = {5, 6, 7};
  const WindowBatching::Window w{1, 0, 2, 0};
  std::vector<int32_t> seq(4), tgt(4);
  WindowBatching(4, 0, true, false).layout(seq.data(), tgt.data(), items, w);
  EXPECT_EQ(seq, (std::vector<int32_t>{0, 0, 5, 6}));
  EXPECT_EQ(tgt, (std::vector<int32_t>{0, 0, 6, 7}));
  WindowBatching(4, 0, true, true).layout(seq.data(), tgt.data(), items, w);
  EXPECT_EQ(tgt, (std::vector<int32_t>{0, 5, 6, 7}));
  WindowBatching(4, 0, false, false).layout(seq.data(), tgt.data(), items, w);
  EXPECT_EQ(seq, (std::vector<int32_t>{5, 6, 0, 0}));
}

// ECIR keeps a user of one training item: with the quirk and the seed window that user is a row
// of pads whose last slot predicts the item (spec §9, n_u = 0); otherwise the user has no row.
TEST(Windows, OneItemUsersUnderThePmixerQuirk) {
  const std::vector<std::vector<int32_t>> train = {{}, {9}, {5, 6, 7}, {}};
  const auto rows = WindowBatching(4, 0, true, true, true).rows(train);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].user, 1);
  EXPECT_EQ(rows[0].pairs, 0);
  std::vector<int32_t> seq(4, -1), tgt(4, -1);
  WindowBatching(4, 0, true, true).layout(seq.data(), tgt.data(), train[1], rows[0]);
  EXPECT_EQ(seq, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(tgt, (std::vector<int32_t>{0, 0, 0, 9}));
  EXPECT_EQ(rows[1].user, 2);
  EXPECT_EQ(WindowBatching(4, 0, true, true).rows(train).size(), 1u);  // pmixer without the seed window
  EXPECT_EQ(WindowBatching(4, 0, true, false, true).rows(train).size(), 1u);
  EXPECT_EQ(WindowBatching(4, 0, false, false).rows(train).size(), 1u);
}

}  // namespace RD_TEST_FILE
