// recdistill/layers/activations.hpp: GELU (erf form) and ReLU, as backend ops.
//
// GELU: y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; dy/dx = Phi(x) + x * phi(x),
// phi(x) = exp(-x^2 / 2) / sqrt(2 pi). The tanh approximation is deliberately not used.
#pragma once
#include <cstdint>

#include "recdistill/backend/ops.hpp"

namespace recdistill::layers {

// y (n) = GELU(x (n))
template <class B, class T>
void gelu_forward(Ptr<B, T> y, CPtr<B, T> x, int64_t n) {
  ops::gelu_forward<B>(y, x, n);
}

// dx (n) = g * GELU'(x), x the saved pre-activation (dx may alias g).
template <class B, class T>
void gelu_backward(Ptr<B, T> dx, CPtr<B, T> g, CPtr<B, T> x, int64_t n) {
  ops::gelu_backward<B>(dx, g, x, n);
}

// y (n) = max(x, 0)
template <class B, class T>
void relu_forward(Ptr<B, T> y, CPtr<B, T> x, int64_t n) {
  ops::relu_forward<B>(y, x, n);
}

// dx (n) = g * [y > 0]; y (or x) the saved output.
template <class B, class T>
void relu_backward(Ptr<B, T> dx, CPtr<B, T> g, CPtr<B, T> y, int64_t n) {
  ops::relu_backward<B>(dx, g, y, n);
}

}  // namespace recdistill::layers
