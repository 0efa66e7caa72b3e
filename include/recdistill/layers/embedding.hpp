// recdistill/layers/embedding.hpp: table lookup y[r] = scale * E[ids[r]].
//
// Backward scatter-adds into the table. `skip_pad` gives PyTorch padding_idx semantics on
// the lookup path only: the gradient that reaches row 0 through the lookup is dropped (the
// row can still be trained where the same table is used as a tied output layer).
#pragma once
#include <cstdint>

#include "recdistill/backend/ops.hpp"

namespace recdistill::layers {

// out (R, d) = scale * table (N, d) [ids (R)]
template <class B, class T>
void embedding_forward(Ptr<B, T> out, CPtr<B, T> table, CPtr<B, int32_t> ids, int R, int d,
                       double scale = 1.0) {
  ops::gather_rows<B>(out, table, ids, R, d, scale);
}

// dtable (N, d) += scale * scatter(dout (R, d)) by ids (R)
template <class B, class T>
void embedding_backward(Ptr<B, T> dtable, CPtr<B, T> dout, CPtr<B, int32_t> ids, int R, int d,
                        bool skip_pad, double scale = 1.0) {
  ops::scatter_add_rows<B>(dtable, dout, ids, R, d, skip_pad, scale);
}

}  // namespace recdistill::layers
