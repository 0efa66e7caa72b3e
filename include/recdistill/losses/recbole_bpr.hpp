// recdistill/losses/recbole_bpr.hpp: RecBole's BPR objective (specs/backbones.md §1 `bpr`, §7),
// the only loss of its FPMC: one negative per row, drawn uniformly from the items other than the
// row's target (ids 1..N-1; items of the user's history can be drawn, as RecBole's
// RepeatableSampler does), and RecBole's BPRLoss (recbole/model/loss.py),
//   L = -(1/R) sum_r log(gamma + sigmoid(s+_r - s-_r)),  gamma = 1e-10,
// s+ = h_r . E[y_r], s- = h_r . E[n_r] over the scorer's (bias-free) table, one target per
// output row (SeqBatch::target_rows(); rows with target 0 are ignored).
//
// The negatives are SampledBPR's draws (losses/next_item.hpp): the Philox `sampling` stream
// keyed by (seed; epoch, step, row), so a step's negatives never depend on threads or the resume
// point. (SampledBPR itself has no gamma: it is -log sigmoid.) loss_on() takes given negatives,
// for fixtures whose negatives come from the reference.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

template <class M>
class RecBoleBPR {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "bpr";
  static constexpr bool data_parallel = true;  // a mean over targets; draws keyed by global rows
  static constexpr double gamma = 1e-10;  // RecBole's BPRLoss default

  RecBoleBPR(const M& m, int capacity) : neg_host_(size_t(capacity)), neg_(size_t(capacity)) {
    detail::require_dot_scorer(m.scorer(), name);
    if (m.n_items() < 3) fail("bpr: needs at least two items to draw a negative, found ", m.n_items() - 1);
  }

  // The negative of the step's global row r (global_target): uniform over 1..N-1 without the target y.
  static int32_t negative(uint64_t seed, const StepContext& c, uint32_t r, int32_t y, int N) {
    return SampledBPR<M>::negative(seed, c, r, y, N);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const int R = std::max(batch.target_rows(), 0), N = m.scorer().n_items;
    RD_REQUIRE(size_t(R) <= neg_host_.size(), "bpr: ", R, " rows for a workspace of ", neg_host_.size());
    for (int r = 0; r < R; ++r) {
      const int32_t y = batch.target_host[size_t(r)];
      neg_host_[size_t(r)] = y == 0 ? 0 : negative(ctx.seed, ctx, global_target(batch, ctx, r), y, N);
    }
    return loss_on(m, params, grads, a, batch, neg_host_.data(), d_out);
  }

  // The loss with the given negatives (host, one per target row).
  LossValue loss_on(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                    const typename M::Batch& batch, const int32_t* negatives, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int R = std::max(batch.target_rows(), 0);
    RD_REQUIRE(size_t(R) <= neg_.size(), "bpr: ", R, " rows for a workspace of ", neg_.size());
    B::template to_device<int32_t>(neg_.data(), negatives, size_t(R));
    LossValue v;
    v.loss = ops::bpr_gamma_loss<B>(d_out, grads + s.table, m.output(a), params + s.table, batch.target.data(),
                                    CPtr<B, int32_t>(neg_.data()), R, s.dim, gamma, &v.targets);
    return v;
  }

  double gemm_flops(const M&, const LossValue&) const { return 0; }

 private:
  std::vector<int32_t> neg_host_;
  Buffer<B, int32_t> neg_;
};

}  // namespace recdistill
