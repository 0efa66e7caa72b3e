// recdistill/layers/layer_norm.hpp: y = gamma * (x - mean) / sqrt(var + eps) + beta.
//
// Biased variance over the last axis, eps inside the root (PyTorch). Backward, with
// gh = g * gamma and r = (var + eps)^-1/2:
//   dx = r * (gh - mean(gh) - xhat * mean(gh * xhat)), dgamma += sum g*xhat, dbeta += sum g.
// Derivation: docs/derivations/layer_norm.md.
#pragma once
#include "recdistill/backend/ops.hpp"

namespace recdistill::layers {

// x, y (R, d) (y may alias x); saves xhat (R, d) and rstd (R) for the backward pass.
template <class B, class T>
void layer_norm_forward(Ptr<B, T> y, Ptr<B, T> xhat, Ptr<B, T> rstd, CPtr<B, T> x,
                        CPtr<B, T> gamma, CPtr<B, T> beta, int R, int d, double eps) {
  ops::layer_norm_forward<B>(y, xhat, rstd, x, gamma, beta, R, d, eps);
}

// dx (R, d) written, or added when accumulate_dx (residual paths); dgamma, dbeta (d) += .
template <class B, class T>
void layer_norm_backward(Ptr<B, T> dx, Ptr<B, T> dgamma, Ptr<B, T> dbeta, CPtr<B, T> g,
                         CPtr<B, T> xhat, CPtr<B, T> rstd, CPtr<B, T> gamma, int R, int d,
                         bool accumulate_dx = false) {
  ops::layer_norm_backward<B>(dx, dgamma, dbeta, g, xhat, rstd, gamma, R, d, accumulate_dx);
}

}  // namespace recdistill::layers
