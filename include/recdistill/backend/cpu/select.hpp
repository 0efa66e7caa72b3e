// recdistill/backend/cpu/select.hpp: partial top-K selection over rows of scores, streamed in
// chunks of item ids: the CPU backend's top-K kernel (its rank_rows / rank_chunk ops).
//
// Order: higher score first; equal scores are ordered by the lower item id. NaN scores
// (masked items) are never selected; a list with fewer than K selectable items is filled
// with item 0 and score -inf.
#pragma once
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace recdistill::eval {

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

// A lower bound of the K-th largest score among row[0..count): the lane-wise maxima of each
// run of 256 scores (16 vectors of 16) are the maxima of 16 disjoint groups of items, so at
// least K items score >= the K-th largest of these group maxima. NaN scores are ignored.
// -inf (no bound) when there are fewer than 2K groups.
inline float kth_lane_max_bound(const float* row, int count, int K) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int blocks = count / 256;
  if (blocks * 16 < 2 * K || K > 64) return kNegInf;
  float top[64];  // the K largest group maxima so far, descending
  int m = 0;
  for (int b = 0; b < blocks; ++b) {
    float lane[16];
#if defined(__AVX512F__)
    __m512 acc = _mm512_set1_ps(kNegInf);
    // max(v, acc) returns acc where v is NaN, so masked items never raise a maximum.
    for (int v = 0; v < 16; ++v) acc = _mm512_max_ps(_mm512_loadu_ps(row + b * 256 + v * 16), acc);
    _mm512_storeu_ps(lane, acc);
#else
    for (int l = 0; l < 16; ++l) lane[l] = kNegInf;
    for (int v = 0; v < 16; ++v)
      for (int l = 0; l < 16; ++l) {
        const float x = row[b * 256 + v * 16 + l];
        lane[l] = x > lane[l] ? x : lane[l];
      }
#endif
    for (int l = 0; l < 16; ++l) {
      const float x = lane[l];
      if (m == K && !(x > top[K - 1])) continue;
      int p = m == K ? K - 1 : m++;
      while (p > 0 && top[p - 1] < x) {
        top[p] = top[p - 1];
        --p;
      }
      top[p] = x;
    }
  }
  return m == K ? top[K - 1] : kNegInf;
}

}  // namespace detail

// The running top-K list of one row, fed chunk by chunk in increasing item id.
//
// Each chunk is compared 16 scores at a time against the current K-th best score (one SIMD
// compare giving a bit mask) and only the scores that pass are looked at, so for K << N the
// scan costs a fraction of a compare per item; about K (1 + ln(N / K)) candidates pass on
// random scores.
//   K <= 64: the list is kept sorted in the output arrays and a candidate is inserted by
//     shifting (no heap, no comparator calls);
//   K > 64: candidates go to a buffer of 4K entries; when it is full, nth_element keeps its
//     K best and their worst score becomes the threshold.
// Ties: ids arrive in increasing order, so once K items are kept a later id whose score equals
// the K-th cannot enter: exactly the (score desc, id asc) order.
template <class T>
class TopKState {
 public:
  // Starts a list of K entries written to items (K,) and scores (K,) by finish().
  void reset(int K, int32_t* items, T* scores) {
    K_ = K;
    items_ = items;
    scores_ = scores;
    m_ = 0;
    n_ = 0;
    full_ = false;
    thr_ = -std::numeric_limits<T>::infinity();
    if (K_ > kSmall) buf_.resize(size_t(4 * K_) + 16);
  }

  // row[t] is the score of item id0 + t, t < count.
  void scan(const T* row, int count, int32_t id0) {
    int t = 0;
    if constexpr (std::is_same_v<T, float>) {
      // Before the list is full every item would be a candidate; a lower bound of the K-th
      // best score of this chunk skips most of them (detail::kth_lane_max_bound).
      const float bound = full_ ? thr_ : detail::kth_lane_max_bound(row, count, K_);
      for (; t + 16 <= count; t += 16) {
        // Bit b: row[t + b] >= thr. consider() re-checks against the current threshold.
        uint32_t mask = detail::mask_ge16(row + t, std::max(thr_, bound));
        while (mask) {
          const int b = __builtin_ctz(mask);
          consider(row[t + b], id0 + t + b);
          mask &= mask - 1;
        }
      }
    }
    for (; t < count; ++t) consider(row[t], id0 + t);
  }

  // Writes the list, best first.
  void finish() {
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    if (K_ > kSmall) {
      m_ = int(std::min(n_, size_t(K_)));
      std::partial_sort(buf_.begin(), buf_.begin() + m_, buf_.begin() + ptrdiff_t(n_), better);
      for (int i = 0; i < m_; ++i) {
        items_[i] = buf_[size_t(i)].second;
        scores_[i] = buf_[size_t(i)].first;
      }
    }
    for (int i = m_; i < K_; ++i) {  // fewer than K selectable items
      items_[i] = 0;
      scores_[i] = kNegInf;
    }
  }

 private:
  static constexpr int kSmall = 64;
  static bool better(const std::pair<T, int32_t>& a, const std::pair<T, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }

  __attribute__((always_inline)) void consider(T s, int32_t id) {
    if (!(full_ ? s > thr_ : s >= thr_)) return;  // also rejects NaN (masked items)
    if (K_ <= kSmall) {
      int p = full_ ? K_ - 1 : m_;  // when full, the last entry drops out
      while (p > 0 && scores_[p - 1] < s) {
        scores_[p] = scores_[p - 1];
        items_[p] = items_[p - 1];
        --p;
      }
      scores_[p] = s;
      items_[p] = id;
      if (!full_ && ++m_ == K_) full_ = true;
      if (full_) thr_ = scores_[K_ - 1];
      return;
    }
    buf_[n_++] = {s, id};
    if (n_ == buf_.size()) {
      std::nth_element(buf_.begin(), buf_.begin() + (K_ - 1), buf_.begin() + ptrdiff_t(n_), better);
      thr_ = buf_[size_t(K_) - 1].first;
      n_ = size_t(K_);
      full_ = true;
    }
  }

  int K_ = 0, m_ = 0;
  size_t n_ = 0;
  bool full_ = false;
  T thr_ = 0;
  int32_t* items_ = nullptr;
  T* scores_ = nullptr;
  std::vector<std::pair<T, int32_t>> buf_;
};

// Reusable scratch for select_topk.
template <class T>
using TopKScratch = TopKState<T>;

// The K best items of one row of scores (N,) over ids 1..N-1 (the pad id 0 is skipped),
// written best first to items (K,) and scores (K,).
template <class T>
void select_topk(const T* row, int N, int K, int32_t* items, T* scores, TopKScratch<T>& state) {
  state.reset(K, items, scores);
  if (N > 1) state.scan(row + 1, N - 1, 1);
  state.finish();
}

}  // namespace recdistill::eval
