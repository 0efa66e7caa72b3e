// The CUDA backend's kernels (backend/cuda/kernels.hpp) run on the CPU: for_each is a plain
// loop, so each functor body, the code a GPU thread runs, is executed and checked on machines
// without a GPU. G supplies the GEMMs (cpu::Backend here; the nvcc parity test, which keeps
// Eigen out of nvcc, passes its host-compiled reference).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "recdistill/core/error.hpp"

namespace cudahost {

template <class G>
struct HostExec {
  // Backwards: a functor whose index i read what a lower index writes (a race on a GPU, where
  // the threads run in no order) then differs from the CPU's loop, which runs forwards.
  template <class F>
  static void for_each(int64_t n, const F& f) {
    for (int64_t i = n - 1; i >= 0; --i) f(i);
  }
  template <class T, class... A>
  static void gemm(A... a) {
    G::template gemm<T>(a...);
  }
  template <class T, class... A>
  static void gemm_strided_batched(A... a) {
    G::template gemm_strided_batched<T>(a...);
  }
  // Four independent scratch areas per thread, grown on demand (max_align_t-aligned).
  static void* scratch(int slot, size_t bytes) {
    RD_REQUIRE(slot >= 0 && slot < 4, "cuda scratch slot ", slot, " (0..3)");
    thread_local std::vector<std::max_align_t> area[4];
    auto& a = area[slot];
    const size_t words = (bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
    if (a.size() < words) a.resize(words);
    return a.data();
  }
  template <class T>
  static void to_host(T* host, const T* src, size_t n) {
    if (n > 0) std::memcpy(host, src, n * sizeof(T));
  }
  template <class T>
  static void to_device(T* dst, const T* host, size_t n) {
    if (n > 0) std::memcpy(dst, host, n * sizeof(T));
  }
  template <class T>
  using Vec = std::vector<T>;
};

}  // namespace cudahost
