// recdistill/layers/linear.hpp: y = x W^T + b (PyTorch layout: W is (out, in)).
//
// A 1x1 Conv1d is the same operation. Backward: dx = g W, dW += g^T x, db += sum_rows g.
#pragma once
#include <cstdint>

namespace recdistill::layers {

// y (R, out) = x (R, in) * W^T (in, out) + b (out); x rows may be strided (ldx).
template <class B, class T>
void linear_forward(T* y, const T* x, int ldx, const T* W, const T* b, int R, int in, int out,
                    int ldy = -1) {
  if (ldy < 0) ldy = out;
  B::template gemm<T>(false, true, R, out, in, T(1), x, ldx, W, in, T(0), y, ldy);
  if (b)
    for (int r = 0; r < R; ++r)
      for (int o = 0; o < out; ++o) y[int64_t(r) * ldy + o] += b[o];
}

// dx (R, in) = g W  (written, or added when accumulate_dx: residual / shared inputs);
// dW (out, in) += g^T x; db (out) += sum_rows g.
template <class B, class T>
void linear_backward(T* dx, T* dW, T* db, const T* g, int ldg, const T* x, int ldx, const T* W,
                     int R, int in, int out, bool accumulate_dx = false, int lddx = -1) {
  if (lddx < 0) lddx = in;
  if (dx)
    B::template gemm<T>(false, false, R, in, out, T(1), g, ldg, W, in,
                        accumulate_dx ? T(1) : T(0), dx, lddx);
  B::template gemm<T>(true, false, out, in, R, T(1), g, ldg, x, ldx, T(1), dW, in);
  if (db)
    for (int r = 0; r < R; ++r)
      for (int o = 0; o < out; ++o) db[o] += g[int64_t(r) * ldg + o];
}

}  // namespace recdistill::layers
