// recdistill/losses/objective.hpp: what a training objective promises the trainer.
//
// An objective O<M> over a model M turns the model's outputs after forward() and the batch into
// a loss value and the gradient w.r.t. the model's output (d_out, (rows, L, d), written), and
// accumulates the gradients of the parameters it reads directly (the scorer's table) into
// grads. The trainer then runs the model's backward with d_out.
//
//   O<M>(const M& model, int capacity)            allocates its workspace once
//   loss(model, params, grads, acts, batch, ctx, d_out) -> LossValue
//   gemm_flops(model, LossValue) -> double        matrix-product work of that call (logs only)
//
// Data-parallel training (train/trainer.hpp, docs/distributed.md) takes an objective that says
// `static constexpr bool data_parallel = true`: its loss is a (weighted) mean over its rows'
// targets and its draws are keyed by global rows (global_target), so the ranks' losses and
// gradients, combined in proportion to their weights, are the one-process ones. One that needs
// the whole batch (in-batch negatives) also has set_comm(model, comm) and idle_loss(model, ctx);
// `reduces_itself` objectives (profile distillation) reduce their own global quantities.
#pragma once
#include <concepts>
#include <cstdint>

#include "recdistill/backend/backend.hpp"
#include "recdistill/core/random.hpp"

namespace recdistill {

struct LossValue {
  double loss = 0;      // mean over the batch's targets
  int64_t targets = 0;  // what the mean divides by
  // A weighted mean's total weight, where it is not `targets` (< 0: it is). Data-parallel ranks
  // combine their losses and gradients in proportion to it (train/trainer.hpp).
  double weight = -1;
};

// The index in the step's global batch of target r of a rank's batch: a data-parallel rank
// holds the global rows from ctx.first_seq on (dist/comm.hpp), so per-target draws keyed by it
// are the ones one process draws.
template <class Batch>
uint32_t global_target(const Batch& b, const StepContext& ctx, int r) {
  const int per_row = b.rows > 0 ? b.target_rows() / b.rows : 0;
  return ctx.first_seq * uint32_t(per_row) + uint32_t(r);
}

template <class O, class M>
concept Objective = requires(O& o, const M& m, CPtr<typename M::BackendType, typename M::Scalar> cp,
                             Ptr<typename M::BackendType, typename M::Scalar> p,
                             typename M::Activations& a, const typename M::Batch& batch,
                             const StepContext& ctx, LossValue v) {
  requires std::constructible_from<O, const M&, int>;
  { o.loss(m, cp, p, a, batch, ctx, p) } -> std::same_as<LossValue>;
  { o.gemm_flops(m, v) } -> std::convertible_to<double>;
};

}  // namespace recdistill
