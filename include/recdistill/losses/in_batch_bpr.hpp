// recdistill/losses/in_batch_bpr.hpp: in-batch BPR (specs/backbones.md §1 `inbatch_bpr`, §7),
// the objective of ALKDRec's FPMC, STAMP and Atten-Mixer: every other target of the batch is a
// negative of each row,
//   L = (1 / B^2) sum_{b=1..B} sum_{j=1..B} -log(gamma + sigmoid(h_b . E_{y_b} - h_b . E_{y_j})),
// gamma = 1e-10, every term kept: j = b and a repeated target give the constant
// -log(gamma + 1/2) and no gradient, as in the reference. One target per output row
// (SeqBatch::target_rows()); the scorer's table must be bias-free. In matrix form with
// Y = E[y] (B, d) and S = h Y^T (B, B): dh = dS Y and dY = dS^T h, scatter-added into E by y.
#pragma once
#include <cstdint>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

// The in-batch scores both in-batch pairwise losses share (this one and
// losses/weighted_pairwise.hpp): Y = E[y] (R, d), S = h Y^T (R, R); then, from the loss's dS,
// dh = dS Y (written into d_out) and dY = dS^T h scattered into the table's gradient by y.
template <class B, class T>
class InBatchScores {
 public:
  InBatchScores(int capacity, int d)
      : Y_(size_t(capacity) * d), dY_(size_t(capacity) * d), S_(size_t(capacity) * capacity),
        dS_(size_t(capacity) * capacity) {}
  size_t capacity_rows(int d) const { return Y_.size() / size_t(d); }
  CPtr<B, T> scores(CPtr<B, T> params, const Scorer& s, CPtr<B, int32_t> y, CPtr<B, T> h, int R) {
    ops::gather_rows<B>(Y_.data(), params + s.table, y, R, s.dim, 1.0);
    B::template gemm<T>(false, true, R, R, s.dim, T(1), h, s.dim, Y_.data(), s.dim, T(0), S_.data(), R);
    return S_.data();
  }
  Ptr<B, T> d_scores() { return dS_.data(); }
  void backward(Ptr<B, T> grads, const Scorer& s, CPtr<B, int32_t> y, CPtr<B, T> h, int R, Ptr<B, T> d_out) {
    const int d = s.dim;
    B::template gemm<T>(false, false, R, d, R, T(1), dS_.data(), R, Y_.data(), d, T(0), d_out, d);
    B::template gemm<T>(true, false, R, d, R, T(1), dS_.data(), R, h, d, T(0), dY_.data(), d);
    ops::scatter_add_rows<B>(grads + s.table, CPtr<B, T>(dY_.data()), y, R, d, false, 1.0);
  }
  // S, dh, dY: 3 x 2 R^2 d
  static double gemm_flops(int64_t R, int d) { return 6.0 * double(R) * double(R) * d; }

 private:
  Buffer<B, T> Y_, dY_, S_, dS_;
};

template <class M>
class InBatchBPR {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "inbatch_bpr";
  static constexpr double gamma = 1e-10;

  InBatchBPR(const M& m, int capacity) : in_batch_(capacity, m.hidden_size()) {
    detail::require_dot_scorer(m.scorer(), name);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext&, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int R = batch.target_rows(), d = s.dim;
    RD_REQUIRE(size_t(R) <= in_batch_.capacity_rows(d), "inbatch_bpr: ", R, " rows for a workspace of ",
               in_batch_.capacity_rows(d));
    for (int r = 0; r < R; ++r)
      if (batch.target_host[size_t(r)] == 0)
        fail("inbatch_bpr: row ", r, " of the batch has no target (it needs one target per row)");
    const CPtr<B, int32_t> y = batch.target.data();
    const CPtr<B, T> h = m.output(a);
    const CPtr<B, T> S = in_batch_.scores(params, s, y, h, R);
    LossValue v;
    v.loss = ops::inbatch_bpr_loss<B>(in_batch_.d_scores(), S, R, gamma);
    v.targets = R;
    in_batch_.backward(grads, s, y, h, R, d_out);
    return v;
  }

  double gemm_flops(const M& m, const LossValue& v) const {
    return InBatchScores<B, T>::gemm_flops(v.targets, m.hidden_size());
  }

 private:
  InBatchScores<B, T> in_batch_;
};

}  // namespace recdistill
