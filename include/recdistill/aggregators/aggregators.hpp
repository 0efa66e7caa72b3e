// recdistill/aggregators/aggregators.hpp: the aggregators of profile distillation
// (specs/profile-distillation.md §3): H (Bn, d) = sum_t w_t h_t over the L slots of a tapped
// hidden layer h (Bn, L, d), with weights w = masked softmax of per-slot scores.
//
//   Mean       scores 0                    -> w = m / n                      (upstream: 1 / L)
//   ExpWeight  scores -gamma * recency     -> w ~ m e^{-gamma r}              (gamma = 0: Mean)
//   Attention  scores a^T h_t + c (learned) -> w = softmax over the real slots (upstream: all)
//   LastItem   the newest slot only         -> H = h of the newest real item
//
// Every aggregator works from the real-item mask and each slot's recency (0 = the newest real
// item), never from absolute slot positions, so left- and right-padded windows aggregate alike
// (DESIGN.md, "Padding side"). Under `mask_padding: false` (upstream) every slot counts, and
// a pad slot's recency is its distance from the window's end in the upstream left-padded layout.
// A row without a slot to weigh (an empty history, masked) aggregates to 0; the method leaves
// that user out of the distillation loss.
//
// The fixed scores and the mask are made on the host by prepare() when a batch is filled and
// copied to the backend once; everything else is backend ops (the pooling is a strided-batched
// GEMM). Gradients: dh_t += w_t g; for Attention also, with ds = softmax-backward(g . h_t),
// dh_t += ds_t a and da += sum_t ds_t h_t, while dc = 0 exactly (softmax is shift-invariant;
// the spec's conformance test 3), so c is changed only by weight decay.
#pragma once
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"

namespace recdistill::aggregators {

// What the batching knows about each slot (host arrays, Bn x L, row-major).
struct Slots {
  int Bn = 0, L = 0;
  std::vector<uint8_t> real;     // 1 = a real item (BERT4Rec: [mask]-replaced slots count as real)
  std::vector<int32_t> recency;  // 0 = the newest real item, 1 the one before, ...; pad slots: see above
};

// Fills `s` for a left-padded batch: `lengths[b]` real items at the end of each window.
inline void left_padded_slots(Slots& s, const std::vector<int>& lengths, int L) {
  s.Bn = int(lengths.size());
  s.L = L;
  s.real.assign(size_t(s.Bn) * L, 0);
  s.recency.assign(size_t(s.Bn) * L, 0);
  for (int b = 0; b < s.Bn; ++b)
    for (int t = 0; t < L; ++t) {
      s.real[size_t(b) * L + t] = t >= L - lengths[size_t(b)];
      s.recency[size_t(b) * L + t] = L - 1 - t;
    }
}

struct Mean {
  static constexpr std::string_view name = "mean";
  static constexpr bool learned = false;
  static int n_params(int) { return 0; }
  double score(int32_t) const { return 0.0; }
  bool counts(bool real, int32_t, bool mask_padding) const { return real || !mask_padding; }
};

struct ExpWeight {
  static constexpr std::string_view name = "exp_weight";
  static constexpr bool learned = false;
  double gamma = 0.1;  // model.weight_scale
  static int n_params(int) { return 0; }
  double score(int32_t recency) const { return -gamma * double(recency); }
  bool counts(bool real, int32_t, bool mask_padding) const { return real || !mask_padding; }
};

struct LastItem {
  static constexpr std::string_view name = "last_item";
  static constexpr bool learned = false;
  static int n_params(int) { return 0; }
  double score(int32_t) const { return 0.0; }
  bool counts(bool real, int32_t recency, bool mask_padding) const {
    return recency == 0 && (real || !mask_padding);
  }
};

// Learned scores a^T h_t + c; parameters [a (d), c (1)].
struct Attention {
  static constexpr std::string_view name = "attention";
  static constexpr bool learned = true;
  static int n_params(int d) { return d + 1; }
  double score(int32_t) const { return 0.0; }  // replaced by the learned scores
  bool counts(bool real, int32_t, bool mask_padding) const { return real || !mask_padding; }
};

// Any of the four, chosen at run time (the plugins' configs): one instantiation for all.
struct Any {
  enum class Kind { mean, exp_weight, attention, last_item };
  Kind kind = Kind::mean;
  double gamma = 0.1;  // exp_weight only
  std::string_view name() const {
    return kind == Kind::mean ? Mean::name : kind == Kind::exp_weight ? ExpWeight::name
           : kind == Kind::attention ? Attention::name : LastItem::name;
  }
  bool is_learned() const { return kind == Kind::attention; }
  int n_params(int d) const { return is_learned() ? Attention::n_params(d) : 0; }
  double score(int32_t recency) const { return kind == Kind::exp_weight ? ExpWeight{gamma}.score(recency) : 0.0; }
  bool counts(bool real, int32_t recency, bool mask_padding) const {
    return kind == Kind::last_item ? LastItem{}.counts(real, recency, mask_padding) : real || !mask_padding;
  }
};

// Whether an aggregator learns its scores (a policy's constant, or Any's kind).
template <class Agg>
bool learned(const Agg& agg) {
  if constexpr (requires { Agg::learned; })
    return Agg::learned;
  else
    return agg.is_learned();
}

// Scratch of one aggregation of Bn x L slots (allocated once, for the largest batch).
template <class B, class T>
struct Work {
  int Bn = 0, L = 0;
  Buffer<B, T> scores, weights, dweights;  // (Bn, L)
  Buffer<B, uint8_t> mask;                 // (Bn, L) the slots the softmax weighs
  std::vector<T> host_scores;
  std::vector<uint8_t> host_mask;
  std::vector<uint8_t> nonempty;           // (Bn) host: the row has a slot to weigh
  void reserve(int max_rows, int L_) {
    L = L_;
    const size_t n = size_t(max_rows) * L_;
    scores = Buffer<B, T>(n);
    weights = Buffer<B, T>(n);
    dweights = Buffer<B, T>(n);
    mask = Buffer<B, uint8_t>(n);
    host_scores.resize(n);
    host_mask.resize(n);
    nonempty.resize(size_t(max_rows));
  }
};

// Host side, once per batch: the mask, the fixed scores, and which rows have a slot to weigh.
template <class Agg, class B, class T>
void prepare(const Agg& agg, const Slots& s, bool mask_padding, Work<B, T>& w) {
  RD_REQUIRE(s.L == w.L && size_t(s.Bn) <= w.nonempty.size(), "aggregator work sized for L = ", w.L, ", ",
             w.nonempty.size(), " rows; batch of ", s.Bn, " x ", s.L);
  w.Bn = s.Bn;
  for (int b = 0; b < s.Bn; ++b) {
    bool any = false;
    for (int t = 0; t < s.L; ++t) {
      const size_t i = size_t(b) * s.L + t;
      const bool on = agg.counts(s.real[i] != 0, s.recency[i], mask_padding);
      w.host_mask[i] = on;
      w.host_scores[i] = T(agg.score(s.recency[i]));
      any = any || on;
    }
    w.nonempty[size_t(b)] = any;
  }
  const size_t n = size_t(s.Bn) * s.L;
  B::template to_device<uint8_t>(w.mask.data(), w.host_mask.data(), n);
  B::template to_device<T>(w.scores.data(), w.host_scores.data(), n);
}

// H (Bn, d) = sum_t w_t h_t; h (Bn, L, d). `params`: the aggregator's (Attention: a, c).
template <class Agg, class B, class T>
void forward(const Agg& agg, Ptr<B, T> H, CPtr<B, T> h, CPtr<B, T> params, Work<B, T>& w, int d) {
  const int Bn = w.Bn, L = w.L;
  if (learned(agg)) {  // s = h a + c
    B::template gemm<T>(false, false, Bn * L, 1, d, T(1), h, d, params, 1, T(0), w.scores.data(), 1);
    ops::add_bias<B>(w.scores.data(), 1, params + d, Bn * L, 1);
  }
  ops::masked_softmax_forward<B>(w.weights.data(), CPtr<B, T>(w.scores.data()), CPtr<B, uint8_t>(w.mask.data()), Bn, L);
  // Per row b: H_b (1, d) = w_b (1, L) h_b (L, d).
  B::template gemm_strided_batched<T>(false, false, 1, d, L, T(1), CPtr<B, T>(w.weights.data()), L, L, h, d,
                                      long(L) * d, T(0), H, d, d, Bn);
}

// dh (Bn, L, d) += the gradient through the aggregate of g = dLoss/dH (Bn, d); dparams
// (Attention: da; dc stays 0) += . Call after forward() on the same h.
template <class Agg, class B, class T>
void backward(const Agg& agg, Ptr<B, T> dh, Ptr<B, T> dparams, CPtr<B, T> g, CPtr<B, T> h, CPtr<B, T> params,
              Work<B, T>& w, int d) {
  const int Bn = w.Bn, L = w.L;
  // Per row: dh_b (L, d) += w_b^T (L, 1) g_b (1, d).
  B::template gemm_strided_batched<T>(true, false, L, d, 1, T(1), CPtr<B, T>(w.weights.data()), L, L, g, d, d,
                                      T(1), dh, d, long(L) * d, Bn);
  if (learned(agg)) {
    // dw_b (1, L) = g_b h_b^T; ds = softmax backward; dh += ds a^T; da += h^T ds.
    B::template gemm_strided_batched<T>(false, true, 1, L, d, T(1), g, d, d, h, d, long(L) * d, T(0),
                                        w.dweights.data(), L, L, Bn);
    ops::masked_softmax_backward<B>(w.dweights.data(), CPtr<B, T>(w.dweights.data()), CPtr<B, T>(w.weights.data()), Bn, L);
    B::template gemm<T>(false, false, Bn * L, d, 1, T(1), CPtr<B, T>(w.dweights.data()), 1, params, d, T(1), dh, d);
    B::template gemm<T>(true, false, d, 1, Bn * L, T(1), h, d, CPtr<B, T>(w.dweights.data()), 1, T(1), dparams, 1);
  }
}

}  // namespace recdistill::aggregators
