// recdistill/losses/cloze.hpp: the cloze objective of masked-item models (BERT4Rec).
//
// The batching policy (backbones/cloze_batching.hpp) has put [mask] into the input and the
// original items as targets of the masked slots; this is the full-softmax cross-entropy of the
// output state at those slots over the model's training head (model.head(): a table and an
// optional bias, e.g. E[0:N] + c for RecBole's BERT4Rec, a separate (N + 1)-column layer for
// the hf variant), mean over the batch's targets:
//   L = (1/T) sum_{r: y_r != 0} [logsumexp(z_r) - z_{r, y_r}],  z_r = Z_r W^T + c.
#pragma once
#include <cstdint>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/layers/softmax_cross_entropy.hpp"
#include "recdistill/losses/objective.hpp"

namespace recdistill {

template <class M>
class ClozeCE {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  static constexpr const char* name = "cloze_ce";
  // A mean over its targets of per-row terms with no draws: data-parallel ranks reproduce it
  // exactly (train/trainer.hpp, docs/distributed.md).
  static constexpr bool data_parallel = true;

  ClozeCE(const M& m, int capacity) {
    ws_.reserve(capacity * m.max_len(), 512, m.hidden_size(), m.head().n_items);
  }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext&, Ptr<B, T> d_out) {
    const Scorer h = m.head();
    LossValue v;
    const bool bias = h.bias >= 0;
    v.loss = layers::softmax_cross_entropy<B, T>(d_out, grads + h.table, m.output(a), params + h.table,
                                                 batch.target.data(), batch.target_rows(), h.dim, h.n_items, ws_,
                                                 &v.targets, bias ? CPtr<B, T>(params + h.bias) : CPtr<B, T>(nullptr),
                                                 bias ? Ptr<B, T>(grads + h.bias) : Ptr<B, T>(nullptr));
    return v;
  }

  // logits, dh, dE: 3 x 2 T d C
  double gemm_flops(const M& m, const LossValue& v) const {
    return 6.0 * double(v.targets) * m.hidden_size() * m.head().n_items;
  }

 private:
  CrossEntropyWorkspace<B, T> ws_;
};

}  // namespace recdistill
