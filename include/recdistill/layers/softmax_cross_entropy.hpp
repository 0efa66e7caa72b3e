// recdistill/layers/softmax_cross_entropy.hpp: full-softmax cross-entropy over an output
// table (the tied item embedding), mean-reduced over the rows whose target is not 0.
//
//   z_r = h_r E^T (+ c) (all N columns, pad column 0 included at training, as the references do)
//   L   = (1/T) sum_r [logsumexp(z_r) - z_{r, y_r}],  T = #{r : y_r != 0}
//   dz_r = (softmax(z_r) - onehot(y_r)) / T;  dh_r = dz_r E;  dE += dz^T h.
// The backend processes rows in chunks so the (R, N) logit matrix is never materialised, and
// rows with target 0 (padding) cost nothing.
#pragma once
#include <cstdint>

#include "recdistill/backend/ops.hpp"

namespace recdistill::layers {

using recdistill::CrossEntropyWorkspace;

// Returns the mean loss. dh (R, d) is written (0 on ignored rows) when not null; dE (N, d)
// accumulates when not null. hidden (R, d), table (N, d), targets (R), 0 = ignore. With an
// output bias c (N) the logits are z_r = h_r E^T + c and dbias (N) accumulates when not null.
template <class B, class T>
double softmax_cross_entropy(Ptr<B, T> dh, Ptr<B, T> dE, CPtr<B, T> hidden, CPtr<B, T> table,
                             CPtr<B, int32_t> targets, int R, int d, int N,
                             CrossEntropyWorkspace<B, T>& ws, int64_t* n_targets = nullptr,
                             CPtr<B, T> bias = nullptr, Ptr<B, T> dbias = nullptr) {
  return ops::softmax_cross_entropy<B>(dh, dE, hidden, table, targets, R, d, N, ws, n_targets, bias, dbias);
}

}  // namespace recdistill::layers
