// Random inputs of the CUDA kernel tests (host run and device parity): uniform values and item
// ids with a share of pads (0), reproducible from a seed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace cudahost {

template <class T>
std::vector<T> rnd(size_t n, uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = T(u(g));
  return v;
}

// n ids in [1, N), each a pad (0) with probability pad_share.
inline std::vector<int32_t> ids(size_t n, int N, uint64_t seed, double pad_share = 0.25) {
  std::mt19937_64 g(seed);
  std::uniform_int_distribution<int> u(1, N - 1);
  std::uniform_real_distribution<double> p(0, 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = p(g) < pad_share ? 0 : u(g);
  return v;
}

}  // namespace cudahost
