// recdistill/losses/weighted_pairwise.hpp: active distillation's loss (specs/active-llm-
// distillation.md §6.2, paper Eq. 1): each row (window w_s, LLM item v, weight alpha, session s)
// ranks its item above the batch's other rows' items, except those of rows with the same item
// and, with the same-session mask, those of rows from the same session:
//   l_b = mean_{j in N_b} -log(gamma + sigmoid(h_b . E_{v_b} - h_b . E_{v_j})),
//   L = sum_b alpha_b l_b / sum_b alpha_b      (self-normalised; backend op weighted_pairwise_loss)
// Row weights and sessions come from the split (data::Split::train_weight / train_group,
// indexed by training sequence; empty: weight 1, and each sequence its own group, so only
// same-item rows are masked); the trainer hands them over once (set_row_annotations) and each
// batch names its rows' sequences (SeqBatch::row_host). One target per output row; the scorer's
// table must be bias-free. The scores and their gradients are in-batch BPR's (InBatchScores).
// A data-parallel rank all-gathers the global batch's items and sequences (InBatchColumns), so
// its rows' negatives, masks and weights are the one-process ones; its loss is normalised by
// its own rows' W_r and reported with weight W_r, so the ranks combine to sum / W.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

template <class M>
class WeightedPairwise {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "weighted_pairwise";
  static constexpr double gamma = 1e-10;

  static constexpr bool data_parallel = true;  // with LossValue::weight (see above)

  WeightedPairwise(const M& m, int capacity)
      : in_batch_(capacity, m.hidden_size()), columns_(capacity), groups_(size_t(capacity)),
        weights_(size_t(capacity)), g_host_(size_t(capacity)), w_host_(size_t(capacity)) {
    detail::require_dot_scorer(m.scorer(), name);
  }

  // Per training sequence (index = the split's train index): weight (> 0) and group.
  void set_row_annotations(const std::vector<float>& weight, const std::vector<int32_t>& group) {
    weight_ = weight;
    group_ = group;
  }

  void set_comm(const M&, dist::Comm* comm) { columns_.set_comm(comm); }
  LossValue idle_loss(const M&, const StepContext& ctx) {
    columns_c_ = columns_.join(ctx, name) / 2;  // (target, sequence) pairs
    return {};
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const Scorer s = m.scorer();
    const int R = batch.target_rows(), d = s.dim;
    RD_REQUIRE(size_t(R) <= in_batch_.capacity_rows(d), name, ": ", R, " rows for a workspace of ",
               in_batch_.capacity_rows(d));
    RD_REQUIRE(batch.row_host.size() >= size_t(R) && batch.targets_per_row == 1, name,
               ": the batch must name each row's training sequence (one target per row)");
    // Checked on the gathered columns, so every rank fails alike.
    const auto cols = columns_.of(batch, ctx, true, name);
    for (int j = 0; j < cols.C; ++j) {
      if (cols.y_host[j] == 0) fail(name, ": row ", j, " of the batch has no target");
      const size_t u = size_t(cols.seqs[j]);
      w_host_[size_t(j)] = weight_.empty() ? T(1) : T(weight_.at(u));
      g_host_[size_t(j)] = group_.empty() ? int32_t(u) : group_.at(u);
      if (!(w_host_[size_t(j)] > 0))
        fail(name, ": training sequence ", u, " has row weight ", weight_.at(u), " (expected > 0)");
    }
    const size_t nc = size_t(std::max(cols.C, 0));
    B::template to_device<T>(weights_.data(), w_host_.data(), nc);
    B::template to_device<int32_t>(groups_.data(), g_host_.data(), nc);
    const CPtr<B, T> h = m.output(a);
    const CPtr<B, T> S = in_batch_.scores(params, s, cols.y, h, R, cols.C);
    LossValue v;
    v.loss = ops::weighted_pairwise_loss<B>(in_batch_.d_scores(), S, cols.y, CPtr<B, int32_t>(groups_.data()),
                                            CPtr<B, T>(weights_.data()), R, cols.C, cols.row0, gamma, &v.weight);
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
  Buffer<B, int32_t> groups_;
  Buffer<B, T> weights_;
  std::vector<int32_t> g_host_;
  std::vector<T> w_host_;
  std::vector<float> weight_;
  std::vector<int32_t> group_;
};

}  // namespace recdistill
