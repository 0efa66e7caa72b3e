// recdistill/backbones/encoder.hpp: the transformer encoder both sequential transformers share
// (SASRec and BERT4Rec): their dimensions, every activation buffer of a forward pass, the
// multi-head attention sub-block, and the post-LN (BERT-style) block of RecBole's SASRec and of
// both BERT4Rec variants, which differ only in the attention mask they pass:
//
//   X = LN1(Dropout(MHA(X) Wo^T + bo) + X);  X = LN2(Dropout(W2 GELU(W1 X + b1) + b2) + X)
//
// plus the input stage X = Dropout(LN_in(X)) that follows their embeddings. Everything is a
// sequence of backend ops (backend/ops.hpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/layers/layers.hpp"

namespace recdistill::encoder {

// The encoder's dimensions and regularisation; a model's config derives from it (the keys
// that set these live in the model's config, whose defaults differ).
struct Dims {
  int max_len = 50;  // L
  int hidden = 64;   // d
  int layers = 2;
  int heads = 2;
  int inner = 256;  // feed-forward width
  double hidden_dropout = 0.5;
  double attn_dropout = 0.5;
  double ln_eps = 1e-12;
};

struct BlockOffsets {
  size_t ln_a_w = 0, ln_a_b = 0;  // pmixer only
  size_t wq, bq, wk, bk, wv, bv, wo, bo, ln1_w, ln1_b, w1, b1, w2, b2, ln2_w = 0, ln2_b = 0;
};

// Every activation of one forward pass, (R = capacity * L) rows, in backend memory.
template <class B, class T>
struct Activations {
  int capacity = 0, batch = 0;
  bool train = false;  // whether the last forward drew dropout masks
  Buffer<B, int32_t> seq, seq_in, slot;  // (B, L) ids; query(): staged ids, last slots
  Buffer<B, uint8_t> valid;              // (B, L) 1 = a real (non-pad) input: the keys attention sees
  std::vector<int32_t> seq_host, slot_host;  // query(): host staging
  Buffer<B, T> emb, emb_xhat, emb_rstd, emb_mask;  // the input stage
  struct Layer {
    Buffer<B, T> qn, qn_xhat, qn_rstd;       // pmixer LN_a
    Buffer<B, T> qkv;                        // (R, 3d): q | k | v
    Buffer<B, T> probs, dropped, attn_mask;  // (B, H, L, L)
    Buffer<B, T> ctx, attn_out, drop1;       // (R, d)
    Buffer<B, T> ln1, ln1_xhat, ln1_rstd;    // (R, d), (R)
    Buffer<B, T> h1, h1_mask, h2;            // (R, inner)
    Buffer<B, T> f, drop2;                   // (R, d)
    Buffer<B, T> out, ln2_xhat, ln2_rstd;    // (R, d), (R)
  };
  std::vector<Layer> layer;
  Buffer<B, T> final_xhat, final_rstd, hidden;  // a final LN (pmixer last_LN, BERT4Rec head LN); hidden (R, d)
  Buffer<B, T> head_pre, head_act;              // BERT4Rec recbole head: dense, GELU (R, d)
  Buffer<B, T> g_a, g_b, g_ffn, g_qkv, g_tmp, g_scratch;  // backward scratch

  Activations() = default;
  // query_pre_ln: pmixer's LN_a buffers; head: BERT4Rec's dense + GELU head buffers.
  Activations(int cap, const Dims& c, bool query_pre_ln, bool head = false) : capacity(cap) {
    const size_t R = size_t(cap) * c.max_len, d = size_t(c.hidden), I = size_t(c.inner);
    const size_t P = size_t(cap) * c.heads * c.max_len * c.max_len;
    auto buf = [](size_t n) { return Buffer<B, T>(n); };
    seq = Buffer<B, int32_t>(R);
    seq_in = Buffer<B, int32_t>(R);
    slot = Buffer<B, int32_t>(size_t(cap));
    valid = Buffer<B, uint8_t>(R);
    emb = buf(R * d), emb_xhat = buf(R * d), emb_rstd = buf(R), emb_mask = buf(R * d);
    layer.resize(size_t(c.layers));
    for (auto& l : layer) {
      if (query_pre_ln) {
        l.qn = buf(R * d), l.qn_xhat = buf(R * d), l.qn_rstd = buf(R);
        l.h1_mask = buf(R * I);
      }
      l.qkv = buf(R * 3 * d);
      l.probs = buf(P);
      if (c.attn_dropout > 0) l.dropped = buf(P), l.attn_mask = buf(P);
      l.ctx = buf(R * d), l.attn_out = buf(R * d), l.drop1 = buf(R * d);
      l.ln1 = buf(R * d), l.ln1_xhat = buf(R * d), l.ln1_rstd = buf(R);
      l.h1 = buf(R * I), l.h2 = buf(R * I);
      l.f = buf(R * d), l.drop2 = buf(R * d);
      l.out = buf(R * d), l.ln2_xhat = buf(R * d), l.ln2_rstd = buf(R);
    }
    final_xhat = buf(R * d), final_rstd = buf(R), hidden = buf(R * d);
    if (head) head_pre = buf(R * d), head_act = buf(R * d);
    g_a = buf(R * d), g_b = buf(R * d), g_tmp = buf(R * d);
    g_ffn = buf(R * I), g_qkv = buf(R * 3 * d), g_scratch = buf(P);
  }
};

// What one forward or backward pass shares between the stages.
template <class B, class T>
struct Step {
  const Dims& cfg;
  int R;                   // rows = batch * L
  AttentionShape shape;
  CPtr<B, uint8_t> valid;  // (R) the keys attention may see
  double ph, pa;           // hidden / attention dropout of this pass (0 at evaluation)
  DropoutKey key;
  uint32_t site;           // the next dropout site
  // The global counter row of this pass's row 0 for a (batch * L)-row site (DropoutKey::first_seq).
  uint32_t row0() const { return key.first_seq * uint32_t(shape.L); }
};

// ---- the attention sub-block ----------------------------------------------------------

// l.attn_out (R, d) = MHA(q = q_src, k = v = x) Wo^T + bo, keeping qkv, probs and ctx.
template <class B, class T>
void mha_forward(CPtr<B, T> w, const BlockOffsets& o, typename Activations<B, T>::Layer& l,
                 CPtr<B, T> q_src, CPtr<B, T> x, AttentionMask mask, Step<B, T>& st) {
  const int R = st.R, d = st.cfg.hidden;
  // q, k, v into the three column blocks of qkv (R, 3d).
  layers::linear_forward<B, T>(l.qkv.data(), q_src, d, w + o.wq, w + o.bq, R, d, d, 3 * d);
  layers::linear_forward<B, T>(l.qkv.data() + d, x, d, w + o.wk, w + o.bk, R, d, d, 3 * d);
  layers::linear_forward<B, T>(l.qkv.data() + 2 * d, x, d, w + o.wv, w + o.bv, R, d, d, 3 * d);
  layers::attention_forward<B, T>(l.ctx.data(), l.probs.data(), l.dropped.data(), l.attn_mask.data(),
                                  l.qkv.data(), 3 * d, l.qkv.data() + d, 3 * d, l.qkv.data() + 2 * d, 3 * d,
                                  st.valid, st.shape, mask, st.pa, st.key, st.site++);
  layers::linear_forward<B, T>(l.attn_out.data(), l.ctx.data(), d, w + o.wo, w + o.bo, R, d, d);
}

// From g = d(attn_out) (R, d): Wo's gradients, then the attention core's, into a.g_qkv (R, 3d):
// d(q) | d(k) | d(v). gt (R, d) is scratch (it ends up holding d(ctx)).
template <class B, class T>
void mha_backward(CPtr<B, T> w, Ptr<B, T> g, const BlockOffsets& o, typename Activations<B, T>::Layer& l,
                  Activations<B, T>& a, CPtr<B, T> d_attn_out, Ptr<B, T> gt, Step<B, T>& st) {
  const int R = st.R, d = st.cfg.hidden;
  layers::linear_backward<B, T>(gt, g + o.wo, g + o.bo, d_attn_out, d, l.ctx.data(), d, w + o.wo, R, d, d);
  Ptr<B, T> gqkv = a.g_qkv.data();
  layers::attention_backward<B, T>(gqkv, 3 * d, gqkv + d, 3 * d, gqkv + 2 * d, 3 * d, a.g_scratch.data(), gt,
                                   l.probs.data(), l.dropped.data(), l.attn_mask.data(), l.qkv.data(), 3 * d,
                                   l.qkv.data() + d, 3 * d, l.qkv.data() + 2 * d, 3 * d, st.shape, st.pa);
}

// ---- the post-LN block (RecBole's SASRec, both BERT4Rec variants) ----------------------

// Tensor names match tools/torch_sasrec.py (and thus the golden fixtures).
inline BlockOffsets add_post_ln_block_params(ParamLayout& p, const std::string& s, const Dims& c) {
  const int d = c.hidden, I = c.inner;
  BlockOffsets o;
  o.wq = p.add(s + "attn.q.weight", {d, d});
  o.bq = p.add(s + "attn.q.bias", {d});
  o.wk = p.add(s + "attn.k.weight", {d, d});
  o.bk = p.add(s + "attn.k.bias", {d});
  o.wv = p.add(s + "attn.v.weight", {d, d});
  o.bv = p.add(s + "attn.v.bias", {d});
  o.wo = p.add(s + "attn.o.weight", {d, d});
  o.bo = p.add(s + "attn.o.bias", {d});
  o.ln1_w = p.add(s + "attn_ln.weight", {d});
  o.ln1_b = p.add(s + "attn_ln.bias", {d});
  o.w1 = p.add(s + "ffn.w1.weight", {I, d});
  o.b1 = p.add(s + "ffn.w1.bias", {I});
  o.w2 = p.add(s + "ffn.w2.weight", {d, I});
  o.b2 = p.add(s + "ffn.w2.bias", {d});
  o.ln2_w = p.add(s + "ffn_ln.weight", {d});
  o.ln2_b = p.add(s + "ffn_ln.bias", {d});
  return o;
}

// l.out (R, d) = LN2(Dropout(FFN(y)) + y), y = LN1(Dropout(MHA(x)) + x); x (R, d).
template <class B, class T>
void post_ln_block_forward(CPtr<B, T> w, const BlockOffsets& o, typename Activations<B, T>::Layer& l,
                           CPtr<B, T> x, AttentionMask mask, Step<B, T>& st) {
  const int R = st.R, d = st.cfg.hidden, I = st.cfg.inner;
  const int64_t Rd = int64_t(R) * d;
  mha_forward<B, T>(w, o, l, x, x, mask, st);
  layers::dropout_forward<B, T>(l.attn_out.data(), l.drop1.data(), l.attn_out.data(), R, d, st.ph,
                                st.key, st.site++, st.row0());
  ops::add<B>(l.ln1.data(), CPtr<B, T>(l.attn_out.data()), x, Rd);  // residual 1, then LN1 in place
  layers::layer_norm_forward<B, T>(l.ln1.data(), l.ln1_xhat.data(), l.ln1_rstd.data(), l.ln1.data(),
                                   w + o.ln1_w, w + o.ln1_b, R, d, st.cfg.ln_eps);
  layers::linear_forward<B, T>(l.h1.data(), l.ln1.data(), d, w + o.w1, w + o.b1, R, d, I);
  layers::gelu_forward<B, T>(l.h2.data(), l.h1.data(), int64_t(R) * I);
  layers::linear_forward<B, T>(l.f.data(), l.h2.data(), I, w + o.w2, w + o.b2, R, I, d);
  layers::dropout_forward<B, T>(l.f.data(), l.drop2.data(), l.f.data(), R, d, st.ph, st.key, st.site++, st.row0());
  ops::add<B>(l.out.data(), CPtr<B, T>(l.f.data()), CPtr<B, T>(l.ln1.data()), Rd);  // residual 2
  layers::layer_norm_forward<B, T>(l.out.data(), l.ln2_xhat.data(), l.ln2_rstd.data(), l.out.data(),
                                   w + o.ln2_w, w + o.ln2_b, R, d, st.cfg.ln_eps);
}

// gx: d(l.out) in, d(x) out; gt scratch (R, d).
template <class B, class T>
void post_ln_block_backward(CPtr<B, T> w, Ptr<B, T> g, const BlockOffsets& o,
                            typename Activations<B, T>::Layer& l, CPtr<B, T> x, Activations<B, T>& a,
                            Ptr<B, T>& gx, Ptr<B, T>& gt, Step<B, T>& st) {
  const int R = st.R, d = st.cfg.hidden, I = st.cfg.inner;
  const int64_t Rd = int64_t(R) * d;
  // gt = d(residual sum 2) through LN2.
  layers::layer_norm_backward<B, T>(gt, g + o.ln2_w, g + o.ln2_b, gx, l.ln2_xhat.data(),
                                    l.ln2_rstd.data(), w + o.ln2_w, R, d);
  // FFN branch: df = gt * drop2 -> g_tmp; W2, GELU, W1 (W1's dx added onto the residual gt).
  layers::dropout_backward<B, T>(a.g_tmp.data(), gt, l.drop2.data(), Rd);
  layers::linear_backward<B, T>(a.g_ffn.data(), g + o.w2, g + o.b2, a.g_tmp.data(), d, l.h2.data(), I,
                                w + o.w2, R, I, d);
  layers::gelu_backward<B, T>(a.g_ffn.data(), a.g_ffn.data(), l.h1.data(), int64_t(R) * I);
  layers::linear_backward<B, T>(gt, g + o.w1, g + o.b1, a.g_ffn.data(), I, l.ln1.data(), d, w + o.w1,
                                R, d, I, /*accumulate_dx=*/true);
  // Through LN1 into the residual sum 1 -> gx.
  layers::layer_norm_backward<B, T>(gx, g + o.ln1_w, g + o.ln1_b, gt, l.ln1_xhat.data(),
                                    l.ln1_rstd.data(), w + o.ln1_w, R, d);
  // Attention output branch (pre-dropout) -> g_tmp; Wo and the core -> g_qkv (R, 3d).
  layers::dropout_backward<B, T>(a.g_tmp.data(), gx, l.drop1.data(), Rd);
  mha_backward<B, T>(w, g, o, l, a, a.g_tmp.data(), gt, st);
  Ptr<B, T> gqkv = a.g_qkv.data();
  // Residual: dx = d(sum1) (already in gx) + the three projections.
  layers::linear_backward<B, T>(gx, g + o.wq, g + o.bq, gqkv, 3 * d, x, d, w + o.wq, R, d, d, true);
  layers::linear_backward<B, T>(gx, g + o.wk, g + o.bk, gqkv + d, 3 * d, x, d, w + o.wk, R, d, d, true);
  layers::linear_backward<B, T>(gx, g + o.wv, g + o.bv, gqkv + 2 * d, 3 * d, x, d, w + o.wv, R, d, d,
                                true);
}

// ---- the input stage after the embeddings: a.emb = Dropout(LN_in(a.emb)), in place -----

template <class B, class T>
void ln_dropout_forward(CPtr<B, T> ln_w, CPtr<B, T> ln_b, Activations<B, T>& a, Step<B, T>& st) {
  const int R = st.R, d = st.cfg.hidden;
  layers::layer_norm_forward<B, T>(a.emb.data(), a.emb_xhat.data(), a.emb_rstd.data(), a.emb.data(), ln_w,
                                   ln_b, R, d, st.cfg.ln_eps);
  layers::dropout_forward<B, T>(a.emb.data(), a.emb_mask.data(), a.emb.data(), R, d, st.ph, st.key,
                                st.site++, st.row0());
}
// gx: d(input stage output) in, d(embedding sum) out (the two buffers may swap).
template <class B, class T>
void ln_dropout_backward(CPtr<B, T> ln_w, Ptr<B, T> g_ln_w, Ptr<B, T> g_ln_b, Activations<B, T>& a,
                         Ptr<B, T>& gx, Ptr<B, T>& gt, Step<B, T>& st) {
  const int R = st.R, d = st.cfg.hidden;
  layers::dropout_backward<B, T>(gx, gx, a.emb_mask.data(), int64_t(R) * d);
  layers::layer_norm_backward<B, T>(gt, g_ln_w, g_ln_b, gx, a.emb_xhat.data(), a.emb_rstd.data(), ln_w, R, d);
  std::swap(gx, gt);
}

// ---- initialisation --------------------------------------------------------------------

// Fills w[0..n) with draw(u1, u2) from the `init` stream of tensor number `tensor`.
template <class T, class F>
void init_fill(T* w, size_t n, uint64_t seed, int tensor, F draw) {
  for (size_t i = 0; i < n; i += 2) {
    const auto u = uniform4(seed, Stream::init, uint32_t(tensor), 0, uint32_t(i >> 32), uint32_t(i));
    w[i] = draw(u[0], u[1]);
    if (i + 1 < n) w[i + 1] = draw(u[2], u[3]);
  }
}

// The references' initialisation by tensor name, on host memory: layer-norm weights 1, biases
// 0, PyTorch MHA's stacked in_proj_weight xavier-uniform, everything else N(0, sd) (RecBole's
// and HuggingFace's _init_weights). A model zeroes its pad row afterwards where it has one.
template <class T>
void init_params(const ParamLayout& layout, T* params, uint64_t seed, double sd, int hidden) {
  int tensor = 0;
  for (const auto& p : layout.infos()) {
    T* w = params + p.offset;
    const std::string& n = p.name;
    auto ends_with = [&](const char* s) {
      const std::string suf(s);
      return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
    };
    const bool is_ln = n.find("ln") != std::string::npos;
    if (is_ln && ends_with(".weight")) {
      std::fill(w, w + p.size, T(1));
    } else if (ends_with("bias")) {
      std::fill(w, w + p.size, T(0));
    } else if (ends_with("in_proj_weight")) {
      // PyTorch MHA keeps xavier_uniform_ on the stacked (3d, d) tensor: fan_in d, fan_out 3d.
      const double a = std::sqrt(6.0 / (hidden + 3.0 * hidden));
      init_fill(w, p.size, seed, tensor, [a](float u, float) { return T((2.0 * u - 1.0) * a); });
    } else {
      init_fill(w, p.size, seed, tensor, [sd](float u1, float u2) { return T(sd * normal_from(u1, u2)); });
    }
    ++tensor;
  }
}

}  // namespace recdistill::encoder
