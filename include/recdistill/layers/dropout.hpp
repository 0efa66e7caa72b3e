// recdistill/layers/dropout.hpp: inverted dropout with counter-based masks.
//
// The mask D holds 0 or 1/(1-p) and is stored for the backward pass (dx = g * D). Draws are
// keyed by (seed, dropout stream; epoch, step, row, slot), with `site` separating the
// dropout sites of one step, so a mask never depends on threads or resume point.
#pragma once
#include <cstdint>

#include "recdistill/core/random.hpp"

namespace recdistill::layers {

struct DropoutKey {
  uint64_t seed = 0;
  uint32_t epoch = 0, step = 0;
};

// x, y, mask (R, n); row r of this call is global row (row0 + r); site < 4096.
template <class T>
void dropout_forward(T* y, T* mask, const T* x, int R, int n, double p, DropoutKey key,
                     uint32_t site, uint32_t row0 = 0) {
  if (p <= 0) {
    for (int64_t i = 0; i < int64_t(R) * n; ++i) {
      mask[i] = T(1);
      y[i] = x[i];
    }
    return;
  }
  const T keep_scale = T(1.0 / (1.0 - p));
  const float pf = float(p);
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < n; c += 4) {
      // slot packs the site into the high bits, the column block into the low bits.
      const auto u = uniform4(key.seed, Stream::dropout, key.epoch, key.step, row0 + r,
                              (site << 20) | uint32_t(c / 4));
      for (int k = 0; k < 4 && c + k < n; ++k) {
        const int64_t i = int64_t(r) * n + c + k;
        mask[i] = u[k] < pf ? T(0) : keep_scale;
        y[i] = x[i] * mask[i];
      }
    }
  }
}

template <class T>
void dropout_backward(T* dx, const T* g, const T* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * mask[i];
}

}  // namespace recdistill::layers
