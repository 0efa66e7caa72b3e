// recdistill/layers/softmax_cross_entropy.hpp: full-softmax cross-entropy over a tied
// output table (the item embedding), mean-reduced over the rows whose target is not 0.
//
//   z_r = h_r E^T (all N columns, pad column 0 included at training, as the references do)
//   L   = (1/T) sum_r [logsumexp(z_r) - z_{r, y_r}],  T = #{r : y_r != 0}
//   dz_r = (softmax(z_r) - onehot(y_r)) / T;  dh_r = dz_r E;  dE += dz^T h.
// Rows are processed in chunks so the (R, N) logit matrix is never materialised, and rows
// with target 0 (padding) cost nothing.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "recdistill/core/vecmath.hpp"

namespace recdistill::layers {

template <class T>
struct CrossEntropyWorkspace {
  int chunk = 0;
  std::vector<int> rows;      // (R) indexes of the non-ignored rows
  std::vector<T> h, z, dh;    // (chunk, d), (chunk, N), (chunk, d)
  std::vector<double> row_loss;  // (chunk)
  void reserve(int R, int chunk_rows, int d, int N) {
    chunk = chunk_rows;
    rows.resize(R);
    h.resize(size_t(chunk) * d);
    z.resize(size_t(chunk) * N);
    dh.resize(size_t(chunk) * d);
    row_loss.resize(size_t(chunk));
  }
};

// Returns the mean loss. dh (R, d) is written (0 on ignored rows) when not null; dE (N, d)
// accumulates when not null. hidden (R, d), table (N, d), targets (R), 0 = ignore.
template <class B, class T>
double softmax_cross_entropy(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                             int R, int d, int N, CrossEntropyWorkspace<T>& ws,
                             int64_t* n_targets = nullptr) {
  int count = 0;
  for (int r = 0; r < R; ++r)
    if (targets[r] != 0) ws.rows[count++] = r;
  if (n_targets) *n_targets = count;
  if (dh) std::fill(dh, dh + int64_t(R) * d, T(0));
  if (count == 0) return 0.0;
  const T inv_count = T(1) / T(count);
  double loss = 0;
  for (int start = 0; start < count; start += ws.chunk) {
    const int C = std::min(ws.chunk, count - start);
    for (int i = 0; i < C; ++i)
      std::copy_n(hidden + int64_t(ws.rows[start + i]) * d, d, ws.h.data() + int64_t(i) * d);
    B::template gemm<T>(false, true, C, N, d, T(1), ws.h.data(), d, table, d, T(0), ws.z.data(),
                        N);
    // Rows are independent; their losses are summed afterwards in row order, so the result
    // does not depend on the thread count.
#pragma omp parallel for schedule(static)
    for (int i = 0; i < C; ++i) {
      T* z = ws.z.data() + int64_t(i) * N;
      const int y = targets[ws.rows[start + i]];
      const T zy = z[y];
      const T mx = vec::max(z, N);
      vec::exp_shifted(z, N, mx);  // z = exp(z - max), computed once
      const T sum = vec::sum(z, N);
      ws.row_loss[size_t(i)] = double(mx + std::log(sum) - zy);
      // z becomes dz = (softmax - onehot) / count in place.
      const T scale = inv_count / sum;
      for (int j = 0; j < N; ++j) z[j] *= scale;
      z[y] -= inv_count;
    }
    for (int i = 0; i < C; ++i) loss += ws.row_loss[size_t(i)];
    if (dh) {
      B::template gemm<T>(false, false, C, d, N, T(1), ws.z.data(), N, table, d, T(0),
                          ws.dh.data(), d);
      for (int i = 0; i < C; ++i)
        std::copy_n(ws.dh.data() + int64_t(i) * d, d, dh + int64_t(ws.rows[start + i]) * d);
    }
    if (dE)
      B::template gemm<T>(true, false, N, d, C, T(1), ws.z.data(), N, ws.h.data(), d, T(1), dE,
                          d);
  }
  return loss / count;
}

}  // namespace recdistill::layers
