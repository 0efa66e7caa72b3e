// recdistill/losses/next_item.hpp: next-item objectives over every position of a window.
//
// NextItemCE (today's SASRec objective, docs/training.md): full-softmax cross-entropy of each
//   slot's output state against all items of the scorer's table, mean over the slots that have a
//   target: L = (1/T) sum_r [logsumexp(h_r E^T) - h_r . E_{y_r}].
// SampledBPR: one negative per target, drawn uniformly from the items other than the target
//   (ids 1..N-1) on the Philox `sampling` stream keyed by (seed; epoch, step, row), so a step's
//   negatives never depend on threads or the resume point:
//   L = (1/T) sum_r -log sigmoid(h_r . E_{y_r} - h_r . E_{n_r}).
// Both read the scorer's table and bias-free dot products (a scorer with a bias is rejected).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/layers/softmax_cross_entropy.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

namespace detail {
inline void require_dot_scorer(const Scorer& s, const char* objective) {
  if (s.bias >= 0) fail(objective, ": the model's scorer has an output bias, which this objective does not model");
  if (s.normalise_rows)
    fail(objective, ": the model's scorer scores against L2-normalised item rows, which this objective does not "
                    "model (it reads the raw table)");
}
}  // namespace detail

template <class M>
class NextItemCE {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "ce";
  // A mean over its targets of per-row terms with no draws: data-parallel ranks reproduce it
  // exactly (train/trainer.hpp, docs/distributed.md).
  static constexpr bool data_parallel = true;

  NextItemCE(const M& m, int capacity) {
    detail::require_dot_scorer(m.scorer(), name);
    ws_.reserve(capacity * m.max_len(), 512, m.hidden_size(), m.n_items());
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext&, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    LossValue v;
    v.loss = layers::softmax_cross_entropy<B, T>(d_out, grads + s.table, m.output(a), params + s.table,
                                                 batch.target.data(), batch.target_rows(), s.dim,
                                                 s.n_items, ws_, &v.targets);
    return v;
  }

  // logits, dh, dE: 3 x 2 T d N
  double gemm_flops(const M& m, const LossValue& v) const {
    return 6.0 * double(v.targets) * m.hidden_size() * m.n_items();
  }

 private:
  CrossEntropyWorkspace<B, T> ws_;
};

template <class M>
class SampledBPR {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "bpr";
  static constexpr bool data_parallel = true;  // a mean over targets; draws keyed by global slots

  SampledBPR(const M& m, int capacity)
      : neg_host_(size_t(capacity) * m.max_len()), neg_(size_t(capacity) * m.max_len()) {
    detail::require_dot_scorer(m.scorer(), name);
    if (m.n_items() < 3) fail("bpr: needs at least two items to draw a negative, found ", m.n_items() - 1);
  }

  // The negative of the step's global slot r (global_target): uniform over 1..N-1 without the target y.
  static int32_t negative(uint64_t seed, const StepContext& c, uint32_t r, int32_t y, int N) {
    const auto w = bits4(seed, Stream::sampling, c.epoch, c.step, r, 0);
    const int32_t j = 1 + int32_t((uint64_t(w[0]) * uint64_t(N - 2)) >> 32);  // in [1, N-2]
    return j >= y ? j + 1 : j;
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int R = std::max(batch.target_rows(), 0);
    for (int r = 0; r < R; ++r) {
      const int32_t y = batch.target_host[size_t(r)];
      neg_host_[size_t(r)] = y == 0 ? 0 : negative(ctx.seed, ctx, global_target(batch, ctx, r), y, s.n_items);
    }
    B::template to_device<int32_t>(neg_.data(), neg_host_.data(), size_t(R));
    LossValue v;
    v.loss = ops::bpr_loss<B>(d_out, grads + s.table, m.output(a), params + s.table,
                              batch.target.data(), CPtr<B, int32_t>(neg_.data()), R, s.dim, &v.targets);
    return v;
  }

  double gemm_flops(const M&, const LossValue&) const { return 0; }

 private:
  std::vector<int32_t> neg_host_;
  Buffer<B, int32_t> neg_;
};

}  // namespace recdistill
