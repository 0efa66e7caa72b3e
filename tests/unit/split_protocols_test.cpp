// Split protocols: leave-one-out wrap, the global temporal split (hand example, seeded and
// deterministic validation draw), shipped session labels and contiguous ratio splits, checked
// against the `split` column of data/alkdrec-ml/sessions.tsv.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "recdistill/data/load.hpp"
#include "recdistill/data/sessions.hpp"
#include "recdistill/data/split.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::data;

namespace {

Interactions make(const std::vector<std::tuple<std::string, std::string, double>>& rows) {
  Interactions d;
  d.source = "mem";
  for (const auto& [u, i, t] : rows) {
    d.user.push_back(d.users.intern(u));
    d.item.push_back(d.items.intern(i));
    d.timestamp.push_back(t);
  }
  return d;
}

// Four users over timestamps 1..11; q = 0.8-quantile = 9.2 (see the test).
Interactions temporal_example() {
  return make({{"u1", "a", 1}, {"u1", "b", 2}, {"u1", "c", 3}, {"u2", "b", 4}, {"u2", "c", 5},
               {"u2", "d", 10}, {"u3", "a", 9}, {"u3", "e", 11}, {"u4", "a", 6}, {"u4", "c", 7}});
}

// "u12" (GCC 12 warns falsely, -Wrestrict, about "u" + std::to_string(12)).
std::string tok(char prefix, int k) {
  std::string s(1, prefix);
  s += std::to_string(k);
  return s;
}

const std::string alkdrec = std::string(RECDISTILL_FIXTURE_DIR) + "/../../data/alkdrec-ml/";

}  // namespace

TEST(SplitLoo, WrapsLeaveOneOut) {
  const auto d = temporal_example();
  const auto s = split_loo(d);
  EXPECT_EQ(s, to_split(split_leave_one_out(to_sequences(d))));
  EXPECT_EQ(s.protocol, "loo");
  EXPECT_EQ(s.train[1], (std::vector<int32_t>{1}));  // u1: a | b valid | c test
}

TEST(SplitTemporal, QuantileIsLinearlyInterpolated) {
  // numpy.quantile([1, 2, 3, 4], 0.8) = 3.4; of one value, that value.
  EXPECT_DOUBLE_EQ(quantile_linear({4, 1, 3, 2}, 0.8), 3.4);
  EXPECT_DOUBLE_EQ(quantile_linear({5}, 0.8), 5.0);
  EXPECT_DOUBLE_EQ(quantile_linear({1, 2}, 1.0), 2.0);
}

TEST(SplitTemporal, HandExample) {
  // Sorted timestamps 1 2 3 4 5 6 7 9 10 11: h = 9 * 0.8 = 7.2, q = 9 + 0.2 * (10 - 9) = 9.2.
  // train: u1 a b c; u2 b c (d at 10 > q dropped); u3 a (e at 11 dropped); u4 a c.
  // test:  u2 (last 10 > q) b c -> d; u3 (last 11 > q) a -> e.
  const auto d = temporal_example();
  const int32_t a = 1, b = 2, c = 3, dd = 4, e = 5;
  const auto s = split_temporal(d, 0.8, 0.0, 1);
  EXPECT_EQ(s.protocol, "temporal");
  EXPECT_EQ(s.train, (std::vector<std::vector<int32_t>>{{}, {a, b, c}, {b, c}, {a}, {a, c}}));
  EXPECT_EQ(s.test, (std::vector<SplitCase>{{2, {b, c}, dd}, {3, {a}, e}}));
  EXPECT_TRUE(s.valid.empty());
  EXPECT_EQ(s.n_items, 6);
  EXPECT_EQ(s.n_users, 5);
  // valid_share 0.5: floor(0.5 * 4) = 2 of the 4 train users move to validation; a drawn
  // user's sequence (<= q) minus its last item predicts that item (u3 has one item: no case).
  for (uint64_t seed : {1, 2, 3, 4, 5, 6}) {
    const auto v = split_temporal(d, 0.8, 0.5, seed);
    std::vector<int32_t> drawn = seeded_shuffle({1, 2, 3, 4}, seed);
    drawn.resize(2);
    std::sort(drawn.begin(), drawn.end());
    std::vector<SplitCase> want;
    for (int32_t u : drawn) {
      EXPECT_TRUE(v.train[size_t(u)].empty());
      const auto& full = s.train[size_t(u)];
      if (full.size() >= 2) want.push_back({u, {full.begin(), full.end() - 1}, full.back()});
    }
    EXPECT_EQ(v.valid, want);
    int kept = 0;
    for (int32_t u = 1; u <= 4; ++u) kept += !v.train[size_t(u)].empty();
    EXPECT_EQ(kept, 2);
    EXPECT_EQ(v.test, s.test);  // the draw never touches the test users
  }
}

TEST(SplitTemporal, SeededDrawIsDeterministicAndDependsOnTheSeed) {
  std::vector<std::tuple<std::string, std::string, double>> rows;
  for (int u = 0; u < 200; ++u)
    for (int k = 0; k < 4; ++k) rows.emplace_back(tok('u', u), tok('i', (u * 7 + k) % 50), u + k);
  const auto d = make(rows);
  const auto s1 = split_temporal(d, 0.8, 0.2, 2020), s1b = split_temporal(d, 0.8, 0.2, 2020);
  const auto s2 = split_temporal(d, 0.8, 0.2, 2021);
  EXPECT_EQ(s1, s1b);
  EXPECT_NE(s1.valid, s2.valid);
  EXPECT_EQ(s1.test, s2.test);
  size_t train_users = 0;
  for (const auto& t : s1.train) train_users += !t.empty();
  EXPECT_EQ(s1.valid.size(), size_t(std::floor(0.2 * double(train_users + s1.valid.size()))));
  // seeded_shuffle is a permutation.
  std::vector<int32_t> ids(100);
  for (int i = 0; i < 100; ++i) ids[size_t(i)] = i;
  auto p = seeded_shuffle(ids, 5);
  EXPECT_NE(p, ids);
  std::sort(p.begin(), p.end());
  EXPECT_EQ(p, ids);
}

TEST(SplitSession, ShippedLabelsGiveTrainSequencesAndCases) {
  const std::string dir = std::string(RECDISTILL_FIXTURE_DIR) + "/import/";
  const auto d = read_sessions(dir + "sessions.tsv", dir + "items.tsv");
  const auto s = split_sessions(d);
  EXPECT_EQ(s.protocol, "session");
  // Train sessions train on items + target; valid/test: items -> target (ids = index + 1).
  EXPECT_EQ(s.train[1], (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(s.train[2], (std::vector<int32_t>{2, 3, 1}));
  EXPECT_EQ(s.valid, (std::vector<SplitCase>{{3, {4, 4}, 2}}));
  EXPECT_EQ(s.test, (std::vector<SplitCase>{{4, {3}, 1}}));
  EXPECT_TRUE(s.train[3].empty());
  // Session labels need session data.
  try {
    split_sessions(make({{"u", "i", 1}}));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.format: sessions"), std::string::npos);
  }
}

TEST(SplitSession, RatioSplitReproducesTheShippedSplitColumnOfAlkdrec) {
  const auto d = read_sessions(alkdrec + "sessions.tsv", alkdrec + "items.tsv");
  const size_t n = size_t(d.users.size() - 1);
  ASSERT_EQ(n, 12323u);
  const auto labels = ratio_labels(n, {0.6, 0.2, 0.2});
  ASSERT_EQ(d.session_split.size(), n + 1);
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) mismatches += labels[i] != d.session_split[i + 1];
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(std::count(labels.begin(), labels.end(), "train"), 7393);
  EXPECT_EQ(std::count(labels.begin(), labels.end(), "valid"), 2465);
  EXPECT_EQ(std::count(labels.begin(), labels.end(), "test"), 2465);
  auto ratio = split_ratio(d, {0.6, 0.2, 0.2});
  const auto shipped = split_sessions(d);
  EXPECT_EQ(ratio.protocol, "ratio");
  ratio.protocol = "session";
  EXPECT_EQ(ratio, shipped);
  EXPECT_EQ(shipped.valid.size(), 2465u);
  EXPECT_EQ(shipped.test.size(), 2465u);
  // Other fractions move the boundaries.
  EXPECT_NE(ratio_labels(n, {0.7, 0.1, 0.2}), labels);
}

TEST(SplitSession, RatioBoundariesAreCumulativeFloors) {
  EXPECT_EQ(ratio_labels(5, {0.6, 0.2, 0.2}), (std::vector<std::string>{"train", "train", "train", "valid", "test"}));
  // 0.7 + 0.1 is 0.7999999999999999 in binary; the boundary is still floor(5 * 0.8) = 4.
  EXPECT_EQ(ratio_labels(5, {0.7, 0.1, 0.2}), (std::vector<std::string>{"train", "train", "train", "valid", "test"}));
  EXPECT_EQ(ratio_labels(3, {1, 0, 0}), (std::vector<std::string>{"train", "train", "train"}));
}

TEST(SplitDispatch, ConfigPicksTheProtocol) {
  io::DataConfig c;
  c.format = "sessions";
  c.path = alkdrec + "sessions.tsv";
  const auto d = load_dataset(c);
  c.split = "session";
  EXPECT_EQ(split_dataset(d, c, 1).protocol, "session");
  c.split = "ratio";
  EXPECT_EQ(split_dataset(d, c, 1).test.size(), 2465u);
  c.split = "temporal";
  EXPECT_EQ(split_dataset(d, c, 3), split_dataset(d, c, 3));
  c.split = "loo";
  EXPECT_EQ(split_dataset(d, c, 1), split_loo(d));
}

}  // namespace RD_TEST_FILE
