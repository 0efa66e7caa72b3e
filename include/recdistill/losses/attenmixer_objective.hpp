// recdistill/losses/attenmixer_objective.hpp: Atten-Mixer's objective, chosen at run time:
// `bce_multi` (losses/bce_multi.hpp) when the config's training.bce_negatives is > 0 (ALKDRec's
// AttMix on ML), else the session objective of training.loss (full-softmax CE or in-batch BPR,
// losses/session_objective.hpp). (SessionLoss in backbones/session_config.hpp has no bce_multi
// value yet; once it has, this folds into SessionObjective.)
#pragma once
#include <optional>

#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/session_objective.hpp"

namespace recdistill {

template <class M>
class AttenMixerObjective {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;

  AttenMixerObjective(const M& m, int capacity) {
    if (m.config().bce_negatives > 0) bce_.emplace(m, capacity, m.config().bce_negatives);
    else session_.emplace(m, capacity);
  }

  void set_row_annotations(const std::vector<float>& weight, const std::vector<int32_t>& group) {
    if (session_) session_->set_row_annotations(weight, group);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    return bce_ ? bce_->loss(m, params, grads, a, batch, ctx, d_out)
                : session_->loss(m, params, grads, a, batch, ctx, d_out);
  }
  double gemm_flops(const M& m, const LossValue& v) const {
    return bce_ ? bce_->gemm_flops(m, v) : session_->gemm_flops(m, v);
  }

 private:
  std::optional<BceMulti<M>> bce_;
  std::optional<SessionObjective<M>> session_;
};

}  // namespace recdistill
