// recdistill/losses/attenmixer_official_ce.hpp: the training objective of official Atten-Mixer
// (specs/backbones.md §6.1 steps 7-8, gradients §7), its scaled full-softmax CE over the
// normalised, dropped-out rows of the one item table E (the model's Scorer, which has
// normalise_rows):
//
//   E^_j = dropout(n(E_j))          n(x) = x / (||x|| + 1e-12) per row; dropout p =
//                                   model.dropout_rate in training only (the forward's train
//                                   flag), one mask (N, d) per step keyed by (seed; epoch, step,
//                                   item id, channel) at site attenmixer::kSiteItems
//   s_rj = 16 z_r . E^_j            j = 1..N-1: the pad column 0 is left out (an additive -inf
//                                   on it, spec §0.4), so the targets are the item ids themselves
//                                   (the reference's "target - 1" over its 0-based columns)
//   L = (1/R) sum_r [logsumexp_j s_rj - s_{r, y_r}]
//
// Gradients: d_out = dL/dz = 16 dL/d(16 z); dE^ = dS^T (16 z), then back through the dropout mask
// and the row normalisation, added to E's gradient (which the lookups also feed, in the model's
// backward). With a float scalar, the exp of the -inf pad logit is Eigen's ~1e-38 rather than 0:
// a leak far below float rounding of the other columns.
//
// Only `ce` is this model's loss: training.loss other than ce and training.bce_negatives > 0 are
// refused.
#pragma once
#include <limits>

#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/layers/dropout.hpp"
#include "recdistill/layers/softmax_cross_entropy.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

template <class M>
class AttenMixerOfficialCE {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "ce (official Atten-Mixer: 16 z . dropout(n(E))^T)";
  // A mean over targets; the item rows' mask is the step's (the same on every rank).
  static constexpr bool data_parallel = true;

  AttenMixerOfficialCE(const M& m, int capacity) {
    const Scorer s = m.scorer();
    RD_REQUIRE(s.normalise_rows && s.bias < 0, "the official Atten-Mixer objective needs a bias-free scorer over "
                                               "normalised rows");
    const auto& c = m.config();
    if (c.bce_negatives > 0)
      fail("training.bce_negatives: the official Atten-Mixer trains with its full-softmax CE (specs/backbones.md "
           "§6.1); bce_multi belongs to model.variant alkdrec, found bce_negatives = ", c.bce_negatives);
    if (c.loss != SessionLoss::ce)
      fail("training.loss: the official Atten-Mixer trains with full-softmax CE over its normalised item rows "
           "(specs/backbones.md §6.1); set training.loss: ce or leave it unset");
    const int N = s.n_items, d = s.dim;
    for (auto* b : {&En_, &Ed_, &mask_, &gE_}) *b = Buffer<B, T>(size_t(N) * d);
    norms_ = Buffer<B, T>(size_t(N));
    hs_ = Buffer<B, T>(size_t(capacity) * d);
    pad_column_ = Buffer<B, T>(size_t(N));
    ops::fill<B>(pad_column_.data(), int64_t(N), 0.0);
    ops::fill<B>(pad_column_.data(), int64_t(1), -std::numeric_limits<double>::infinity());
    ws_.reserve(capacity, 512, d, N);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int N = s.n_items, d = s.dim, R = batch.target_rows();
    const double p = a.train ? m.config().dropout : 0.0;
    // E^ = dropout(n(E)) (N, d); row 0 is computed too but its column is masked out below.
    ops::l2_normalise_axis_forward<B>(En_.data(), norms_.data(), params + s.table, N, d, 1, kScorerNormEps);
    layers::dropout_forward<B, T>(Ed_.data(), mask_.data(), CPtr<B, T>(En_.data()), N, d, p,
                                  DropoutKey{ctx.seed, ctx.epoch, ctx.step}, attenmixer::kSiteItems);
    // h = 16 z (R, d); CE of h . E^T (+ -inf on column 0).
    B::template copy<T>(hs_.data(), m.output(a), size_t(R) * d);
    ops::scale<B>(hs_.data(), int64_t(R) * d, attenmixer::kScoreScale);
    ops::fill<B>(gE_.data(), int64_t(N) * d, 0.0);
    LossValue v;
    v.loss = layers::softmax_cross_entropy<B, T>(d_out, gE_.data(), CPtr<B, T>(hs_.data()), CPtr<B, T>(Ed_.data()),
                                                 batch.target.data(), R, d, N, ws_, &v.targets,
                                                 CPtr<B, T>(pad_column_.data()), nullptr);
    ops::scale<B>(d_out, int64_t(R) * d, attenmixer::kScoreScale);  // dL/dz = 16 dL/dh
    // dE^ -> the dropout mask -> the row normalisation -> E's gradient.
    layers::dropout_backward<B, T>(gE_.data(), CPtr<B, T>(gE_.data()), CPtr<B, T>(mask_.data()), int64_t(N) * d);
    ops::l2_normalise_axis_backward<B>(gE_.data(), CPtr<B, T>(gE_.data()), CPtr<B, T>(En_.data()),
                                       CPtr<B, T>(norms_.data()), N, d, 1, kScorerNormEps);
    ops::add<B>(grads + s.table, CPtr<B, T>(grads + s.table), CPtr<B, T>(gE_.data()), int64_t(N) * d);
    return v;
  }

  // logits, dh, dE: 3 x 2 T d N
  double gemm_flops(const M& m, const LossValue& v) const {
    return 6.0 * double(v.targets) * m.hidden_size() * m.n_items();
  }

 private:
  Buffer<B, T> En_, Ed_, mask_, gE_, norms_, hs_, pad_column_;
  CrossEntropyWorkspace<B, T> ws_;
};

}  // namespace recdistill
