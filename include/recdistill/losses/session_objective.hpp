// recdistill/losses/session_objective.hpp: a session model's objective, chosen at run time:
// `bce_multi` (losses/bce_multi.hpp) when training.bce_negatives > 0, else its `training.loss`
// (backbones/session_config.hpp): full-softmax CE (losses/next_item.hpp), in-batch BPR (losses/in_batch_bpr.hpp) or active distillation's weighted pairwise loss
// (losses/weighted_pairwise.hpp), over the one target of each row.
#pragma once
#include <optional>

#include "recdistill/backbones/session_config.hpp"
#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/weighted_pairwise.hpp"

namespace recdistill {

template <class M>
class SessionObjective {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;

  SessionObjective(const M& m, int capacity) {
    if (m.config().bce_negatives > 0) {
      bce_.emplace(m, capacity, m.config().bce_negatives);
      return;
    }
    switch (m.config().loss) {
      case SessionLoss::ce: ce_.emplace(m, capacity); break;
      case SessionLoss::inbatch_bpr: bpr_.emplace(m, capacity); break;
      case SessionLoss::weighted_pairwise: pairwise_.emplace(m, capacity); break;
    }
  }

  void set_row_annotations(const std::vector<float>& weight, const std::vector<int32_t>& group) {
    if (pairwise_) pairwise_->set_row_annotations(weight, group);
  }

  // Data-parallel training: every loss it may hold supports it; the in-batch ones gather the
  // global batch's targets (losses/in_batch_bpr.hpp).
  static constexpr bool data_parallel = true;
  void set_comm(const M& m, dist::Comm* comm) {
    if (bpr_) bpr_->set_comm(m, comm);
    if (pairwise_) pairwise_->set_comm(m, comm);
  }
  LossValue idle_loss(const M& m, const StepContext& ctx) {
    if (bpr_) return bpr_->idle_loss(m, ctx);
    if (pairwise_) return pairwise_->idle_loss(m, ctx);
    return {};
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    if (bce_) return bce_->loss(m, params, grads, a, batch, ctx, d_out);
    if (ce_) return ce_->loss(m, params, grads, a, batch, ctx, d_out);
    if (bpr_) return bpr_->loss(m, params, grads, a, batch, ctx, d_out);
    return pairwise_->loss(m, params, grads, a, batch, ctx, d_out);
  }
  double gemm_flops(const M& m, const LossValue& v) const {
    if (bce_) return bce_->gemm_flops(m, v);
    if (ce_) return ce_->gemm_flops(m, v);
    if (bpr_) return bpr_->gemm_flops(m, v);
    return pairwise_->gemm_flops(m, v);
  }

 private:
  std::optional<NextItemCE<M>> ce_;
  std::optional<InBatchBPR<M>> bpr_;
  std::optional<WeightedPairwise<M>> pairwise_;
  std::optional<BceMulti<M>> bce_;
};

}  // namespace recdistill
