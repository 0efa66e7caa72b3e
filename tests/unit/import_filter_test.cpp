// Filters (rating threshold, duplicates, k-core to a fixed point, id re-compaction) and the
// config-driven entry point load_dataset over every format.
#include <gtest/gtest.h>

#include <random>
#include <unordered_map>
#include <string>
#include <vector>

#include "recdistill/data/filter.hpp"
#include "recdistill/data/load.hpp"
#include "recdistill/io/config.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::data;

namespace {

const std::string dir = std::string(RECDISTILL_FIXTURE_DIR) + "/import/";

// Builds a dataset from (user, item, timestamp) tokens in file order.
Interactions make(const std::vector<std::tuple<std::string, std::string, double>>& rows,
                  std::vector<float> rating = {}) {
  Interactions d;
  d.source = "mem";
  for (const auto& [u, i, t] : rows) {
    d.user.push_back(d.users.intern(u));
    d.item.push_back(d.items.intern(i));
    d.timestamp.push_back(t);
  }
  d.rating = std::move(rating);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(IdMap, InternAndFindAgreeWithAReferenceMapAcrossGrowth) {
  std::mt19937 g(3);
  IdMap m;
  std::unordered_map<std::string, int32_t> ref;
  for (int k = 0; k < 50000; ++k) {
    const std::string t = std::to_string(g() % 20000) + (k % 3 ? "" : "-a-longer-token-than-sso");
    auto [it, fresh] = ref.try_emplace(t, int32_t(ref.size() + 1));
    ASSERT_EQ(m.intern(t), it->second) << t;
    ASSERT_EQ(m.find(t), it->second);
  }
  EXPECT_EQ(m.size(), int32_t(ref.size() + 1));
  for (const auto& [t, id] : ref) EXPECT_EQ(m.token(id), t);
  EXPECT_EQ(m.find("never-seen"), -1);
  EXPECT_EQ(m.find("[PAD]"), -1);  // the pad is not a token of the data
  EXPECT_EQ(IdMap().find("x"), -1);
  IdMap copy = m;  // copies look up on their own
  EXPECT_EQ(copy.intern("brand-new"), m.size());
  EXPECT_EQ(m.find("brand-new"), -1);
}

TEST(Filter, KCoreCascadesToAFixedPointAndRecompactsIds) {
  // u4's single row goes first; then item c has one row left, so u3-c goes; then u3 has
  // one row left, so u3-a goes: three removing passes and one that removes nothing.
  const auto d = make({{"u1", "a", 1}, {"u3", "a", 1}, {"u1", "b", 2}, {"u2", "a", 1},
                       {"u2", "b", 2}, {"u3", "c", 2}, {"u4", "c", 1}});
  FilterOptions o;
  o.min_user_interactions = 2;
  o.min_item_interactions = 2;
  FilterReport rep;
  const auto f = filter_dataset(d, o, &rep);
  EXPECT_EQ(rep.by_kcore, 3u);
  EXPECT_EQ(rep.kcore_rounds, 4);
  EXPECT_EQ(f.users.tokens(), (std::vector<std::string>{"[PAD]", "u1", "u2"}));
  EXPECT_EQ(f.items.tokens(), (std::vector<std::string>{"[PAD]", "a", "b"}));
  EXPECT_EQ(f.user, (std::vector<int32_t>{1, 1, 2, 2}));  // file order kept
  EXPECT_EQ(f.item, (std::vector<int32_t>{1, 2, 1, 2}));
  EXPECT_EQ(rep.users_out, 2);
}

TEST(Filter, KCoreResultMeetsTheMinimumsAndIsIdempotentOnRandomData) {
  std::mt19937 g(7);
  std::vector<std::tuple<std::string, std::string, double>> rows;
  std::geometric_distribution<int> zipf(0.08);
  for (int r = 0; r < 3000; ++r) {
    const int u = zipf(g), i = zipf(g) * 3 % 97;
    rows.emplace_back("u" + std::to_string(u), "i" + std::to_string(i), r);
  }
  const auto d = make(rows);
  FilterOptions o;
  o.min_user_interactions = 5;
  o.min_item_interactions = 4;
  FilterReport rep;
  const auto f = filter_dataset(d, o, &rep);
  ASSERT_GT(f.size(), 0u);
  ASSERT_LT(f.size(), d.size());
  std::vector<int> nu(size_t(f.users.size())), ni(size_t(f.items.size()));
  for (size_t r = 0; r < f.size(); ++r) ++nu[size_t(f.user[r])], ++ni[size_t(f.item[r])];
  for (size_t u = 1; u < nu.size(); ++u) EXPECT_GE(nu[u], 5) << f.users.token(int32_t(u));
  for (size_t i = 1; i < ni.size(); ++i) EXPECT_GE(ni[i], 4) << f.items.token(int32_t(i));
  FilterReport again;
  EXPECT_EQ(filter_dataset(f, o, &again), f);
  EXPECT_EQ(again.by_kcore, 0u);
  EXPECT_EQ(again.kcore_rounds, 1);
  // Re-compaction keeps the relative order of the surviving tokens.
  for (int32_t i = 2; i < f.items.size(); ++i)
    EXPECT_LT(d.items.find(f.items.token(i - 1)), d.items.find(f.items.token(i)));
}

TEST(Filter, RatingThresholdDuplicatesMetadataAndSessionLabelsFollowIds) {
  auto d = make({{"u1", "a", 1}, {"u1", "b", 2}, {"u2", "b", 1}, {"u1", "a", 1}, {"u2", "c", 3}},
                {5, 1, 4, 5, 3});
  d.item_meta = {{"title"}, {{""}, {"A"}, {"B"}, {"C"}}};
  d.session_split = {"", "train", "test"};
  d.duplicates = 1;
  FilterOptions o;
  o.min_rating = 3;
  FilterReport rep;
  auto f = filter_dataset(d, o, &rep);
  EXPECT_EQ(rep.by_rating, 1u);
  EXPECT_EQ(f.size(), 4u);
  EXPECT_EQ(f.items.tokens(), (std::vector<std::string>{"[PAD]", "a", "b", "c"}));
  EXPECT_EQ(f.duplicates, 1u);  // kept without drop_duplicates
  o.drop_duplicates = true;
  o.min_rating = 4.5;  // drops b twice and c: only u1-a (twice) is left, then one copy
  f = filter_dataset(d, o, &rep);
  EXPECT_EQ(rep.by_duplicates, 1u);
  EXPECT_EQ(f.size(), 1u);
  EXPECT_EQ(f.duplicates, 0u);
  EXPECT_EQ(f.items.tokens(), (std::vector<std::string>{"[PAD]", "a"}));
  EXPECT_EQ(f.item_meta.rows, (std::vector<std::vector<std::string>>{{""}, {"A"}}));
  EXPECT_EQ(f.session_split, (std::vector<std::string>{"", "train"}));
  // A threshold on data without ratings, and a filter that leaves nothing, are errors.
  FilterOptions r;
  r.min_rating = 1;
  EXPECT_NE(error_of([&] { filter_dataset(make({{"u", "i", 1}}), r); }).find("no rating column"), std::string::npos);
  r.min_rating = 10;
  EXPECT_NE(error_of([&] { filter_dataset(d, r); }).find("no interactions left"), std::string::npos);
  // No filter: the dataset unchanged.
  EXPECT_EQ(filter_dataset(d, FilterOptions{}), d);
}

TEST(Load, ConfigDispatchesOnFormatAndFilters) {
  io::DataConfig c;
  c.format = "atomic";
  c.path = dir + "small.inter";
  c.item_path = dir + "small.item";
  EXPECT_EQ(load_dataset(c).items.token(1), "i1");
  c.drop_duplicates = true;
  EXPECT_EQ(load_dataset(c).size(), 4u);
  c = {};
  c.format = "csv";
  c.path = dir + "interactions.csv";
  c.min_rating = 3;
  EXPECT_EQ(load_dataset(c).size(), 3u);
  c = {};
  c.format = "amazon";
  c.path = dir + "reviews.jsonl";
  c.item_path = dir + "meta.jsonl";
  EXPECT_EQ(load_dataset(c).item_meta.rows[2][0], "Book Two");
  c = {};
  c.format = "sessions";
  c.path = dir + "sessions.tsv";  // items.tsv beside it
  EXPECT_EQ(load_dataset(c).session_split.size(), 5u);
  c.format = "parquet";
  EXPECT_NE(error_of([&] { load_dataset(c); }).find("data.format"), std::string::npos);
}

TEST(Load, DataKeysOfTheConfig) {
  const auto cfg = io::parse_config_text(R"(
data:
  format: csv
  path: x.csv
  item_path: items.csv
  split: temporal
  rating_field: stars
  drop_duplicates: true
  min_rating: 3.5
  min_user_interactions: 5
  min_item_interactions: 3
  temporal_quantile: 0.9
  valid_share: 0.1
  split_ratios: [0.5, 0.25, 0.25]
)", "c.yaml");
  EXPECT_EQ(cfg.data.format, "csv");
  EXPECT_EQ(cfg.data.item_path, "items.csv");
  EXPECT_EQ(cfg.data.split, "temporal");
  EXPECT_EQ(cfg.data.rating_field, "stars");
  EXPECT_TRUE(cfg.data.drop_duplicates);
  EXPECT_EQ(cfg.data.min_rating, 3.5);
  EXPECT_EQ(filter_options(cfg.data).min_user_interactions, 5);
  EXPECT_EQ(split_options(cfg.data).valid_share, 0.1);
  EXPECT_EQ(cfg.data.split_ratios, (std::vector<double>{0.5, 0.25, 0.25}));
  EXPECT_FALSE(filter_options(io::DataConfig{}).active());
  const std::string bad = error_of([] {
    io::parse_config_text("data:\n  split_ratios: [0.5, 0.2, 0.2]\n", "c.yaml");
  });
  EXPECT_NE(bad.find("c.yaml:2"), std::string::npos) << bad;
  EXPECT_NE(bad.find("summing to 1"), std::string::npos) << bad;
  EXPECT_NE(error_of([] { io::parse_config_text("data:\n  format: xml\n", "c.yaml"); })
                .find("expected one of atomic, csv, amazon, sessions"),
            std::string::npos);
}

}  // namespace RD_TEST_FILE
