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
#include "recdistill/core/padding.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/select.hpp"

namespace recdistill::eval {

enum class Ties { against_model, index };

// Items masked out of the ranking. `history`: the case's own history (under loo the user's
// seen items, under session splits the session's own items). `seen`: the history plus the
// case's `seen` list (the caller's record of the user's other items, e.g. Split::train[user]).
enum class Exclude { none, history, seen };

enum class Sampling { uniform, popularity };

constexpr int kEvalBlock = 128;

// Items per score GEMM when the catalogue is larger: a (kEvalBlock, kItemChunk) float block
// is 1 MiB and stays in L2 while its rows are ranked and scanned.
constexpr int kItemChunk = 2048;

// The rank of a miss: worse than any real rank, so it is outside every cut-off.
constexpr int64_t kMissRank = std::numeric_limits<int64_t>::max();

// One evaluation case: a history (oldest first) and the held-out target. `user` keys the
// sampled negatives (and names the row of per-case dumps); `seen` is an optional extra list of
// items excluded under Exclude::seen.
struct Case {
  const int32_t* history;
  size_t length;
  int32_t target;
  int32_t user = 0;
  const int32_t* seen = nullptr;
  size_t n_seen = 0;
};

// How cases are ranked and which metrics are reported (the `eval.*` config section).
struct Options {
  std::vector<int> ks = {5, 10, 20};
  Ties ties = Ties::against_model;
  Exclude exclude = Exclude::none;
  int sampled_negatives = 0;  // 0 = full ranking (the default)
  Sampling sampling = Sampling::uniform;
};

inline const char* name_of(Exclude e) {
  return e == Exclude::none ? "none" : e == Exclude::history ? "history" : "seen";
}
inline const char* name_of(Sampling s) { return s == Sampling::uniform ? "uniform" : "popularity"; }

// "full" or "sampled 100 uniform": printed in every per-case row.
inline std::string protocol_label(const Options& o) {
  if (o.sampled_negatives <= 0) return "full";
  return "sampled " + std::to_string(o.sampled_negatives) + " " + name_of(o.sampling);
}

// "" for full ranking, " (sampled 100 uniform)" otherwise: appended to every metric name.
inline std::string metric_suffix(const Options& o) {
  return o.sampled_negatives <= 0 ? std::string() : " (" + protocol_label(o) + ")";
}

// rank of the target among items 1..N-1 given one row of scores (N,). NaN scores (masked
// items) never count as better. Branch-free counting loops, so the compiler vectorises them.
template <class T>
int64_t rank_of_target(const T* scores, int N, int32_t target, Ties ties) {
  const T st = scores[target];
  if (std::isnan(st)) return kMissRank;  // a NaN or excluded target gets no credit
  int64_t better = 0;
  if (ties == Ties::against_model) {
    for (int j = 1; j < N; ++j) better += scores[j] >= st;
    better -= 1;  // the target itself
  } else {
    for (int j = 1; j < target; ++j) better += scores[j] >= st;
    for (int j = target + 1; j < N; ++j) better += scores[j] > st;
  }
  return better + 1;
}

// Rank of the target among the given negatives only (sampled evaluation).
template <class T>
int64_t rank_among(const T* scores, const std::vector<int32_t>& negatives, int32_t target, Ties ties) {
  const T st = scores[target];
  if (std::isnan(st)) return kMissRank;
  int64_t better = 0;
  for (int32_t j : negatives)
    better += scores[j] > st || (scores[j] == st && (ties == Ties::against_model || j < target));
  return better + 1;
}

// Checks that every id of a case lies in [1, N) (case i of the caller's list).
inline void check_case(const Case& c, size_t i, int N, bool need_target) {
  if (c.length == 0 || c.history == nullptr) fail("evaluation case ", i, ": empty history");
  if (need_target && (c.target < 1 || c.target >= N))
    fail("evaluation case ", i, ": target item id ", c.target, " outside [1, ", N - 1, "]");
  for (size_t k = 0; k < c.length; ++k)
    if (c.history[k] < 0 || c.history[k] >= N)
      fail("evaluation case ", i, ": history item id ", c.history[k], " outside [0, ", N - 1, "]");
  for (size_t k = 0; k < c.n_seen; ++k)
    if (c.seen[k] < 0 || c.seen[k] >= N)
      fail("evaluation case ", i, ": seen item id ", c.seen[k], " outside [0, ", N - 1, "]");
}

// Masks the excluded items of one case in its score row (N,) by setting them to NaN.
template <class T>
void mask_excluded(T* row, const Case& c, Exclude ex) {
  if (ex == Exclude::none) return;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (size_t k = 0; k < c.length; ++k) row[c.history[k]] = nan;
  if (ex == Exclude::seen)
    for (size_t k = 0; k < c.n_seen; ++k) row[c.seen[k]] = nan;
  row[0] = nan;  // the pad is never ranked (it may appear as padding in a history)
}

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
    if (exclude_ != Exclude::none)
      for (size_t k = 0; k < c.length; ++k) block(c.history[k]);
    if (exclude_ == Exclude::seen)
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

// Lays out cases [start, start + n) of a block (unused rows repeat the first case, their
// results are ignored), runs the forward pass and gathers each row's last hidden state into
// last (kEvalBlock, d).
template <class Model, class T>
void block_last_hidden(const Model& model, const T* params, typename Model::Activations& acts,
                       const std::vector<Case>& cases, size_t start, size_t n,
                       std::vector<int32_t>& seq, std::vector<T>& last) {
  const auto& cfg = model.config();
  const int L = cfg.max_len, d = cfg.hidden;
  const bool left = model.padding_side() == PaddingSide::left;
  seq.resize(size_t(kEvalBlock) * L);
  last.resize(size_t(kEvalBlock) * d);
  for (size_t i = 0; i < size_t(kEvalBlock); ++i) {
    const Case& c = cases[start + (i < n ? i : 0)];
    data::layout_history(seq.data() + i * L, c.history, c.length, L, left);
  }
  model.forward(params, acts, seq.data(), kEvalBlock, /*train=*/false);
  const T* H = model.hidden(acts);  // (kEvalBlock, L, d)
  for (size_t i = 0; i < size_t(kEvalBlock); ++i) {
    const size_t len = std::min(cases[start + (i < n ? i : 0)].length, size_t(L));
    const size_t slot = left ? size_t(L - 1) : len - 1;
    std::copy_n(H + (i * L + slot) * d, d, last.data() + i * d);
  }
}

// Branch-free counts over a row segment (vectorised by the compiler).
template <class T>
int64_t count_ge(const T* row, int a, int b, T s) {
  int64_t c = 0;
  for (int t = a; t < b; ++t) c += row[t] >= s;
  return c;
}
template <class T>
int64_t count_gt(const T* row, int a, int b, T s) {
  int64_t c = 0;
  for (int t = a; t < b; ++t) c += row[t] > s;
  return c;
}

}  // namespace detail

// Scores every case in fixed blocks of kEvalBlock: forward pass, last hidden state, one GEMM
// (kEvalBlock, d) x (N, d)^T per block, then on_row(case index, row (N,)) for each real case;
// the row is scratch the callback may overwrite (masking). Only a (kEvalBlock, N) block of
// scores ever exists. `acts` must have capacity kEvalBlock. (Sampled evaluation uses this;
// full ranking uses rank_full, which also bounds the block's width.)
template <class Backend, class Model, class T, class OnRow>
void score_cases(const Model& model, const T* params, typename Model::Activations& acts,
                 const std::vector<Case>& cases, OnRow&& on_row) {
  const int d = model.config().hidden, N = model.config().n_items;
  RD_REQUIRE(acts.capacity >= kEvalBlock, "evaluation activations need capacity kEvalBlock");
  std::vector<int32_t> seq;
  std::vector<T> last, scores(size_t(kEvalBlock) * N);
  for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
    const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
    detail::block_last_hidden(model, params, acts, cases, start, n, seq, last);
    // scores (kEvalBlock, N) = last (kEvalBlock, d) x item_table (N, d)^T
    Backend::template gemm<T>(false, true, kEvalBlock, N, d, T(1), last.data(), d,
                              model.item_table(params), d, T(0), scores.data(), N);
    for (size_t i = 0; i < n; ++i) on_row(start + i, scores.data() + i * N);
  }
}

// Full ranking with the exclusions and ties of `o`: ranks (cases,) when `ranks` is not null,
// and top-K lists (cases, K) into top_items / top_scores when K > 0. Cases must have been
// checked (check_case).
//
// Blocks of kEvalBlock cases. A catalogue of at most kItemChunk ids is scored with one GEMM
// per block (kEvalBlock, N). A larger one is scored in chunks of kItemChunk ids, every chunk
// GEMM of the same shape (kEvalBlock, kItemChunk, d) (the last chunk's item rows padded with
// zeros), and each chunk is masked, counted and scanned while it is in cache, so the block of
// scores never leaves L2. The rank count needs the target's score before its chunk comes:
// it is computed first by one more GEMM of the same shape whose item rows are the block's
// targets, and checked against the target's chunk value when that chunk is scored (equal
// bits; a mismatch would be an internal error, never a silently different rank).
template <class Backend, class Model, class T>
void rank_full(const Model& model, const T* params, typename Model::Activations& acts,
               const std::vector<Case>& cases, const Options& o, int64_t* ranks, int K,
               int32_t* top_items, T* top_scores) {
  const int d = model.config().hidden, N = model.config().n_items;
  RD_REQUIRE(acts.capacity >= kEvalBlock, "evaluation activations need capacity kEvalBlock");
  RD_REQUIRE(K >= 0, "top-K needs K >= 0, got ", K);
  const T* E = model.item_table(params);  // (N, d)
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<TopKState<T>> top(static_cast<size_t>(kEvalBlock));
  std::vector<int32_t> seq;
  std::vector<T> last;
  if (N <= kItemChunk) {
    std::vector<T> scores(size_t(kEvalBlock) * N);
    for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
      const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
      detail::block_last_hidden(model, params, acts, cases, start, n, seq, last);
      // scores (kEvalBlock, N) = last (kEvalBlock, d) x E (N, d)^T
      Backend::template gemm<T>(false, true, kEvalBlock, N, d, T(1), last.data(), d, E, d, T(0),
                                scores.data(), N);
      for (size_t i = 0; i < n; ++i) {
        const Case& c = cases[start + i];
        T* row = scores.data() + i * N;
        mask_excluded(row, c, o.exclude);
        if (ranks) ranks[start + i] = rank_of_target(row, N, c.target, o.ties);
        if (K > 0) select_topk(row, N, K, top_items + (start + i) * size_t(K),
                               top_scores + (start + i) * size_t(K), top[0]);
      }
    }
    return;
  }
  const int C = kItemChunk;
  std::vector<T> scores(size_t(kEvalBlock) * C), padded(size_t(C) * d), st(static_cast<size_t>(kEvalBlock));
  std::vector<std::vector<int32_t>> excl(static_cast<size_t>(kEvalBlock));
  std::vector<size_t> pos(static_cast<size_t>(kEvalBlock));
  std::vector<int64_t> better(static_cast<size_t>(kEvalBlock));
  std::vector<uint8_t> miss(static_cast<size_t>(kEvalBlock));
  auto gemm_chunk = [&](const T* items) {  // scores (kEvalBlock, C) = last x items (C, d)^T
    Backend::template gemm<T>(false, true, kEvalBlock, C, d, T(1), last.data(), d, items, d, T(0),
                              scores.data(), C);
  };
  for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
    const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
    detail::block_last_hidden(model, params, acts, cases, start, n, seq, last);
    if (ranks) {
      // The targets' scores: item row i of this GEMM is case i's target.
      std::fill(padded.begin(), padded.end(), T(0));
      for (size_t i = 0; i < n; ++i)
        std::copy_n(E + size_t(cases[start + i].target) * d, d, padded.data() + i * d);
      gemm_chunk(padded.data());
      for (size_t i = 0; i < n; ++i) st[i] = scores[i * C + i];
    }
    for (size_t i = 0; i < n; ++i) {
      const Case& c = cases[start + i];
      auto& x = excl[i];
      x.clear();
      if (o.exclude != Exclude::none) x.insert(x.end(), c.history, c.history + c.length);
      if (o.exclude == Exclude::seen) x.insert(x.end(), c.seen, c.seen + c.n_seen);
      std::sort(x.begin(), x.end());
      pos[i] = 0;
      better[i] = 0;
      miss[i] = ranks && (std::isnan(st[i]) || std::binary_search(x.begin(), x.end(), c.target));
      if (K > 0) top[i].reset(K, top_items + (start + i) * size_t(K), top_scores + (start + i) * size_t(K));
    }
    for (int c0 = 0; c0 < N; c0 += C) {
      const int w = std::min(C, N - c0);
      if (w == C) {
        gemm_chunk(E + size_t(c0) * d);
      } else {  // the last chunk: its item rows, then zero rows
        std::fill(padded.begin(), padded.end(), T(0));
        std::copy_n(E + size_t(c0) * d, size_t(w) * d, padded.data());
        gemm_chunk(padded.data());
      }
      for (size_t i = 0; i < n; ++i) {
        const Case& c = cases[start + i];
        T* row = scores.data() + i * C;  // row[t]: score of item c0 + t, t < w
        const int tt = c.target - c0;    // the target's position in this chunk, if in [0, w)
        if (ranks && tt >= 0 && tt < w && !(row[tt] == st[i]) && !std::isnan(st[i]))
          fail("internal error: the target score of evaluation case ", start + i,
               " differs between two GEMMs of the same shape (", row[tt], " vs ", st[i], ")");
        if (c0 == 0) row[0] = nan;  // the pad is never ranked
        auto& x = excl[i];
        while (pos[i] < x.size() && x[pos[i]] < c0 + w) row[x[pos[i]++] - c0] = nan;
        if (ranks && !miss[i]) {
          const T s = st[i];
          if (o.ties == Ties::against_model) {
            better[i] += detail::count_ge(row, 0, w, s) - (tt >= 0 && tt < w);  // not the target itself
          } else {  // lower ids win ties
            const int split = std::clamp(tt, 0, w);
            better[i] += detail::count_ge(row, 0, split, s) +
                         detail::count_gt(row, std::min(split + (tt >= 0 && tt < w), w), w, s);
          }
        }
        if (K > 0) top[i].scan(c0 == 0 ? row + 1 : row, c0 == 0 ? w - 1 : w, c0 == 0 ? 1 : c0);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (ranks) ranks[start + i] = miss[i] ? kMissRank : better[i] + 1;
      if (K > 0) top[i].finish();
    }
  }
}

// Ranks every case with a model exposing forward()/hidden()/item_table()/padding_side(),
// applying the exclusions and (if asked) sampled negatives of `o`. `popularity` (N,) is
// needed only for Sampling::popularity; `seed` keys the sampled negatives.
template <class Backend, class Model, class T>
std::vector<int64_t> rank_cases(const Model& model, const T* params,
                                typename Model::Activations& acts, const std::vector<Case>& cases,
                                const Options& o, uint64_t seed = 0,
                                const std::vector<double>* popularity = nullptr) {
  const int N = model.config().n_items;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], i, N, true);
  std::vector<int64_t> ranks(cases.size());
  if (o.sampled_negatives <= 0) {
    rank_full<Backend>(model, params, acts, cases, o, ranks.data(), 0, nullptr, static_cast<T*>(nullptr));
    return ranks;
  }
  NegativeSampler sampler(N, o, seed, popularity);
  std::vector<int32_t> negatives;
  score_cases<Backend>(model, params, acts, cases, [&](size_t i, T* row) {
    sampler.draw(cases[i], negatives);
    mask_excluded(row, cases[i], o.exclude);  // an excluded target is a miss here too
    ranks[i] = rank_among(row, negatives, cases[i].target, o.ties);
  });
  return ranks;
}

// Full ranking without exclusions (the first slice's call).
template <class Backend, class Model, class T>
std::vector<int64_t> rank_cases(const Model& model, const T* params,
                                typename Model::Activations& acts, const std::vector<Case>& cases,
                                Ties ties = Ties::against_model) {
  Options o;
  o.ties = ties;
  return rank_cases<Backend>(model, params, acts, cases, o);
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
