// Micro-benchmark: the CPU backend's float GEMM, at a large square size (the machine's
// practical peak) and at the shapes one SASRec training step on ml-100k uses
// (batch 64 windows x L 50 = 3200 rows, d 64, inner 256, 1683 items, CE chunks of 512 rows).
// Reports GFLOP/s (2 M N K per product) as a counter.
#include <benchmark/benchmark.h>

#include <vector>

#include "recdistill/backend/cpu/backend.hpp"

using B = recdistill::cpu::Backend;

static void BM_Gemm(benchmark::State& st) {
  const int M = int(st.range(0)), N = int(st.range(1)), K = int(st.range(2));
  const bool ta = st.range(3) & 1, tb = st.range(3) & 2;
  std::vector<float> a(size_t(M) * K, 0.5f), b(size_t(K) * N, 0.25f), c(size_t(M) * N);
  const int lda = ta ? M : K, ldb = tb ? K : N;
  for (auto _ : st) {
    B::gemm<float>(ta, tb, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * double(st.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// args: M, N, K, transpose flags (1 = A^T, 2 = B^T)
BENCHMARK(BM_Gemm)->ArgNames({"M", "N", "K", "t"})
    ->Args({1024, 1024, 1024, 0})   // square: the practical peak
    ->Args({2048, 2048, 2048, 0})
    ->Args({3200, 64, 64, 2})       // q/k/v/o projections, forward (x W^T)
    ->Args({3200, 256, 64, 2})      // feed-forward W1, forward
    ->Args({3200, 64, 256, 2})      // feed-forward W2, forward
    ->Args({256, 64, 3200, 1})      // weight gradient dW1 = g^T x
    ->Args({512, 1683, 64, 2})      // CE logits chunk, h E^T
    ->Args({1683, 64, 512, 1})      // CE dE += dz^T h
    ->Args({50, 50, 32, 2})         // one head's scores
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
