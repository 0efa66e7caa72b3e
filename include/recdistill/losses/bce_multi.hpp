// recdistill/losses/bce_multi.hpp: `bce_multi` (specs/backbones.md §1, §7), the objective of
// ALKDRec's Atten-Mixer on ML (kk97111/ALKDRec AttMix.py: BCEWithLogitsLoss on the positive and
// on the negatives, added):
//   L = mean_b softplus(-h_b . E_{y_b}) + mean_{b,k} softplus(h_b . E_{n_bk}),
// over n uniform negatives per row drawn from the items 1..N-1 with no exclusion (a negative may
// be the positive or a history item, as upstream's draws over all its items may), on the Philox
// `sampling` stream keyed by (seed; epoch, step, global row, k), so a step's negatives never depend on
// threads or the resume point. One target per output row (SeqBatch::target_rows()); the
// scorer's table must be bias-free. Gradients: ds+ = (sigmoid(s+) - 1) / B,
// ds- = sigmoid(s-) / (B n).
#pragma once
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
class BceMulti {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "bce_multi";
  static constexpr bool data_parallel = true;  // a mean over rows; draws keyed by global rows

  // The number of negatives per row: `negatives`, or (two-argument form, the Objective
  // contract) the model config's bce_negatives when it has one and it is > 0, else 1.
  BceMulti(const M& m, int capacity) : BceMulti(m, capacity, default_negatives(m)) {}
  BceMulti(const M& m, int capacity, int negatives)
      : n_(negatives), neg_host_(size_t(capacity) * size_t(negatives > 0 ? negatives : 0)), neg_(neg_host_.size()) {
    detail::require_dot_scorer(m.scorer(), name);
    if (n_ < 1) fail("bce_multi: needs at least one negative per row, got ", n_);
    if (m.n_items() < 2) fail("bce_multi: needs at least one item to draw a negative");
  }

  int negatives() const { return n_; }

  // Negative k of the step's global row r (global_target): uniform over 1..N-1.
  static int32_t negative(const StepContext& c, uint32_t r, uint32_t k, int N) {
    const auto w = bits4(c.seed, Stream::sampling, c.epoch, c.step, r, k);
    return 1 + int32_t((uint64_t(w[0]) * uint64_t(N - 1)) >> 32);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int R = batch.target_rows();
    RD_REQUIRE(size_t(R) * size_t(n_) <= neg_host_.size(), "bce_multi: ", R, " rows for a workspace of ",
               neg_host_.size() / size_t(n_));
    for (int r = 0; r < R; ++r) {
      if (batch.target_host[size_t(r)] == 0)
        fail("bce_multi: row ", r, " of the batch has no target (it needs one target per row)");
      for (int k = 0; k < n_; ++k)
        neg_host_[size_t(r) * size_t(n_) + size_t(k)] = negative(ctx, global_target(batch, ctx, r), uint32_t(k), s.n_items);
    }
    B::template to_device<int32_t>(neg_.data(), neg_host_.data(), size_t(R) * size_t(n_));
    LossValue v;
    v.loss = ops::bce_multi_loss<B>(d_out, grads + s.table, m.output(a), params + s.table, batch.target.data(),
                                    CPtr<B, int32_t>(neg_.data()), R, n_, s.dim);
    v.targets = R;
    return v;
  }

  double gemm_flops(const M&, const LossValue&) const { return 0; }

 private:
  static int default_negatives(const M& m) {
    if constexpr (requires { m.config().bce_negatives; })
      return m.config().bce_negatives > 0 ? m.config().bce_negatives : 1;
    return 1;
  }
  int n_;
  std::vector<int32_t> neg_host_;
  Buffer<B, int32_t> neg_;
};

}  // namespace recdistill
