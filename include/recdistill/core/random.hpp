// recdistill/core/random.hpp: counter-based randomness (Philox4x32-10).
//
// Every random draw is a pure function of (seed, stream; epoch, step, row, slot), so
// the draws do not depend on thread count, evaluation batching or where a run resumed.
// Philox4x32-10: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11).
#pragma once
#include <array>
#include <cstdint>

namespace recdistill {

// Fixed stream names (DESIGN.md, Decisions: Randomness).
// selection: active distillation's selection strategies (methods/alkd_selection.hpp).
enum class Stream : uint32_t { dropout = 1, masking = 2, sampling = 3, shuffling = 4, init = 5, selection = 6 };

struct Philox {
  using Counter = std::array<uint32_t, 4>;
  using Key = std::array<uint32_t, 2>;

  // constexpr, so CUDA kernels (nvcc --expt-relaxed-constexpr) draw the same numbers.
  static constexpr Counter block(Counter c, Key k) {
    constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = uint64_t(M0) * c[0];
      const uint64_t p1 = uint64_t(M1) * c[2];
      c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1],
           uint32_t(p0)};
      k[0] += W0;
      k[1] += W1;
    }
    return c;
  }

  static constexpr Key key(uint64_t seed, Stream s) {
    // The stream id is folded into the high word so that (seed, stream) pairs never collide
    // for seeds below 2^32.
    return {uint32_t(seed), uint32_t(seed >> 32) ^ (uint32_t(s) * 0x9E3779B9u)};
  }
};

// Four uniform floats in [0, 1) with 24 random bits each.
constexpr std::array<float, 4> uniform4(uint64_t seed, Stream s, uint32_t epoch, uint32_t step,
                                     uint32_t row, uint32_t slot) {
  const auto r = Philox::block({epoch, step, row, slot}, Philox::key(seed, s));
  constexpr float scale = 1.0f / 16777216.0f;  // 2^-24
  return {float(r[0] >> 8) * scale, float(r[1] >> 8) * scale, float(r[2] >> 8) * scale,
          float(r[3] >> 8) * scale};
}

// Four raw 32-bit words, for integer draws (shuffles, sampled ids).
constexpr std::array<uint32_t, 4> bits4(uint64_t seed, Stream s, uint32_t epoch, uint32_t step,
                                     uint32_t row, uint32_t slot) {
  return Philox::block({epoch, step, row, slot}, Philox::key(seed, s));
}

// Where in training a step is: keys every random draw of the step (DESIGN.md, Randomness).
struct StepContext {
  uint64_t seed = 0;
  uint32_t epoch = 0, step = 0;
  uint32_t first_seq = 0;  // data-parallel: the global batch row of this rank's first row (dist/comm.hpp)
};

// The key of one training step's dropout draws: (seed; epoch, step). Sites and rows complete
// the Philox counter, so a mask never depends on threads or the resume point. A data-parallel
// rank holds the step's global batch rows from `first_seq` on; a site counts its rows from the
// global batch's first row, so N ranks draw the masks one process draws.
struct DropoutKey {
  uint64_t seed = 0;
  uint32_t epoch = 0, step = 0;
  uint32_t first_seq = 0;
};

// Standard normal from two uniforms (Box-Muller); used for initialisation only.
inline double normal_from(float u1, float u2) {
  const double a = 1.0 - double(u1);  // in (0, 1]
  return __builtin_sqrt(-2.0 * __builtin_log(a)) * __builtin_cos(6.283185307179586 * double(u2));
}

}  // namespace recdistill
