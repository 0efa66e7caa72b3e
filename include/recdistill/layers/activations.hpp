// recdistill/layers/activations.hpp: GELU (erf form) and ReLU.
//
// GELU: y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; dy/dx = Phi(x) + x * phi(x),
// phi(x) = exp(-x^2 / 2) / sqrt(2 pi). The tanh approximation is deliberately not used.
#pragma once
#include <cmath>
#include <cstdint>

#include "recdistill/core/vecmath.hpp"

namespace recdistill::layers {

template <class T>
void gelu_forward(T* y, const T* x, int64_t n) {
  vec::gelu(y, x, n);
}

// dx = g * GELU'(x), x the saved pre-activation.
template <class T>
void gelu_backward(T* dx, const T* g, const T* x, int64_t n) {
  vec::gelu_grad(dx, g, x, n);
}

template <class T>
void relu_forward(T* y, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

// dx = g * [y > 0]; y (or x) the saved output.
template <class T>
void relu_backward(T* dx, const T* g, const T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? g[i] : T(0);
}

}  // namespace recdistill::layers
