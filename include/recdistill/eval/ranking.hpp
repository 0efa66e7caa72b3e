// recdistill/eval/ranking.hpp: full-ranking evaluation and the metrics computed from ranks.
//
// Definitions (docs/metrics.md): rank is 1-based; by default a tie is ranked against the
// model, rank = 1 + #{j != target, j != pad, j not excluded : s_j >= s_target} (`Ties::index`
// instead lets a lower item id win a tie, for parity with references). A NaN target score,
// or a target that is itself excluded, is a miss (rank kMissRank).
//   HR@K = Recall@K = [rank <= K];  Precision@K = [rank <= K] / K;
//   NDCG@K = [rank <= K] / log2(rank + 1);  MRR@K = [rank <= K] / rank
// averaged over the evaluated cases. With one target per case, NDCG's ideal DCG is 1.
//
// Exclusions (`Exclude`) mask items out of the ranking: their scores are replaced by NaN,
// which never counts as better than the target and is never selected into a top-K list.
//
// Sampled-candidate evaluation (`Options::sampled_negatives > 0`) ranks the target among that
// many sampled negatives instead of every item; every metric name then carries the suffix
// " (sampled N uniform|popularity)" (metric_suffix), so such a number cannot be mistaken for
// a full-ranking one.
//
// A scorer with normalise_rows (backbones/backbone.hpp) is scored against an L2-normalised copy
// of its table, made once per call (score_cases, rank_full, and so topk_cases).
//
// Scores are computed in fixed blocks of kEvalBlock sequences (the last block padded) and, for
// catalogues above kItemChunk ids, fixed chunks of kItemChunk items (rank_full), so the
// numbers are bit-identical for any user-facing evaluation batch size or case grouping, and
// no more than a (kEvalBlock, kItemChunk) block of scores exists at a time.
//
// API: rank_cases (ranks, full or sampled) -> metrics_from_ranks; eval/topk.hpp: topk_cases,
// rank_and_topk_cases; eval/per_case.hpp: per-case values and dumps; eval/stats.hpp:
// aggregation over seeds and paired tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/eval/case.hpp"

namespace recdistill::eval {

// Draws the sampled negatives of a case: distinct items of 1..N-1, never the target nor an
// excluded item, uniform or proportional to `popularity` (N,). The draws are a pure function
// of (seed, Stream::sampling; user, target, draw index), so they do not depend on the case's
// position in the list or on batching.
class NegativeSampler {
 public:
  NegativeSampler(int N, const Options& o, uint64_t seed, const std::vector<double>* popularity)
      : N_(N), n_(o.sampled_negatives), sampling_(o.sampling), exclude_(o.exclude), seed_(seed),
        mark_(size_t(N), 0) {
    if (sampling_ == Sampling::popularity) {
      if (!popularity || popularity->size() != size_t(N))
        fail("eval.sampling: popularity needs item counts for all ", N, " item ids, got ",
             popularity ? popularity->size() : 0);
      cdf_.assign(size_t(N), 0.0);
      double total = 0;
      for (int j = 1; j < N; ++j) {
        const double w = (*popularity)[size_t(j)];
        if (!(w >= 0) || !std::isfinite(w)) fail("eval.sampling: popularity of item ", j, " is ", w);
        total += w;
        cdf_[size_t(j)] = total;
      }
      if (!(total > 0)) fail("eval.sampling: popularity: every item count is zero");
    }
  }

  void draw(const Case& c, std::vector<int32_t>& out) {
    out.clear();
    // Marks: 1 = not drawable (target, pad, excluded), 2 = drawn.
    std::vector<int32_t> touched;
    auto block = [&](int32_t j) {
      if (mark_[size_t(j)] == 0) touched.push_back(j);
      mark_[size_t(j)] = 1;
    };
    block(0);
    block(c.target);
    if (exclude_ == Exclude::history || exclude_ == Exclude::seen)
      for (size_t k = 0; k < c.length; ++k) block(c.history[k]);
    if (exclude_ == Exclude::seen || exclude_ == Exclude::listed)
      for (size_t k = 0; k < c.n_seen; ++k) block(c.seen[k]);
    int64_t available = 0;
    for (int j = 1; j < N_; ++j)
      available += mark_[size_t(j)] == 0 && (sampling_ == Sampling::uniform || weight(j) > 0);
    if (available < n_)
      fail("eval.sampled_negatives: ", n_, " negatives requested but user ", c.user, " (target ",
           c.target, ") has only ", available, " drawable items");
    const uint64_t max_tries = 64 * uint64_t(n_) + 100000;
    uint64_t tries = 0;
    for (uint32_t slot = 0; int64_t(out.size()) < n_; ++slot) {
      const auto w = bits4(seed_, Stream::sampling, 0, uint32_t(c.target), uint32_t(c.user), slot);
      for (uint32_t word : w) {
        if (int64_t(out.size()) == n_) break;
        if (++tries > max_tries)
          fail("eval.sampled_negatives: could not draw ", n_, " distinct negatives for user ", c.user,
               " in ", max_tries, " draws (too few items with a positive popularity?)");
        const int32_t j = pick(word);
        if (mark_[size_t(j)] != 0) continue;
        mark_[size_t(j)] = 2;
        touched.push_back(j);
        out.push_back(j);
      }
    }
    for (int32_t j : touched) mark_[size_t(j)] = 0;
  }

 private:
  double weight(int j) const { return cdf_[size_t(j)] - cdf_[size_t(j) - 1]; }
  int32_t pick(uint32_t word) const {
    if (sampling_ == Sampling::uniform)
      return 1 + int32_t((uint64_t(word) * uint64_t(N_ - 1)) >> 32);
    const double u = (double(word) + 0.5) * (cdf_.back() / 4294967296.0);
    const auto it = std::upper_bound(cdf_.begin() + 1, cdf_.end(), u);
    return it == cdf_.end() ? N_ - 1 : int32_t(it - cdf_.begin());
  }

  int N_, n_;
  Sampling sampling_;
  Exclude exclude_;
  uint64_t seed_;
  std::vector<uint8_t> mark_;
  std::vector<double> cdf_;  // (N,) cumulative weights, cdf_[0] = 0
};

namespace detail {

// Buffers of one evaluation pass: the block's queries, its scores and, for chunked catalogues,
// the targets' ids and item rows.
template <class B, class T>
struct EvalBuffers {
  Buffer<B, T> queries, scores, target_rows, target_bias;
  Buffer<B, int32_t> targets;
  std::vector<int32_t> targets_host;
  std::vector<T> row_host;
  EvalBuffers(int dim, int width)
      : queries(size_t(kEvalBlock) * dim), scores(size_t(kEvalBlock) * width),
        target_rows(size_t(kEvalBlock) * dim), target_bias(size_t(kEvalBlock)), targets(size_t(kEvalBlock)),
        targets_host(size_t(kEvalBlock), 0) {}
};

// scores (n, w) = queries (n, dim) x table[c0 .. c0 + w) ^T (+ bias). score_rows, not a GEMM:
// each score's bits depend only on its query and item rows (backend/ops.hpp).
template <class B, class T>
void score_items(Ptr<B, T> scores, int ld, CPtr<B, T> queries, int n, CPtr<B, T> params, const Scorer& s,
                 CPtr<B, T> items, int c0, int w) {
  ops::score_rows<B>(scores, ld, queries, n, items, w, s.dim);
  if (s.bias >= 0) ops::add_bias<B>(scores, ld, params + s.bias + c0, n, w);
}

// The rows the scores read: the scorer's table itself, or, for a scorer with normalise_rows, an
// L2-normalised copy n(E_j) = E_j / (||E_j|| + kScorerNormEps) made once per evaluation pass
// into `copy` (n_items, dim) (norms: its (n_items) scratch).
// With row_dropout, the normalised rows are then dropped out (one mask for the pass).
template <class B, class T>
CPtr<B, T> scoring_table(CPtr<B, T> params, const Scorer& s, Buffer<B, T>& copy, Buffer<B, T>& norms) {
  if (!s.normalise_rows) return params + s.table;
  copy = Buffer<B, T>(size_t(s.n_items) * s.dim);
  norms = Buffer<B, T>(size_t(s.n_items));
  ops::l2_normalise_axis_forward<B>(copy.data(), norms.data(), params + s.table, s.n_items, s.dim, 1, kScorerNormEps);
  if (s.row_dropout > 0) {
    Buffer<B, T> mask(size_t(s.n_items) * s.dim);
    ops::dropout_forward<B>(copy.data(), mask.data(), CPtr<B, T>(copy.data()), s.n_items, s.dim, s.row_dropout,
                            s.row_dropout_key, s.row_dropout_site, 0);
  }
  return CPtr<B, T>(copy.data());
}

}  // namespace detail

// Scores every case in fixed blocks of kEvalBlock: the model's query state for each history,
// then the block's scores (n, dim) x (N, dim)^T against the model's scorer (score_rows); then
// on_row(case index, row (N,)) for each real case, with the row copied to host memory (scratch
// the callback may overwrite). `acts` must have capacity kEvalBlock. (Sampled evaluation uses
// this; full ranking uses rank_full, which also bounds the block's width.)
template <class B, class Model, class OnRow, class T = typename Model::Scalar>
void score_cases(const Model& model, CPtr<B, T> params, typename Model::Activations& acts,
                 const std::vector<Case>& cases, OnRow&& on_row) {
  const Scorer s = model.scorer();
  const int N = s.n_items;
  detail::EvalBuffers<B, T> buf(s.dim, N);
  buf.row_host.resize(size_t(N));
  Buffer<B, T> normalised, norms;
  const CPtr<B, T> E = detail::scoring_table<B, T>(params, s, normalised, norms);  // (N, dim)
  for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
    const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
    model.query(params, acts, cases.data() + start, n, kEvalBlock, buf.queries.data());
    detail::score_items<B, T>(buf.scores.data(), N, buf.queries.data(), int(n), params, s, E, 0, N);
    for (size_t i = 0; i < n; ++i) {
      B::template to_host<T>(buf.row_host.data(), CPtr<B, T>(buf.scores.data() + i * N), size_t(N));
      on_row(start + i, buf.row_host.data());
    }
  }
}

// Full ranking with the exclusions and ties of `o`: ranks (cases,) when `ranks` is not null,
// and top-K lists (cases, K) into top_items / top_scores when K > 0. Cases must have been
// checked (check_case).
//
// Blocks of kEvalBlock cases: the model's query states, then scores against its scorer
// (score_rows: a score's bits depend only on its query and item rows). A catalogue of at most
// kItemChunk ids is scored at once per block (n, N) and ranked by the backend's rank_rows op. A
// larger one is scored in chunks of kItemChunk ids, and each chunk is masked, counted and
// scanned by the rank_chunk op while it is in cache, so the block of scores never leaves L2.
// The rank count needs the target's score before its chunk comes: scoring the block's targets
// alone gives it (rank_targets), and rank_chunk checks it against the target's chunk value
// (equal bits; a mismatch would be an internal error, never a silently different rank).
template <class B, class Model, class T = typename Model::Scalar>
void rank_full(const Model& model, CPtr<B, T> params, typename Model::Activations& acts,
               const std::vector<Case>& cases, const Options& o, int64_t* ranks, int K,
               int32_t* top_items, T* top_scores) {
  RD_REQUIRE(K >= 0, "top-K needs K >= 0, got ", K);
  const Scorer s = model.scorer();
  const int N = s.n_items, dim = s.dim;
  Buffer<B, T> normalised, norms;
  const CPtr<B, T> E = detail::scoring_table<B, T>(params, s, normalised, norms);  // (N, dim)
  RankBlock<T> blk;
  blk.o = o;
  blk.want_ranks = ranks != nullptr;
  blk.K = K;
  auto point_block = [&](size_t start) {
    blk.cases = cases.data() + start;
    blk.ranks = ranks ? ranks + start : nullptr;
    blk.top_items = K > 0 ? top_items + start * size_t(K) : nullptr;
    blk.top_scores = K > 0 ? top_scores + start * size_t(K) : nullptr;
  };
  if (N <= kItemChunk) {
    detail::EvalBuffers<B, T> buf(dim, N);
    for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
      const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
      point_block(start);
      model.query(params, acts, cases.data() + start, n, kEvalBlock, buf.queries.data());
      detail::score_items<B, T>(buf.scores.data(), N, buf.queries.data(), int(n), params, s, E, 0, N);
      ops::rank_rows<B>(blk, buf.scores.data(), N, n, N);
    }
    return;
  }
  // The chunked path compares a target's score from two products, so both get the same bits: the
  // same score_rows product, plus the same add_bias of the target's own bias.
  const int C = kItemChunk;
  detail::EvalBuffers<B, T> buf(dim, C);
  for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
    const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
    point_block(start);
    model.query(params, acts, cases.data() + start, n, kEvalBlock, buf.queries.data());
    if (ranks) {
      // The targets' scores: item row i of this (n, n) product is case i's target.
      for (size_t i = 0; i < n; ++i) buf.targets_host[i] = cases[start + i].target;
      B::template to_device<int32_t>(buf.targets.data(), buf.targets_host.data(), n);
      ops::gather_rows<B>(buf.target_rows.data(), E, CPtr<B, int32_t>(buf.targets.data()), int(n), dim, 1.0);
      ops::score_rows<B>(buf.scores.data(), C, buf.queries.data(), int(n), CPtr<B, T>(buf.target_rows.data()),
                         int(n), s.dim);
      if (s.bias >= 0) {  // column i gets case i's target bias, so the diagonal is score + bias
        ops::gather_rows<B>(buf.target_bias.data(), params + s.bias, CPtr<B, int32_t>(buf.targets.data()), int(n), 1,
                            1.0);
        ops::add_bias<B>(buf.scores.data(), C, CPtr<B, T>(buf.target_bias.data()), int(n), int(n));
      }
    }
    ops::rank_targets<B>(blk, CPtr<B, T>(buf.scores.data()), C, n);
    for (int c0 = 0; c0 < N; c0 += C) {
      const int w = std::min(C, N - c0);
      detail::score_items<B, T>(buf.scores.data(), C, buf.queries.data(), int(n), params, s, E + size_t(c0) * dim,
                                c0, w);
      ops::rank_chunk<B>(blk, buf.scores.data(), C, n, c0, w, c0 + C >= N);
    }
  }
}

// Ranks every case with a Backbone (backbones/backbone.hpp: query() and scorer()), applying
// the exclusions and (if asked) sampled negatives of `o`. `popularity` (N,) is needed only
// for Sampling::popularity; `seed` keys the sampled negatives.
template <class B, class Model, class T = typename Model::Scalar>
std::vector<int64_t> rank_cases(const Model& model, CPtr<B, T> params,
                                typename Model::Activations& acts, const std::vector<Case>& cases,
                                const Options& o, uint64_t seed = 0,
                                const std::vector<double>* popularity = nullptr) {
  const int N = model.scorer().n_items;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], i, N, true);
  std::vector<int64_t> ranks(cases.size());
  if (o.sampled_negatives <= 0) {
    rank_full<B, Model, T>(model, params, acts, cases, o, ranks.data(), 0, nullptr, nullptr);
    return ranks;
  }
  NegativeSampler sampler(N, o, seed, popularity);
  std::vector<int32_t> negatives;
  score_cases<B>(model, params, acts, cases, [&](size_t i, T* row) {
    sampler.draw(cases[i], negatives);
    ranks[i] = ops::rank_sampled<typename Model::BackendType>(row, cases[i], negatives, o);
  });
  return ranks;
}

// Full ranking without exclusions (the first slice's call).
template <class B, class Model, class T = typename Model::Scalar>
std::vector<int64_t> rank_cases(const Model& model, CPtr<B, T> params,
                                typename Model::Activations& acts, const std::vector<Case>& cases,
                                Ties ties = Ties::against_model) {
  Options o;
  o.ties = ties;
  return rank_cases<B, Model, T>(model, params, acts, cases, o);
}

// Metric name -> value, e.g. "NDCG@10". Names: HR, Recall, NDCG, MRR, Precision, each
// followed by `suffix` (metric_suffix: non-empty for sampled evaluation).
using Metrics = std::map<std::string, double>;

// The metric families; a name is family + "@" + K (+ suffix).
inline const std::vector<std::string>& metric_families() {
  static const std::vector<std::string> f = {"HR", "Recall", "NDCG", "MRR", "Precision"};
  return f;
}

// The value of one metric family at cut-off k for one case of the given rank.
inline double metric_value(const std::string& family, int k, int64_t rank) {
  if (rank > k) return 0.0;
  if (family == "HR" || family == "Recall") return 1.0;
  if (family == "NDCG") return 1.0 / std::log2(double(rank) + 1.0);
  if (family == "MRR") return 1.0 / double(rank);
  if (family == "Precision") return 1.0 / double(k);
  fail("unknown metric '", family, "' (expected HR, Recall, NDCG, MRR or Precision)");
}

// A metric's name "NAME@K" (a suffix after a space ignored, as in "HR@10 (sampled ...)"):
// its family and cutoff, or an error naming the metric.
struct MetricName {
  std::string family;
  int k = 0;
};
inline MetricName parse_metric_name(const std::string& metric) {
  const auto at = metric.find('@');
  if (at == std::string::npos || at == 0) fail("metric '", metric, "': expected NAME@K, e.g. NDCG@10");
  const std::string family = metric.substr(0, at);
  size_t used = 0;
  int k = 0;
  try {
    k = std::stoi(metric.substr(at + 1), &used);
  } catch (const std::exception&) {
    fail("metric '", metric, "': expected a positive integer after '@'");
  }
  const std::string rest = metric.substr(at + 1 + used);
  if (k < 1 || !(rest.empty() || rest[0] == ' '))
    fail("metric '", metric, "': expected a positive integer after '@'");
  return {family, k};
}

inline Metrics metrics_from_ranks(const std::vector<int64_t>& ranks, const std::vector<int>& ks,
                                  const std::string& suffix = "") {
  Metrics m;
  for (int k : ks) {
    double hr = 0, ndcg = 0, mrr = 0;
    for (int64_t r : ranks) {
      if (r > k) continue;
      hr += 1;
      ndcg += 1.0 / std::log2(double(r) + 1.0);
      mrr += 1.0 / double(r);
    }
    const double n = ranks.empty() ? 1.0 : double(ranks.size());
    const std::string at = "@" + std::to_string(k) + suffix;
    m["HR" + at] = hr / n;
    m["Recall" + at] = hr / n;  // one target per case
    m["NDCG" + at] = ndcg / n;
    m["MRR" + at] = mrr / n;
    m["Precision" + at] = hr / n / double(k);
  }
  return m;
}

inline Metrics metrics_from_ranks(const std::vector<int64_t>& ranks, const Options& o) {
  return metrics_from_ranks(ranks, o.ks, metric_suffix(o));
}

}  // namespace recdistill::eval
