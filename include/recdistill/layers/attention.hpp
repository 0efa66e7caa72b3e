// recdistill/layers/attention.hpp: multi-head scaled dot-product self-attention core.
//
// Per sequence b and head h (head h owns channels [h*dh, (h+1)*dh)):
//   S = scale * Q K^T + M,  P = softmax_j(S),  Pd = P * D (dropout),  O = Pd V.
// Backward (docs/derivations/attention.md):
//   dV = Pd^T dO; dP = (dO V^T) * D; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K;
//   dK = scale dS^T Q.
// Masks: `additive_key_padding` is RecBole's tril(key != pad) mask added as -10000;
// `causal` alone is PyTorch's boolean causal mask (-inf), used by pmixer's SASRec, where
// pad keys are deliberately not masked.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "recdistill/core/vecmath.hpp"
#include "recdistill/layers/dropout.hpp"

namespace recdistill::layers {

enum class AttentionMask { additive_key_padding, causal };

struct AttentionShape {
  int B, L, H, dh;
  int d() const { return H * dh; }
  int64_t probs_size() const { return int64_t(B) * H * L * L; }
};

// q, k, v: (B*L, ld*) row-strided; out (B*L, d). key_valid (B*L): 1 = real item.
// Saves probs (B,H,L,L) (pre-dropout) and, when p_drop > 0, dropped (B,H,L,L) and mask.
template <class B, class T>
void attention_forward(T* out, T* probs, T* dropped, T* drop_mask, const T* q, int ldq,
                       const T* k, int ldk, const T* v, int ldv, const uint8_t* key_valid,
                       AttentionShape s, AttentionMask mask, double p_drop, DropoutKey key,
                       uint32_t site) {
  const int L = s.L, H = s.H, dh = s.dh, d = s.d();
  const T scale = T(1.0 / std::sqrt(double(dh)));
  const int64_t LL = int64_t(L) * L;
  // Sequences are independent: with OpenMP each thread takes whole sequences (the GEMMs
  // inside then run single-threaded), so results do not depend on the thread count.
#pragma omp parallel for schedule(static)
  for (int b = 0; b < s.B; ++b) {
    T* Pb = probs + int64_t(b) * H * LL;
    // S_h = scale * Q_h K_h^T for all heads of this sequence at once (heads are dh apart).
    B::template gemm_strided_batched<T>(false, true, L, L, dh, scale, q + int64_t(b) * L * ldq,
                                        ldq, dh, k + int64_t(b) * L * ldk, ldk, dh, T(0), Pb, L,
                                        LL, H);
    const uint8_t* valid = key_valid + int64_t(b) * L;
    for (int h = 0; h < H; ++h) {
      for (int i = 0; i < L; ++i) {
        T* row = Pb + h * LL + int64_t(i) * L;
        T mx = -std::numeric_limits<T>::infinity();
        for (int j = 0; j < L; ++j) {
          if (mask == AttentionMask::additive_key_padding) {
            if (!(j <= i && valid[j])) row[j] += T(-10000);
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
      dropout_forward(dropped + int64_t(b) * H * LL, drop_mask + int64_t(b) * H * LL, Pb, H * L, L,
                      p_drop, key, site, uint32_t(b) * uint32_t(H * L));
      Pused = dropped + int64_t(b) * H * LL;
    }
    // O_h = Pd_h V_h, written into the head's channel block of out.
    B::template gemm_strided_batched<T>(false, false, L, dh, L, T(1), Pused, L, LL,
                                        v + int64_t(b) * L * ldv, ldv, dh, T(0),
                                        out + int64_t(b) * L * d, d, dh, H);
  }
}

// dq, dk, dv written (row strides lddq/lddk/lddv). scratch: (B, H, L, L).
template <class B, class T>
void attention_backward(T* dq, int lddq, T* dk, int lddk, T* dv, int lddv, T* scratch,
                        const T* dout, const T* probs, const T* dropped, const T* drop_mask,
                        const T* q, int ldq, const T* k, int ldk, const T* v, int ldv,
                        AttentionShape s, double p_drop) {
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
    B::template gemm_strided_batched<T>(true, false, L, dh, L, T(1), Pused, L, LL, dO, d, dh,
                                        T(0), dv + int64_t(b) * L * lddv, lddv, dh, H);
    // dPd_h = dO_h V_h^T  -> scratch
    B::template gemm_strided_batched<T>(false, true, L, L, dh, T(1), dO, d, dh,
                                        v + int64_t(b) * L * ldv, ldv, dh, T(0), scratch_b, L, LL,
                                        H);
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
    B::template gemm_strided_batched<T>(false, false, L, dh, L, T(1), scratch_b, L, LL,
                                        k + int64_t(b) * L * ldk, ldk, dh, T(0),
                                        dq + int64_t(b) * L * lddq, lddq, dh, H);
    B::template gemm_strided_batched<T>(true, false, L, dh, L, T(1), scratch_b, L, LL,
                                        q + int64_t(b) * L * ldq, ldq, dh, T(0),
                                        dk + int64_t(b) * L * lddk, lddk, dh, H);
  }
}

}  // namespace recdistill::layers
