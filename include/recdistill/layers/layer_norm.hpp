// recdistill/layers/layer_norm.hpp: y = gamma * (x - mean) / sqrt(var + eps) + beta.
//
// Biased variance over the last axis, eps inside the root (PyTorch). Backward, with
// gh = g * gamma and r = (var + eps)^-1/2:
//   dx = r * (gh - mean(gh) - xhat * mean(gh * xhat)), dgamma += sum g*xhat, dbeta += sum g.
// Derivation: docs/derivations/layer_norm.md.
#pragma once
#include <cmath>
#include <cstdint>

namespace recdistill::layers {

// x, y (R, d); saves xhat (R, d) and rstd (R) for the backward pass.
template <class T>
void layer_norm_forward(T* y, T* xhat, T* rstd, const T* x, const T* gamma, const T* beta, int R,
                        int d, double eps) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < R; ++r) {
    const T* xr = x + int64_t(r) * d;
    double mean = 0;
    for (int c = 0; c < d; ++c) mean += xr[c];
    mean /= d;
    double var = 0;
    for (int c = 0; c < d; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= d;
    const T rs = T(1.0 / std::sqrt(var + eps));
    rstd[r] = rs;
    T* hr = xhat + int64_t(r) * d;
    T* yr = y + int64_t(r) * d;
    for (int c = 0; c < d; ++c) {
      hr[c] = (xr[c] - T(mean)) * rs;
      yr[c] = gamma[c] * hr[c] + beta[c];
    }
  }
}

// dx (R, d) written, or added when accumulate_dx (residual paths).
template <class T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* g, const T* xhat, const T* rstd,
                         const T* gamma, int R, int d, bool accumulate_dx = false) {
  for (int r = 0; r < R; ++r) {
    const T* gr = g + int64_t(r) * d;
    const T* hr = xhat + int64_t(r) * d;
    double mean_gh = 0, mean_ghx = 0;
    for (int c = 0; c < d; ++c) {
      const double gh = double(gr[c]) * gamma[c];
      mean_gh += gh;
      mean_ghx += gh * hr[c];
      dgamma[c] += gr[c] * hr[c];
      dbeta[c] += gr[c];
    }
    mean_gh /= d;
    mean_ghx /= d;
    T* dr = dx + int64_t(r) * d;
    for (int c = 0; c < d; ++c) {
      const T v = rstd[r] * (gr[c] * gamma[c] - T(mean_gh) - hr[c] * T(mean_ghx));
      dr[c] = accumulate_dx ? dr[c] + v : v;
    }
  }
}

}  // namespace recdistill::layers
