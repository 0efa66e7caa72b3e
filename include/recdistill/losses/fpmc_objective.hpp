// recdistill/losses/fpmc_objective.hpp: FPMC's objective, chosen at run time by its
// training.loss (FPMCConfig in backbones/fpmc.hpp): `bpr` RecBole's (losses/recbole_bpr.hpp; the
// only one the `recbole` variant accepts), `inbatch_bpr` ALKDRec's (losses/in_batch_bpr.hpp) or
// `ce` the full softmax (losses/next_item.hpp) or `weighted_pairwise` active distillation's
// (losses/weighted_pairwise.hpp), over the one target of each row. (FPMC's loss
// has a value SessionLoss lacks, so FPMC has its own objective instead of SessionObjective.)
#pragma once
#include <optional>

#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/recbole_bpr.hpp"
#include "recdistill/losses/weighted_pairwise.hpp"

namespace recdistill {

template <class M>
class FPMCObjective {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;

  FPMCObjective(const M& m, int capacity) {
    if (m.config().bce_negatives > 0) {  // bce_multi instead of training.loss (session variant)
      bce_.emplace(m, capacity, m.config().bce_negatives);
      return;
    }
    switch (m.config().loss) {
      case FPMCLoss::bpr: bpr_.emplace(m, capacity); break;
      case FPMCLoss::inbatch_bpr: inbatch_.emplace(m, capacity); break;
      case FPMCLoss::ce: ce_.emplace(m, capacity); break;
      case FPMCLoss::weighted_pairwise: pairwise_.emplace(m, capacity); break;
    }
  }

  void set_row_annotations(const std::vector<float>& weight, const std::vector<int32_t>& group) {
    if (pairwise_) pairwise_->set_row_annotations(weight, group);
  }

  // Data-parallel training: every loss it may hold supports it; the in-batch ones gather the
  // global batch's targets (losses/in_batch_bpr.hpp).
  static constexpr bool data_parallel = true;
  void set_comm(const M& m, dist::Comm* comm) {
    if (inbatch_) inbatch_->set_comm(m, comm);
    if (pairwise_) pairwise_->set_comm(m, comm);
  }
  LossValue idle_loss(const M& m, const StepContext& ctx) {
    if (inbatch_) return inbatch_->idle_loss(m, ctx);
    if (pairwise_) return pairwise_->idle_loss(m, ctx);
    return {};
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    if (bce_) return bce_->loss(m, params, grads, a, batch, ctx, d_out);
    if (bpr_) return bpr_->loss(m, params, grads, a, batch, ctx, d_out);
    if (inbatch_) return inbatch_->loss(m, params, grads, a, batch, ctx, d_out);
    if (pairwise_) return pairwise_->loss(m, params, grads, a, batch, ctx, d_out);
    return ce_->loss(m, params, grads, a, batch, ctx, d_out);
  }
  double gemm_flops(const M& m, const LossValue& v) const {
    if (bce_) return bce_->gemm_flops(m, v);
    if (bpr_) return bpr_->gemm_flops(m, v);
    if (inbatch_) return inbatch_->gemm_flops(m, v);
    if (pairwise_) return pairwise_->gemm_flops(m, v);
    return ce_->gemm_flops(m, v);
  }

 private:
  std::optional<RecBoleBPR<M>> bpr_;
  std::optional<InBatchBPR<M>> inbatch_;
  std::optional<NextItemCE<M>> ce_;
  std::optional<WeightedPairwise<M>> pairwise_;
  std::optional<BceMulti<M>> bce_;
};

}  // namespace recdistill
