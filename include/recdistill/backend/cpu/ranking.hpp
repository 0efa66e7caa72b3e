// recdistill/backend/cpu/ranking.hpp: the CPU's ranking kernels over rows of scores (rank of
// the target, exclusion masks, branch-free counts). The definitions are in docs/metrics.md and
// eval/ranking.hpp; the backend's rank ops (backend/cpu/ops.hpp) are built from these.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "recdistill/eval/case.hpp"

namespace recdistill::eval {

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

// Masks the excluded items of one case in its score row (N,) by setting them to NaN.
template <class T>
void mask_excluded(T* row, const Case& c, Exclude ex) {
  if (ex == Exclude::none) return;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  if (ex == Exclude::history || ex == Exclude::seen)
    for (size_t k = 0; k < c.length; ++k) row[c.history[k]] = nan;
  if (ex == Exclude::seen || ex == Exclude::listed)
    for (size_t k = 0; k < c.n_seen; ++k) row[c.seen[k]] = nan;
  row[0] = nan;  // the pad is never ranked (it may appear as padding in a history)
}

namespace detail {

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

}  // namespace recdistill::eval
