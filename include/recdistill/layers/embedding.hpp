// recdistill/layers/embedding.hpp: table lookup y[r] = E[ids[r]] (+ optional scale).
//
// Backward scatter-adds into the table. `skip_pad` gives PyTorch padding_idx semantics on
// the lookup path only: the gradient that reaches row 0 through the lookup is dropped (the
// row can still be trained where the same table is used as a tied output layer).
#pragma once
#include <cstdint>

namespace recdistill::layers {

// out (R, d) = scale * table[ids] ; table (N, d), ids (R)
template <class T>
void embedding_forward(T* out, const T* table, const int32_t* ids, int R, int d, T scale = T(1)) {
  for (int r = 0; r < R; ++r) {
    const T* src = table + int64_t(ids[r]) * d;
    T* dst = out + int64_t(r) * d;
    for (int c = 0; c < d; ++c) dst[c] = scale * src[c];
  }
}

// dtable (N, d) += scale * scatter(dout (R, d)) by ids
template <class T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int R, int d, bool skip_pad,
                        T scale = T(1)) {
  for (int r = 0; r < R; ++r) {
    if (skip_pad && ids[r] == 0) continue;
    T* dst = dtable + int64_t(ids[r]) * d;
    const T* src = dout + int64_t(r) * d;
    for (int c = 0; c < d; ++c) dst[c] += scale * src[c];
  }
}

}  // namespace recdistill::layers
