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
#pragma once
#include <concepts>
#include <cstdint>

#include "recdistill/backend/backend.hpp"
#include "recdistill/core/random.hpp"

namespace recdistill {

struct LossValue {
  double loss = 0;      // mean over the batch's targets
  int64_t targets = 0;  // what the mean divides by
};

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
