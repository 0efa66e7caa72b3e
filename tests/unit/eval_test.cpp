// Evaluation: exclusions, top-K selection, sampled negatives, batch invariance with a real
// model, per-case dumps and the eval.* config keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/eval/per_case.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/eval/topk.hpp"
#include "recdistill/io/config.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::eval;
using B = cpu::Backend;

namespace {

// Brute force: sort ids 1..N-1 by (score desc, id asc), skipping NaN.
std::vector<int32_t> sorted_ids(const std::vector<float>& row) {
  std::vector<int32_t> ids;
  for (int j = 1; j < int(row.size()); ++j)
    if (!std::isnan(row[size_t(j)])) ids.push_back(j);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return row[size_t(a)] > row[size_t(b)] || (row[size_t(a)] == row[size_t(b)] && a < b);
  });
  return ids;
}

struct Fixture {
  SASRec<B, float> model;
  std::vector<float> params;
  std::vector<std::vector<int32_t>> histories, seen;
  std::vector<Case> cases;

  Fixture(int n_items, int n_cases, unsigned seed) : model(config(n_items)) {
    params.resize(model.num_params());
    model.init(params.data(), 11);
    std::mt19937 g(seed);
    std::uniform_int_distribution<int> item(1, n_items - 1), len(1, 15);
    histories.resize(size_t(n_cases));
    seen.resize(size_t(n_cases));
    for (int i = 0; i < n_cases; ++i) {
      const int n = len(g);
      for (int t = 0; t < n; ++t) histories[size_t(i)].push_back(item(g));
      for (int t = 0; t < 3; ++t) seen[size_t(i)].push_back(item(g));
    }
    for (int i = 0; i < n_cases; ++i) {
      Case c{histories[size_t(i)].data(), histories[size_t(i)].size(), item(g), i + 1};
      // Every 7th target repeats a history item, every 11th a `seen` item: excluded targets.
      if (i % 7 == 0) c.target = histories[size_t(i)][0];
      if (i % 11 == 0) c.target = seen[size_t(i)][1];
      c.seen = seen[size_t(i)].data();
      c.n_seen = seen[size_t(i)].size();
      cases.push_back(c);
    }
  }
  static SASRecConfig config(int n_items) {
    SASRecConfig c;
    c.n_items = n_items;
    c.max_len = 10;
    c.hidden = 16;
    c.layers = 1;
    c.heads = 2;
    c.inner = 32;
    c.hidden_dropout = c.attn_dropout = 0.1;
    c.init_range = 0.5;  // spread the scores
    return c;
  }
  // The score row of case i, computed alone.
  std::vector<float> row(size_t i) {
    auto acts = model.make_activations(kEvalBlock);
    std::vector<float> out;
    score_cases<B>(model, params.data(), acts, {cases[i]},
                   [&](size_t, float* r) { out.assign(r, r + model.config().n_items); });
    return out;
  }
};

}  // namespace

TEST(TopK, SelectionMatchesAFullSortWithTiesAndNaN) {
  std::mt19937 g(3);
  TopKScratch<float> heap;
  for (int N : {2, 5, 17, 33, 100, 1000}) {
    for (int K : {1, 3, 10, 40, 64, 65, 200}) {
      std::vector<float> row(static_cast<size_t>(N));
      std::uniform_int_distribution<int> v(0, 20);  // many ties
      for (auto& x : row) x = float(v(g)) * 0.25f;
      row[0] = 1e9f;                      // the pad is never selected
      if (N > 4) row[3] = NAN, row[4] = -INFINITY;  // masked item; a real -inf score
      std::vector<int32_t> items(static_cast<size_t>(K));
      std::vector<float> scores(static_cast<size_t>(K));
      select_topk(row.data(), N, K, items.data(), scores.data(), heap);
      const auto want = sorted_ids(row);
      for (int i = 0; i < K; ++i) {
        if (size_t(i) < want.size()) {
          ASSERT_EQ(items[size_t(i)], want[size_t(i)]) << "N " << N << " K " << K << " i " << i;
          ASSERT_EQ(scores[size_t(i)], row[size_t(want[size_t(i)])]);
        } else {
          ASSERT_EQ(items[size_t(i)], 0) << "N " << N << " K " << K;  // fewer items than K
          ASSERT_EQ(scores[size_t(i)], -INFINITY);
        }
      }
    }
  }
}

TEST(Exclusion, HandExample) {
  // Items 1..6; history {2, 5, 2} (a repeat); seen list {6}; target 4.
  const std::vector<int32_t> h = {2, 5, 2}, seen = {6};
  const std::vector<float> base = {9.f, 0.1f, 0.9f, 0.3f, 0.5f, 0.8f, 0.7f};
  Case c{h.data(), h.size(), 4, 1, seen.data(), seen.size()};
  auto ranked = [&](Exclude ex, int32_t target) {
    auto row = base;
    mask_excluded(row.data(), c, ex);
    return rank_of_target(row.data(), 7, target, Ties::against_model);
  };
  EXPECT_EQ(ranked(Exclude::none, 4), 4);     // 2 (0.9), 5 (0.8), 6 (0.7) are better
  EXPECT_EQ(ranked(Exclude::history, 4), 2);  // 2 and 5 removed
  EXPECT_EQ(ranked(Exclude::seen, 4), 1);     // and 6
  EXPECT_EQ(ranked(Exclude::history, 5), kMissRank);  // a target in the history is a miss
  EXPECT_EQ(ranked(Exclude::history, 6), 1);
  EXPECT_EQ(ranked(Exclude::seen, 6), kMissRank);
  // Top-3 under `seen`: 4 (0.5), 3 (0.3), 1 (0.1); the pad's 9.0 is never selected.
  auto row = base;
  mask_excluded(row.data(), c, Exclude::seen);
  std::vector<int32_t> items(3);
  std::vector<float> scores(3);
  TopKScratch<float> heap;
  select_topk(row.data(), 7, 3, items.data(), scores.data(), heap);
  EXPECT_EQ(items, (std::vector<int32_t>{4, 3, 1}));
}

// Catalogues below and above kItemChunk (one GEMM per block, or chunks of item ids).
class EvaluationSizes : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Evaluation, EvaluationSizes, ::testing::Values(300, 2 * kItemChunk + 777));

TEST_P(EvaluationSizes, EveryOptionGivesTheSameResultsForAnyGrouping) {
  Fixture f(GetParam(), 300, 5);
  const int N = GetParam();
  auto acts = f.model.make_activations(kEvalBlock);
  const auto& cases = f.cases;
  for (Exclude ex : {Exclude::none, Exclude::history, Exclude::seen}) {
    for (int neg : {0, 50}) {
      Options o;
      o.exclude = ex;
      o.sampled_negatives = neg;
      o.ties = neg ? Ties::against_model : Ties::index;
      const auto all = rank_cases<B>(f.model, f.params.data(), acts, cases, o, 42);
      // A shifted slice, a reversed list, and single cases.
      const std::vector<Case> slice(cases.begin() + 37, cases.end());
      const auto part = rank_cases<B>(f.model, f.params.data(), acts, slice, o, 42);
      for (size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << i;
      const std::vector<Case> rev(cases.rbegin(), cases.rend());
      const auto back = rank_cases<B>(f.model, f.params.data(), acts, rev, o, 42);
      for (size_t i = 0; i < rev.size(); ++i) ASSERT_EQ(back[i], all[cases.size() - 1 - i]) << i;
      for (size_t i = 0; i < cases.size(); i += 41) {
        const auto one = rank_cases<B>(f.model, f.params.data(), acts, {cases[i]}, o, 42);
        ASSERT_EQ(one[0], all[i]) << i;
      }
      // Excluded targets are misses, the others are not.
      for (size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        bool excluded = false;
        if (ex != Exclude::none)
          for (size_t k = 0; k < c.length; ++k) excluded |= c.history[k] == c.target;
        if (ex == Exclude::seen)
          for (size_t k = 0; k < c.n_seen; ++k) excluded |= c.seen[k] == c.target;
        ASSERT_EQ(all[i] == kMissRank, excluded) << i;
        if (!excluded) {
          ASSERT_LE(all[i], neg ? neg + 1 : N - 1);
        }
      }
    }
  }
  // Top-K lists: identical for a slice, no excluded item, consistent with the ranks.
  Options o;
  o.exclude = Exclude::seen;
  o.ties = Ties::index;  // the top-K order: so rank <= K <=> the target sits at position rank
  const int K = 20;
  const auto [ranks, top] = rank_and_topk_cases<B>(f.model, f.params.data(), acts, cases, o, K);
  EXPECT_EQ(ranks, rank_cases<B>(f.model, f.params.data(), acts, cases, o));
  const auto top_only = topk_cases<B>(f.model, f.params.data(), acts, cases, K, Exclude::seen);
  EXPECT_EQ(top_only.items, top.items);
  const std::vector<Case> slice(cases.begin() + 100, cases.begin() + 230);
  const auto top_slice = topk_cases<B>(f.model, f.params.data(), acts, slice, K, Exclude::seen);
  for (size_t i = 0; i < slice.size(); ++i)
    for (int k = 0; k < K; ++k) {
      ASSERT_EQ(top_slice.items_of(i)[k], top.items_of(i + 100)[k]);
      ASSERT_EQ(top_slice.scores_of(i)[k], top.scores_of(i + 100)[k]);
    }
  int hits = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const int32_t* items = top.items_of(i);
    std::set<int32_t> excl(cases[i].history, cases[i].history + cases[i].length);
    excl.insert(cases[i].seen, cases[i].seen + cases[i].n_seen);
    for (int k = 0; k < K; ++k) ASSERT_EQ(excl.count(items[k]), 0u) << i;
    if (ranks[i] <= K) {
      ASSERT_EQ(items[ranks[i] - 1], cases[i].target) << i;
      ++hits;
    } else {
      ASSERT_EQ(std::count(items, items + K, cases[i].target), 0) << i;
    }
  }
  if (N < 1000) {
    EXPECT_GT(hits, 0);
  }
  // Targets set to the k-th recommended item rank exactly k + 1.
  std::vector<Case> moved = cases;
  for (size_t i = 0; i < moved.size(); ++i) moved[i].target = top.items_of(i)[i % K];
  const auto moved_ranks = rank_cases<B>(f.model, f.params.data(), acts, moved, o);
  for (size_t i = 0; i < moved.size(); ++i) ASSERT_EQ(moved_ranks[i], int64_t(i % K) + 1) << i;
  // And against brute force on whole rows of scores (one GEMM over all items).
  for (size_t i : {size_t(5), size_t(77), size_t(298)}) {
    auto row = f.row(i);
    mask_excluded(row.data(), cases[i], Exclude::seen);
    const auto want = sorted_ids(row);
    for (int k = 0; k < K; ++k) EXPECT_EQ(top.items_of(i)[k], want[size_t(k)]) << i;
    EXPECT_EQ(ranks[i], rank_of_target(row.data(), N, cases[i].target, Ties::index)) << i;
    o.ties = Ties::against_model;
    EXPECT_EQ(rank_cases<B>(f.model, f.params.data(), acts, {cases[i]}, o)[0],
              rank_of_target(row.data(), N, cases[i].target, Ties::against_model)) << i;
    o.ties = Ties::index;
  }
}

TEST(Evaluation, ChunkedRanksMatchWholeRowsForTiedScores) {
  // Item embeddings repeated in groups of 3 ids: every score is tied with two others, across
  // chunk borders too, so both tie rules are exercised on the chunked path.
  Fixture f(2 * kItemChunk + 100, 150, 8);
  const int N = f.model.config().n_items, d = f.model.config().hidden;
  float* E = f.model.item_table(f.params.data());
  for (int j = 1; j < N; ++j) std::copy_n(E + size_t(1 + (j - 1) / 3 * 3) * d, d, E + size_t(j) * d);
  auto acts = f.model.make_activations(kEvalBlock);
  for (Ties ties : {Ties::against_model, Ties::index}) {
    Options o;
    o.ties = ties;
    o.exclude = Exclude::history;
    const auto r = rank_cases<B>(f.model, f.params.data(), acts, f.cases, o);
    for (size_t i = 0; i < f.cases.size(); i += 7) {
      auto row = f.row(i);
      mask_excluded(row.data(), f.cases[i], Exclude::history);
      ASSERT_EQ(r[i], rank_of_target(row.data(), N, f.cases[i].target, ties)) << i;
    }
  }
}

TEST(Sampling, NegativesAreDistinctDrawableAndKeyedByUserAndTarget) {
  const int N = 50;
  Options o;
  o.sampled_negatives = 20;
  o.exclude = Exclude::history;
  NegativeSampler s(N, o, 9, nullptr);
  const std::vector<int32_t> h = {3, 4, 5};
  Case c{h.data(), h.size(), 7, 12};
  std::vector<int32_t> a, b;
  s.draw(c, a);
  ASSERT_EQ(a.size(), 20u);
  std::set<int32_t> uniq(a.begin(), a.end());
  EXPECT_EQ(uniq.size(), 20u);
  for (int32_t j : a) {
    EXPECT_TRUE(j >= 1 && j < N) << j;
    EXPECT_TRUE(j != 7 && j != 3 && j != 4 && j != 5) << j;
  }
  s.draw(c, b);
  EXPECT_EQ(a, b);  // a pure function of (seed, user, target)
  Case other = c;
  other.user = 13;
  s.draw(other, b);
  EXPECT_NE(a, b);
  NegativeSampler s2(N, o, 10, nullptr);
  s2.draw(c, b);
  EXPECT_NE(a, b);  // the seed matters
  // Too few drawable items: a clear error, not a hang.
  o.sampled_negatives = N - 1 - 3;  // 49 items minus target and 3 history items = 45 drawable
  NegativeSampler s3(N, o, 9, nullptr);
  try {
    s3.draw(c, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only 45 drawable items"), std::string::npos) << e.what();
  }
  o.sampled_negatives = 45;
  NegativeSampler s4(N, o, 9, nullptr);
  s4.draw(c, b);
  EXPECT_EQ(b.size(), 45u);
}

TEST(Sampling, PopularityFollowsTheCounts) {
  const int N = 6;
  Options o;
  o.sampled_negatives = 1;
  o.sampling = Sampling::popularity;
  // Item 1 never drawn (count 0), item 5 nine times as likely as items 2..4.
  const std::vector<double> pop = {0, 0, 1, 1, 1, 9};
  NegativeSampler s(N, o, 1, &pop);
  std::vector<int> hist(N, 0);
  const std::vector<int32_t> h = {2};
  std::vector<int32_t> neg;
  for (int u = 0; u < 4000; ++u) {
    Case c{h.data(), h.size(), 3, u};
    s.draw(c, neg);
    ++hist[size_t(neg[0])];
  }
  EXPECT_EQ(hist[1], 0);
  EXPECT_EQ(hist[3], 0);  // the target
  // Among {2, 4, 5} with weights 1, 1, 9: item 5 has probability 9/11.
  EXPECT_NEAR(hist[5] / 4000.0, 9.0 / 11.0, 0.03);
  EXPECT_NEAR(hist[2] / 4000.0, 1.0 / 11.0, 0.02);
  EXPECT_THROW(NegativeSampler(N, o, 1, nullptr), Error);
  const std::vector<double> zero(N, 0.0);
  EXPECT_THROW(NegativeSampler(N, o, 1, &zero), Error);
}

TEST(Evaluation, BadCasesGiveErrorsNotCrashes) {
  Fixture f(50, 3, 1);
  auto acts = f.model.make_activations(kEvalBlock);
  auto cases = f.cases;
  cases[1].target = 50;
  try {
    rank_cases<B>(f.model, f.params.data(), acts, cases);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("evaluation case 1: target item id 50 outside [1, 49]"),
              std::string::npos) << e.what();
  }
  cases = f.cases;
  cases[2].length = 0;
  EXPECT_THROW(topk_cases<B>(f.model, f.params.data(), acts, cases, 5), Error);
}

TEST(PerCase, DumpsNameUsersAndSayWhichProtocol) {
  data::IdMap users, items;
  users.intern("alice");
  users.intern("bob,jr");  // needs CSV quoting
  items.intern("i1");
  items.intern("i2");
  const std::vector<int32_t> h = {1};
  const std::vector<Case> cases = {{h.data(), 1, 2, 1}, {h.data(), 1, 1, 2}};
  const std::vector<int64_t> ranks = {3, kMissRank};
  Options o;
  o.ks = {5};
  const std::string csv = per_case_table(cases, ranks, o, DumpFormat::csv, &users, &items);
  std::istringstream in(csv);
  std::string header, row1, row2;
  std::getline(in, header);
  std::getline(in, row1);
  std::getline(in, row2);
  EXPECT_EQ(header, "user,target,rank,HR@5,Recall@5,NDCG@5,MRR@5,Precision@5,protocol,exclude");
  EXPECT_EQ(row1, "alice,i2,3,1,1,0.5,0.33333333333333331,0.20000000000000001,full,none");
  EXPECT_EQ(row2, "\"bob,jr\",i1,,0,0,0,0,0,full,none");
  o.sampled_negatives = 100;
  o.exclude = Exclude::history;
  const std::string jl = per_case_table(cases, ranks, o, DumpFormat::jsonl);
  EXPECT_EQ(jl.substr(0, jl.find('\n')),
            "{\"user\":\"1\",\"target\":\"2\",\"rank\":3,\"HR@5\":1,\"Recall@5\":1,\"NDCG@5\":0.5,"
            "\"MRR@5\":0.33333333333333331,\"Precision@5\":0.20000000000000001,"
            "\"protocol\":\"sampled 100 uniform\",\"exclude\":\"history\"}");
  EXPECT_NE(jl.find("\"rank\":null"), std::string::npos);
  const auto path = std::filesystem::temp_directory_path() / "recdistill_per_case_test.csv";
  write_per_case(path.string(), cases, ranks, o, &users, &items);
  std::ifstream f(path);
  std::getline(f, header);
  EXPECT_EQ(header.substr(0, 15), "user,target,ran");
  std::filesystem::remove(path);
  EXPECT_THROW(write_per_case("/tmp/x.txt", cases, ranks, o), Error);
  EXPECT_EQ(per_case_values(ranks, "NDCG@5"), (std::vector<double>{0.5, 0.0}));
  EXPECT_EQ(per_case_values(ranks, "HR@2 (sampled 100 uniform)"), (std::vector<double>{0.0, 0.0}));
  EXPECT_THROW(per_case_values(ranks, "NDCG@x"), Error);
  EXPECT_THROW(per_case_values(ranks, "AUC@5"), Error);
}

TEST(Config, EvalKeys) {
  auto parse = [](const std::string& text) { return io::parse_config_text(text, "t.yaml"); };
  auto c = parse("eval:\n  ks: [10]\n");
  EXPECT_EQ(c.eval.exclude, Exclude::none);
  EXPECT_EQ(c.eval.sampled_negatives, 0);
  EXPECT_EQ(c.training.valid_metric, "NDCG@10");
  c = parse("eval:\n  ks: [10]\n  exclude: seen\n  sampled_negatives: 100\n  sampling: popularity\n"
            "training:\n  valid_metric: Recall@10\n");
  EXPECT_EQ(c.eval.exclude, Exclude::seen);
  EXPECT_EQ(c.eval.sampled_negatives, 100);
  EXPECT_EQ(c.eval.sampling, Sampling::popularity);
  EXPECT_EQ(c.valid_metric(), "Recall@10 (sampled 100 popularity)");
  EXPECT_EQ(parse("eval:\n  exclude: history\n").eval.exclude, Exclude::history);
  try {
    parse("eval:\n  exclude: everything\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.yaml:2: key 'eval.exclude': expected one of none, history, seen"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("eval:\n  sampled_negatives: -1\n"), Error);
}

// A scorer with normalise_rows ranks against the L2-normalised rows of its table (official
// Atten-Mixer): every scoring path (whole rows, the chunked catalogue, sampled negatives, top-K
// lists) gives exactly what the same scorer without the flag gives on a table normalised
// beforehand, and not what it gives on the raw table (whose row norms are spread widely here).
namespace {
struct FixedQueries {
  using BackendType = B;
  using Scalar = float;
  struct Activations {};
  int N = 0, d = 0;
  bool normalise = false;
  const std::vector<float>* q = nullptr;  // (users, d)
  Scorer scorer() const { return {3, -1, N, d, normalise}; }  // the table sits after 3 other numbers
  void query(CPtr<B, float>, Activations&, const Case* cases, size_t n, int rows, Ptr<B, float> out) const {
    std::fill(out, out + size_t(rows) * d, 0.f);
    for (size_t i = 0; i < n; ++i)
      std::copy_n(q->data() + size_t(cases[i].user) * d, d, out + i * size_t(d));
  }
};
}  // namespace

TEST(Evaluation, NormalisedRowsScorerEqualsAPreNormalisedTable) {
  for (int N : {301, 2 * kItemChunk + 77}) {
    const int d = 8, users = 200;
    std::mt19937 g(3);
    std::normal_distribution<float> nd;
    std::uniform_real_distribution<float> scale(0.05f, 20.f);
    std::vector<float> raw(3 + size_t(N) * d), q(size_t(users) * d);
    for (auto& x : q) x = nd(g);
    for (int j = 0; j < N; ++j) {
      const float s = scale(g);
      for (int c = 0; c < d; ++c) raw[3 + size_t(j) * d + c] = s * nd(g);
    }
    std::vector<float> pre = raw;
    std::vector<float> norms(static_cast<size_t>(N));
    ops::l2_normalise_axis_forward<B>(pre.data() + 3, norms.data(), raw.data() + 3, N, d, 1, kScorerNormEps);
    std::vector<std::vector<int32_t>> hist(static_cast<size_t>(users));
    std::vector<Case> cases;
    std::uniform_int_distribution<int> item(1, N - 1);
    for (int u = 0; u < users; ++u) {
      hist[size_t(u)] = {item(g), item(g)};
      cases.push_back({hist[size_t(u)].data(), 2, item(g), u});
    }
    FixedQueries flagged{N, d, true, &q}, plain{N, d, false, &q};
    FixedQueries::Activations acts;
    for (int neg : {0, 30}) {
      Options o;
      o.exclude = Exclude::history;
      o.sampled_negatives = neg;
      const auto want = rank_cases<B>(plain, pre.data(), acts, cases, o, 9);
      EXPECT_EQ(rank_cases<B>(flagged, raw.data(), acts, cases, o, 9), want) << N << " " << neg;
      EXPECT_NE(rank_cases<B>(plain, raw.data(), acts, cases, o, 9), want) << N << " " << neg;
    }
    Options o;
    o.exclude = Exclude::history;
    const auto [r1, t1] = rank_and_topk_cases<B>(flagged, raw.data(), acts, cases, o, 10);
    const auto [r2, t2] = rank_and_topk_cases<B>(plain, pre.data(), acts, cases, o, 10);
    EXPECT_EQ(r1, r2);
    EXPECT_EQ(t1.items, t2.items);
    EXPECT_EQ(t1.scores, t2.scores);
    EXPECT_EQ(topk_cases<B>(flagged, raw.data(), acts, cases, 10).items, topk_cases<B>(plain, pre.data(), acts, cases, 10).items);
  }
}

// A scorer with an output bias (BERT4Rec's) ranks above kItemChunk as its score rows say: the
// chunked path gives each case's target score its own bias, with the bits of the chunk's scores.
namespace {
struct BiasedQueries {
  using BackendType = B;
  using Scalar = float;
  struct Activations {};
  int N = 0, d = 0;
  const std::vector<float>* q = nullptr;  // (users, d)
  Scorer scorer() const { return {3, int64_t(3 + size_t(N) * d), N, d}; }  // table, then bias
  void query(CPtr<B, float>, Activations&, const Case* cases, size_t n, int rows, Ptr<B, float> out) const {
    std::fill(out, out + size_t(rows) * d, 0.f);
    for (size_t i = 0; i < n; ++i) std::copy_n(q->data() + size_t(cases[i].user) * d, d, out + i * size_t(d));
  }
};
}  // namespace

TEST(Evaluation, AnOutputBiasRanksAboveTheChunkSize) {
  for (int N : {301, 2 * kItemChunk + 77}) {
    const int d = 8, users = 200;
    std::mt19937 g(5);
    std::normal_distribution<float> nd;
    std::vector<float> params(3 + size_t(N) * d + size_t(N)), q(size_t(users) * d);
    for (auto& x : params) x = nd(g);
    for (auto& x : q) x = nd(g);
    for (int j = 0; j < N; ++j) params[3 + size_t(N) * d + size_t(j)] *= 3.f;  // a bias that moves ranks
    std::vector<std::vector<int32_t>> hist(static_cast<size_t>(users));
    std::vector<Case> cases;
    std::uniform_int_distribution<int> item(1, N - 1);
    for (int u = 0; u < users; ++u) {
      hist[size_t(u)] = {item(g), item(g)};
      cases.push_back({hist[size_t(u)].data(), 2, item(g), u});
    }
    const BiasedQueries m{N, d, &q};
    BiasedQueries::Activations acts;
    Options o;
    o.exclude = Exclude::history;
    std::vector<int64_t> want(cases.size());
    score_cases<B>(m, params.data(), acts, cases, [&](size_t i, float* row) {
      mask_excluded(row, cases[i], Exclude::history);
      want[i] = rank_of_target(row, N, cases[i].target, o.ties);
    });
    EXPECT_EQ(rank_cases<B>(m, params.data(), acts, cases, o), want) << N;
    const auto [ranks, top] = rank_and_topk_cases<B>(m, params.data(), acts, cases, o, 10);
    EXPECT_EQ(ranks, want) << N;
    // The bias counts: without it the ranks are others.
    std::vector<float> no_bias = params;
    std::fill(no_bias.begin() + long(3 + size_t(N) * d), no_bias.end(), 0.f);
    EXPECT_NE(rank_cases<B>(m, no_bias.data(), acts, cases, o), want) << N;
  }
}

}  // namespace RD_TEST_FILE
