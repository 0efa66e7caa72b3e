// recdistill/layers/attention.hpp: multi-head scaled dot-product self-attention core.
//
// Per sequence b and head h (head h owns channels [h*dh, (h+1)*dh)):
//   S = scale * Q K^T + M,  P = softmax_j(S),  Pd = P * D (dropout),  O = Pd V.
// Backward (docs/derivations/attention.md):
//   dV = Pd^T dO; dP = (dO V^T) * D; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K;
//   dK = scale dS^T Q.
// Masks (AttentionMask, backend/ops.hpp): `additive_key_padding` is RecBole's tril(key != pad)
// mask added as -10000; `causal` alone is PyTorch's boolean causal mask (-inf), used by
// pmixer's SASRec, where pad keys are deliberately not masked; `bidirectional` (BERT4Rec) masks
// pad keys only.
// The core (the two batched GEMMs around the masked softmax and its dropout) is one backend op,
// so a backend can fuse it; the CPU runs it sequence by sequence.
#pragma once
#include <cstdint>

#include "recdistill/backend/ops.hpp"

namespace recdistill::layers {

using recdistill::AttentionMask;
using recdistill::AttentionShape;

// q, k, v: (B*L, ld*) row-strided; out (B*L, d). key_valid (B*L): 1 = real item.
// Saves probs (B,H,L,L) (pre-dropout) and, when p_drop > 0, dropped (B,H,L,L) and mask.
template <class B, class T>
void attention_forward(Ptr<B, T> out, Ptr<B, T> probs, Ptr<B, T> dropped, Ptr<B, T> drop_mask,
                       CPtr<B, T> q, int ldq, CPtr<B, T> k, int ldk, CPtr<B, T> v, int ldv,
                       CPtr<B, uint8_t> key_valid, AttentionShape s, AttentionMask mask,
                       double p_drop, DropoutKey key, uint32_t site) {
  ops::attention_forward<B>(out, probs, dropped, drop_mask, q, ldq, k, ldk, v, ldv, key_valid, s,
                            mask, p_drop, key, site);
}

// dq, dk, dv written (row strides lddq/lddk/lddv). scratch: (B, H, L, L).
template <class B, class T>
void attention_backward(Ptr<B, T> dq, int lddq, Ptr<B, T> dk, int lddk, Ptr<B, T> dv, int lddv,
                        Ptr<B, T> scratch, CPtr<B, T> dout, CPtr<B, T> probs, CPtr<B, T> dropped,
                        CPtr<B, T> drop_mask, CPtr<B, T> q, int ldq, CPtr<B, T> k, int ldk,
                        CPtr<B, T> v, int ldv, AttentionShape s, double p_drop) {
  ops::attention_backward<B>(dq, lddq, dk, lddk, dv, lddv, scratch, dout, probs, dropped,
                             drop_mask, q, ldq, k, ldk, v, ldv, s, p_drop);
}

}  // namespace recdistill::layers
