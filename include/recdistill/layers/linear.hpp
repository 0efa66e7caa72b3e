// recdistill/layers/linear.hpp: y = x W^T + b (PyTorch layout: W is (out, in)).
//
// A 1x1 Conv1d is the same operation. Backward: dx = g W, dW += g^T x, db += sum_rows g.
#pragma once
#include "recdistill/backend/ops.hpp"

namespace recdistill::layers {

// y (R, out; row stride ldy) = x (R, in; row stride ldx) W^T (in, out) + b (out, may be null)
template <class B, class T>
void linear_forward(Ptr<B, T> y, CPtr<B, T> x, int ldx, CPtr<B, T> W, CPtr<B, T> b, int R,
                    int in, int out, int ldy = -1) {
  if (ldy < 0) ldy = out;
  B::template gemm<T>(false, true, R, out, in, T(1), x, ldx, W, in, T(0), y, ldy);
  if (b) ops::add_bias<B>(y, ldy, b, R, out);
}

// dx (R, in) = g W (written, or added when accumulate_dx: residual / shared inputs; skipped
// when dx is null); dW (out, in) += g^T x; db (out) += sum_rows g (when not null).
template <class B, class T>
void linear_backward(Ptr<B, T> dx, Ptr<B, T> dW, Ptr<B, T> db, CPtr<B, T> g, int ldg,
                     CPtr<B, T> x, int ldx, CPtr<B, T> W, int R, int in, int out,
                     bool accumulate_dx = false, int lddx = -1) {
  if (lddx < 0) lddx = in;
  if (dx)
    B::template gemm<T>(false, false, R, in, out, T(1), g, ldg, W, in,
                        accumulate_dx ? T(1) : T(0), dx, lddx);
  B::template gemm<T>(true, false, out, in, R, T(1), g, ldg, x, ldx, T(1), dW, in);
  if (db) ops::bias_grad<B>(db, g, ldg, R, out);
}

}  // namespace recdistill::layers
