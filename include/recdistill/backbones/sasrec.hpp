// recdistill/backbones/sasrec.hpp: SASRec (Kang & McAuley, ICDM 2018) on the engine's
// contracts, with its two variants as encoder policies (backbones/sasrec_variants.hpp):
//
//   SASRec<B>                           the `recbole` variant (default): post-LN blocks, right padding
//   SASRec<B, T, sasrec::Pmixer>        the `pmixer` variant (layout `legacy`): query-pre-LN
//                                       blocks, left padding, a final LayerNorm
//
// The model hands back the output of every block, (B, L, d), the final output after the last
// layer norm and the real-item mask; its backward accepts extra gradients at any of those
// points (Taps), so a method can add a loss on a hidden layer. Its scorer is the tied item
// table: score(item j | query q) = q . E_j. Its batching policy (WindowBatching) turns a
// split's training sequences into windows and lays them out on the variant's padding side.
//
// Everything here is a sequence of backend ops over the backend's pointers (backend/ops.hpp):
// no element loop, no host memory but the ids staged for upload.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backbones/sasrec_variants.hpp"
#include "recdistill/backbones/window_batching.hpp"
#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/padding.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/case.hpp"
#include "recdistill/layers/layers.hpp"

namespace recdistill {

template <Backend B, class T = float, class V = sasrec::RecBole>
class SASRec {
 public:
  using BackendType = B;
  using Scalar = T;
  using Variant = V;
  using Activations = sasrec::Activations<B, T>;
  using Batch = SeqBatch<B>;

  explicit SASRec(SASRecConfig cfg) : cfg_(cfg) {
    if (cfg_.variant != V::id)
      fail("SASRec: model.variant is '", sasrec::variant_name(cfg_.variant), "' but this model type is the '",
           V::name, "' variant (pick the type with sasrec::with_variant)");
    V::normalise(cfg_);
    cfg_.validate();
    build_layout();
  }

  const SASRecConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return cfg_.layers; }
  int max_len() const { return cfg_.slots(); }  // L, the slots the model sees
  int hidden_size() const { return cfg_.hidden; }
  int n_items() const { return cfg_.n_items; }
  static constexpr PaddingSide padding_side() { return V::padding; }
  // The tied output table E (N, d): logits = H E^T.
  CPtr<B, T> item_table(CPtr<B, T> params) const { return params + off_.item; }
  Ptr<B, T> item_table(Ptr<B, T> params) const { return params + off_.item; }
  // How a query state meets the items: the tied item table, no bias.
  Scorer scorer() const { return {off_.item, -1, cfg_.n_items, cfg_.hidden}; }

  // Matrix-product FLOPs of one forward pass over `rows` sequences (all L slots, pads
  // included), not counting the output layer: per layer the q, k, v, o projections
  // (4 x 2 L d^2), scores and weighted values (2 x 2 H L^2 dh) and the feed-forward
  // (2 x 2 L d inner). The backward pass costs twice this (input and weight gradients).
  double forward_gemm_flops(int64_t rows) const {
    const double L = cfg_.slots(), d = cfg_.hidden, I = cfg_.inner;
    const double per_row = cfg_.layers * (8.0 * L * d * d + 4.0 * L * L * d + 4.0 * L * d * I);
    return per_row * double(rows);
  }

  // Initialisation as in the reference of each variant (specs/backbones.md §2.1, §2.3 `ecir`),
  // on host memory (the trainer uploads it).
  void init(T* params, uint64_t seed) const {
    encoder::init_params(layout_, params, seed, cfg_.init_range, cfg_.hidden);
    V::init_extra(params, off_, cfg_);
  }

  // Activation buffers for up to `capacity` sequences, allocated once.
  Activations make_activations(int capacity) const {
    return Activations(capacity, cfg_, V::query_pre_ln);
  }

  // Output of block l (0-based; -1 = the last), before pmixer's final LayerNorm: (B, L, d).
  CPtr<B, T> block_output(const Activations& a, int l) const {
    if (l < 0) l += cfg_.layers;
    RD_REQUIRE(l >= 0 && l < cfg_.layers, "block index out of range");
    return a.layer[size_t(l)].out.data();
  }
  // The final output after the last layer norm: (B, L, d), valid after forward().
  CPtr<B, T> output(const Activations& a) const { return a.hidden.data(); }
  // Hidden states of every slot after all layers (the same as output()).
  CPtr<B, T> hidden(const Activations& a) const { return a.hidden.data(); }
  // The embedding stage's output, the stream entering block 0: (B, L, d).
  CPtr<B, T> embedding_output(const Activations& a) const { return a.emb.data(); }
  // The real-item mask of the last forward: (B, L), 1 = real item.
  CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  // seq (batch, L): item ids laid out on this model's padding side, 0 = pad (backend memory).
  // `train` enables dropout, whose draws are keyed by `key` and the row index.
  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int batch, bool train,
               DropoutKey key = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    const int L = cfg_.slots(), d = cfg_.hidden, H = cfg_.heads;
    const int R = batch * L;
    a.batch = batch;
    a.train = train;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(R));
    ops::nonzero_mask<B>(a.valid.data(), CPtr<B, int32_t>(a.seq.data()), int64_t(R));
    sasrec::Step<B, T> st{cfg_, R, {batch, L, H, d / H}, a.valid.data(),
                          train ? cfg_.hidden_dropout : 0.0, train ? cfg_.attn_dropout : 0.0, key, 0};

    // Embedding: E[seq] (scaled by the variant) + position (B, L, d), then the variant's input stage.
    layers::embedding_forward<B, T>(a.emb.data(), params + off_.item, a.seq.data(), R, d,
                                    V::embedding_scale(d));
    ops::add_position<B>(a.emb.data(), params + off_.pos, batch, L, d);
    V::template input_forward<B, T>(params, off_, a, st);
    CPtr<B, T> x = a.emb.data();
    for (int li = 0; li < cfg_.layers; ++li) {
      V::template block_forward<B, T>(params, off_.layer[size_t(li)], a.layer[size_t(li)], x, st);
      x = a.layer[size_t(li)].out.data();
    }
    V::template final_forward<B, T>(params, off_, a, x, st);
  }

  // Accumulates into grads the gradient of a loss whose gradient w.r.t. output() is d_out
  // (B, L, d) (may be null when only taps carry gradient), plus each tap's gradient at its point.
  void backward(CPtr<B, T> params, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out,
                const Taps<B, T>& taps = {}) const {
    const int L = cfg_.slots(), d = cfg_.hidden, H = cfg_.heads;
    const int R = a.batch * L;
    const int64_t Rd = int64_t(R) * d;
    sasrec::Step<B, T> st{cfg_, R, {a.batch, L, H, d / H}, a.valid.data(),
                          a.train ? cfg_.hidden_dropout : 0.0, a.train ? cfg_.attn_dropout : 0.0, {}, 0};
    Ptr<B, T> gx = a.g_a.data();  // gradient w.r.t. the running stream
    Ptr<B, T> gt = a.g_b.data();  // a second (R, d) buffer
    // d(final output) = d_out + the final tap.
    if (d_out) B::template copy<T>(a.g_tmp.data(), d_out, size_t(Rd));
    else ops::fill<B>(a.g_tmp.data(), Rd, 0.0);
    add_taps_at<B, T>(a.g_tmp.data(), taps, TapPoint::final_output, Rd);
    V::template final_backward<B, T>(params, grads, off_, a, CPtr<B, T>(a.g_tmp.data()), gx, st);
    for (int li = cfg_.layers - 1; li >= 0; --li) {
      add_taps_at<B, T>(gx, taps, li, Rd);
      CPtr<B, T> x = li == 0 ? CPtr<B, T>(a.emb.data()) : CPtr<B, T>(a.layer[size_t(li - 1)].out.data());
      V::template block_backward<B, T>(params, grads, off_.layer[size_t(li)], a.layer[size_t(li)], x, a,
                                       gx, gt, st);
    }
    add_taps_at<B, T>(gx, taps, TapPoint::embedding, Rd);
    V::template input_backward<B, T>(params, grads, off_, a, gx, gt, st);
    ops::position_grad<B>(grads + off_.pos, CPtr<B, T>(gx), a.batch, L, d);
    layers::embedding_backward<B, T>(grads + off_.item, gx, a.seq.data(), R, d, /*skip_pad=*/true,
                                     V::embedding_scale(d));
  }

  // Evaluation queries: lays out the histories of cases [0, n) of `cases` (rows n..rows-1
  // repeat case 0 and are ignored), runs the forward pass and writes each row's state at its
  // last real item into out (rows, d). `a` must have capacity >= rows.
  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows,
             Ptr<B, T> out) const {
    const int L = cfg_.slots(), d = cfg_.hidden;
    const bool left = V::padding == PaddingSide::left;
    RD_REQUIRE(rows <= a.capacity && n <= size_t(rows), "query: ", rows, " rows for activations of capacity ",
               a.capacity, " (", n, " cases)");
    a.seq_host.resize(size_t(rows) * L);
    a.slot_host.resize(size_t(rows));
    for (size_t i = 0; i < size_t(rows); ++i) {
      const eval::Case& c = cases[i < n ? i : 0];
      data::layout_history(a.seq_host.data() + i * L, c.history, c.length, L, left);
      const size_t len = std::min(c.length, size_t(L));
      a.slot_host[i] = int32_t(i * L + (left ? size_t(L - 1) : len - 1));
    }
    B::template to_device<int32_t>(a.seq_in.data(), a.seq_host.data(), a.seq_host.size());
    B::template to_device<int32_t>(a.slot.data(), a.slot_host.data(), a.slot_host.size());
    forward(params, a, a.seq_in.data(), rows, /*train=*/false);
    ops::gather_rows<B>(out, output(a), CPtr<B, int32_t>(a.slot.data()), rows, d, 1.0);
  }

  WindowBatching batching(int window_stride = 0) const {
    return WindowBatching(cfg_.slots(), window_stride, V::padding == PaddingSide::left,
                          V::first_item_quirk, cfg_.seed_window);
  }

 private:

  // Tensor names and order match tools/torch_sasrec.py (and thus the golden fixtures).
  void build_layout() {
    // maxlen position rows; with seed_window the model reads the first maxlen - 1 of them.
    const int N = cfg_.n_items, P = cfg_.max_len, d = cfg_.hidden;
    off_.item = layout_.add("item_embedding", {N, d});
    off_.pos = layout_.add("position_embedding", {P, d});
    V::add_input_params(layout_, off_, cfg_);
    for (int l = 0; l < cfg_.layers; ++l)
      off_.layer.push_back(V::add_block_params(layout_, "layer" + std::to_string(l) + ".", cfg_));
    V::add_final_params(layout_, off_, cfg_);
  }

  SASRecConfig cfg_;
  ParamLayout layout_;
  sasrec::Offsets off_;
};

// Names the SASRec type of a configured variant: f.template operator()<V>() with V the variant
// policy (sasrec::RecBole or sasrec::Pmixer). Plugins and tests pick the type by name this way.
template <class F>
decltype(auto) sasrec::with_variant(SASRecVariant v, F&& f) {
  if (v == SASRecVariant::pmixer) return f.template operator()<sasrec::Pmixer>();
  return f.template operator()<sasrec::RecBole>();
}

}  // namespace recdistill
