// recdistill/backbones/sasrec.hpp: SASRec (Kang & McAuley, ICDM 2018), two variants.
//
// `recbole` (RUCAIBox/RecBole sasrec.py; specs/backbones.md §2.1), right padding:
//   X = Dropout(LN_in(E[seq] + P)); per layer (post-LN, BERT style):
//   X = LN1(Dropout(MHA(X) Wo^T + bo) + X);  X = LN2(Dropout(W2 GELU(W1 X + b1) + b2) + X)
//   attention mask: causal and key != pad, added as -10000.
// `pmixer`, layout `legacy` (profile-distillation seed; §2.3), left padding:
//   X = Dropout(sqrt(d) E[seq] + P) * m; per block: Qn = LN_a(X); A = MHA(q=Qn, k=v=X)
//   with a causal-only mask (pad keys leak their biases, as upstream); Y = LN_f(Qn + A);
//   X = (Y + Dropout(conv2(ReLU(Dropout(conv1(Y)))))) * m; finally H = last_LN(X).
//
// The model hands back the hidden states of every slot, (B, L, d), together with the
// real-item mask; the tied output layer (logits = H E^T) and losses live outside, so the
// same forward serves next-item training, full ranking and (later) profile distillation,
// which taps `layer_output(l)`.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "recdistill/backend/backend.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/padding.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/layers/layers.hpp"

namespace recdistill {

enum class SASRecVariant { recbole, pmixer };

struct SASRecConfig {
  SASRecVariant variant = SASRecVariant::recbole;
  int n_items = 0;  // N: item ids including the pad id 0
  int max_len = 50;  // L
  int hidden = 64;   // d
  int layers = 2;
  int heads = 2;
  int inner = 256;  // feed-forward width (pmixer: always d)
  double hidden_dropout = 0.5;
  double attn_dropout = 0.5;
  double ln_eps = 1e-12;  // recbole 1e-12, pmixer 1e-8
  double init_range = 0.02;

  void validate() const {
    if (n_items < 2) fail("model: need at least one item besides the pad id, got n_items=", n_items);
    if (max_len < 1) fail("model.maxlen: expected >= 1, found ", max_len);
    if (hidden < 1 || heads < 1 || hidden % heads != 0)
      fail("model.hidden_units (", hidden, ") must be a positive multiple of model.num_heads (",
           heads, ")");
    if (layers < 1) fail("model.num_blocks: expected >= 1, found ", layers);
    if (inner < 1) fail("model.inner_size: expected >= 1, found ", inner);
    if (!(hidden_dropout >= 0 && hidden_dropout < 1) || !(attn_dropout >= 0 && attn_dropout < 1))
      fail("model.dropout_rate: expected a value in [0, 1), found ", hidden_dropout, " / ",
           attn_dropout);
  }
};

template <Backend B, class T>
class SASRec {
 public:
  explicit SASRec(SASRecConfig cfg) : cfg_(cfg) {
    if (cfg_.variant == SASRecVariant::pmixer) cfg_.inner = cfg_.hidden;
    cfg_.validate();
    build_layout();
  }

  const SASRecConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  PaddingSide padding_side() const {
    return cfg_.variant == SASRecVariant::recbole ? PaddingSide::right : PaddingSide::left;
  }
  // The tied output table E (N, d): logits = H E^T.
  const T* item_table(const T* params) const { return params + off_.item; }
  T* item_table(T* params) const { return params + off_.item; }

  // Matrix-product FLOPs of one forward pass over `rows` sequences (all L slots, pads
  // included), not counting the output layer: per layer the q, k, v, o projections
  // (4 x 2 L d^2), scores and weighted values (2 x 2 H L^2 dh) and the feed-forward
  // (2 x 2 L d inner). The backward pass costs twice this (input and weight gradients).
  double forward_gemm_flops(int64_t rows) const {
    const double L = cfg_.max_len, d = cfg_.hidden, I = cfg_.inner;
    const double per_row = cfg_.layers * (8.0 * L * d * d + 4.0 * L * L * d + 4.0 * L * d * I);
    return per_row * double(rows);
  }

  // Initialisation as in the reference of each variant (specs/backbones.md §2.1, §2.3 `ecir`).
  void init(T* params, uint64_t seed) const {
    const double sd = cfg_.init_range;
    int tensor = 0;
    for (const auto& p : layout_.infos()) {
      T* w = params + p.offset;
      const std::string& n = p.name;
      auto ends_with = [&](const char* s) {
        const std::string suf(s);
        return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
      };
      const bool is_ln = n.find("ln") != std::string::npos;
      if (is_ln && ends_with(".weight")) {
        fill(w, p.size, T(1));
      } else if (ends_with("bias")) {
        fill(w, p.size, T(0));
      } else if (ends_with("in_proj_weight")) {
        // PyTorch MHA keeps xavier_uniform_ on the stacked (3d, d) tensor: fan_in d, fan_out 3d.
        const double a = std::sqrt(6.0 / (cfg_.hidden + 3.0 * cfg_.hidden));
        random_fill(w, p.size, seed, tensor, [a](float u, float) { return T((2.0 * u - 1.0) * a); });
      } else {
        random_fill(w, p.size, seed, tensor, [sd](float u1, float u2) {
          return T(sd * normal_from(u1, u2));
        });
      }
      ++tensor;
    }
    if (cfg_.variant == SASRecVariant::pmixer) fill(params + off_.item, cfg_.hidden, T(0));
  }

  // Activation buffers for up to `capacity` sequences, allocated once.
  struct Activations {
    int capacity = 0, batch = 0;
    bool train = false;  // whether the last forward drew dropout masks
    std::vector<int32_t> seq;      // (B, L)
    std::vector<uint8_t> valid;    // (B, L)
    std::vector<T> emb, emb_xhat, emb_rstd, emb_mask;  // input block
    struct Layer {
      std::vector<T> qn, qn_xhat, qn_rstd;                // pmixer LN_a
      std::vector<T> qkv;                                 // (R, 3d): q | k | v
      std::vector<T> probs, dropped, attn_mask;           // (B, H, L, L)
      std::vector<T> ctx, attn_out, drop1;                // (R, d)
      std::vector<T> ln1, ln1_xhat, ln1_rstd;             // (R, d), (R)
      std::vector<T> h1, h1_mask, h2;                     // (R, inner)
      std::vector<T> f, drop2;                            // (R, d)
      std::vector<T> out, ln2_xhat, ln2_rstd;             // (R, d), (R)
    };
    std::vector<Layer> layer;
    std::vector<T> final_xhat, final_rstd, hidden;  // pmixer last_LN; hidden (R, d)
    // backward scratch
    std::vector<T> g_a, g_b, g_ffn, g_qkv, g_tmp, g_scratch;
  };

  Activations make_activations(int capacity) const {
    const int64_t R = int64_t(capacity) * cfg_.max_len, d = cfg_.hidden, I = cfg_.inner;
    const int64_t P = int64_t(capacity) * cfg_.heads * cfg_.max_len * cfg_.max_len;
    Activations a;
    a.capacity = capacity;
    a.seq.resize(R);
    a.valid.resize(R);
    a.emb.resize(R * d);
    a.emb_xhat.resize(R * d);
    a.emb_rstd.resize(R);
    a.emb_mask.resize(R * d);
    a.layer.resize(cfg_.layers);
    for (auto& l : a.layer) {
      if (cfg_.variant == SASRecVariant::pmixer) {
        l.qn.resize(R * d);
        l.qn_xhat.resize(R * d);
        l.qn_rstd.resize(R);
        l.h1_mask.resize(R * I);
      }
      l.qkv.resize(R * 3 * d);
      l.probs.resize(P);
      if (cfg_.attn_dropout > 0) {
        l.dropped.resize(P);
        l.attn_mask.resize(P);
      }
      l.ctx.resize(R * d);
      l.attn_out.resize(R * d);
      l.drop1.resize(R * d);
      l.ln1.resize(R * d);
      l.ln1_xhat.resize(R * d);
      l.ln1_rstd.resize(R);
      l.h1.resize(R * I);
      l.h2.resize(R * I);
      l.f.resize(R * d);
      l.drop2.resize(R * d);
      l.out.resize(R * d);
      l.ln2_xhat.resize(R * d);
      l.ln2_rstd.resize(R);
    }
    a.final_xhat.resize(R * d);
    a.final_rstd.resize(R);
    a.hidden.resize(R * d);
    a.g_a.resize(R * d);
    a.g_b.resize(R * d);
    a.g_tmp.resize(R * d);
    a.g_ffn.resize(R * I);
    a.g_qkv.resize(R * 3 * d);
    a.g_scratch.resize(P);
    return a;
  }

  // Hidden states of every slot after all layers: (B, L, d), valid after forward().
  const T* hidden(const Activations& a) const { return a.hidden.data(); }
  // Output of layer l (0-based; -1 = last), before pmixer's final LayerNorm: (B, L, d).
  const T* layer_output(const Activations& a, int l) const {
    if (l < 0) l += cfg_.layers;
    RD_REQUIRE(l >= 0 && l < cfg_.layers, "layer index out of range");
    return a.layer[l].out.data();
  }

  // seq (batch, L): item ids laid out on this model's padding side, 0 = pad.
  // `train` enables dropout, whose draws are keyed by `key` and the row index.
  void forward(const T* params, Activations& a, const int32_t* seq, int batch, bool train,
               layers::DropoutKey key = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    const int L = cfg_.max_len, d = cfg_.hidden, I = cfg_.inner, H = cfg_.heads;
    const int R = batch * L;
    a.batch = batch;
    a.train = train;
    std::copy_n(seq, R, a.seq.data());
    for (int r = 0; r < R; ++r) a.valid[r] = seq[r] != 0;
    const double ph = train ? cfg_.hidden_dropout : 0.0;
    const double pa = train ? cfg_.attn_dropout : 0.0;
    const bool pm = cfg_.variant == SASRecVariant::pmixer;
    const T* E = params + off_.item;
    const T* Pos = params + off_.pos;
    uint32_t site = 0;

    // Input block: embedding + position, then LN and dropout (recbole) or scale, dropout, mask.
    layers::embedding_forward(a.emb.data(), E, a.seq.data(), R, d,
                              pm ? T(std::sqrt(double(d))) : T(1));
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < d; ++c) a.emb[int64_t(r) * d + c] += Pos[int64_t(r % L) * d + c];
    T* x = a.emb.data();  // the running stream; the last writer owns it
    if (!pm) {
      layers::layer_norm_forward(a.emb.data(), a.emb_xhat.data(), a.emb_rstd.data(), a.emb.data(),
                                 params + off_.ln_in_w, params + off_.ln_in_b, R, d, cfg_.ln_eps);
    }
    layers::dropout_forward(x, a.emb_mask.data(), x, R, d, ph, key, site++);
    if (pm) apply_row_mask(x, a.valid.data(), R, d);

    const layers::AttentionShape shape{batch, L, H, d / H};
    const auto mask = pm ? layers::AttentionMask::causal : layers::AttentionMask::additive_key_padding;
    for (int li = 0; li < cfg_.layers; ++li) {
      const LayerOffsets& o = off_.layer[li];
      auto& l = a.layer[li];
      const T* qsrc = x;
      if (pm) {
        layers::layer_norm_forward(l.qn.data(), l.qn_xhat.data(), l.qn_rstd.data(), x,
                                   params + o.ln_a_w, params + o.ln_a_b, R, d, cfg_.ln_eps);
        qsrc = l.qn.data();
      }
      // q from qsrc, k and v from x, into the three column blocks of qkv (R, 3d).
      layers::linear_forward<B, T>(l.qkv.data(), qsrc, d, params + o.wq, params + o.bq, R, d, d,
                                   3 * d);
      layers::linear_forward<B, T>(l.qkv.data() + d, x, d, params + o.wk, params + o.bk, R, d, d,
                                   3 * d);
      layers::linear_forward<B, T>(l.qkv.data() + 2 * d, x, d, params + o.wv, params + o.bv, R, d,
                                   d, 3 * d);
      layers::attention_forward<B, T>(l.ctx.data(), l.probs.data(), l.dropped.data(),
                                      l.attn_mask.data(), l.qkv.data(), 3 * d, l.qkv.data() + d,
                                      3 * d, l.qkv.data() + 2 * d, 3 * d, a.valid.data(), shape,
                                      mask, pa, key, site++);
      layers::linear_forward<B, T>(l.attn_out.data(), l.ctx.data(), d, params + o.wo,
                                   params + o.bo, R, d, d);
      // Residual 1 into ln1 (as the pre-LN sum), then LN in place.
      if (pm) {
        for (int64_t i = 0; i < int64_t(R) * d; ++i) l.ln1[i] = l.qn[i] + l.attn_out[i];
      } else {
        layers::dropout_forward(l.attn_out.data(), l.drop1.data(), l.attn_out.data(), R, d, ph, key,
                                site++);
        for (int64_t i = 0; i < int64_t(R) * d; ++i) l.ln1[i] = l.attn_out[i] + x[i];
      }
      layers::layer_norm_forward(l.ln1.data(), l.ln1_xhat.data(), l.ln1_rstd.data(), l.ln1.data(),
                                 params + o.ln1_w, params + o.ln1_b, R, d, cfg_.ln_eps);
      // Feed-forward.
      layers::linear_forward<B, T>(l.h1.data(), l.ln1.data(), d, params + o.w1, params + o.b1, R,
                                   d, I);
      if (pm) {
        layers::dropout_forward(l.h2.data(), l.h1_mask.data(), l.h1.data(), R, I, ph, key, site++);
        layers::relu_forward(l.h2.data(), l.h2.data(), int64_t(R) * I);
      } else {
        layers::gelu_forward(l.h2.data(), l.h1.data(), int64_t(R) * I);
      }
      layers::linear_forward<B, T>(l.f.data(), l.h2.data(), I, params + o.w2, params + o.b2, R, I,
                                   d);
      layers::dropout_forward(l.f.data(), l.drop2.data(), l.f.data(), R, d, ph, key, site++);
      for (int64_t i = 0; i < int64_t(R) * d; ++i) l.out[i] = l.f[i] + l.ln1[i];
      if (pm) {
        apply_row_mask(l.out.data(), a.valid.data(), R, d);
      } else {
        layers::layer_norm_forward(l.out.data(), l.ln2_xhat.data(), l.ln2_rstd.data(),
                                   l.out.data(), params + o.ln2_w, params + o.ln2_b, R, d,
                                   cfg_.ln_eps);
      }
      x = l.out.data();
    }
    if (pm) {
      layers::layer_norm_forward(a.hidden.data(), a.final_xhat.data(), a.final_rstd.data(), x,
                                 params + off_.last_ln_w, params + off_.last_ln_b, R, d,
                                 cfg_.ln_eps);
    } else {
      std::copy_n(x, int64_t(R) * d, a.hidden.data());
    }
  }

  // dhidden (batch, L, d): gradient of the loss w.r.t. hidden(). Accumulates into grads.
  void backward(const T* params, T* grads, Activations& a, const T* dhidden) const {
    const int L = cfg_.max_len, d = cfg_.hidden, I = cfg_.inner, H = cfg_.heads;
    const int R = a.batch * L;
    const int64_t Rd = int64_t(R) * d;
    const bool pm = cfg_.variant == SASRecVariant::pmixer;
    const double ph = has_dropout(a) ? cfg_.hidden_dropout : 0.0;
    const double pa = has_dropout(a) ? cfg_.attn_dropout : 0.0;
    T* gx = a.g_a.data();  // gradient w.r.t. the running stream
    T* gt = a.g_b.data();  // second (R, d) buffer
    if (pm) {
      layers::layer_norm_backward(gx, grads + off_.last_ln_w, grads + off_.last_ln_b, dhidden,
                                  a.final_xhat.data(), a.final_rstd.data(),
                                  params + off_.last_ln_w, R, d);
    } else {
      std::copy_n(dhidden, Rd, gx);
    }
    const layers::AttentionShape shape{a.batch, L, H, d / H};
    for (int li = cfg_.layers - 1; li >= 0; --li) {
      const LayerOffsets& o = off_.layer[li];
      auto& l = a.layer[li];
      const T* x = li == 0 ? a.emb.data() : a.layer[li - 1].out.data();
      // gx: gradient w.r.t. this layer's output. gt becomes d(residual sum 2).
      if (pm) {
        apply_row_mask(gx, a.valid.data(), R, d);
        std::copy_n(gx, Rd, gt);
      } else {
        layers::layer_norm_backward(gt, grads + o.ln2_w, grads + o.ln2_b, gx, l.ln2_xhat.data(),
                                    l.ln2_rstd.data(), params + o.ln2_w, R, d);
      }
      // F branch: f' = dropout(f): df = gt * drop2 -> g_tmp
      layers::dropout_backward(a.g_tmp.data(), gt, l.drop2.data(), Rd);
      T* gffn = a.g_ffn.data();
      layers::linear_backward<B, T>(gffn, grads + o.w2, grads + o.b2, a.g_tmp.data(), d,
                                    l.h2.data(), I, params + o.w2, R, I, d);
      if (pm) {
        layers::relu_backward(gffn, gffn, l.h2.data(), int64_t(R) * I);
        if (ph > 0) layers::dropout_backward(gffn, gffn, l.h1_mask.data(), int64_t(R) * I);
      } else {
        layers::gelu_backward(gffn, gffn, l.h1.data(), int64_t(R) * I);
      }
      // d(ln1 output) = residual (gt) + W1 path.
      layers::linear_backward<B, T>(gt, grads + o.w1, grads + o.b1, gffn, I, l.ln1.data(), d,
                                    params + o.w1, R, d, I, /*accumulate_dx=*/true);
      // Through LN1 into the residual sum 1 -> gx (this layer's output gradient is consumed).
      layers::layer_norm_backward(gx, grads + o.ln1_w, grads + o.ln1_b, gt, l.ln1_xhat.data(),
                                  l.ln1_rstd.data(), params + o.ln1_w, R, d);
      // gx = d(sum1). Attention output branch: d(attn_out) (pre-dropout for recbole) -> g_tmp.
      if (pm) {
        std::copy_n(gx, Rd, a.g_tmp.data());
      } else {
        layers::dropout_backward(a.g_tmp.data(), gx, l.drop1.data(), Rd);
      }
      layers::linear_backward<B, T>(gt, grads + o.wo, grads + o.bo, a.g_tmp.data(), d,
                                    l.ctx.data(), d, params + o.wo, R, d, d);
      // gt = d(ctx). Attention core -> g_qkv (R, 3d).
      T* gqkv = a.g_qkv.data();
      layers::attention_backward<B, T>(gqkv, 3 * d, gqkv + d, 3 * d, gqkv + 2 * d, 3 * d,
                                       a.g_scratch.data(), gt, l.probs.data(), l.dropped.data(),
                                       l.attn_mask.data(), l.qkv.data(), 3 * d, l.qkv.data() + d,
                                       3 * d, l.qkv.data() + 2 * d, 3 * d, shape, pa);
      if (pm) {
        // gx holds d(sum1) = d(Qn) from the residual; add the q projection, then LN_a.
        layers::linear_backward<B, T>(gx, grads + o.wq, grads + o.bq, gqkv, 3 * d, l.qn.data(), d,
                                      params + o.wq, R, d, d, true);
        // k, v come from x: gt = dx (written), then += LN_a backward of d(Qn).
        layers::linear_backward<B, T>(gt, grads + o.wk, grads + o.bk, gqkv + d, 3 * d, x, d,
                                      params + o.wk, R, d, d);
        layers::linear_backward<B, T>(gt, grads + o.wv, grads + o.bv, gqkv + 2 * d, 3 * d, x, d,
                                      params + o.wv, R, d, d, true);
        layers::layer_norm_backward(gt, grads + o.ln_a_w, grads + o.ln_a_b, gx,
                                    l.qn_xhat.data(), l.qn_rstd.data(), params + o.ln_a_w, R, d,
                                    true);
        std::swap(gx, gt);
      } else {
        // Residual: dx = d(sum1) (already in gx) + the three projections.
        layers::linear_backward<B, T>(gx, grads + o.wq, grads + o.bq, gqkv, 3 * d, x, d,
                                      params + o.wq, R, d, d, true);
        layers::linear_backward<B, T>(gx, grads + o.wk, grads + o.bk, gqkv + d, 3 * d, x, d,
                                      params + o.wk, R, d, d, true);
        layers::linear_backward<B, T>(gx, grads + o.wv, grads + o.bv, gqkv + 2 * d, 3 * d, x, d,
                                      params + o.wv, R, d, d, true);
      }
    }
    // Input block.
    if (pm) apply_row_mask(gx, a.valid.data(), R, d);
    layers::dropout_backward(gx, gx, a.emb_mask.data(), Rd);
    if (!pm) {
      layers::layer_norm_backward(gt, grads + off_.ln_in_w, grads + off_.ln_in_b, gx,
                                  a.emb_xhat.data(), a.emb_rstd.data(), params + off_.ln_in_w, R,
                                  d);
      std::swap(gx, gt);
    }
    T* gpos = grads + off_.pos;
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < d; ++c) gpos[int64_t(r % L) * d + c] += gx[int64_t(r) * d + c];
    layers::embedding_backward(grads + off_.item, gx, a.seq.data(), R, d, /*skip_pad=*/true,
                               pm ? T(std::sqrt(double(d))) : T(1));
  }

 private:
  struct LayerOffsets {
    size_t ln_a_w = 0, ln_a_b = 0;  // pmixer only
    size_t wq, bq, wk, bk, wv, bv, wo, bo, ln1_w, ln1_b, w1, b1, w2, b2, ln2_w = 0, ln2_b = 0;
  };
  struct Offsets {
    size_t item, pos, ln_in_w = 0, ln_in_b = 0, last_ln_w = 0, last_ln_b = 0;
    std::vector<LayerOffsets> layer;
  };

  // Tensor names and order match tools/torch_sasrec.py (and thus the golden fixtures).
  void build_layout() {
    const int N = cfg_.n_items, L = cfg_.max_len, d = cfg_.hidden, I = cfg_.inner;
    off_.item = layout_.add("item_embedding", {N, d});
    off_.pos = layout_.add("position_embedding", {L, d});
    const bool pm = cfg_.variant == SASRecVariant::pmixer;
    if (!pm) {
      off_.ln_in_w = layout_.add("ln_in.weight", {d});
      off_.ln_in_b = layout_.add("ln_in.bias", {d});
    }
    for (int l = 0; l < cfg_.layers; ++l) {
      const std::string p = "layer" + std::to_string(l) + ".";
      LayerOffsets o;
      if (pm) {
        o.ln_a_w = layout_.add(p + "attn_ln.weight", {d});
        o.ln_a_b = layout_.add(p + "attn_ln.bias", {d});
        // in_proj (3d, d) stacked q; k; v and its bias (3d): row blocks give the three views.
        const size_t w = layout_.add(p + "attn.in_proj_weight", {3 * d, d});
        const size_t b = layout_.add(p + "attn.in_proj_bias", {3 * d});
        o.wq = w, o.wk = w + size_t(d) * d, o.wv = w + 2 * size_t(d) * d;
        o.bq = b, o.bk = b + d, o.bv = b + 2 * d;
        o.wo = layout_.add(p + "attn.out_proj.weight", {d, d});
        o.bo = layout_.add(p + "attn.out_proj.bias", {d});
        o.ln1_w = layout_.add(p + "ffn_ln.weight", {d});
        o.ln1_b = layout_.add(p + "ffn_ln.bias", {d});
        o.w1 = layout_.add(p + "ffn.conv1.weight", {d, d});
        o.b1 = layout_.add(p + "ffn.conv1.bias", {d});
        o.w2 = layout_.add(p + "ffn.conv2.weight", {d, d});
        o.b2 = layout_.add(p + "ffn.conv2.bias", {d});
      } else {
        o.wq = layout_.add(p + "attn.q.weight", {d, d});
        o.bq = layout_.add(p + "attn.q.bias", {d});
        o.wk = layout_.add(p + "attn.k.weight", {d, d});
        o.bk = layout_.add(p + "attn.k.bias", {d});
        o.wv = layout_.add(p + "attn.v.weight", {d, d});
        o.bv = layout_.add(p + "attn.v.bias", {d});
        o.wo = layout_.add(p + "attn.o.weight", {d, d});
        o.bo = layout_.add(p + "attn.o.bias", {d});
        o.ln1_w = layout_.add(p + "attn_ln.weight", {d});
        o.ln1_b = layout_.add(p + "attn_ln.bias", {d});
        o.w1 = layout_.add(p + "ffn.w1.weight", {I, d});
        o.b1 = layout_.add(p + "ffn.w1.bias", {I});
        o.w2 = layout_.add(p + "ffn.w2.weight", {d, I});
        o.b2 = layout_.add(p + "ffn.w2.bias", {d});
        o.ln2_w = layout_.add(p + "ffn_ln.weight", {d});
        o.ln2_b = layout_.add(p + "ffn_ln.bias", {d});
      }
      off_.layer.push_back(o);
    }
    if (pm) {
      off_.last_ln_w = layout_.add("last_ln.weight", {d});
      off_.last_ln_b = layout_.add("last_ln.bias", {d});
    }
  }

  static void fill(T* w, size_t n, T v) { std::fill(w, w + n, v); }
  template <class F>
  static void random_fill(T* w, size_t n, uint64_t seed, int tensor, F draw) {
    for (size_t i = 0; i < n; i += 2) {
      const auto u = uniform4(seed, Stream::init, uint32_t(tensor), 0, uint32_t(i >> 32),
                              uint32_t(i));
      w[i] = draw(u[0], u[1]);
      if (i + 1 < n) w[i + 1] = draw(u[2], u[3]);
    }
  }
  static void apply_row_mask(T* x, const uint8_t* valid, int R, int d) {
    for (int r = 0; r < R; ++r)
      if (!valid[r]) std::fill(x + int64_t(r) * d, x + int64_t(r + 1) * d, T(0));
  }
  // Whether the last forward drew dropout masks (backward then reads them).
  static bool has_dropout(const Activations& a) { return a.train; }

  SASRecConfig cfg_;
  ParamLayout layout_;
  Offsets off_;
};

}  // namespace recdistill
