// recdistill/eval/topk.hpp: top-K recommendation lists for evaluation cases, computed block
// by block (scores by ops::score_rows, then a partial selection per row), never materialising an
// N_cases x N_items matrix.
//
// Order: higher score first; equal scores are ordered by the lower item id (so a list is
// deterministic). The pad id 0, excluded items and NaN scores are never selected; a row with
// fewer than K selectable items is filled with item 0 and score -inf. A scorer with
// normalise_rows is scored against its normalised rows (rank_full, eval/ranking.hpp), and the
// scores listed are those, q . n(E_j).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "recdistill/eval/ranking.hpp"

namespace recdistill::eval {

// K best items per case, row-major (cases, K).
template <class T = float>
struct TopK {
  int k = 0;
  std::vector<int32_t> items;
  std::vector<T> scores;
  const int32_t* items_of(size_t i) const { return items.data() + i * size_t(k); }
  const T* scores_of(size_t i) const { return scores.data() + i * size_t(k); }
};

// Top-K lists for every case (the target is not used and may be 0), with the exclusions of
// `ex` masked out. Bit-identical for any grouping of the cases (fixed kEvalBlock blocks).
template <class B, class Model, class T = typename Model::Scalar>
TopK<T> topk_cases(const Model& model, CPtr<B, T> params, typename Model::Activations& acts,
                   const std::vector<Case>& cases, int K, Exclude ex = Exclude::none) {
  RD_REQUIRE(K >= 1, "top-K needs K >= 1, got ", K);
  const int N = model.scorer().n_items;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], i, N, false);
  TopK<T> out;
  out.k = K;
  out.items.resize(cases.size() * size_t(K));
  out.scores.resize(cases.size() * size_t(K));
  Options o;
  o.exclude = ex;
  rank_full<B, Model, T>(model, params, acts, cases, o, nullptr, K, out.items.data(), out.scores.data());
  return out;
}

// Ranks (with the full-ranking options of `o`) and top-K lists in one pass over the cases:
// the evaluation a recommender run reports. Sampled evaluation is not combined with top-K.
template <class B, class Model, class T = typename Model::Scalar>
std::pair<std::vector<int64_t>, TopK<T>> rank_and_topk_cases(const Model& model, CPtr<B, T> params,
                                                             typename Model::Activations& acts,
                                                             const std::vector<Case>& cases,
                                                             const Options& o, int K) {
  RD_REQUIRE(K >= 1, "top-K needs K >= 1, got ", K);
  RD_REQUIRE(o.sampled_negatives <= 0, "rank_and_topk_cases ranks over all items; use rank_cases for sampled evaluation");
  const int N = model.scorer().n_items;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], i, N, true);
  std::vector<int64_t> ranks(cases.size());
  TopK<T> out;
  out.k = K;
  out.items.resize(cases.size() * size_t(K));
  out.scores.resize(cases.size() * size_t(K));
  rank_full<B, Model, T>(model, params, acts, cases, o, ranks.data(), K, out.items.data(), out.scores.data());
  return {std::move(ranks), std::move(out)};
}

}  // namespace recdistill::eval
