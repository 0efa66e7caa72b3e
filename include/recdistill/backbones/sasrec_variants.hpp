// recdistill/backbones/sasrec_variants.hpp: SASRec's settings, activations and its two
// variants as encoder policies (a type each, chosen by name at the plugin edge).
//
// `recbole` (sasrec::RecBole; RUCAIBox/RecBole sasrec.py; specs/backbones.md §2.1), right padding:
//   X = Dropout(LN_in(E[seq] + P)); per block (post-LN, BERT style):
//   X = LN1(Dropout(MHA(X) Wo^T + bo) + X);  X = LN2(Dropout(W2 GELU(W1 X + b1) + b2) + X)
//   attention mask: causal and key != pad, added as -10000.
// `pmixer` (sasrec::Pmixer; layout `legacy`, the profile-distillation seed; §2.3), left padding:
//   X = Dropout(sqrt(d) E[seq] + P) * m; per block: Qn = LN_a(X); A = MHA(q=Qn, k=v=X)
//   with a causal-only mask (pad keys leak their biases, as upstream); Y = LN_f(Qn + A);
//   X = (Y + Dropout(conv2(ReLU(Dropout(conv1(Y)))))) * m; finally H = last_LN(X).
//
// A variant provides: its parameters (add_*_params), its input stage (after embedding +
// position), its block, its final stage, each with forward and backward as sequences of backend
// ops, plus its padding side, embedding scale and init tweaks.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "recdistill/backbones/encoder.hpp"
#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"
#include "recdistill/core/padding.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/layers/layers.hpp"

namespace recdistill {

enum class SASRecVariant { recbole, pmixer };

inline constexpr std::array<std::pair<std::string_view, SASRecVariant>, 2> enum_names(SASRecVariant) {
  return {{{"recbole", SASRecVariant::recbole}, {"pmixer", SASRecVariant::pmixer}}};
}

// The encoder's fields (max_len L, hidden d, layers, heads, inner, hidden_dropout, attn_dropout,
// ln_eps) come from encoder::Dims, whose defaults are SASRec's.
struct SASRecConfig : encoder::Dims {
  SASRecVariant variant = SASRecVariant::recbole;
  int n_items = 0;  // N: item ids including the pad id 0
  double init_range = 0.02;
  // pmixer only: ECIR's sample, the last maxlen ids, so the model sees L = maxlen - 1 slots in
  // training and evaluation and the last position row is never used (specs/backbones.md §2.3).
  bool seed_window = false;

  // The slots the model sees, L: maxlen, or maxlen - 1 with seed_window.
  int slots() const { return seed_window ? max_len - 1 : max_len; }

  // The `model` keys (core/keys.hpp). Defaults written as "derived" are filled from other keys
  // by resolve_defaults below, unless the key was given.
  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(variant, Key("model", "variant", "which reference SASRec to match (specs/backbones.md §2)")
                   .weights().preset("upstream", "pmixer").for_model("SASRecLLM", "pmixer"));
    v(max_len, Key("model", "maxlen", "window length L and size of the position table").range(1, 4096).weights());
    v(seed_window, Key("model", "seed_window", "pmixer: ECIR's sample of the last maxlen ids, so the model sees maxlen - 1 "
                                               "slots (the last position row unused); the recbole variant sees maxlen")
                       .weights().preset("upstream", "true").for_model("SASRecLLM", "true"));
    v(hidden, Key("model", "hidden_units", "hidden size d").range(1, 8192).weights()
                  .deprecated_alias("model.embedding_dim"));
    v(layers, Key("model", "num_blocks", "number of transformer blocks").range(1, 64).weights()
                  .deprecated_alias("model.num_layers"));
    v(heads, Key("model", "num_heads", "attention heads (must divide hidden_units)").range(1, 256).weights());
    v(inner, Key("model", "inner_size", "feed-forward width").range(1, 65536).weights()
                 .derived_default("4 × hidden_units (recbole); hidden_units (pmixer)"));
    v(hidden_dropout, Key("model", "dropout_rate", "dropout on embeddings and block outputs").range_open(0, 1).resume());
    v(attn_dropout, Key("model", "attn_dropout_rate", "dropout on attention weights").range_open(0, 1).resume()
                        .derived_default("dropout_rate"));
    v(ln_eps, Key("model", "layer_norm_eps", "layer-norm epsilon").range(1e-30, 1).weights()
                  .derived_default("1e-12 (recbole), 1e-08 (pmixer)"));
    v(init_range, Key("model", "initializer_range", "std of the normal initialisation").range(0, 10).resume());
  }

  // Derived defaults of keys not given (`given(path)` tells which were).
  template <class Given>
  void resolve_defaults(const Given& given) {
    if (!given("model.inner_size")) inner = variant == SASRecVariant::pmixer ? hidden : 4 * hidden;
    if (!given("model.attn_dropout_rate")) attn_dropout = hidden_dropout;
    if (!given("model.layer_norm_eps")) ln_eps = variant == SASRecVariant::pmixer ? 1e-8 : 1e-12;
  }

  void validate() const {
    if (n_items < 2) fail("model: need at least one item besides the pad id, got n_items=", n_items);
    if (max_len < 1) fail("model.maxlen: expected >= 1, found ", max_len);
    if (seed_window && variant != SASRecVariant::pmixer)
      fail("model.seed_window: ECIR's window is the pmixer variant's (model.variant: pmixer); the recbole variant "
           "sees maxlen slots");
    if (seed_window && max_len < 2)
      fail("model.maxlen: expected >= 2 with model.seed_window (the model sees maxlen - 1 slots), found ", max_len);
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

namespace sasrec {

inline const char* variant_name(SASRecVariant v) {
  return v == SASRecVariant::pmixer ? "pmixer" : "recbole";
}

// Calls f.template operator()<V>() with the variant policy of v (defined in sasrec.hpp).
template <class F>
decltype(auto) with_variant(SASRecVariant v, F&& f);

using encoder::BlockOffsets;
template <class B, class T>
using Activations = encoder::Activations<B, T>;
template <class B, class T>
using Step = encoder::Step<B, T>;
using encoder::mha_backward;
using encoder::mha_forward;

struct Offsets {
  size_t item = 0, pos = 0, ln_in_w = 0, ln_in_b = 0, last_ln_w = 0, last_ln_b = 0;
  std::vector<BlockOffsets> layer;
};

// ---- recbole: post-LN blocks (encoder.hpp's), causal and key-padding mask ---------------- ----------------------------------------------------------
struct RecBole {
  static constexpr SASRecVariant id = SASRecVariant::recbole;
  static constexpr const char* name = "recbole";
  static constexpr PaddingSide padding = PaddingSide::right;
  static constexpr bool first_item_quirk = false;
  static constexpr bool query_pre_ln = false;
  static double embedding_scale(int) { return 1.0; }
  static void normalise(SASRecConfig&) {}
  static void init_extra(void*, const Offsets&, const SASRecConfig&) {}

  static void add_input_params(ParamLayout& p, Offsets& o, const SASRecConfig& c) {
    o.ln_in_w = p.add("ln_in.weight", {c.hidden});
    o.ln_in_b = p.add("ln_in.bias", {c.hidden});
  }
  static BlockOffsets add_block_params(ParamLayout& p, const std::string& s, const SASRecConfig& c) {
    return encoder::add_post_ln_block_params(p, s, c);
  }
  static void add_final_params(ParamLayout&, Offsets&, const SASRecConfig&) {}

  // emb (R, d) = Dropout(LN_in(emb)), in place.
  template <class B, class T>
  static void input_forward(CPtr<B, T> w, const Offsets& o, Activations<B, T>& a, Step<B, T>& st) {
    encoder::ln_dropout_forward<B, T>(w + o.ln_in_w, w + o.ln_in_b, a, st);
  }
  // gx: d(input stage output) in, d(emb before LN) out (the two buffers may swap).
  template <class B, class T>
  static void input_backward(CPtr<B, T> w, Ptr<B, T> g, const Offsets& o, Activations<B, T>& a,
                             Ptr<B, T>& gx, Ptr<B, T>& gt, Step<B, T>& st) {
    encoder::ln_dropout_backward<B, T>(w + o.ln_in_w, g + o.ln_in_w, g + o.ln_in_b, a, gx, gt, st);
  }

  template <class B, class T>
  static void block_forward(CPtr<B, T> w, const BlockOffsets& o, typename Activations<B, T>::Layer& l,
                            CPtr<B, T> x, Step<B, T>& st) {
    encoder::post_ln_block_forward<B, T>(w, o, l, x, AttentionMask::additive_key_padding, st);
  }
  template <class B, class T>
  static void block_backward(CPtr<B, T> w, Ptr<B, T> g, const BlockOffsets& o,
                             typename Activations<B, T>::Layer& l, CPtr<B, T> x, Activations<B, T>& a,
                             Ptr<B, T>& gx, Ptr<B, T>& gt, Step<B, T>& st) {
    encoder::post_ln_block_backward<B, T>(w, g, o, l, x, a, gx, gt, st);
  }

  // hidden (R, d) = x: the last block's output is the final output.
  template <class B, class T>
  static void final_forward(CPtr<B, T>, const Offsets&, Activations<B, T>& a, CPtr<B, T> x,
                            Step<B, T>& st) {
    B::template copy<T>(a.hidden.data(), x, size_t(st.R) * st.cfg.hidden);
  }
  // gx (R, d) = d_final.
  template <class B, class T>
  static void final_backward(CPtr<B, T>, Ptr<B, T>, const Offsets&, Activations<B, T>&,
                             CPtr<B, T> d_final, Ptr<B, T> gx, Step<B, T>& st) {
    B::template copy<T>(gx, d_final, size_t(st.R) * st.cfg.hidden);
  }
};

// ---- pmixer: query-pre-LN blocks, a final LayerNorm ------------------------------------
struct Pmixer {
  static constexpr SASRecVariant id = SASRecVariant::pmixer;
  static constexpr const char* name = "pmixer";
  static constexpr PaddingSide padding = PaddingSide::left;
  static constexpr bool first_item_quirk = true;
  static constexpr bool query_pre_ln = true;
  static double embedding_scale(int d) { return std::sqrt(double(d)); }
  static void normalise(SASRecConfig& c) { c.inner = c.hidden; }
  // The pad row of the item table starts at zero (PyTorch padding_idx).
  template <class T>
  static void init_extra(T* params, const Offsets& o, const SASRecConfig& c) {
    std::fill(params + o.item, params + o.item + c.hidden, T(0));
  }

  static void add_input_params(ParamLayout&, Offsets&, const SASRecConfig&) {}
  static BlockOffsets add_block_params(ParamLayout& p, const std::string& s, const SASRecConfig& c) {
    const int d = c.hidden;
    BlockOffsets o;
    o.ln_a_w = p.add(s + "attn_ln.weight", {d});
    o.ln_a_b = p.add(s + "attn_ln.bias", {d});
    // in_proj (3d, d) stacked q; k; v and its bias (3d): row blocks give the three views.
    const size_t w = p.add(s + "attn.in_proj_weight", {3 * d, d});
    const size_t b = p.add(s + "attn.in_proj_bias", {3 * d});
    o.wq = w, o.wk = w + size_t(d) * d, o.wv = w + 2 * size_t(d) * d;
    o.bq = b, o.bk = b + d, o.bv = b + 2 * d;
    o.wo = p.add(s + "attn.out_proj.weight", {d, d});
    o.bo = p.add(s + "attn.out_proj.bias", {d});
    o.ln1_w = p.add(s + "ffn_ln.weight", {d});
    o.ln1_b = p.add(s + "ffn_ln.bias", {d});
    o.w1 = p.add(s + "ffn.conv1.weight", {d, d});
    o.b1 = p.add(s + "ffn.conv1.bias", {d});
    o.w2 = p.add(s + "ffn.conv2.weight", {d, d});
    o.b2 = p.add(s + "ffn.conv2.bias", {d});
    return o;
  }
  static void add_final_params(ParamLayout& p, Offsets& o, const SASRecConfig& c) {
    o.last_ln_w = p.add("last_ln.weight", {c.hidden});
    o.last_ln_b = p.add("last_ln.bias", {c.hidden});
  }

  // emb (R, d) = Dropout(emb) * m, in place.
  template <class B, class T>
  static void input_forward(CPtr<B, T>, const Offsets&, Activations<B, T>& a, Step<B, T>& st) {
    const int R = st.R, d = st.cfg.hidden;
    layers::dropout_forward<B, T>(a.emb.data(), a.emb_mask.data(), a.emb.data(), R, d, st.ph, st.key,
                                  st.site++, st.row0());
    ops::mask_rows<B>(a.emb.data(), st.valid, R, d);
  }
  template <class B, class T>
  static void input_backward(CPtr<B, T>, Ptr<B, T>, const Offsets&, Activations<B, T>& a,
                             Ptr<B, T>& gx, Ptr<B, T>&, Step<B, T>& st) {
    const int R = st.R, d = st.cfg.hidden;
    ops::mask_rows<B>(gx, st.valid, R, d);
    layers::dropout_backward<B, T>(gx, gx, a.emb_mask.data(), int64_t(R) * d);
  }

  // Qn = LN_a(x); A = MHA(q=Qn, k=v=x); y = LN_f(Qn + A); out = (y + Dropout(conv2(ReLU(
  // Dropout(conv1(y)))))) * m.
  template <class B, class T>
  static void block_forward(CPtr<B, T> w, const BlockOffsets& o, typename Activations<B, T>::Layer& l,
                            CPtr<B, T> x, Step<B, T>& st) {
    const int R = st.R, d = st.cfg.hidden, I = st.cfg.inner;
    const int64_t Rd = int64_t(R) * d;
    layers::layer_norm_forward<B, T>(l.qn.data(), l.qn_xhat.data(), l.qn_rstd.data(), x, w + o.ln_a_w,
                                     w + o.ln_a_b, R, d, st.cfg.ln_eps);
    mha_forward<B, T>(w, o, l, l.qn.data(), x, AttentionMask::causal, st);
    ops::add<B>(l.ln1.data(), CPtr<B, T>(l.qn.data()), CPtr<B, T>(l.attn_out.data()), Rd);
    layers::layer_norm_forward<B, T>(l.ln1.data(), l.ln1_xhat.data(), l.ln1_rstd.data(), l.ln1.data(),
                                     w + o.ln1_w, w + o.ln1_b, R, d, st.cfg.ln_eps);
    layers::linear_forward<B, T>(l.h1.data(), l.ln1.data(), d, w + o.w1, w + o.b1, R, d, I);
    layers::dropout_forward<B, T>(l.h2.data(), l.h1_mask.data(), l.h1.data(), R, I, st.ph, st.key,
                                  st.site++, st.row0());
    layers::relu_forward<B, T>(l.h2.data(), l.h2.data(), int64_t(R) * I);
    layers::linear_forward<B, T>(l.f.data(), l.h2.data(), I, w + o.w2, w + o.b2, R, I, d);
    layers::dropout_forward<B, T>(l.f.data(), l.drop2.data(), l.f.data(), R, d, st.ph, st.key, st.site++, st.row0());
    ops::add<B>(l.out.data(), CPtr<B, T>(l.f.data()), CPtr<B, T>(l.ln1.data()), Rd);
    ops::mask_rows<B>(l.out.data(), st.valid, R, d);
  }

  template <class B, class T>
  static void block_backward(CPtr<B, T> w, Ptr<B, T> g, const BlockOffsets& o,
                             typename Activations<B, T>::Layer& l, CPtr<B, T> x, Activations<B, T>& a,
                             Ptr<B, T>& gx, Ptr<B, T>& gt, Step<B, T>& st) {
    const int R = st.R, d = st.cfg.hidden, I = st.cfg.inner;
    const int64_t Rd = int64_t(R) * d;
    ops::mask_rows<B>(gx, st.valid, R, d);
    B::template copy<T>(gt, CPtr<B, T>(gx), size_t(Rd));  // gt = d(residual sum 2)
    layers::dropout_backward<B, T>(a.g_tmp.data(), gt, l.drop2.data(), Rd);
    layers::linear_backward<B, T>(a.g_ffn.data(), g + o.w2, g + o.b2, a.g_tmp.data(), d, l.h2.data(), I,
                                  w + o.w2, R, I, d);
    layers::relu_backward<B, T>(a.g_ffn.data(), a.g_ffn.data(), l.h2.data(), int64_t(R) * I);
    if (st.ph > 0)
      layers::dropout_backward<B, T>(a.g_ffn.data(), a.g_ffn.data(), l.h1_mask.data(), int64_t(R) * I);
    layers::linear_backward<B, T>(gt, g + o.w1, g + o.b1, a.g_ffn.data(), I, l.ln1.data(), d, w + o.w1,
                                  R, d, I, /*accumulate_dx=*/true);
    layers::layer_norm_backward<B, T>(gx, g + o.ln1_w, g + o.ln1_b, gt, l.ln1_xhat.data(),
                                      l.ln1_rstd.data(), w + o.ln1_w, R, d);
    // gx = d(Qn + A): A's branch (no dropout) through Wo and the core -> g_qkv.
    mha_backward<B, T>(w, g, o, l, a, gx, gt, st);
    Ptr<B, T> gqkv = a.g_qkv.data();
    // gx holds d(Qn) from the residual; add the q projection, then LN_a into gt += d(x).
    layers::linear_backward<B, T>(gx, g + o.wq, g + o.bq, gqkv, 3 * d, l.qn.data(), d, w + o.wq, R, d,
                                  d, true);
    // k, v come from x: gt = dx (written), then += LN_a backward of d(Qn).
    layers::linear_backward<B, T>(gt, g + o.wk, g + o.bk, gqkv + d, 3 * d, x, d, w + o.wk, R, d, d);
    layers::linear_backward<B, T>(gt, g + o.wv, g + o.bv, gqkv + 2 * d, 3 * d, x, d, w + o.wv, R, d, d,
                                  true);
    layers::layer_norm_backward<B, T>(gt, g + o.ln_a_w, g + o.ln_a_b, gx, l.qn_xhat.data(),
                                      l.qn_rstd.data(), w + o.ln_a_w, R, d, true);
    std::swap(gx, gt);
  }

  // hidden (R, d) = last_LN(x)
  template <class B, class T>
  static void final_forward(CPtr<B, T> w, const Offsets& o, Activations<B, T>& a, CPtr<B, T> x,
                            Step<B, T>& st) {
    layers::layer_norm_forward<B, T>(a.hidden.data(), a.final_xhat.data(), a.final_rstd.data(), x,
                                     w + o.last_ln_w, w + o.last_ln_b, st.R, st.cfg.hidden,
                                     st.cfg.ln_eps);
  }
  template <class B, class T>
  static void final_backward(CPtr<B, T> w, Ptr<B, T> g, const Offsets& o, Activations<B, T>& a,
                             CPtr<B, T> d_final, Ptr<B, T> gx, Step<B, T>& st) {
    layers::layer_norm_backward<B, T>(gx, g + o.last_ln_w, g + o.last_ln_b, d_final, a.final_xhat.data(),
                                      a.final_rstd.data(), w + o.last_ln_w, st.R, st.cfg.hidden);
  }
};

}  // namespace sasrec
}  // namespace recdistill
