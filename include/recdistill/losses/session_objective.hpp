// recdistill/losses/session_objective.hpp: a session model's objective, chosen at run time by
// its `training.loss` (backbones/session_config.hpp): full-softmax CE (losses/next_item.hpp)
// or in-batch BPR (losses/in_batch_bpr.hpp), over the one target of each row.
#pragma once
#include <optional>

#include "recdistill/backbones/session_config.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"

namespace recdistill {

template <class M>
class SessionObjective {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;

  SessionObjective(const M& m, int capacity) {
    if (m.config().loss == SessionLoss::ce) ce_.emplace(m, capacity);
    else bpr_.emplace(m, capacity);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    return ce_ ? ce_->loss(m, params, grads, a, batch, ctx, d_out) : bpr_->loss(m, params, grads, a, batch, ctx, d_out);
  }
  double gemm_flops(const M& m, const LossValue& v) const {
    return ce_ ? ce_->gemm_flops(m, v) : bpr_->gemm_flops(m, v);
  }

 private:
  std::optional<NextItemCE<M>> ce_;
  std::optional<InBatchBPR<M>> bpr_;
};

}  // namespace recdistill
