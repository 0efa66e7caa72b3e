// recdistill/layers/dropout.hpp: inverted dropout with counter-based masks.
//
// The mask D holds 0 or 1/(1-p) and is stored for the backward pass (dx = g * D). Draws are
// keyed by (seed, dropout stream; epoch, step, row, slot), with `site` separating the
// dropout sites of one step, so a mask never depends on threads or resume point.
#pragma once
#include <cstdint>

#include "recdistill/backend/ops.hpp"
#include "recdistill/core/random.hpp"

namespace recdistill::layers {

using recdistill::DropoutKey;

// x, y, mask (R, n); row r of this call is global row (row0 + r); site < 4096. y may alias x.
template <class B, class T>
void dropout_forward(Ptr<B, T> y, Ptr<B, T> mask, CPtr<B, T> x, int R, int n, double p,
                     DropoutKey key, uint32_t site, uint32_t row0 = 0) {
  ops::dropout_forward<B>(y, mask, x, R, n, p, key, site, row0);
}

// dx (n) = g * mask (dx may alias g)
template <class B, class T>
void dropout_backward(Ptr<B, T> dx, CPtr<B, T> g, CPtr<B, T> mask, int64_t n) {
  ops::dropout_backward<B>(dx, g, mask, n);
}

}  // namespace recdistill::layers
