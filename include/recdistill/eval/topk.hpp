// recdistill/eval/topk.hpp: top-K recommendation lists for evaluation cases, computed block
// by block (scores as a GEMM, then a partial selection per row), never materialising an
// N_cases x N_items matrix.
//
// Order: higher score first; equal scores are ordered by the lower item id (so a list is
// deterministic). The pad id 0, excluded items and NaN scores are never selected; a row with
// fewer than K selectable items is filled with item 0 and score -inf.
#pragma once
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
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

namespace detail {

// Bit t set iff p[t] >= thr (t < 16; false for NaN).
inline uint32_t mask_ge16(const float* p, float thr) {
#if defined(__AVX512F__)
  return _mm512_cmp_ps_mask(_mm512_loadu_ps(p), _mm512_set1_ps(thr), _CMP_GE_OQ);
#elif defined(__AVX__)
  const __m256 t = _mm256_set1_ps(thr);
  const uint32_t lo = uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), t, _CMP_GE_OQ)));
  const uint32_t hi = uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + 8), t, _CMP_GE_OQ)));
  return lo | (hi << 8);
#else
  uint32_t m = 0;
  for (int t = 0; t < 16; ++t) m |= uint32_t(p[t] >= thr) << t;
  return m;
#endif
}

}  // namespace detail

// Reusable scratch storage for select_topk.
template <class T>
using TopKScratch = std::vector<std::pair<T, int32_t>>;

// The K best items of one row of scores (N,) over ids 1..N-1, written best first to
// items (K,) and scores (K,). The row is compared 16 scores at a time against the current
// K-th best score (one SIMD compare giving a bit mask) and only the scores that pass are
// looked at, so for K << N the scan costs a fraction of a compare per item; about
// K (1 + ln(N / K)) candidates pass on random scores.
//   K <= 64: the list is kept sorted in items/scores and a candidate is inserted by shifting
//     (no heap, no comparator calls);
//   K > 64: candidates go to a buffer of 4K entries; when it is full, nth_element keeps its
//     K best and their worst score becomes the threshold.
// Ties: ids are scanned in increasing order, so once K items are kept a later id with a score
// equal to the K-th cannot enter: exactly the (score desc, id asc) order.
template <class T>
void select_topk(const T* row, int N, int K, int32_t* items, T* scores, TopKScratch<T>& buf) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  T thr = kNegInf;
  bool full = false;  // K items kept: later items must be > thr
  size_t n = 0;       // K > 64: entries in buf
  const size_t cap = size_t(4 * K) + 16;
  if (K > 64) buf.resize(cap);
  auto better = [](const std::pair<T, int32_t>& a, const std::pair<T, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  int m = 0;  // K <= 64: items kept so far
  auto consider = [&](int j) __attribute__((always_inline)) {
    const T s = row[j];
    if (!(full ? s > thr : s >= thr)) return;  // also rejects NaN (masked items)
    if (K <= 64) {
      int p = full ? K - 1 : m;  // when full, the last entry drops out
      while (p > 0 && scores[p - 1] < s) {
        scores[p] = scores[p - 1];
        items[p] = items[p - 1];
        --p;
      }
      scores[p] = s;
      items[p] = int32_t(j);
      if (!full && ++m == K) full = true;
      if (full) thr = scores[K - 1];
      return;
    }
    buf[n++] = {s, int32_t(j)};
    if (n == cap) {
      std::nth_element(buf.begin(), buf.begin() + (K - 1), buf.begin() + ptrdiff_t(n), better);
      thr = buf[size_t(K) - 1].first;
      n = size_t(K);
      full = true;
    }
  };
  int j = 1;
  if constexpr (std::is_same_v<T, float>) {
    for (; j + 16 <= N; j += 16) {
      // Bit t: row[j + t] >= thr. consider() re-checks against the current threshold.
      uint32_t mask = detail::mask_ge16(row + j, thr);
      while (mask) {
        consider(j + __builtin_ctz(mask));
        mask &= mask - 1;
      }
    }
  }
  for (; j < N; ++j) consider(j);
  if (K > 64) {
    m = int(std::min(n, size_t(K)));
    std::partial_sort(buf.begin(), buf.begin() + m, buf.begin() + ptrdiff_t(n), better);
    for (int i = 0; i < m; ++i) {
      items[i] = buf[size_t(i)].second;
      scores[i] = buf[size_t(i)].first;
    }
  }
  for (int i = m; i < K; ++i) {  // fewer than K selectable items
    items[i] = 0;
    scores[i] = kNegInf;
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
  TopKScratch<T> heap;
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
  TopKScratch<T> heap;
  score_cases<Backend>(model, params, acts, cases, [&](size_t i, T* row) {
    mask_excluded(row, cases[i], o.exclude);
    ranks[i] = rank_of_target(row, N, cases[i].target, o.ties);
    select_topk(row, N, K, out.items.data() + i * size_t(K), out.scores.data() + i * size_t(K), heap);
  });
  return {std::move(ranks), std::move(out)};
}

}  // namespace recdistill::eval
