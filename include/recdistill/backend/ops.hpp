// recdistill/backend/ops.hpp: every tensor operation above GEMM, as backend-dispatched
// function templates.
//
// Call an op as ops::NAME<B>(args...). It forwards to ops::NAME_impl<B>::run(args...), which a
// backend provides by specialising NAME_impl for itself (backend/cpu/ops.hpp holds the CPU's).
// The primary template has no body but a static_assert, so a model instantiated on a backend
// that lacks an op fails to compile with "backend has no implementation of op 'NAME'", the
// backend type named in the instantiation trace. There is no host fallback.
//
// Pointers are the backend's (Ptr<B, T> = B::Ptr<T>); host arrays are spelled T* / std::vector.
// Shapes are row-major. Conventions: parameter gradients accumulate (+=); activation
// outputs are written (=) unless an argument says "accumulate".
//
//   fill(x, n, value)                         x[0..n) = value
//   add(y, a, b, n)                           y = a + b (y may alias a or b)
//   nonzero_mask(valid, ids, n)               valid[i] = ids[i] != 0          (uint8)
//   mask_rows(x, valid, R, d)                 x[r, :] = 0 where !valid[r]
//   gather_rows(out, table, ids, R, d, scale) out (R, d) = scale * table[ids] (embedding)
//   scatter_add_rows(dtable, g, ids, R, d, skip_pad, scale)
//                                             dtable[ids[r]] += scale * g[r] (skip_pad: not id 0)
//   add_position(x, pos, Bn, L, d)            x (Bn, L, d) += pos (L, d)
//   position_grad(dpos, g, Bn, L, d)          dpos (L, d) += sum_b g (Bn, L, d)
//   add_bias(y, ldy, b, R, n)                 y (R, n; row stride ldy) += b (n)
//   bias_grad(db, g, ldg, R, n)               db (n) += sum_rows g
//   layer_norm_forward(y, xhat, rstd, x, gamma, beta, R, d, eps)
//   layer_norm_backward(dx, dgamma, dbeta, g, xhat, rstd, gamma, R, d, accumulate_dx)
//   dropout_forward(y, mask, x, R, n, p, key, site, row0)   inverted dropout, Philox-keyed
//   dropout_backward(dx, g, mask, n)
//   gelu_forward(y, x, n) / gelu_backward(dx, g, x, n)       erf form
//   relu_forward(y, x, n) / relu_backward(dx, g, y, n)
//   attention_forward(...) / attention_backward(...)         scaled dot-product core with the
//                                             masked softmax (causal | key padding) and dropout
//   masked_softmax_forward(p, s, mask, R, n)  p (R, n) = softmax of s over the entries with
//                                             mask != 0 (others exactly 0; an all-masked row is 0)
//   masked_softmax_backward(ds, g, p, R, n)   ds = p * (g - rowsum(g * p))
//   l2_normalise_forward(y, norm, x, R, d, eps)   y_r = x_r / max(||x_r||, eps); keeps norm (R)
//   l2_normalise_backward(dx, g, y, norm, R, d, eps)  dx written
//   sigmoid_forward(y, x, n) / sigmoid_backward(dx, g, y, n)  dx = g y (1 - y), y the output
//   tanh_forward(y, x, n) / tanh_backward(dx, g, y, n)        dx = g (1 - y^2), y the output
//   mul(y, a, b, n, accumulate)               y = a * b element-wise (y += a * b when accumulate)
//   length_weights(w, valid, Bn, L)           w (Bn, L) = 1 / len_b on every slot, len_b = the
//                                             row's real slots (a row without one gets 0)
//   last_slots(idx, valid, Bn, L)             idx (Bn) = b L + len_b - 1, the row's last real slot
//                                             (real items are left-aligned; b L when len_b = 0)
//   broadcast_slots(x, v, Bn, L, d)           x (Bn, L, d) += v (Bn, d) on every slot
//   slot_sum(out, x, w, Bn, L, d)             out (Bn, d) = sum_j w[b, j] x[b, j] (w null: 1)
//   slot_sum_backward(dx, dw, g, x, w, Bn, L, d, accumulate_dx)
//                                             dx[b, j] = w[b, j] g[b] (w null: g[b]; += when
//                                             accumulate_dx; skipped when dx null); dw (Bn, L)
//                                             written = <g[b], x[b, j]> when not null
//   inbatch_bpr_loss(dS, S, R, C, row0, gamma) -> mean loss
//                                             S (R, C) = h_b . E_{y_j}, row b's target in column
//                                             p = row0 + b (one process: C = R, row0 = 0): mean
//                                             over all (b, j) of -log(gamma + sigmoid(S_bp -
//                                             S_bj)); dS written
//   dot(x, y, n) -> double, sum(x, n) -> double   (double accumulation)
//   softmax_cross_entropy(dh, dE, h, E, targets, R, d, N, ws, n_targets, bias, dbias) -> mean loss
//                                             full-softmax CE over item chunks (logits never
//                                             held for all rows); optional output bias (N)
//   bpr_loss(dh, dE, h, E, targets, negatives, R, d) -> mean loss
//   sum_squares(x, n) -> double               sum x^2 (double accumulation)
//   scale(x, n, c)                            x *= c
//   adam_step(p, g, m, v, n, AdamStep)        one Adam/AdamW update of a tensor
//   score_rows(scores, ld, q, n, items, w, dim)  scores (n, w; row stride ld) = q (n, dim) x
//                                             items (w, dim)^T, every entry the same fixed-order
//                                             dot product: its bits depend only on its two rows
//                                             (not on its position, n, w or ld), so equal item
//                                             rows tie exactly (evaluation's scores)
//   rank_rows(block, scores, ld, n, N)        exclusions, ranks and top-K of n full score rows
//   rank_targets(block, scores, ld, n)        starts a chunked block: the targets' scores
//                                             (diagonal of scores), exclusion lists, top-K lists
//   rank_chunk(block, scores, ld, n, c0, w, last)
//                                             a chunk of items c0..c0+w: masks, rank counts,
//                                             top-K scan; `last` writes the block's results
//   rank_sampled(row, c, negatives, o) -> rank among sampled negatives (row: a host copy)
// ---- Atten-Mixer (backbones/attenmixer.hpp) and bce_multi (losses/bce_multi.hpp) ----------
//   l2_normalise_axis_forward(y, norm, x, outer, n, inner, eps)
//                                             x, y (outer, n, inner): each vector x[o, :, i] of
//                                             length n becomes x / (||x|| + eps) (eps OUTSIDE the
//                                             norm, spec §7); keeps norm (outer, inner) = ||x||.
//                                             inner 1: rows; y may alias x
//   l2_normalise_axis_backward(dx, g, y, norm, outer, n, inner, eps)
//                                             dx = g / (||x|| + eps) - y <y, g> / ||x||; 0 where
//                                             ||x|| = 0 (always masked downstream). dx written,
//                                             may alias g
//   intent_slots(idx, valid, Bn, L, K)        idx (Bn, K) = 1 + b L + len_b - 1 - k, the slot k
//                                             items back from the row's last real one, or 0 when
//                                             that is before slot 0 (a zero row: callers keep a
//                                             zero row 0 ahead of the slots)
//   dropout_by_id_forward(y, mask, x, ids, Bn, L, n, p, key, site)
//                                             inverted dropout of x (Bn L, n) whose mask is keyed
//                                             by (global row key.first_seq + b, ids[b L + j],
//                                             column): slots of a row that hold the same id
//                                             share one mask (official
//                                             Atten-Mixer's per-node dropout); backward is
//                                             dropout_backward
//   mixer_attention_forward(out, G, A1, A2, A3, drop, q, k, v, key_valid, MixerAttentionShape,
//                           head_split, lp, p_drop, key, site)
//                                             Atten-Mixer's multi-level read-out (spec §6.3):
//                                             G = sigmoid(q~ k~^T) (B,H,K,L); A1 = softmax_l(2G);
//                                             A2 = (sum_k A1^lp)^(1/lp) (B,H,L); A3 =
//                                             softmax_l(2 A2) over real slots; drop = dropout
//                                             mask of A3 (B,H,L); out (B, d) = concat_m sum_l
//                                             m_l A3 drop v~
//   mixer_attention_backward(dq, dk, dv, scratch, g, G, A1, A2, A3, drop, q, k, v, key_valid,
//                            MixerAttentionShape, head_split, lp)
//                                             dq (B K, d), dk, dv (B L, d) written; scratch
//                                             (B, H, K, L)
//   weighted_pairwise_loss(dS, S, items, groups, weights, R, C, row0, gamma, weight_sum) -> loss
//                                             S (R, C) = h_b . E_{v_j}, items, groups, weights
//                                             (C), row b is column p = row0 + b (one process:
//                                             C = R, row0 = 0); row b's negatives N_b = {j :
//                                             v_j != v_p, g_j != g_p}; loss = sum_b w_p mean_{j
//                                             in N_b} -log(gamma + sigmoid(S_bp - S_bj)) / W,
//                                             W = sum_b w_p over rows with N_b non-empty
//                                             (written to *weight_sum when not null; active
//                                             distillation, §6.2); dS written
//   bce_multi_loss(dh, dE, h, E, targets, negatives, R, n_neg, d) -> loss
//                                             mean_r softplus(-h_r . E[y_r]) + mean_{r,k}
//                                             softplus(h_r . E[neg_rk]); dh (R, d) written, dE
//                                             accumulates (rows in order)
// ---- FPMC recbole (backbones/fpmc.hpp) and RecBole's BPR (losses/recbole_bpr.hpp) ---------
//   gather_row_pairs(out, a, b, ids, R, d)    out (R, 2d): row r = [a[ids[2r]], b[ids[2r + 1]]]
//                                             (ids (R, 2): one id into each of two (rows, d) tables)
//   scatter_row_pairs(da, db, g, ids, R, d, skip_pad_a, skip_pad_b)
//                                             da[ids[2r]] += g[r, 0:d], db[ids[2r + 1]] += g[r, d:2d]
//                                             (skip_pad_x: not where that id is 0); rows in order
//   bpr_gamma_loss(dh, dE, h, E, targets, negatives, R, d, gamma, n_targets) -> mean loss
//                                             mean over rows with target != 0 of -log(gamma +
//                                             sigmoid(x_r)), x_r = h_r . (E[y_r] - E[neg_r]);
//                                             dh (R, d) written (0 on ignored rows) when not
//                                             null, dE accumulates (rows in order)
// (block: eval::RankBlock, the block's cases, options and host result arrays.)
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "recdistill/backend/backend.hpp"
#include "recdistill/core/random.hpp"

namespace recdistill {

// Which score entries attention may use. `additive_key_padding`: RecBole's tril(key != pad)
// mask added as -10000. `causal`: PyTorch's boolean causal mask (-inf) alone, as in pmixer's
// SASRec, where pad keys are deliberately not masked. `bidirectional`: every real key, no
// causal part (BERT4Rec), pad keys added as -10000 like RecBole's.
enum class AttentionMask { additive_key_padding, causal, bidirectional };

struct AttentionShape {
  int B, L, H, dh;
  int d() const { return H * dh; }
  int64_t probs_size() const { return int64_t(B) * H * L * L; }
};

// Hyper-parameters of one Adam update of one tensor (train/optimizer.hpp fills it).
struct AdamStep {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;  // AdamW
  int64_t t = 1;           // this tensor's step count, after the increment
};

// Scratch of the chunked softmax cross-entropy: allocated once for R rows of width d over N
// items, in chunks of `chunk` rows.
template <class B, class T>
struct CrossEntropyWorkspace {
  int chunk = 0;
  std::vector<int> rows;          // (R) the rows whose target is not 0
  std::vector<double> row_loss;   // (chunk)
  Buffer<B, T> h, z, dh;  // (chunk, d), (chunk, N), (chunk, d)
  void reserve(int R, int chunk_rows, int d, int N) {
    chunk = chunk_rows;
    rows.resize(size_t(R));
    row_loss.resize(size_t(chunk));
    h = Buffer<B, T>(size_t(chunk) * d);
    z = Buffer<B, T>(size_t(chunk) * N);
    dh = Buffer<B, T>(size_t(chunk) * d);
  }
};

// ---- Atten-Mixer (backbones/attenmixer.hpp) --------------------------------------------
// The shape of the multi-level read-out: B rows, K intent levels (queries), L slots (keys),
// H heads of dh channels (d = H dh).
struct MixerAttentionShape {
  int B, K, L, H, dh;
  constexpr int d() const { return H * dh; }
};
// How queries and keys are split into heads (spec §6.3): `official_reshape` reads head m's
// row k' of a (K, d) matrix as row r = m K + k' of its row-major (K H, dh) view (both
// references do this); `standard` reads channels [m dh, (m + 1) dh) of row k'. Values are
// always split the standard way.
enum class HeadSplit { official_reshape, standard };
// Offset of head m's query row kk (of K) of row b in a (B K, d) matrix under the split (keys:
// K = L). constexpr, so the CUDA kernels call it too.
constexpr int64_t mixer_head_row(HeadSplit split, int64_t b, int m, int kk, int K, int H, int dh) {
  const int64_t d = int64_t(H) * dh;
  if (split == HeadSplit::standard) return (b * K + kk) * d + int64_t(m) * dh;
  const int r = m * K + kk;  // row r of the row-major (K H, dh) view of row b's (K, d) block
  return b * K * d + int64_t(r / H) * d + int64_t(r % H) * dh;
}
// ---- end Atten-Mixer ---------------------------------------------------------------------

namespace ops {

#define RD_BACKEND_OP(op)                                                                      \
  template <class B>                                                                           \
  struct op##_impl {                                                                           \
    template <class... A>                                                                      \
    static void run(A&&...) {                                                                  \
      static_assert(::recdistill::no_implementation_for_backend<B>,                            \
                    "recdistill: this backend has no implementation of op '" #op               \
                    "' (specialise recdistill::ops::" #op "_impl<Backend>)");                  \
    }                                                                                          \
  };                                                                                           \
  template <class B, class... A>                                                               \
  decltype(auto) op(A&&... a) {                                                                \
    return op##_impl<B>::run(std::forward<A>(a)...);                                           \
  }

RD_BACKEND_OP(fill)
RD_BACKEND_OP(add)
RD_BACKEND_OP(nonzero_mask)
RD_BACKEND_OP(mask_rows)
RD_BACKEND_OP(gather_rows)
RD_BACKEND_OP(scatter_add_rows)
RD_BACKEND_OP(add_position)
RD_BACKEND_OP(position_grad)
RD_BACKEND_OP(add_bias)
RD_BACKEND_OP(bias_grad)
RD_BACKEND_OP(layer_norm_forward)
RD_BACKEND_OP(layer_norm_backward)
RD_BACKEND_OP(dropout_forward)
RD_BACKEND_OP(dropout_backward)
RD_BACKEND_OP(gelu_forward)
RD_BACKEND_OP(gelu_backward)
RD_BACKEND_OP(relu_forward)
RD_BACKEND_OP(relu_backward)
RD_BACKEND_OP(attention_forward)
RD_BACKEND_OP(attention_backward)
RD_BACKEND_OP(masked_softmax_forward)
RD_BACKEND_OP(masked_softmax_backward)
RD_BACKEND_OP(l2_normalise_forward)
RD_BACKEND_OP(l2_normalise_backward)
RD_BACKEND_OP(sigmoid_forward)
RD_BACKEND_OP(sigmoid_backward)
RD_BACKEND_OP(tanh_forward)
RD_BACKEND_OP(tanh_backward)
RD_BACKEND_OP(mul)
RD_BACKEND_OP(length_weights)
RD_BACKEND_OP(last_slots)
RD_BACKEND_OP(broadcast_slots)
RD_BACKEND_OP(slot_sum)
RD_BACKEND_OP(slot_sum_backward)
RD_BACKEND_OP(inbatch_bpr_loss)
RD_BACKEND_OP(dot)
RD_BACKEND_OP(sum)
RD_BACKEND_OP(softmax_cross_entropy)
RD_BACKEND_OP(bpr_loss)
RD_BACKEND_OP(sum_squares)
RD_BACKEND_OP(scale)
RD_BACKEND_OP(adam_step)
RD_BACKEND_OP(score_rows)
RD_BACKEND_OP(rank_rows)
RD_BACKEND_OP(rank_targets)
RD_BACKEND_OP(rank_chunk)
RD_BACKEND_OP(rank_sampled)
// ---- Atten-Mixer and bce_multi ----
RD_BACKEND_OP(l2_normalise_axis_forward)
RD_BACKEND_OP(l2_normalise_axis_backward)
RD_BACKEND_OP(intent_slots)
RD_BACKEND_OP(dropout_by_id_forward)
RD_BACKEND_OP(mixer_attention_forward)
RD_BACKEND_OP(mixer_attention_backward)
RD_BACKEND_OP(bce_multi_loss)
RD_BACKEND_OP(weighted_pairwise_loss)
// ---- end Atten-Mixer and bce_multi ----
// ---- FPMC recbole and RecBole's BPR ----
RD_BACKEND_OP(gather_row_pairs)
RD_BACKEND_OP(scatter_row_pairs)
RD_BACKEND_OP(bpr_gamma_loss)
// ---- end FPMC recbole and RecBole's BPR ----

#undef RD_BACKEND_OP

}  // namespace ops
}  // namespace recdistill
