// recdistill/eval/ranking.hpp: full-ranking evaluation and the metrics computed from ranks.
//
// Definitions (docs/metrics.md): rank is 1-based; by default a tie is ranked against the
// model, rank = 1 + #{j != target, j != pad : s_j >= s_target} (`Ties::index` instead lets
// a lower item id win a tie, for parity with references). A NaN target score is a miss.
//   HR@K = [rank <= K];  NDCG@K = [rank <= K] / log2(rank + 1);  MRR@K = [rank <= K] / rank
// averaged over the evaluated users. With one target per user, NDCG's ideal DCG is 1.
//
// Scores are computed in fixed blocks of kEvalBlock sequences (the last block padded), so
// the numbers are bit-identical for any user-facing evaluation batch size.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/padding.hpp"
#include "recdistill/data/dataset.hpp"

namespace recdistill::eval {

enum class Ties { against_model, index };

constexpr int kEvalBlock = 128;

// One evaluation case: a history (oldest first) and the held-out target.
struct Case {
  const int32_t* history;
  size_t length;
  int32_t target;
};

// rank of the target among items 1..N-1 given one row of scores (N,).
template <class T>
int64_t rank_of_target(const T* scores, int N, int32_t target, Ties ties) {
  const T st = scores[target];
  if (std::isnan(st)) return N;  // a model that outputs NaN gets no credit
  int64_t better = 0;
  for (int j = 1; j < N; ++j) {
    if (j == target) continue;
    if (scores[j] > st || (scores[j] == st && (ties == Ties::against_model || j < target)))
      ++better;
  }
  return better + 1;
}

// Ranks every case with a model exposing forward()/hidden()/item_table()/padding_side().
// `acts` must have capacity kEvalBlock.
template <class Backend, class Model, class T>
std::vector<int64_t> rank_cases(const Model& model, const T* params,
                                typename Model::Activations& acts, const std::vector<Case>& cases,
                                Ties ties = Ties::against_model) {
  const auto& cfg = model.config();
  const int L = cfg.max_len, d = cfg.hidden, N = cfg.n_items;
  const bool left = model.padding_side() == PaddingSide::left;
  RD_REQUIRE(acts.capacity >= kEvalBlock, "evaluation activations need capacity kEvalBlock");
  std::vector<int32_t> seq(size_t(kEvalBlock) * L);
  std::vector<T> last(size_t(kEvalBlock) * d), scores(size_t(kEvalBlock) * N);
  std::vector<int64_t> ranks(cases.size());
  for (size_t start = 0; start < cases.size(); start += kEvalBlock) {
    const size_t n = std::min(cases.size() - start, size_t(kEvalBlock));
    for (size_t i = 0; i < size_t(kEvalBlock); ++i) {
      // Unused rows of the last block repeat the first case; their scores are ignored.
      const Case& c = cases[start + (i < n ? i : 0)];
      RD_REQUIRE(c.length > 0, "evaluation case with an empty history");
      data::layout_history(seq.data() + i * L, c.history, c.length, L, left);
    }
    model.forward(params, acts, seq.data(), kEvalBlock, /*train=*/false);
    const T* H = model.hidden(acts);
    for (size_t i = 0; i < size_t(kEvalBlock); ++i) {
      const size_t len = std::min(cases[start + (i < n ? i : 0)].length, size_t(L));
      const size_t slot = left ? size_t(L - 1) : len - 1;
      std::copy_n(H + (i * L + slot) * d, d, last.data() + i * d);
    }
    Backend::template gemm<T>(false, true, kEvalBlock, N, d, T(1), last.data(), d,
                              model.item_table(params), d, T(0), scores.data(), N);
    for (size_t i = 0; i < n; ++i)
      ranks[start + i] = rank_of_target(scores.data() + i * N, N, cases[start + i].target, ties);
  }
  return ranks;
}

// Metric name -> value, e.g. "NDCG@10". Names: HR, NDCG, MRR.
using Metrics = std::map<std::string, double>;

inline Metrics metrics_from_ranks(const std::vector<int64_t>& ranks, const std::vector<int>& ks) {
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
    m["HR@" + std::to_string(k)] = hr / n;
    m["NDCG@" + std::to_string(k)] = ndcg / n;
    m["MRR@" + std::to_string(k)] = mrr / n;
  }
  return m;
}

}  // namespace recdistill::eval
