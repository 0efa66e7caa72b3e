// recdistill/backbones/bert4rec.hpp: BERT4Rec (Sun et al., CIKM 2019) on the engine's contracts
// and the encoder SASRec shares (backbones/encoder.hpp): the same post-LN blocks with a
// bidirectional mask (every real key, and the [mask] id is a real key), a [mask] token, and
// variant-specific embeddings and output layer (specs/backbones.md §3):
//
//   BERT4Rec<B>                        `recbole` (default, §3.1), right padding:
//     X = Dropout(LN_in(E[seq] + P));  blocks;  Z = LN_o(GELU(X W_o^T + b_o));
//     logits = Z E[0:N]^T + c (tied to the item table, the [mask] row N excluded; bias c)
//   BERT4Rec<B, T, bert4rec::Hf>       `hf` (§3.2, the profile-distillation seed), left padding:
//     X = Dropout(LN_in(W[seq] + T0 + P));  blocks;  Z = X;  logits = Z W_head^T + b_head
//     over all N + 1 columns (a separate head; the [mask] column included)
//
// Ids: 0 = pad, 1..N-1 items, N = [mask]; both item tables have N + 1 rows. output() is Z,
// the state the output layer reads; block_output(k) the encoder's hidden states.
// Two output views: head() is the training softmax (the columns above); scorer() is what
// evaluation and recommend rank: items 0..N-1 only (the [mask] column never competes).
//
// Evaluation queries put [mask] after the history and read Z there: `recbole` as RecBole's
// reconstruct_test_data does, dropping the oldest of the last L items, so the history fills
// at most L - 1 slots (even when shorter, RecBole loses its first item); `hf` as the seed's
// evaluation: the last L - 1 items, left-padded, then [mask] in slot L - 1.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backbones/cloze_batching.hpp"
#include "recdistill/backbones/encoder.hpp"
#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"
#include "recdistill/core/padding.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/eval/case.hpp"
#include "recdistill/layers/layers.hpp"

namespace recdistill {

enum class BERT4RecVariant { recbole, hf };
inline constexpr std::array<std::pair<std::string_view, BERT4RecVariant>, 2> enum_names(BERT4RecVariant) {
  return {{{"recbole", BERT4RecVariant::recbole}, {"hf", BERT4RecVariant::hf}}};
}

// The seed's two attention masks for the `hf` variant (specs/backbones.md §3.2): `dataset`
// shows real items only, so a [mask] drawn on a pad slot stays invisible; `nonzero` shows
// every non-zero input, masked pads included.
enum class HfAttnMask { dataset, nonzero };
inline constexpr std::array<std::pair<std::string_view, HfAttnMask>, 2> enum_names(HfAttnMask) {
  return {{{"dataset", HfAttnMask::dataset}, {"nonzero", HfAttnMask::nonzero}}};
}

// Who draws mask-last or cloze (docs/training.md): each row on its own (masks independent of the
// batch size), or once per batch for all its rows (RecBole's MaskItemSequence).
enum class MaskLastDraw { row, batch };
inline constexpr std::array<std::pair<std::string_view, MaskLastDraw>, 2> enum_names(MaskLastDraw) {
  return {{{"row", MaskLastDraw::row}, {"batch", MaskLastDraw::batch}}};
}

// The encoder's fields come from encoder::Dims (BERT4Rec's dropout defaults are 0.2).
struct BERT4RecConfig : encoder::Dims {
  BERT4RecVariant variant = BERT4RecVariant::recbole;
  int n_items = 0;  // N: item ids including the pad id 0 (the [mask] id is N)
  double init_range = 0.02;
  double mask_ratio = 0.2;  // P(a slot becomes [mask]) in a cloze row
  double ft_ratio = 0.5;    // P(a row is a mask-last row instead)
  MaskLastDraw mask_last_draw = MaskLastDraw::row;
  HfAttnMask hf_attn_mask = HfAttnMask::dataset;

  BERT4RecConfig() { hidden_dropout = attn_dropout = 0.2; }

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(variant, Key("model", "variant", "which reference BERT4Rec to match (specs/backbones.md §3)")
                   .weights().preset("upstream", "hf").for_model("BERT4RecLLM", "hf"));
    v(max_len, Key("model", "maxlen", "window length L and size of the position table (a history and the [mask])")
                   .range(2, 4096).weights());
    v(hidden, Key("model", "hidden_units", "hidden size d").range(1, 8192).weights()
                  .deprecated_alias("model.hidden_size").deprecated_alias("model.embedding_dim"));
    v(layers, Key("model", "num_blocks", "number of transformer blocks").range(1, 64).weights()
                  .deprecated_alias("model.n_layers").deprecated_alias("model.num_layers"));
    v(heads, Key("model", "num_heads", "attention heads (must divide hidden_units)").range(1, 256).weights()
                 .deprecated_alias("model.n_heads"));
    v(inner, Key("model", "inner_size", "feed-forward width").range(1, 65536).weights()
                 .derived_default("4 × hidden_units"));
    v(hidden_dropout, Key("model", "dropout_rate", "dropout on embeddings and block outputs").range_open(0, 1).resume()
                          .deprecated_alias("model.hidden_dropout_prob"));
    v(attn_dropout, Key("model", "attn_dropout_rate", "dropout on attention weights").range_open(0, 1).resume()
                        .derived_default("dropout_rate").deprecated_alias("model.attn_dropout_prob"));
    v(ln_eps, Key("model", "layer_norm_eps", "layer-norm epsilon").range(1e-30, 1).weights());
    v(init_range, Key("model", "initializer_range", "std of the normal initialisation").range(0, 10).resume());
    v(mask_ratio, Key("model", "mask_ratio", "probability that a slot of a cloze row becomes [mask]")
                      .range_open(0, 1).resume().derived_default("0.2 (recbole), 0.15 (hf)")
                      .deprecated_alias("training.mask_prob"));  // the profile-distillation seed's name
    v(ft_ratio, Key("model", "ft_ratio", "probability that a row is mask-last (only its last item masked) "
                                         "instead of cloze")
                    .range(0, 1).resume().derived_default("0.5 (recbole), 0 (hf)"));
    v(mask_last_draw, Key("model", "mask_last_draw", "`row`: each row draws mask-last or cloze on its own; "
                                                     "`batch`: one draw per batch for all its rows (RecBole)")
                          .resume());
    v(hf_attn_mask, Key("model", "hf_attn_mask", "hf: `dataset` hides a [mask] drawn on a pad slot, "
                                                 "`nonzero` shows it (the seed's plain baseline)").resume());
  }

  template <class Given>
  void resolve_defaults(const Given& given) {
    if (!given("model.inner_size")) inner = 4 * hidden;
    if (!given("model.attn_dropout_rate")) attn_dropout = hidden_dropout;
    const bool hf = variant == BERT4RecVariant::hf;
    if (!given("model.mask_ratio")) mask_ratio = hf ? 0.15 : 0.2;
    if (!given("model.ft_ratio")) ft_ratio = hf ? 0.0 : 0.5;
  }

  void validate() const {
    if (n_items < 2) fail("model: need at least one item besides the pad id, got n_items=", n_items);
    if (max_len < 2) fail("model.maxlen: BERT4Rec needs >= 2 (a history and the [mask]), found ", max_len);
    if (hidden < 1 || heads < 1 || hidden % heads != 0)
      fail("model.hidden_units (", hidden, ") must be a positive multiple of model.num_heads (", heads, ")");
    if (layers < 1) fail("model.num_blocks: expected >= 1, found ", layers);
    if (inner < 1) fail("model.inner_size: expected >= 1, found ", inner);
    if (!(hidden_dropout >= 0 && hidden_dropout < 1) || !(attn_dropout >= 0 && attn_dropout < 1))
      fail("model.dropout_rate: expected a value in [0, 1), found ", hidden_dropout, " / ", attn_dropout);
  }
};

namespace bert4rec {

inline const char* variant_name(BERT4RecVariant v) { return v == BERT4RecVariant::hf ? "hf" : "recbole"; }

struct Offsets {
  size_t item = 0, pos = 0, type = 0, ln_in_w = 0, ln_in_b = 0;
  std::vector<encoder::BlockOffsets> layer;
  size_t head_w = 0, head_b = 0, head_ln_w = 0, head_ln_b = 0, out_bias = 0;
};

struct RecBole {
  static constexpr BERT4RecVariant id = BERT4RecVariant::recbole;
  static constexpr const char* name = "recbole";
  static constexpr PaddingSide padding = PaddingSide::right;
};
struct Hf {
  static constexpr BERT4RecVariant id = BERT4RecVariant::hf;
  static constexpr const char* name = "hf";
  static constexpr PaddingSide padding = PaddingSide::left;
};

// Calls f.template operator()<V>() with the variant policy of v.
template <class F>
decltype(auto) with_variant(BERT4RecVariant v, F&& f) {
  if (v == BERT4RecVariant::hf) return f.template operator()<Hf>();
  return f.template operator()<RecBole>();
}

}  // namespace bert4rec

template <Backend B, class T = float, class V = bert4rec::RecBole>
class BERT4Rec {
  static constexpr bool kHf = V::id == BERT4RecVariant::hf;

 public:
  using BackendType = B;
  using Scalar = T;
  using Variant = V;
  using Activations = encoder::Activations<B, T>;
  using Batch = SeqBatch<B>;
  // Profile distillation numbers this model's taps as HuggingFace's hidden-state list: 0 is the
  // embedding output, j the output of layer j (specs/profile-distillation.md §2).
  static constexpr bool hidden_states_include_embedding = true;

  explicit BERT4Rec(BERT4RecConfig cfg) : cfg_(cfg) {
    if (cfg_.variant != V::id)
      fail("BERT4Rec: model.variant is '", bert4rec::variant_name(cfg_.variant), "' but this model type is the '",
           V::name, "' variant (pick the type with bert4rec::with_variant)");
    cfg_.validate();
    build_layout();
  }

  const BERT4RecConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return cfg_.layers; }
  int max_len() const { return cfg_.max_len; }
  int hidden_size() const { return cfg_.hidden; }
  int n_items() const { return cfg_.n_items; }
  int32_t mask_id() const { return cfg_.n_items; }
  static constexpr PaddingSide padding_side() { return V::padding; }

  // The training softmax: recbole E[0:N] + c (N columns), hf the head (N + 1 columns).
  Scorer head() const {
    if constexpr (kHf) return {off_.head_w, int64_t(off_.head_b), cfg_.n_items + 1, cfg_.hidden};
    else return {off_.item, int64_t(off_.out_bias), cfg_.n_items, cfg_.hidden};
  }
  // What evaluation ranks: the head's item columns 0..N-1 (never the [mask] column).
  Scorer scorer() const {
    Scorer s = head();
    s.n_items = cfg_.n_items;
    return s;
  }

  // Matrix-product FLOPs of one forward pass over `rows` sequences (the encoder as SASRec's,
  // plus recbole's dense head), not counting the output layer.
  double forward_gemm_flops(int64_t rows) const {
    const double L = cfg_.max_len, d = cfg_.hidden, I = cfg_.inner;
    double per_row = cfg_.layers * (8.0 * L * d * d + 4.0 * L * L * d + 4.0 * L * d * I);
    if constexpr (!kHf) per_row += 2.0 * L * d * d;
    return per_row * double(rows);
  }

  // specs/backbones.md §3.1 / §3.2: N(0, init_range) weights, zero biases (c included), LN 1/0;
  // recbole re-initialises every row (pad and [mask] included), hf zeroes the pad row.
  void init(T* params, uint64_t seed) const {
    encoder::init_params(layout_, params, seed, cfg_.init_range, cfg_.hidden);
    if constexpr (kHf) std::fill(params + off_.item, params + off_.item + cfg_.hidden, T(0));
  }

  Activations make_activations(int capacity) const {
    return Activations(capacity, cfg_, /*query_pre_ln=*/false, /*head=*/!kHf);
  }

  CPtr<B, T> block_output(const Activations& a, int l) const {
    if (l < 0) l += cfg_.layers;
    RD_REQUIRE(l >= 0 && l < cfg_.layers, "block index out of range");
    return a.layer[size_t(l)].out.data();
  }
  // Z (B, L, d): the state the output layer reads, valid after forward().
  CPtr<B, T> output(const Activations& a) const { return a.hidden.data(); }
  CPtr<B, T> embedding_output(const Activations& a) const { return a.emb.data(); }
  // (B, L), 1 = a non-pad input (an item or [mask]).
  CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  // seq (batch, L): ids on this model's padding side, 0 = pad, N = [mask] (backend memory).
  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int batch, bool train,
               DropoutKey key = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    const int L = cfg_.max_len, d = cfg_.hidden;
    const int R = batch * L;
    a.batch = batch;
    a.train = train;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(R));
    ops::nonzero_mask<B>(a.valid.data(), CPtr<B, int32_t>(a.seq.data()), int64_t(R));
    encoder::Step<B, T> st = step(a, R, batch, train, key);
    layers::embedding_forward<B, T>(a.emb.data(), params + off_.item, a.seq.data(), R, d);
    ops::add_position<B>(a.emb.data(), params + off_.pos, batch, L, d);
    if constexpr (kHf) ops::add_bias<B>(a.emb.data(), d, params + off_.type, R, d);  // token type 0
    encoder::ln_dropout_forward<B, T>(params + off_.ln_in_w, params + off_.ln_in_b, a, st);
    CPtr<B, T> x = a.emb.data();
    for (int li = 0; li < cfg_.layers; ++li) {
      encoder::post_ln_block_forward<B, T>(params, off_.layer[size_t(li)], a.layer[size_t(li)], x,
                                           AttentionMask::bidirectional, st);
      x = a.layer[size_t(li)].out.data();
    }
    if constexpr (kHf) {
      B::template copy<T>(a.hidden.data(), x, size_t(R) * d);
    } else {  // Z = LN_o(GELU(X W_o^T + b_o))
      layers::linear_forward<B, T>(a.head_pre.data(), x, d, params + off_.head_w, params + off_.head_b, R, d, d);
      layers::gelu_forward<B, T>(a.head_act.data(), a.head_pre.data(), int64_t(R) * d);
      layers::layer_norm_forward<B, T>(a.hidden.data(), a.final_xhat.data(), a.final_rstd.data(), a.head_act.data(),
                                       params + off_.head_ln_w, params + off_.head_ln_b, R, d, cfg_.ln_eps);
    }
  }

  // Accumulates the gradient of a loss whose gradient w.r.t. output() is d_out (may be null when
  // only taps carry gradient), plus each tap's gradient at its point.
  void backward(CPtr<B, T> params, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out,
                const Taps<B, T>& taps = {}) const {
    const int L = cfg_.max_len, d = cfg_.hidden;
    const int R = a.batch * L;
    const int64_t Rd = int64_t(R) * d;
    encoder::Step<B, T> st = step(a, R, a.batch, a.train, {});
    Ptr<B, T> gx = a.g_a.data();  // gradient w.r.t. the running stream
    Ptr<B, T> gt = a.g_b.data();  // a second (R, d) buffer
    if (d_out) B::template copy<T>(a.g_tmp.data(), d_out, size_t(Rd));
    else ops::fill<B>(a.g_tmp.data(), Rd, 0.0);
    add_taps_at<B, T>(a.g_tmp.data(), taps, TapPoint::final_output, Rd);
    const CPtr<B, T> x_last = a.layer.back().out.data();
    if constexpr (kHf) {
      B::template copy<T>(gx, CPtr<B, T>(a.g_tmp.data()), size_t(Rd));
    } else {
      layers::layer_norm_backward<B, T>(gt, grads + off_.head_ln_w, grads + off_.head_ln_b, a.g_tmp.data(),
                                        a.final_xhat.data(), a.final_rstd.data(), params + off_.head_ln_w, R, d);
      layers::gelu_backward<B, T>(gt, gt, a.head_pre.data(), Rd);
      layers::linear_backward<B, T>(gx, grads + off_.head_w, grads + off_.head_b, gt, d, x_last, d,
                                    params + off_.head_w, R, d, d);
    }
    for (int li = cfg_.layers - 1; li >= 0; --li) {
      add_taps_at<B, T>(gx, taps, li, Rd);
      CPtr<B, T> x = li == 0 ? CPtr<B, T>(a.emb.data()) : CPtr<B, T>(a.layer[size_t(li - 1)].out.data());
      encoder::post_ln_block_backward<B, T>(params, grads, off_.layer[size_t(li)], a.layer[size_t(li)], x, a, gx,
                                            gt, st);
    }
    add_taps_at<B, T>(gx, taps, TapPoint::embedding, Rd);
    encoder::ln_dropout_backward<B, T>(params + off_.ln_in_w, grads + off_.ln_in_w, grads + off_.ln_in_b, a, gx,
                                       gt, st);
    if constexpr (kHf) ops::bias_grad<B>(grads + off_.type, CPtr<B, T>(gx), d, R, d);
    ops::position_grad<B>(grads + off_.pos, CPtr<B, T>(gx), a.batch, L, d);
    // The pad row gets no gradient through the lookup (PyTorch padding_idx); recbole's still
    // learns through the tied softmax, whose column 0 the head includes.
    layers::embedding_backward<B, T>(grads + off_.item, gx, a.seq.data(), R, d, /*skip_pad=*/true);
  }

  // Evaluation queries: [mask] after each case's history (see the file comment), the forward
  // pass, and Z at the [mask] slot into out (rows, d). Rows n..rows-1 repeat case 0.
  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows, Ptr<B, T> out) const {
    const int L = cfg_.max_len, d = cfg_.hidden;
    RD_REQUIRE(rows <= a.capacity && n <= size_t(rows), "query: ", rows, " rows for activations of capacity ",
               a.capacity, " (", n, " cases)");
    a.seq_host.assign(size_t(rows) * L, 0);
    a.slot_host.resize(size_t(rows));
    for (size_t i = 0; i < size_t(rows); ++i) {
      const eval::Case& c = cases[i < n ? i : 0];
      int32_t* row = a.seq_host.data() + i * L;
      // recbole: the last min(len, L) items without the oldest; hf: the last L - 1 items.
      const size_t kept = kHf ? std::min(c.length, size_t(L - 1))
                              : std::min(c.length, size_t(L)) - (c.length > 0 ? 1 : 0);
      const int32_t* h = c.history + (c.length - kept);
      const size_t first = kHf ? size_t(L - 1) - kept : 0;
      std::copy(h, h + kept, row + first);
      row[first + kept] = mask_id();
      a.slot_host[i] = int32_t(i * L + first + kept);
    }
    B::template to_device<int32_t>(a.seq_in.data(), a.seq_host.data(), a.seq_host.size());
    B::template to_device<int32_t>(a.slot.data(), a.slot_host.data(), a.slot_host.size());
    forward(params, a, a.seq_in.data(), rows, /*train=*/false);
    ops::gather_rows<B>(out, output(a), CPtr<B, int32_t>(a.slot.data()), rows, d, 1.0);
  }

  // The cloze batching policy (backbones/cloze_batching.hpp) with this variant's masking.
  ClozeBatching batching(int window_stride = 0) const {
    ClozeBatching::Masking m;
    m.mask_id = mask_id();
    m.mask_ratio = cfg_.mask_ratio;
    m.ft_ratio = cfg_.ft_ratio;
    m.mask_last_per_batch = cfg_.mask_last_draw == MaskLastDraw::batch;
    if constexpr (kHf) {
      m.mask_pads = cfg_.hf_attn_mask == HfAttnMask::nonzero;
    } else {
      m.max_targets = int(cfg_.mask_ratio * cfg_.max_len);  // RecBole's int(mask_ratio * L)
      m.first_slot_untargeted = true;
    }
    return ClozeBatching(cfg_.max_len, window_stride, V::padding == PaddingSide::left, m);
  }

 private:
  encoder::Step<B, T> step(const Activations& a, int R, int batch, bool train, DropoutKey key) const {
    return {cfg_, R, {batch, cfg_.max_len, cfg_.heads, cfg_.hidden / cfg_.heads}, a.valid.data(),
            train ? cfg_.hidden_dropout : 0.0, train ? cfg_.attn_dropout : 0.0, key, 0};
  }

  // Tensor names and order match tools/make_bert4rec_fixtures.py (and thus the golden fixtures).
  void build_layout() {
    const int N = cfg_.n_items, L = cfg_.max_len, d = cfg_.hidden;
    off_.item = layout_.add("item_embedding", {N + 1, d});
    off_.pos = layout_.add("position_embedding", {L, d});
    if constexpr (kHf) off_.type = layout_.add("token_type_embedding", {1, d});
    off_.ln_in_w = layout_.add("ln_in.weight", {d});
    off_.ln_in_b = layout_.add("ln_in.bias", {d});
    for (int l = 0; l < cfg_.layers; ++l)
      off_.layer.push_back(encoder::add_post_ln_block_params(layout_, "layer" + std::to_string(l) + ".", cfg_));
    if constexpr (kHf) {
      off_.head_w = layout_.add("head.weight", {N + 1, d});
      off_.head_b = layout_.add("head.bias", {N + 1});
    } else {
      off_.head_w = layout_.add("head.dense.weight", {d, d});
      off_.head_b = layout_.add("head.dense.bias", {d});
      off_.head_ln_w = layout_.add("head.ln.weight", {d});
      off_.head_ln_b = layout_.add("head.ln.bias", {d});
      off_.out_bias = layout_.add("output_bias", {N});
    }
  }

  BERT4RecConfig cfg_;
  ParamLayout layout_;
  bert4rec::Offsets off_;
};

}  // namespace recdistill
