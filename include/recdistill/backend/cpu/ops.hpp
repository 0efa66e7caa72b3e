// recdistill/backend/cpu/ops.hpp: the CPU backend's implementation of every op of
// backend/ops.hpp: plain loops (the reference), OpenMP over independent rows or sequences,
// Eigen GEMM inside the ops that need one. Included by backend/cpu/backend.hpp.
//
// Derivations: docs/derivations/ (layer_norm.md, attention.md). Every loop's result is
// independent of the thread count: rows are split between threads but each row's sums run in
// a fixed order (backend/cpu/vecmath.hpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/backend/cpu/ranking.hpp"
#include "recdistill/backend/cpu/scores.hpp"
#include "recdistill/backend/cpu/select.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/backend/cpu/vecmath.hpp"

namespace recdistill::ops {

using CpuB = ::recdistill::cpu::Backend;

// ---- element-wise and memory ----------------------------------------------------------

template <>
struct fill_impl<CpuB> {
  template <class T>
  static void run(T* x, int64_t n, double v) { std::fill(x, x + n, T(v)); }
};

template <>
struct add_impl<CpuB> {
  // y = a + b
  template <class T>
  static void run(T* y, const T* a, const T* b, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
};

template <>
struct nonzero_mask_impl<CpuB> {
  static void run(uint8_t* valid, const int32_t* ids, int64_t n) {
    for (int64_t i = 0; i < n; ++i) valid[i] = ids[i] != 0;
  }
};

template <>
struct mask_rows_impl<CpuB> {
  template <class T>
  static void run(T* x, const uint8_t* valid, int R, int d) {
    for (int r = 0; r < R; ++r)
      if (!valid[r]) std::fill(x + int64_t(r) * d, x + int64_t(r + 1) * d, T(0));
  }
};

// ---- embedding ------------------------------------------------------------------------

template <>
struct gather_rows_impl<CpuB> {
  // out (R, d) = scale * table[ids] ; table (N, d), ids (R)
  template <class T>
  static void run(T* out, const T* table, const int32_t* ids, int R, int d, double scale = 1.0) {
    const T s = T(scale);
    for (int r = 0; r < R; ++r) {
      const T* src = table + int64_t(ids[r]) * d;
      T* dst = out + int64_t(r) * d;
      if (scale == 1.0) std::copy_n(src, d, dst);
      else for (int c = 0; c < d; ++c) dst[c] = s * src[c];
    }
  }
};

template <>
struct scatter_add_rows_impl<CpuB> {
  // dtable (N, d) += scale * scatter(g (R, d)) by ids; skip_pad drops the rows of id 0
  // (PyTorch padding_idx on the lookup path).
  template <class T>
  static void run(T* dtable, const T* g, const int32_t* ids, int R, int d, bool skip_pad,
                  double scale = 1.0) {
    const T s = T(scale);
    for (int r = 0; r < R; ++r) {
      if (skip_pad && ids[r] == 0) continue;
      T* dst = dtable + int64_t(ids[r]) * d;
      const T* src = g + int64_t(r) * d;
      for (int c = 0; c < d; ++c) dst[c] += s * src[c];
    }
  }
};

template <>
struct add_position_impl<CpuB> {
  // x (Bn, L, d) += pos (L, d)
  template <class T>
  static void run(T* x, const T* pos, int Bn, int L, int d) {
    const int R = Bn * L;
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < d; ++c) x[int64_t(r) * d + c] += pos[int64_t(r % L) * d + c];
  }
};

template <>
struct position_grad_impl<CpuB> {
  // dpos (L, d) += sum over sequences of g (Bn, L, d)
  template <class T>
  static void run(T* dpos, const T* g, int Bn, int L, int d) {
    const int R = Bn * L;
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < d; ++c) dpos[int64_t(r % L) * d + c] += g[int64_t(r) * d + c];
  }
};

// ---- linear ---------------------------------------------------------------------------

template <>
struct add_bias_impl<CpuB> {
  // y (R, n; row stride ldy) += b (n)
  template <class T>
  static void run(T* y, int ldy, const T* b, int R, int n) {
    for (int r = 0; r < R; ++r)
      for (int o = 0; o < n; ++o) y[int64_t(r) * ldy + o] += b[o];
  }
};

template <>
struct bias_grad_impl<CpuB> {
  // db (n) += sum_rows g (R, n; row stride ldg)
  template <class T>
  static void run(T* db, const T* g, int ldg, int R, int n) {
    for (int r = 0; r < R; ++r)
      for (int o = 0; o < n; ++o) db[o] += g[int64_t(r) * ldg + o];
  }
};

// ---- layer norm -----------------------------------------------------------------------
// y = gamma * (x - mean) / sqrt(var + eps) + beta, biased variance, eps inside the root.
// Backward with gh = g * gamma, r = rstd: dx = r (gh - mean(gh) - xhat mean(gh xhat)).

template <>
struct layer_norm_forward_impl<CpuB> {
  // x, y (R, d); saves xhat (R, d) and rstd (R). y may alias x.
  template <class T>
  static void run(T* y, T* xhat, T* rstd, const T* x, const T* gamma, const T* beta, int R, int d,
                  double eps) {
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
};

template <>
struct layer_norm_backward_impl<CpuB> {
  // dx (R, d) written, or added when accumulate_dx (residual paths).
  template <class T>
  static void run(T* dx, T* dgamma, T* dbeta, const T* g, const T* xhat, const T* rstd,
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
};

// ---- dropout --------------------------------------------------------------------------
// The mask holds 0 or 1/(1-p) and is kept for the backward pass (dx = g * mask). Draws are
// keyed by (seed, dropout stream; epoch, step, row, slot); `site` (< 4096) separates the
// dropout sites of one step.

template <>
struct dropout_forward_impl<CpuB> {
  // x, y, mask (R, n); row r of this call is global row (row0 + r). y may alias x.
  template <class T>
  static void run(T* y, T* mask, const T* x, int R, int n, double p, DropoutKey key,
                  uint32_t site, uint32_t row0 = 0) {
    if (p <= 0) {
      for (int64_t i = 0; i < int64_t(R) * n; ++i) {
        mask[i] = T(1);
        y[i] = x[i];
      }
      return;
    }
    const T keep_scale = T(1.0 / (1.0 - p));
    const float pf = float(p);
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < n; c += 4) {
        // slot packs the site into the high bits, the column block into the low bits.
        const auto u = uniform4(key.seed, Stream::dropout, key.epoch, key.step, row0 + r,
                                (site << 20) | uint32_t(c / 4));
        for (int k = 0; k < 4 && c + k < n; ++k) {
          const int64_t i = int64_t(r) * n + c + k;
          mask[i] = u[k] < pf ? T(0) : keep_scale;
          y[i] = x[i] * mask[i];
        }
      }
    }
  }
};

template <>
struct dropout_backward_impl<CpuB> {
  template <class T>
  static void run(T* dx, const T* g, const T* mask, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * mask[i];
  }
};

// ---- activations ----------------------------------------------------------------------

template <>
struct gelu_forward_impl<CpuB> {
  template <class T>
  static void run(T* y, const T* x, int64_t n) { vec::gelu(y, x, n); }
};

template <>
struct gelu_backward_impl<CpuB> {
  // dx = g * GELU'(x), x the saved pre-activation
  template <class T>
  static void run(T* dx, const T* g, const T* x, int64_t n) { vec::gelu_grad(dx, g, x, n); }
};

template <>
struct relu_forward_impl<CpuB> {
  template <class T>
  static void run(T* y, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
  }
};

template <>
struct relu_backward_impl<CpuB> {
  // dx = g * [y > 0]; y (or x) the saved output
  template <class T>
  static void run(T* dx, const T* g, const T* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? g[i] : T(0);
  }
};

// ---- attention core -------------------------------------------------------------------
// Per sequence b and head h (head h owns channels [h*dh, (h+1)*dh)):
//   S = scale Q K^T + M,  P = softmax_j(S),  Pd = P * D (dropout),  O = Pd V.
// Backward (docs/derivations/attention.md): dV = Pd^T dO; dP = (dO V^T) * D;
//   dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK = scale dS^T Q.
// Sequences are independent: with OpenMP each thread takes whole sequences (the GEMMs inside
// then run single-threaded), so results do not depend on the thread count.

template <>
struct attention_forward_impl<CpuB> {
  // q, k, v: (B*L, ld*) row-strided; out (B*L, d). key_valid (B*L): 1 = real item. Saves probs
  // (B,H,L,L) (pre-dropout) and, when p_drop > 0, dropped (B,H,L,L) and drop_mask.
  template <class T>
  static void run(T* out, T* probs, T* dropped, T* drop_mask, const T* q, int ldq, const T* k,
                  int ldk, const T* v, int ldv, const uint8_t* key_valid, AttentionShape s,
                  AttentionMask mask, double p_drop, DropoutKey key, uint32_t site) {
    const int L = s.L, H = s.H, dh = s.dh, d = s.d();
    const T scale = T(1.0 / std::sqrt(double(dh)));
    const int64_t LL = int64_t(L) * L;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < s.B; ++b) {
      T* Pb = probs + int64_t(b) * H * LL;
      // S_h = scale * Q_h K_h^T for all heads of this sequence at once (heads are dh apart).
      CpuB::gemm_strided_batched<T>(false, true, L, L, dh, scale, q + int64_t(b) * L * ldq, ldq,
                                    dh, k + int64_t(b) * L * ldk, ldk, dh, T(0), Pb, L, LL, H);
      const uint8_t* valid = key_valid + int64_t(b) * L;
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < L; ++i) {
          T* row = Pb + h * LL + int64_t(i) * L;
          T mx = -std::numeric_limits<T>::infinity();
          for (int j = 0; j < L; ++j) {
            if (mask == AttentionMask::additive_key_padding) {
              if (!(j <= i && valid[j])) row[j] += T(-10000);
            } else if (mask == AttentionMask::bidirectional) {
              if (!valid[j]) row[j] += T(-10000);
            } else if (j > i) {
              row[j] = -std::numeric_limits<T>::infinity();
            }
            mx = row[j] > mx ? row[j] : mx;
          }
          vec::exp_shifted(row, L, mx);
          const T inv = T(1) / vec::sum(row, L);
          for (int j = 0; j < L; ++j) row[j] *= inv;
        }
      }
      const T* Pused = Pb;
      if (p_drop > 0) {
        dropout_forward_impl<CpuB>::run(dropped + int64_t(b) * H * LL,
                                        drop_mask + int64_t(b) * H * LL, Pb, H * L, L, p_drop, key,
                                        site, (key.first_seq + uint32_t(b)) * uint32_t(H * L));
        Pused = dropped + int64_t(b) * H * LL;
      }
      // O_h = Pd_h V_h, written into the head's channel block of out.
      CpuB::gemm_strided_batched<T>(false, false, L, dh, L, T(1), Pused, L, LL,
                                    v + int64_t(b) * L * ldv, ldv, dh, T(0),
                                    out + int64_t(b) * L * d, d, dh, H);
    }
  }
};

template <>
struct attention_backward_impl<CpuB> {
  // dq, dk, dv written (row strides lddq/lddk/lddv). scratch: (B, H, L, L).
  template <class T>
  static void run(T* dq, int lddq, T* dk, int lddk, T* dv, int lddv, T* scratch, const T* dout,
                  const T* probs, const T* dropped, const T* drop_mask, const T* q, int ldq,
                  const T* k, int ldk, const T* v, int ldv, AttentionShape s, double p_drop) {
    const int L = s.L, H = s.H, dh = s.dh, d = s.d();
    const T scale = T(1.0 / std::sqrt(double(dh)));
    const int64_t LL = int64_t(L) * L;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < s.B; ++b) {
      T* scratch_b = scratch + int64_t(b) * H * LL;
      const T* Pb = probs + int64_t(b) * H * LL;
      const T* Pused = p_drop > 0 ? dropped + int64_t(b) * H * LL : Pb;
      const T* dO = dout + int64_t(b) * L * d;
      // dV_h = Pd_h^T dO_h
      CpuB::gemm_strided_batched<T>(true, false, L, dh, L, T(1), Pused, L, LL, dO, d, dh, T(0),
                                    dv + int64_t(b) * L * lddv, lddv, dh, H);
      // dPd_h = dO_h V_h^T  -> scratch
      CpuB::gemm_strided_batched<T>(false, true, L, L, dh, T(1), dO, d, dh,
                                    v + int64_t(b) * L * ldv, ldv, dh, T(0), scratch_b, L, LL, H);
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < L; ++i) {
          T* g = scratch_b + h * LL + int64_t(i) * L;
          const T* p = Pb + h * LL + int64_t(i) * L;
          if (p_drop > 0) {
            const T* m = drop_mask + int64_t(b) * H * LL + h * LL + int64_t(i) * L;
            for (int j = 0; j < L; ++j) g[j] *= m[j];
          }
          T dot = 0;
          for (int j = 0; j < L; ++j) dot += g[j] * p[j];
          for (int j = 0; j < L; ++j) g[j] = scale * p[j] * (g[j] - dot);
        }
      }
      // dQ_h = dS_h K_h ; dK_h = dS_h^T Q_h   (scale already folded into dS)
      CpuB::gemm_strided_batched<T>(false, false, L, dh, L, T(1), scratch_b, L, LL,
                                    k + int64_t(b) * L * ldk, ldk, dh, T(0),
                                    dq + int64_t(b) * L * lddq, lddq, dh, H);
      CpuB::gemm_strided_batched<T>(true, false, L, dh, L, T(1), scratch_b, L, LL,
                                    q + int64_t(b) * L * ldq, ldq, dh, T(0),
                                    dk + int64_t(b) * L * lddk, lddk, dh, H);
    }
  }
};

// ---- masked softmax, L2 normalisation, reductions --------------------------------------

template <>
struct masked_softmax_forward_impl<CpuB> {
  // p (R, n) = softmax of s (R, n) over the entries with mask (R, n) != 0; masked entries get
  // exactly 0, and a row with no unmasked entry is all 0. p may alias s.
  template <class T>
  static void run(T* p, const T* s, const uint8_t* mask, int R, int n) {
    for (int r = 0; r < R; ++r) {
      const T* sr = s + int64_t(r) * n;
      const uint8_t* mr = mask + int64_t(r) * n;
      T* pr = p + int64_t(r) * n;
      T mx = -std::numeric_limits<T>::infinity();
      for (int j = 0; j < n; ++j)
        if (mr[j] && sr[j] > mx) mx = sr[j];
      double total = 0;
      for (int j = 0; j < n; ++j) {
        pr[j] = mr[j] ? T(std::exp(double(sr[j] - mx))) : T(0);
        total += pr[j];
      }
      const T inv = total > 0 ? T(1.0 / total) : T(0);
      for (int j = 0; j < n; ++j) pr[j] *= inv;
    }
  }
};

template <>
struct masked_softmax_backward_impl<CpuB> {
  // ds (R, n) = p * (g - rowsum(g * p)); masked entries (p = 0) get 0. ds may alias g.
  template <class T>
  static void run(T* ds, const T* g, const T* p, int R, int n) {
    for (int r = 0; r < R; ++r) {
      const T* gr = g + int64_t(r) * n;
      const T* pr = p + int64_t(r) * n;
      double dot = 0;
      for (int j = 0; j < n; ++j) dot += double(gr[j]) * pr[j];
      T* dr = ds + int64_t(r) * n;
      for (int j = 0; j < n; ++j) dr[j] = pr[j] * (gr[j] - T(dot));
    }
  }
};

template <>
struct l2_normalise_forward_impl<CpuB> {
  // y_r = x_r / max(||x_r||, eps) for rows of x (R, d); keeps norm (R) = max(||x_r||, eps).
  template <class T>
  static void run(T* y, T* norm, const T* x, int R, int d, double eps) {
    for (int r = 0; r < R; ++r) {
      const T* xr = x + int64_t(r) * d;
      double sq = 0;
      for (int c = 0; c < d; ++c) sq += double(xr[c]) * xr[c];
      const double nr = std::max(std::sqrt(sq), eps);
      norm[r] = T(nr);
      for (int c = 0; c < d; ++c) y[int64_t(r) * d + c] = T(xr[c] / nr);
    }
  }
};

template <>
struct l2_normalise_backward_impl<CpuB> {
  // dx_r = (g_r - y_r (g_r . y_r)) / n_r where ||x_r|| > eps, else g_r / eps (the clamp is
  // constant). dx written.
  template <class T>
  static void run(T* dx, const T* g, const T* y, const T* norm, int R, int d, double eps) {
    for (int r = 0; r < R; ++r) {
      const T* gr = g + int64_t(r) * d;
      const T* yr = y + int64_t(r) * d;
      T* dr = dx + int64_t(r) * d;
      const double nr = norm[r];
      double gy = 0;
      if (nr > eps)
        for (int c = 0; c < d; ++c) gy += double(gr[c]) * yr[c];
      for (int c = 0; c < d; ++c) dr[c] = T((gr[c] - yr[c] * gy) / nr);
    }
  }
};

template <>
struct dot_impl<CpuB> {
  template <class T>
  static double run(const T* x, const T* y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(y[i]);
    return s;
  }
};

template <>
struct sum_impl<CpuB> {
  template <class T>
  static double run(const T* x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(x[i]);
    return s;
  }
};

// ---- losses ---------------------------------------------------------------------------

template <>
struct softmax_cross_entropy_impl<CpuB> {
  // Mean over the rows whose target is not 0 of logsumexp(z_r) - z_{r, y_r}, z_r = h_r E^T (+ c)
  // (all N columns, the pad column included, as the references do). dh (R, d) written (0 on
  // ignored rows) when not null; dE (N, d) accumulates when not null. Rows are processed in
  // chunks so the (R, N) logit matrix never exists; dz = (softmax - onehot) / count in place.
  // With an output bias c (N): z_r = h_r E^T + c, and dbias (N) accumulates sum_r dz_r.
  template <class T>
  static double run(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets, int R,
                    int d, int N, CrossEntropyWorkspace<CpuB, T>& ws, int64_t* n_targets = nullptr,
                    const T* bias = nullptr, T* dbias = nullptr) {
    int count = 0;
    for (int r = 0; r < R; ++r)
      if (targets[r] != 0) ws.rows[size_t(count++)] = r;
    if (n_targets) *n_targets = count;
    if (dh) std::fill(dh, dh + int64_t(R) * d, T(0));
    if (count == 0) return 0.0;
    const T inv_count = T(1) / T(count);
    double loss = 0;
    for (int start = 0; start < count; start += ws.chunk) {
      const int C = std::min(ws.chunk, count - start);
      for (int i = 0; i < C; ++i)
        std::copy_n(hidden + int64_t(ws.rows[size_t(start + i)]) * d, d, ws.h.data() + int64_t(i) * d);
      CpuB::gemm<T>(false, true, C, N, d, T(1), ws.h.data(), d, table, d, T(0), ws.z.data(), N);
      // Rows are independent; their losses are summed afterwards in row order, so the result
      // does not depend on the thread count.
#pragma omp parallel for schedule(static)
      for (int i = 0; i < C; ++i) {
        T* z = ws.z.data() + int64_t(i) * N;
        if (bias)
          for (int j = 0; j < N; ++j) z[j] += bias[j];
        const int y = targets[ws.rows[size_t(start + i)]];
        const T zy = z[y];
        const T mx = vec::max(z, N);
        vec::exp_shifted(z, N, mx);  // z = exp(z - max), computed once
        const T sum = vec::sum(z, N);
        ws.row_loss[size_t(i)] = double(mx + std::log(sum) - zy);
        const T scale = inv_count / sum;
        for (int j = 0; j < N; ++j) z[j] *= scale;
        z[y] -= inv_count;
      }
      for (int i = 0; i < C; ++i) loss += ws.row_loss[size_t(i)];
      if (dbias)  // rows in order: independent of the thread count
        for (int i = 0; i < C; ++i) {
          const T* z = ws.z.data() + int64_t(i) * N;
          for (int j = 0; j < N; ++j) dbias[j] += z[j];
        }
      if (dh) {
        CpuB::gemm<T>(false, false, C, d, N, T(1), ws.z.data(), N, table, d, T(0), ws.dh.data(), d);
        for (int i = 0; i < C; ++i)
          std::copy_n(ws.dh.data() + int64_t(i) * d, d, dh + int64_t(ws.rows[size_t(start + i)]) * d);
      }
      if (dE)
        CpuB::gemm<T>(true, false, N, d, C, T(1), ws.z.data(), N, ws.h.data(), d, T(1), dE, d);
    }
    return loss / count;
  }
};

template <>
struct bpr_loss_impl<CpuB> {
  // Mean over rows with target != 0 of -log sigmoid(s+ - s-), s+ = h_r . E[y_r],
  // s- = h_r . E[neg_r]. dh (R, d) written (0 on ignored rows) when not null; dE accumulates.
  // With x = s+ - s-: dL/dx = -sigmoid(-x) / count.
  template <class T>
  static double run(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                    const int32_t* negatives, int R, int d, int64_t* n_targets = nullptr) {
    int64_t count = 0;
    for (int r = 0; r < R; ++r) count += targets[r] != 0;
    if (n_targets) *n_targets = count;
    if (dh) std::fill(dh, dh + int64_t(R) * d, T(0));
    if (count == 0) return 0.0;
    double loss = 0;
    for (int r = 0; r < R; ++r) {
      if (targets[r] == 0) continue;
      const T* h = hidden + int64_t(r) * d;
      const T* ep = table + int64_t(targets[r]) * d;
      const T* en = table + int64_t(negatives[r]) * d;
      double x = 0;
      for (int c = 0; c < d; ++c) x += double(h[c]) * (double(ep[c]) - double(en[c]));
      // -log sigmoid(x) = log(1 + exp(-x)), computed stably.
      loss += x > 0 ? std::log1p(std::exp(-x)) : -x + std::log1p(std::exp(x));
      const T coef = T(-1.0 / (1.0 + std::exp(x)) / double(count));
      if (dh)
        for (int c = 0; c < d; ++c) dh[int64_t(r) * d + c] = coef * (ep[c] - en[c]);
      if (dE) {
        T* gp = dE + int64_t(targets[r]) * d;
        T* gn = dE + int64_t(negatives[r]) * d;
        for (int c = 0; c < d; ++c) {
          gp[c] += coef * h[c];
          gn[c] -= coef * h[c];
        }
      }
    }
    return loss / double(count);
  }
};

// ---- session read-outs (STAMP, FPMC) ---------------------------------------------------

template <>
struct sigmoid_forward_impl<CpuB> {
  template <class T>
  static void run(T* y, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
  }
};

template <>
struct sigmoid_backward_impl<CpuB> {
  // dx = g y (1 - y), y = sigmoid(x) the saved output
  template <class T>
  static void run(T* dx, const T* g, const T* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * y[i] * (T(1) - y[i]);
  }
};

template <>
struct tanh_forward_impl<CpuB> {
  template <class T>
  static void run(T* y, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
  }
};

template <>
struct tanh_backward_impl<CpuB> {
  // dx = g (1 - y^2), y = tanh(x) the saved output
  template <class T>
  static void run(T* dx, const T* g, const T* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * (T(1) - y[i] * y[i]);
  }
};

template <>
struct mul_impl<CpuB> {
  // y = a * b (y += a * b when accumulate)
  template <class T>
  static void run(T* y, const T* a, const T* b, int64_t n, bool accumulate = false) {
    if (accumulate)
      for (int64_t i = 0; i < n; ++i) y[i] += a[i] * b[i];
    else
      for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
  }
};

template <>
struct length_weights_impl<CpuB> {
  // w (Bn, L) = 1 / len_b on every slot of row b (0 for a row without a real slot)
  template <class T>
  static void run(T* w, const uint8_t* valid, int Bn, int L) {
    for (int b = 0; b < Bn; ++b) {
      int len = 0;
      for (int j = 0; j < L; ++j) len += valid[int64_t(b) * L + j] != 0;
      const T v = len == 0 ? T(0) : T(1) / T(len);
      std::fill(w + int64_t(b) * L, w + int64_t(b + 1) * L, v);
    }
  }
};

template <>
struct last_slots_impl<CpuB> {
  // idx (Bn) = b L + len_b - 1 (b L for an empty row); real items are left-aligned
  static void run(int32_t* idx, const uint8_t* valid, int Bn, int L) {
    for (int b = 0; b < Bn; ++b) {
      int len = 0;
      for (int j = 0; j < L; ++j) len += valid[int64_t(b) * L + j] != 0;
      idx[b] = int32_t(b * L + std::max(len - 1, 0));
    }
  }
};

template <>
struct broadcast_slots_impl<CpuB> {
  // x (Bn, L, d) += v (Bn, d)
  template <class T>
  static void run(T* x, const T* v, int Bn, int L, int d) {
    for (int b = 0; b < Bn; ++b)
      for (int j = 0; j < L; ++j) {
        T* row = x + (int64_t(b) * L + j) * d;
        const T* src = v + int64_t(b) * d;
        for (int c = 0; c < d; ++c) row[c] += src[c];
      }
  }
};

template <>
struct slot_sum_impl<CpuB> {
  // out (Bn, d) = sum_j w[b, j] x[b, j] (w null: weight 1), summed in slot order
  template <class T>
  static void run(T* out, const T* x, const T* w, int Bn, int L, int d) {
    for (int b = 0; b < Bn; ++b) {
      T* o = out + int64_t(b) * d;
      std::fill(o, o + d, T(0));
      for (int j = 0; j < L; ++j) {
        const T wj = w ? w[int64_t(b) * L + j] : T(1);
        const T* row = x + (int64_t(b) * L + j) * d;
        for (int c = 0; c < d; ++c) o[c] += wj * row[c];
      }
    }
  }
};

template <>
struct slot_sum_backward_impl<CpuB> {
  // dx[b, j] (=, or += when accumulate_dx) w[b, j] g[b]; dw[b, j] = <g[b], x[b, j]>
  template <class T>
  static void run(T* dx, T* dw, const T* g, const T* x, const T* w, int Bn, int L, int d,
                  bool accumulate_dx) {
    for (int b = 0; b < Bn; ++b) {
      const T* gb = g + int64_t(b) * d;
      for (int j = 0; j < L; ++j) {
        const int64_t r = int64_t(b) * L + j;
        if (dx) {
          const T wj = w ? w[r] : T(1);
          T* dr = dx + r * d;
          if (accumulate_dx)
            for (int c = 0; c < d; ++c) dr[c] += wj * gb[c];
          else
            for (int c = 0; c < d; ++c) dr[c] = wj * gb[c];
        }
        if (dw) {
          const T* xr = x + r * d;
          T acc = 0;
          for (int c = 0; c < d; ++c) acc += gb[c] * xr[c];
          dw[r] = acc;
        }
      }
    }
  }
};

template <>
struct inbatch_bpr_loss_impl<CpuB> {
  // S (R, C): S[b, j] = h_b . E_{y_j} over the C targets of the (global) batch, row b's own
  // target in column p = row0 + b (one process: C = R, row0 = 0). L = (1 / (R C)) sum_{b, j}
  // -log(gamma + sigmoid(D_bj)), D_bj = S_bp - S_bj, every term kept (j = p and repeated
  // targets give constants). With l'(x) = -sigmoid(x)(1 - sigmoid(x)) / (gamma + sigmoid(x)):
  // dS_bj = -l'(D_bj) / (R C) for j != p, and dS_bp = sum_{j != p} l'(D_bj) / (R C) (dS written).
  template <class T>
  static double run(T* dS, const T* S, int R, int C, int row0, double gamma) {
    if (R == 0) return 0.0;
    const double inv = 1.0 / (double(R) * double(C));
    std::vector<T> x(static_cast<size_t>(C)), l(x.size()), dl(x.size());
    double loss = 0;
    for (int b = 0; b < R; ++b) {
      const int p = row0 + b;
      const T* row = S + int64_t(b) * C;
      T* drow = dS + int64_t(b) * C;
      for (int j = 0; j < C; ++j) x[size_t(j)] = row[p] - row[j];
      vec::neg_log_sigmoid_gamma(l.data(), dl.data(), x.data(), C, T(gamma));
      loss += double(vec::sum(l.data(), C));
      dl[size_t(p)] = T(0);
      const T invT = T(inv);
      for (int j = 0; j < C; ++j) drow[j] = -dl[size_t(j)] * invT;
      drow[p] = T(double(vec::sum(dl.data(), C)) * inv);
    }
    return loss * inv;
  }
};

// ---- reductions and the optimiser -----------------------------------------------------

template <>
struct sum_squares_impl<CpuB> {
  template <class T>
  static double run(const T* x, int64_t n) {
    double sq = 0;
    for (int64_t i = 0; i < n; ++i) sq += double(x[i]) * double(x[i]);
    return sq;
  }
};

template <>
struct scale_impl<CpuB> {
  template <class T>
  static void run(T* x, int64_t n, double c) {
    for (int64_t i = 0; i < n; ++i) x[i] = T(x[i] * c);
  }
};

template <>
struct adam_step_impl<CpuB> {
  // PyTorch's Adam (L2 in the gradient) or AdamW (decoupled decay); s.t is the step count.
  template <class T>
  static void run(T* p, const T* g, T* m, T* v, int64_t n, const AdamStep& s) {
    const double bc1 = 1.0 - std::pow(s.beta1, double(s.t));
    const double bc2 = 1.0 - std::pow(s.beta2, double(s.t));
    const T b1 = T(s.beta1), b2 = T(s.beta2), lr = T(s.lr), wd = T(s.weight_decay);
    const T step_size = T(s.lr / bc1), inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2)), eps = T(s.eps);
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i];
      if (s.decoupled) p[i] -= lr * wd * p[i];
      else if (wd != T(0)) gi += wd * p[i];
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
    }
  }
};

// ---- ranking (eval/ranking.hpp) -------------------------------------------------------

template <>
struct score_rows_impl<CpuB> {
  template <class T>
  static void run(T* scores, int ld, const T* q, int n, const T* items, int w, int dim) {
    cpu::score_rows(scores, ld, q, n, items, w, dim);
  }
};

namespace cpu_detail {
// The CPU's scratch for ranking one block (eval::RankBlock::backend_state): per case, its sorted
// exclusions and a cursor into them, the running count of better items, whether it is a miss,
// the target's score, and its top-K list.
template <class T>
struct RankState {
  std::vector<eval::TopKState<T>> top = std::vector<eval::TopKState<T>>(size_t(eval::kEvalBlock));
  std::vector<std::vector<int32_t>> excl = std::vector<std::vector<int32_t>>(size_t(eval::kEvalBlock));
  std::vector<size_t> pos;
  std::vector<int64_t> better;
  std::vector<uint8_t> miss;
  std::vector<T> target_score;
};
template <class T>
RankState<T>& state(eval::RankBlock<T>& b) {
  if (!b.backend_state) b.backend_state = std::make_shared<RankState<T>>();
  return *static_cast<RankState<T>*>(b.backend_state.get());
}
}  // namespace cpu_detail

template <>
struct rank_rows_impl<CpuB> {
  // Rows i < n of scores (n, N; row stride ld) are the full score rows of cases [first, first
  // + n) of the block: mask the exclusions, rank the target, select the top K.
  template <class T>
  static void run(eval::RankBlock<T>& b, T* scores, int ld, size_t n, int N) {
    auto& top = cpu_detail::state(b).top;
    for (size_t i = 0; i < n; ++i) {
      const eval::Case& c = b.cases[i];
      T* row = scores + i * size_t(ld);
      eval::mask_excluded(row, c, b.o.exclude);
      if (b.want_ranks) b.ranks[i] = eval::rank_of_target(row, N, c.target, b.o.ties);
      if (b.K > 0)
        eval::select_topk(row, N, b.K, b.top_items + i * size_t(b.K),
                          b.top_scores + i * size_t(b.K), top[0]);
    }
  }
};

template <>
struct rank_targets_impl<CpuB> {
  // A chunked block starts here: scores (n, ld) row i column i is case i's target score. Sets
  // up the exclusion lists, counters and top-K lists of the block.
  template <class T>
  static void run(eval::RankBlock<T>& b, const T* scores, int ld, size_t n) {
    auto& st = cpu_detail::state(b);
    st.pos.assign(size_t(eval::kEvalBlock), 0);
    st.better.assign(size_t(eval::kEvalBlock), 0);
    st.miss.assign(size_t(eval::kEvalBlock), 0);
    st.target_score.assign(size_t(eval::kEvalBlock), T(0));
    for (size_t i = 0; i < n; ++i) {
      const eval::Case& c = b.cases[i];
      if (b.want_ranks) st.target_score[i] = scores[i * size_t(ld) + i];
      auto& x = st.excl[i];
      x.clear();
      const eval::Exclude ex = b.o.exclude;
      if (ex == eval::Exclude::history || ex == eval::Exclude::seen)
        x.insert(x.end(), c.history, c.history + c.length);
      if (ex == eval::Exclude::seen || ex == eval::Exclude::listed) x.insert(x.end(), c.seen, c.seen + c.n_seen);
      std::sort(x.begin(), x.end());
      st.miss[i] = b.want_ranks && (std::isnan(st.target_score[i]) ||
                                    std::binary_search(x.begin(), x.end(), c.target));
      if (b.K > 0) st.top[i].reset(b.K, b.top_items + i * size_t(b.K), b.top_scores + i * size_t(b.K));
    }
  }
};

template <>
struct rank_chunk_impl<CpuB> {
  // scores (n, ld): row i, column t is case i's score of item c0 + t, t < w. The target score
  // recorded by rank_targets must equal the chunk's own (equal bits: score_rows's entries do not
  // depend on their position); a mismatch is an internal error, never a silently different
  // rank. `last` closes the block (writes ranks and top-K lists).
  template <class T>
  static void run(eval::RankBlock<T>& b, T* scores, int ld, size_t n, int c0, int w, bool last) {
    auto& st = cpu_detail::state(b);
    const T nan = std::numeric_limits<T>::quiet_NaN();
    for (size_t i = 0; i < n; ++i) {
      const eval::Case& c = b.cases[i];
      T* row = scores + i * size_t(ld);
      const int tt = c.target - c0;  // the target's position in this chunk, if in [0, w)
      const T ts = st.target_score[i];
      if (b.want_ranks && tt >= 0 && tt < w && !(row[tt] == ts) && !std::isnan(ts))
        fail("internal error: the target score of evaluation case ", i,
             " of a block differs between its targets-only score and its chunk's (", row[tt], " vs ", ts, ")");
      if (c0 == 0) row[0] = nan;  // the pad is never ranked
      auto& x = st.excl[i];
      while (st.pos[i] < x.size() && x[st.pos[i]] < c0 + w) row[x[st.pos[i]++] - c0] = nan;
      if (b.want_ranks && !st.miss[i]) {
        if (b.o.ties == eval::Ties::against_model) {
          st.better[i] += eval::detail::count_ge(row, 0, w, ts) - (tt >= 0 && tt < w);
        } else {  // lower ids win ties
          const int split = std::clamp(tt, 0, w);
          st.better[i] += eval::detail::count_ge(row, 0, split, ts) +
                          eval::detail::count_gt(row, std::min(split + (tt >= 0 && tt < w), w), w, ts);
        }
      }
      if (b.K > 0) st.top[i].scan(c0 == 0 ? row + 1 : row, c0 == 0 ? w - 1 : w, c0 == 0 ? 1 : c0);
    }
    if (!last) return;
    for (size_t i = 0; i < n; ++i) {
      if (b.want_ranks) b.ranks[i] = st.miss[i] ? eval::kMissRank : st.better[i] + 1;
      if (b.K > 0) st.top[i].finish();
    }
  }
};

template <>
struct rank_sampled_impl<CpuB> {
  // The rank of case c's target among `negatives` in its full score row (N,), after masking
  // its exclusions (an excluded target is a miss).
  template <class T>
  static int64_t run(T* row, const eval::Case& c, const std::vector<int32_t>& negatives,
                     const eval::Options& o) {
    eval::mask_excluded(row, c, o.exclude);
    return eval::rank_among(row, negatives, c.target, o.ties);
  }
};


// ---- Atten-Mixer (backbones/attenmixer.hpp) and bce_multi (losses/bce_multi.hpp) -------------
// Every loop below runs in a fixed order per output element (rows of the read-out are split
// between threads, each row's sums stay sequential), so results do not depend on the thread
// count.

template <>
struct l2_normalise_axis_forward_impl<CpuB> {
  // x, y (outer, n, inner): y[o, :, i] = x[o, :, i] / (||x[o, :, i]|| + eps); norm (outer,
  // inner) = ||x[o, :, i]||. y may alias x.
  template <class T>
  static void run(T* y, T* norm, const T* x, int outer, int n, int inner, double eps) {
    for (int o = 0; o < outer; ++o)
      for (int i = 0; i < inner; ++i) {
        const int64_t base = int64_t(o) * n * inner + i;
        double sq = 0;
        for (int k = 0; k < n; ++k) sq += double(x[base + int64_t(k) * inner]) * double(x[base + int64_t(k) * inner]);
        const double nr = std::sqrt(sq);
        norm[int64_t(o) * inner + i] = T(nr);
        const T inv = T(1.0 / (nr + eps));
        for (int k = 0; k < n; ++k) y[base + int64_t(k) * inner] = x[base + int64_t(k) * inner] * inv;
      }
  }
};

template <>
struct l2_normalise_axis_backward_impl<CpuB> {
  // dx = g / (||x|| + eps) - y <y, g> / ||x|| per vector; 0 for a zero vector (every such
  // vector is multiplied by a zero mask downstream, spec §7). dx written, may alias g.
  template <class T>
  static void run(T* dx, const T* g, const T* y, const T* norm, int outer, int n, int inner, double eps) {
    for (int o = 0; o < outer; ++o)
      for (int i = 0; i < inner; ++i) {
        const int64_t base = int64_t(o) * n * inner + i;
        const double nr = norm[int64_t(o) * inner + i];
        if (nr == 0) {
          for (int k = 0; k < n; ++k) dx[base + int64_t(k) * inner] = T(0);
          continue;
        }
        double gy = 0;
        for (int k = 0; k < n; ++k) gy += double(g[base + int64_t(k) * inner]) * double(y[base + int64_t(k) * inner]);
        const T a = T(1.0 / (nr + eps)), b = T(gy / nr);
        for (int k = 0; k < n; ++k) {
          const int64_t e = base + int64_t(k) * inner;
          dx[e] = g[e] * a - y[e] * b;
        }
      }
  }
};

template <>
struct intent_slots_impl<CpuB> {
  // idx (Bn, K) = 1 + b L + len_b - 1 - k when len_b - 1 - k >= 0, else 0 (real items are
  // left-aligned; the +1 leaves row 0 to a zero row ahead of the slots).
  static void run(int32_t* idx, const uint8_t* valid, int Bn, int L, int K) {
    for (int b = 0; b < Bn; ++b) {
      int len = 0;
      for (int j = 0; j < L; ++j) len += valid[int64_t(b) * L + j] != 0;
      for (int k = 0; k < K; ++k) {
        const int j = len - 1 - k;
        idx[int64_t(b) * K + k] = j >= 0 ? int32_t(1 + b * L + j) : 0;
      }
    }
  }
};

template <>
struct dropout_by_id_forward_impl<CpuB> {
  // x, y, mask (Bn L, n): inverted dropout whose mask row for slot (b, j) is a function of
  // (b, ids[b L + j]) and the column, so the slots of one row holding the same id share a mask
  // (official Atten-Mixer's per-node dropout, spec §6.1). Counter: (epoch, step, row = the id,
  // slot = site << 20 | (g * ceil(n / 4) + column block)), g = key.first_seq + b the row in the
  // step's global batch; the caller keeps (key.first_seq + Bn) ceil(n / 4) below 2^20. y may
  // alias x.
  template <class T>
  static void run(T* y, T* mask, const T* x, const int32_t* ids, int Bn, int L, int n, double p, DropoutKey key,
                  uint32_t site) {
    const int64_t R = int64_t(Bn) * L;
    if (p <= 0) {
      for (int64_t i = 0; i < R * n; ++i) {
        mask[i] = T(1);
        y[i] = x[i];
      }
      return;
    }
    const T keep_scale = T(1.0 / (1.0 - p));
    const float pf = float(p);
    const uint32_t blocks = uint32_t((n + 3) / 4);
    for (int b = 0; b < Bn; ++b)
      for (int j = 0; j < L; ++j) {
        const int64_t r = int64_t(b) * L + j;
        const uint32_t id = uint32_t(ids[r]);
        for (int c = 0; c < n; c += 4) {
          const auto u = uniform4(key.seed, Stream::dropout, key.epoch, key.step, id,
                                  (site << 20) | ((key.first_seq + uint32_t(b)) * blocks + uint32_t(c / 4)));
          for (int k = 0; k < 4 && c + k < n; ++k) {
            const int64_t i = r * n + c + k;
            mask[i] = u[k] < pf ? T(0) : keep_scale;
            y[i] = x[i] * mask[i];
          }
        }
      }
  }
};


template <>
struct mixer_attention_forward_impl<CpuB> {
  // q (B K, d), k and v (B L, d), key_valid (B L). Saves G and A1 (B, H, K, L), A2, A3 and
  // the dropout mask drop (B, H, L) (all 1 when p_drop = 0); out (B, d) written.
  template <class T>
  static void run(T* out, T* G, T* A1, T* A2, T* A3, T* drop, const T* q, const T* k, const T* v,
                  const uint8_t* key_valid, MixerAttentionShape s, HeadSplit split, double lp, double p_drop,
                  DropoutKey key, uint32_t site) {
    const int K = s.K, L = s.L, H = s.H, dh = s.dh, d = s.d();
    const int64_t KL = int64_t(K) * L;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < s.B; ++b) {
      const uint8_t* valid = key_valid + int64_t(b) * L;
      for (int m = 0; m < H; ++m) {
        T* Gm = G + (int64_t(b) * H + m) * KL;
        T* A1m = A1 + (int64_t(b) * H + m) * KL;
        T* A2m = A2 + (int64_t(b) * H + m) * L;
        T* A3m = A3 + (int64_t(b) * H + m) * L;
        for (int kk = 0; kk < K; ++kk) {
          const T* qr = q + mixer_head_row(split, b, m, kk, K, H, dh);
          T* g = Gm + int64_t(kk) * L;
          T* a = A1m + int64_t(kk) * L;
          for (int l = 0; l < L; ++l) {
            const T* kr = k + mixer_head_row(split, b, m, l, L, H, dh);
            T acc = 0;
            for (int c = 0; c < dh; ++c) acc += qr[c] * kr[c];
            g[l] = T(1) / (T(1) + std::exp(-acc));
          }
          // A1 = softmax over all L slots (pads too) of 2 G.
          T mx = -std::numeric_limits<T>::infinity();
          for (int l = 0; l < L; ++l) mx = std::max(mx, T(2) * g[l]);
          T total = 0;
          for (int l = 0; l < L; ++l) total += (a[l] = std::exp(T(2) * g[l] - mx));
          for (int l = 0; l < L; ++l) a[l] /= total;
        }
        // A2 = LP pooling of A1 over the K levels.
        for (int l = 0; l < L; ++l) {
          T acc = 0;
          for (int kk = 0; kk < K; ++kk) acc += lp == 1.0 ? A1m[int64_t(kk) * L + l] : T(std::pow(A1m[int64_t(kk) * L + l], lp));
          A2m[l] = lp == 1.0 ? acc : T(std::pow(acc, 1.0 / lp));
        }
        // A3 = softmax over the real slots of 2 A2 (pads -inf: exactly 0).
        T mx = -std::numeric_limits<T>::infinity();
        for (int l = 0; l < L; ++l)
          if (valid[l]) mx = std::max(mx, T(2) * A2m[l]);
        T total = 0;
        for (int l = 0; l < L; ++l) total += (A3m[l] = valid[l] ? std::exp(T(2) * A2m[l] - mx) : T(0));
        const T inv = total > 0 ? T(1) / total : T(0);
        for (int l = 0; l < L; ++l) A3m[l] *= inv;
      }
      // Dropout of A3 (rows b H + m of the call).
      T* Db = drop + int64_t(b) * H * L;
      const T* A3b = A3 + int64_t(b) * H * L;
      std::vector<T> scratch(size_t(H) * L);
      dropout_forward_impl<CpuB>::run(scratch.data(), Db, A3b, H, L, p_drop, key, site,
                                      (key.first_seq + uint32_t(b)) * uint32_t(H));
      // out[b, head m] = sum_l m_l A3 drop v[b, l, head m].
      T* o = out + int64_t(b) * d;
      std::fill(o, o + d, T(0));
      for (int m = 0; m < H; ++m)
        for (int l = 0; l < L; ++l) {
          if (!valid[l]) continue;
          const T w = A3b[int64_t(m) * L + l] * Db[int64_t(m) * L + l];
          const T* vr = v + (int64_t(b) * L + l) * d + int64_t(m) * dh;
          for (int c = 0; c < dh; ++c) o[m * dh + c] += w * vr[c];
        }
    }
  }
};

template <>
struct mixer_attention_backward_impl<CpuB> {
  // g (B, d): the gradient at out. dq (B K, d), dk and dv (B L, d) written; scratch
  // (B, H, K, L). Backward (spec §7): the masked softmax, the LP pooling (dA1 = dA2 A1^(p-1)
  // A2^(1-p)), the unmasked softmax of 2 G, the sigmoid, then dq~ = dP k~, dk~ = dP^T q~
  // scattered back through the head split (a bijection, so every entry is written once).
  template <class T>
  static void run(T* dq, T* dk, T* dv, T* scratch, const T* g, const T* G, const T* A1, const T* A2, const T* A3,
                  const T* drop, const T* q, const T* k, const T* v, const uint8_t* key_valid, MixerAttentionShape s,
                  HeadSplit split, double lp) {
    const int K = s.K, L = s.L, H = s.H, dh = s.dh, d = s.d();
    const int64_t KL = int64_t(K) * L;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < s.B; ++b) {
      const uint8_t* valid = key_valid + int64_t(b) * L;
      const T* gb = g + int64_t(b) * d;
      std::vector<T> dA(static_cast<size_t>(L)), dA2(static_cast<size_t>(L));
      for (int m = 0; m < H; ++m) {
        const T* Gm = G + (int64_t(b) * H + m) * KL;
        const T* A1m = A1 + (int64_t(b) * H + m) * KL;
        const T* A2m = A2 + (int64_t(b) * H + m) * L;
        const T* A3m = A3 + (int64_t(b) * H + m) * L;
        const T* Dm = drop + (int64_t(b) * H + m) * L;
        T* P = scratch + (int64_t(b) * H + m) * KL;
        // Values: dv = m_l A4 g; dA3 = m_l <g, v> drop.
        for (int l = 0; l < L; ++l) {
          T* dvr = dv + (int64_t(b) * L + l) * d + int64_t(m) * dh;
          const T* vr = v + (int64_t(b) * L + l) * d + int64_t(m) * dh;
          if (!valid[l]) {
            std::fill(dvr, dvr + dh, T(0));
            dA[size_t(l)] = 0;
            continue;
          }
          const T w = A3m[l] * Dm[l];
          T acc = 0;
          for (int c = 0; c < dh; ++c) {
            dvr[c] = w * gb[m * dh + c];
            acc += gb[m * dh + c] * vr[c];
          }
          dA[size_t(l)] = acc * Dm[l];
        }
        // A3 = softmax(2 A2) over real slots: dA2 = 2 A3 (dA3 - <dA3, A3>).
        T dot = 0;
        for (int l = 0; l < L; ++l) dot += dA[size_t(l)] * A3m[l];
        for (int l = 0; l < L; ++l) dA2[size_t(l)] = T(2) * A3m[l] * (dA[size_t(l)] - dot);
        for (int kk = 0; kk < K; ++kk) {
          const T* a = A1m + int64_t(kk) * L;
          const T* gr = Gm + int64_t(kk) * L;
          T* pr = P + int64_t(kk) * L;
          // LP pooling: dA1 = dA2 A1^(p-1) A2^(1-p) (1 for p = 1).
          for (int l = 0; l < L; ++l)
            pr[l] = lp == 1.0 ? dA2[size_t(l)]
                              : dA2[size_t(l)] * T(std::pow(a[l], lp - 1.0) * std::pow(A2m[l], 1.0 - lp));
          // A1 = softmax(2 G): dG = 2 A1 (dA1 - <dA1, A1>); G = sigmoid(pre): dpre = dG G (1 - G).
          T d1 = 0;
          for (int l = 0; l < L; ++l) d1 += pr[l] * a[l];
          for (int l = 0; l < L; ++l) pr[l] = T(2) * a[l] * (pr[l] - d1) * gr[l] * (T(1) - gr[l]);
        }
        // dq~[kk] = sum_l P[kk, l] k~[l]; dk~[l] = sum_kk P[kk, l] q~[kk].
        for (int kk = 0; kk < K; ++kk) {
          T* dqr = dq + mixer_head_row(split, b, m, kk, K, H, dh);
          std::fill(dqr, dqr + dh, T(0));
          for (int l = 0; l < L; ++l) {
            const T* kr = k + mixer_head_row(split, b, m, l, L, H, dh);
            const T p = P[int64_t(kk) * L + l];
            for (int c = 0; c < dh; ++c) dqr[c] += p * kr[c];
          }
        }
        for (int l = 0; l < L; ++l) {
          T* dkr = dk + mixer_head_row(split, b, m, l, L, H, dh);
          std::fill(dkr, dkr + dh, T(0));
          for (int kk = 0; kk < K; ++kk) {
            const T* qr = q + mixer_head_row(split, b, m, kk, K, H, dh);
            const T p = P[int64_t(kk) * L + l];
            for (int c = 0; c < dh; ++c) dkr[c] += p * qr[c];
          }
        }
      }
    }
  }
};

template <>
struct bce_multi_loss_impl<CpuB> {
  // L = mean_r softplus(-s+_r) + mean_{r,k} softplus(s-_rk), s+ = h_r . E[y_r], s-_rk =
  // h_r . E[neg[r n_neg + k]] (spec §1 `bce_multi`). ds+ = (sigmoid(s+) - 1) / R, ds- =
  // sigmoid(s-) / (R n_neg) (spec §7). dh (R, d) written when not null; dE accumulates in row
  // order when not null.
  template <class T>
  static double run(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets, const int32_t* negatives,
                    int R, int n_neg, int d) {
    if (dh) std::fill(dh, dh + int64_t(R) * d, T(0));
    if (R == 0) return 0.0;
    auto softplus = [](double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); };
    auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
    const double inv_pos = 1.0 / double(R), inv_neg = n_neg > 0 ? 1.0 / (double(R) * n_neg) : 0.0;
    double pos = 0, neg = 0;
    for (int r = 0; r < R; ++r) {
      const T* h = hidden + int64_t(r) * d;
      for (int k = -1; k < n_neg; ++k) {
        const int32_t item = k < 0 ? targets[r] : negatives[int64_t(r) * n_neg + k];
        const T* e = table + int64_t(item) * d;
        double x = 0;
        for (int c = 0; c < d; ++c) x += double(h[c]) * double(e[c]);
        double coef;
        if (k < 0) {
          pos += softplus(-x);
          coef = (sigmoid(x) - 1.0) * inv_pos;
        } else {
          neg += softplus(x);
          coef = sigmoid(x) * inv_neg;
        }
        if (dh)
          for (int c = 0; c < d; ++c) dh[int64_t(r) * d + c] += T(coef) * e[c];
        if (dE) {
          T* ge = dE + int64_t(item) * d;
          for (int c = 0; c < d; ++c) ge[c] += T(coef) * h[c];
        }
      }
    }
    return pos * inv_pos + neg * inv_neg;
  }
};
// ---- end Atten-Mixer and bce_multi ----------------------------------------------------------

template <>
struct weighted_pairwise_loss_impl<CpuB> {
  // Active distillation's loss (specs/active-llm-distillation.md §6.2). S (R, C): S[b, j] =
  // h_b . E_{v_j} over the C rows of the (global) batch; row b is column p = row0 + b (one
  // process: C = R, row0 = 0); items, groups, weights (C) are the columns'. Row b's negatives N_b
  // are the columns j with another item (v_j != v_p) and another group (g_j != g_p: the
  // same-session mask; j = p is excluded by both). With l(x) = -log(gamma + sigmoid(x)) and
  // D_bj = S_bp - S_bj:
  //   L = sum_b w_p (1/|N_b|) sum_{j in N_b} l(D_bj) / W,  W = sum of w_p over rows with N_b
  // non-empty (a row without a negative carries no pairwise signal and is left out of both
  // sums; W is written to *weight_sum when given). dS_bj = -c_b l'(D_bj) for j in N_b, dS_bp =
  // c_b sum_j l'(D_bj), c_b = w_p / (|N_b| W), l'(x) = -sigmoid(x)(1 - sigmoid(x)) / (gamma +
  // sigmoid(x)); every other dS is 0 (written).
  template <class T>
  static double run(T* dS, const T* S, const int32_t* items, const int32_t* groups, const T* weights, int R, int C,
                    int row0, double gamma, double* weight_sum) {
    std::vector<int> n_neg(size_t(R), 0);
    double W = 0;
    for (int b = 0; b < R; ++b) {
      const int p = row0 + b;
      for (int j = 0; j < C; ++j) n_neg[size_t(b)] += (items[j] != items[p]) & (groups[j] != groups[p]);
      if (n_neg[size_t(b)] > 0) W += double(weights[p]);
    }
    if (weight_sum) *weight_sum = W;
    for (int b = 0; b < R; ++b)  // the other rows are written whole below
      if (n_neg[size_t(b)] == 0 || !(W > 0)) std::fill_n(dS + int64_t(b) * C, C, T(0));
    if (!(W > 0)) return 0.0;
    std::vector<T> x(static_cast<size_t>(C)), l(x.size()), dl(x.size());
    double loss = 0;
    for (int b = 0; b < R; ++b) {
      if (n_neg[size_t(b)] == 0) continue;
      const int p = row0 + b;
      const double c = double(weights[p]) / (double(n_neg[size_t(b)]) * W);
      const T* row = S + int64_t(b) * C;
      T* drow = dS + int64_t(b) * C;
      for (int j = 0; j < C; ++j) x[size_t(j)] = row[p] - row[j];
      vec::neg_log_sigmoid_gamma(l.data(), dl.data(), x.data(), C, T(gamma));
      for (int j = 0; j < C; ++j) {  // masked pairs: no loss, no gradient
        const T keep = T((items[j] != items[p]) & (groups[j] != groups[p]));
        l[size_t(j)] *= keep;
        dl[size_t(j)] *= keep;
      }
      loss += c * double(vec::sum(l.data(), C));
      const T cT = T(c);
      for (int j = 0; j < C; ++j) drow[j] = -dl[size_t(j)] * cT;
      drow[p] = T(double(vec::sum(dl.data(), C)) * c);
    }
    return loss;
  }
};

// ---- FPMC recbole (backbones/fpmc.hpp) and RecBole's BPR (losses/recbole_bpr.hpp) -----------

template <>
struct gather_row_pairs_impl<CpuB> {
  // out (R, 2d): row r = [a[ids[2r]], b[ids[2r + 1]]].
  template <class T>
  static void run(T* out, const T* a, const T* b, const int32_t* ids, int R, int d) {
    for (int64_t r = 0; r < R; ++r) {
      std::copy_n(a + int64_t(ids[2 * r]) * d, d, out + r * 2 * d);
      std::copy_n(b + int64_t(ids[2 * r + 1]) * d, d, out + r * 2 * d + d);
    }
  }
};

template <>
struct scatter_row_pairs_impl<CpuB> {
  // da[ids[2r]] += g[r, 0:d]; db[ids[2r + 1]] += g[r, d:2d]; skip_pad_x: not where that id is 0.
  // Rows in order (a repeated id sums its rows in row order).
  template <class T>
  static void run(T* da, T* db, const T* g, const int32_t* ids, int R, int d, bool skip_pad_a, bool skip_pad_b) {
    for (int64_t r = 0; r < R; ++r) {
      const T* gr = g + r * 2 * d;
      const int32_t ia = ids[2 * r], ib = ids[2 * r + 1];
      if (!(skip_pad_a && ia == 0)) {
        T* dst = da + int64_t(ia) * d;
        for (int c = 0; c < d; ++c) dst[c] += gr[c];
      }
      if (!(skip_pad_b && ib == 0)) {
        T* dst = db + int64_t(ib) * d;
        for (int c = 0; c < d; ++c) dst[c] += gr[d + c];
      }
    }
  }
};

template <>
struct bpr_gamma_loss_impl<CpuB> {
  // RecBole's BPRLoss (recbole/model/loss.py): mean over rows with target != 0 of
  // -log(gamma + sigmoid(x)), x = h_r . E[y_r] - h_r . E[neg_r]. With s = sigmoid(x):
  // dL/dx = -s (1 - s) / (gamma + s) / count, 1 - s computed as sigmoid(-x). dh (R, d) written
  // (0 on ignored rows) when not null; dE accumulates, rows in order.
  template <class T>
  static double run(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                    const int32_t* negatives, int R, int d, double gamma, int64_t* n_targets = nullptr) {
    int64_t count = 0;
    for (int r = 0; r < R; ++r) count += targets[r] != 0;
    if (n_targets) *n_targets = count;
    if (dh) std::fill(dh, dh + int64_t(R) * d, T(0));
    if (count == 0) return 0.0;
    double loss = 0;
    for (int r = 0; r < R; ++r) {
      if (targets[r] == 0) continue;
      const T* h = hidden + int64_t(r) * d;
      const T* ep = table + int64_t(targets[r]) * d;
      const T* en = table + int64_t(negatives[r]) * d;
      double sp = 0, sn = 0;
      for (int c = 0; c < d; ++c) {
        sp += double(h[c]) * double(ep[c]);
        sn += double(h[c]) * double(en[c]);
      }
      const double x = sp - sn;
      const double s = 1.0 / (1.0 + std::exp(-x)), s_neg = 1.0 / (1.0 + std::exp(x));
      loss += -std::log(gamma + s);
      const T coef = T(-s * s_neg / (gamma + s) / double(count));
      if (dh)
        for (int c = 0; c < d; ++c) dh[int64_t(r) * d + c] = coef * (ep[c] - en[c]);
      if (dE) {
        T* gp = dE + int64_t(targets[r]) * d;
        T* gn = dE + int64_t(negatives[r]) * d;
        for (int c = 0; c < d; ++c) {
          gp[c] += coef * h[c];
          gn[c] -= coef * h[c];
        }
      }
    }
    return loss / double(count);
  }
};
// ---- end FPMC recbole and RecBole's BPR -----------------------------------------------------

}  // namespace recdistill::ops
