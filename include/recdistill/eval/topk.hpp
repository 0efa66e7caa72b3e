// recdistill/eval/topk.hpp: top-K recommendation lists for evaluation cases, computed block
// by block (scores as a GEMM, then a partial selection per row), never materialising an
// N_cases x N_items matrix.
//
// Order: higher score first; equal scores are ordered by the lower item id (so a list is
// deterministic). The pad id 0, excluded items and NaN scores are never selected; a row with
// fewer than K selectable items is filled with item 0 and score -inf.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
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

// Reusable heap storage for select_topk.
template <class T>
using TopKHeap = std::vector<std::pair<T, int32_t>>;

// The K best items of one row of scores (N,) over ids 1..N-1, written best first to
// items (K,) and scores (K,). A size-K min-heap of (score, id) holds the current list; the row
// is scanned in groups of 16 against the heap's worst score (a branch-free, vectorised test),
// and only groups holding a candidate are looked at item by item, so for K << N the
// selection costs about one compare per item.
template <class T>
void select_topk(const T* row, int N, int K, int32_t* items, T* scores, TopKHeap<T>& heap) {
  // better(a, b): a ranks before b. std heap with this order keeps the worst entry on top.
  auto better = [](const std::pair<T, int32_t>& a, const std::pair<T, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  heap.assign(size_t(K), {-std::numeric_limits<T>::infinity(), std::numeric_limits<int32_t>::max()});
  T thr = heap.front().first;
  auto consider = [&](int j) {
    const T s = row[j];
    if (!(s >= thr)) return;  // also rejects NaN (masked items)
    const std::pair<T, int32_t> e{s, int32_t(j)};
    if (!better(e, heap.front())) return;
    std::pop_heap(heap.begin(), heap.end(), better);
    heap.back() = e;
    std::push_heap(heap.begin(), heap.end(), better);
    thr = heap.front().first;
  };
  constexpr int G = 16;
  int j = 1;
  for (; j + G <= N; j += G) {
    int any = 0;
    for (int t = 0; t < G; ++t) any |= row[j + t] >= thr;
    if (!any) continue;
    for (int t = 0; t < G; ++t) consider(j + t);
  }
  for (; j < N; ++j) consider(j);
  std::sort_heap(heap.begin(), heap.end(), better);  // best first
  for (int i = 0; i < K; ++i) {
    const bool real = heap[size_t(i)].second != std::numeric_limits<int32_t>::max();
    items[i] = real ? heap[size_t(i)].second : 0;
    scores[i] = heap[size_t(i)].first;
  }
}

// Top-K lists for every case (the target is not used and may be 0), with the exclusions of
// `ex` masked out. Bit-identical for any grouping of the cases (fixed kEvalBlock blocks).
template <class Backend, class Model, class T>
TopK<T> topk_cases(const Model& model, const T* params, typename Model::Activations& acts,
                   const std::vector<Case>& cases, int K, Exclude ex = Exclude::none) {
  RD_REQUIRE(K >= 1, "top-K needs K >= 1, got ", K);
  const int N = model.config().n_items;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], i, N, false);
  TopK<T> out;
  out.k = K;
  out.items.resize(cases.size() * size_t(K));
  out.scores.resize(cases.size() * size_t(K));
  TopKHeap<T> heap;
  score_cases<Backend>(model, params, acts, cases, [&](size_t i, T* row) {
    mask_excluded(row, cases[i], ex);
    select_topk(row, N, K, out.items.data() + i * size_t(K), out.scores.data() + i * size_t(K), heap);
  });
  return out;
}

// Ranks (with the full-ranking options of `o`) and top-K lists in one pass over the cases:
// the evaluation a recommender run reports. Sampled evaluation is not combined with top-K.
template <class Backend, class Model, class T>
std::pair<std::vector<int64_t>, TopK<T>> rank_and_topk_cases(const Model& model, const T* params,
                                                             typename Model::Activations& acts,
                                                             const std::vector<Case>& cases,
                                                             const Options& o, int K) {
  RD_REQUIRE(K >= 1, "top-K needs K >= 1, got ", K);
  RD_REQUIRE(o.sampled_negatives <= 0, "rank_and_topk_cases ranks over all items; use rank_cases for sampled evaluation");
  const int N = model.config().n_items;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], i, N, true);
  std::vector<int64_t> ranks(cases.size());
  TopK<T> out;
  out.k = K;
  out.items.resize(cases.size() * size_t(K));
  out.scores.resize(cases.size() * size_t(K));
  TopKHeap<T> heap;
  score_cases<Backend>(model, params, acts, cases, [&](size_t i, T* row) {
    mask_excluded(row, cases[i], o.exclude);
    ranks[i] = rank_of_target(row, N, cases[i].target, o.ties);
    select_topk(row, N, K, out.items.data() + i * size_t(K), out.scores.data() + i * size_t(K), heap);
  });
  return {std::move(ranks), std::move(out)};
}

}  // namespace recdistill::eval
