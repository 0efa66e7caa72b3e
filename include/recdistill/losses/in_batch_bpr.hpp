// recdistill/losses/in_batch_bpr.hpp: in-batch BPR (specs/backbones.md §1 `inbatch_bpr`, §7),
// the objective of ALKDRec's FPMC, STAMP and Atten-Mixer: every other target of the batch is a
// negative of each row,
//   L = (1 / B^2) sum_{b=1..B} sum_{j=1..B} -log(gamma + sigmoid(h_b . E_{y_b} - h_b . E_{y_j})),
// gamma = 1e-10, every term kept: j = b and a repeated target give the constant
// -log(gamma + 1/2) and no gradient, as in the reference. One target per output row
// (SeqBatch::target_rows()); the scorer's table must be bias-free. In matrix form with
// Y = E[y] (B, d) and S = h Y^T (B, B): dh = dS Y and dY = dS^T h, scatter-added into E by y.
// A data-parallel rank holds R rows of the global batch of C: it all-gathers the C targets
// (InBatchColumns) and computes its rows' S (R, C), so every row meets the negatives it meets in
// one process; its loss is the mean over its R C terms, and the ranks' means, combined in
// proportion to R, are the one-process (1 / C^2) sum.
#pragma once
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/dist/comm.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

// The in-batch scores both in-batch pairwise losses share (this one and
// losses/weighted_pairwise.hpp): for R rows h (R, d) against the C targets y of the batch,
// Y = E[y] (C, d), S = h Y^T (R, C); then, from the loss's dS, dh = dS Y (written into d_out) and
// dY = dS^T h scattered into the table's gradient by y. One process: C = R.
template <class B, class T>
class InBatchScores {
 public:
  InBatchScores(int capacity, int d)
      : Y_(size_t(capacity) * d), dY_(size_t(capacity) * d), S_(size_t(capacity) * capacity),
        dS_(size_t(capacity) * capacity) {}
  size_t capacity_rows(int d) const { return Y_.size() / size_t(d); }
  CPtr<B, T> scores(CPtr<B, T> params, const Scorer& s, CPtr<B, int32_t> y, CPtr<B, T> h, int R, int C) {
    ops::gather_rows<B>(Y_.data(), params + s.table, y, C, s.dim, 1.0);
    B::template gemm<T>(false, true, R, C, s.dim, T(1), h, s.dim, Y_.data(), s.dim, T(0), S_.data(), C);
    return S_.data();
  }
  Ptr<B, T> d_scores() { return dS_.data(); }
  void backward(Ptr<B, T> grads, const Scorer& s, CPtr<B, int32_t> y, CPtr<B, T> h, int R, int C, Ptr<B, T> d_out) {
    const int d = s.dim;
    B::template gemm<T>(false, false, R, d, C, T(1), dS_.data(), C, Y_.data(), d, T(0), d_out, d);
    B::template gemm<T>(true, false, C, d, R, T(1), dS_.data(), C, h, d, T(0), dY_.data(), d);
    ops::scatter_add_rows<B>(grads + s.table, CPtr<B, T>(dY_.data()), y, C, d, false, 1.0);
  }
  // S, dh, dY: 3 x 2 R C d
  static double gemm_flops(int64_t R, int64_t C, int d) { return 6.0 * double(R) * double(C) * d; }

 private:
  Buffer<B, T> Y_, dY_, S_, dS_;
};

// The columns an in-batch loss compares a batch's rows with: the targets (and, on request, the
// training sequences) of the step's global batch. One process: the batch's own. A data-parallel
// rank (dist/comm.hpp) holds the global rows from ctx.first_seq on and all-gathers every rank's,
// in rank order, which is the global rows' order (dist::slice_of).
template <class B>
class InBatchColumns {
 public:
  struct View {
    CPtr<B, int32_t> y;    // (C) the targets, backend memory
    const int32_t* y_host;  // (C)
    const int32_t* seqs;    // (C) the rows' training sequences (with_seqs only)
    int C = 0, row0 = 0;    // the columns; this batch's row b is column row0 + b
  };

  explicit InBatchColumns(int capacity) : y_(size_t(capacity)), capacity_(capacity) {}
  void set_comm(dist::Comm* c) { comm_ = c; }

  template <class Batch>
  View of(const Batch& batch, const StepContext& ctx, bool with_seqs, const char* loss) {
    const int R = batch.target_rows();
    if (!dist::parallel(comm_)) return {batch.target.data(), batch.target_host.data(), batch.row_host.data(), R, 0};
    RD_REQUIRE(batch.targets_per_row == 1, loss, ": data-parallel in-batch negatives need one target per row");
    std::vector<int64_t> mine;
    mine.reserve(size_t(R) * (with_seqs ? 2 : 1));
    for (int r = 0; r < R; ++r) {
      mine.push_back(batch.target_host[size_t(r)]);
      if (with_seqs) mine.push_back(batch.row_host[size_t(r)]);
    }
    const std::vector<int64_t> all = comm_->allgather(mine, what(ctx, loss));
    const size_t per = with_seqs ? 2 : 1;
    const int C = int(all.size() / per);
    RD_REQUIRE(all.size() % per == 0 && C <= capacity_ && int64_t(ctx.first_seq) + R <= C, loss, ": the ranks gathered ",
               all.size() / per, " targets for rows ", ctx.first_seq, "..", ctx.first_seq + uint32_t(R), " (capacity ",
               capacity_, ")");
    y_host_.resize(size_t(C));
    seqs_.resize(with_seqs ? size_t(C) : 0);
    for (int j = 0; j < C; ++j) {
      y_host_[size_t(j)] = int32_t(all[size_t(j) * per]);
      if (with_seqs) seqs_[size_t(j)] = int32_t(all[size_t(j) * per + 1]);
    }
    B::template to_device<int32_t>(y_.data(), y_host_.data(), size_t(C));
    return {CPtr<B, int32_t>(y_.data()), y_host_.data(), seqs_.data(), C, int(ctx.first_seq)};
  }
  // A rank whose slice of the step is empty joins the gather; returns the columns.
  int join(const StepContext& ctx, const char* loss) {
    return dist::parallel(comm_) ? int(comm_->allgather({}, what(ctx, loss)).size()) : 0;
  }

 private:
  static std::string what(const StepContext& c, const char* loss) {
    return cat("epoch ", c.epoch, " step ", c.step + 1, "'s ", loss, " targets all-gather");
  }
  dist::Comm* comm_ = nullptr;
  Buffer<B, int32_t> y_;
  std::vector<int32_t> y_host_, seqs_;
  int capacity_;
};

template <class M>
class InBatchBPR {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "inbatch_bpr";
  static constexpr double gamma = 1e-10;
  static constexpr bool data_parallel = true;  // over the global batch's targets (InBatchColumns)

  InBatchBPR(const M& m, int capacity) : in_batch_(capacity, m.hidden_size()), columns_(capacity) {
    detail::require_dot_scorer(m.scorer(), name);
  }

  void set_comm(const M&, dist::Comm* comm) { columns_.set_comm(comm); }
  LossValue idle_loss(const M&, const StepContext& ctx) {
    columns_c_ = columns_.join(ctx, name);
    return {};
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int R = batch.target_rows(), d = s.dim;
    RD_REQUIRE(size_t(R) <= in_batch_.capacity_rows(d), "inbatch_bpr: ", R, " rows for a workspace of ",
               in_batch_.capacity_rows(d));
    // Checked on the gathered columns, so every rank fails alike.
    const auto cols = columns_.of(batch, ctx, false, name);
    for (int j = 0; j < cols.C; ++j)
      if (cols.y_host[j] == 0) fail("inbatch_bpr: row ", j, " of the batch has no target (it needs one target per row)");
    const CPtr<B, T> h = m.output(a);
    const CPtr<B, T> S = in_batch_.scores(params, s, cols.y, h, R, cols.C);
    LossValue v;
    v.loss = ops::inbatch_bpr_loss<B>(in_batch_.d_scores(), S, R, cols.C, cols.row0, gamma);
    v.targets = R;
    in_batch_.backward(grads, s, cols.y, h, R, cols.C, d_out);
    columns_c_ = cols.C;
    return v;
  }

  double gemm_flops(const M& m, const LossValue& v) const {
    return InBatchScores<B, T>::gemm_flops(v.targets, columns_c_, m.hidden_size());
  }

 private:
  InBatchScores<B, T> in_batch_;
  InBatchColumns<B> columns_;
  int columns_c_ = 0;  // the last step's columns
};

}  // namespace recdistill
