// Micro-benchmark: full-ranking evaluation throughput (docs/BENCHMARKS.md, "Evaluation
// throughput"). One iteration is one evaluation block of kEvalBlock = 128 users:
//   scores (128, N) = h (128, d) E^T (N, d)   -- the GEMM, 2 * 128 * N * d FLOPs
//   then per row: mask the user's 50 history items, rank the target, select the top K.
// Random weights (d = 64): the cost is the GEMM and the per-row scan, not the values.
// BM_Block's `work` argument: 0 = GEMM only, 1 = + mask and rank, 2 = + mask and top-K,
// 3 = + mask, rank and top-K. The share of time in the GEMM is time(work 0) / time(work 3).
// BM_SASRec runs the real path (rank_and_topk_cases) with the SASRec forward pass at the
// ml-100k shape (1,683 item ids, L 50, d 64, 2 layers, 2 heads, inner 256).
// Reports users/s and the GEMM's GFLOP/s (2 * rows * N * d per block).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/eval/topk.hpp"

using namespace recdistill;
using B = cpu::Backend;
constexpr int kD = 64, kHistory = 50;

static void BM_Block(benchmark::State& st) {
  const int N = int(st.range(0)), K = int(st.range(1)), work = int(st.range(2));
  const int R = eval::kEvalBlock;
  std::mt19937 g(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_int_distribution<int32_t> item(1, N - 1);
  std::vector<float> h(size_t(R) * kD), E(size_t(N) * kD), scores(size_t(R) * N);
  for (auto& x : h) x = nd(g);
  for (auto& x : E) x = nd(g);
  std::vector<std::vector<int32_t>> hist(static_cast<size_t>(R));
  std::vector<eval::Case> cases;
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < kHistory; ++t) hist[size_t(i)].push_back(item(g));
    cases.push_back({hist[size_t(i)].data(), hist[size_t(i)].size(), item(g), i + 1});
  }
  std::vector<int32_t> items(static_cast<size_t>(K));
  std::vector<float> top(static_cast<size_t>(K));
  eval::TopKScratch<float> heap;
  int64_t sink = 0;
  for (auto _ : st) {
    // scores (R, N) = h (R, d) x E (N, d)^T
    B::gemm<float>(false, true, R, N, kD, 1.f, h.data(), kD, E.data(), kD, 0.f, scores.data(), N);
    if (work > 0) {
      for (int i = 0; i < R; ++i) {
        float* row = scores.data() + size_t(i) * N;
        eval::mask_excluded(row, cases[size_t(i)], eval::Exclude::history);
        if (work & 1) sink += eval::rank_of_target(row, N, cases[size_t(i)].target, eval::Ties::against_model);
        if (work & 2) eval::select_topk(row, N, K, items.data(), top.data(), heap), sink += items[0];
      }
    }
    benchmark::DoNotOptimize(sink);
    benchmark::DoNotOptimize(scores.data());
  }
  st.counters["users/s"] = benchmark::Counter(double(R) * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * R * double(N) * kD * double(st.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// args: N items (incl. the pad), K, work
BENCHMARK(BM_Block)->ArgNames({"N", "K", "work"})
    ->Args({1683, 10, 0})->Args({1683, 10, 1})->Args({1683, 10, 2})->Args({1683, 10, 3})
    ->Args({50001, 10, 0})->Args({50001, 10, 1})->Args({50001, 10, 2})->Args({50001, 10, 3})
    ->Args({50001, 100, 3})
    ->Args({200001, 10, 0})->Args({200001, 10, 1})->Args({200001, 10, 2})->Args({200001, 10, 3})
    ->Unit(benchmark::kMillisecond);

// The real path: SASRec forward + scores + exclusions + rank + top-10 for 1,024 users.
static void BM_SASRec(benchmark::State& st) {
  const int N = int(st.range(0)), users = 1024;
  SASRecConfig c;
  c.n_items = N;
  c.max_len = 50;
  c.hidden = kD;
  c.layers = 2;
  c.heads = 2;
  c.inner = 256;
  SASRec<B, float> model(c);
  std::vector<float> params(model.num_params());
  model.init(params.data(), 1);
  auto acts = model.make_activations(eval::kEvalBlock);
  std::mt19937 g(2);
  std::uniform_int_distribution<int32_t> item(1, N - 1);
  std::vector<std::vector<int32_t>> hist(users);
  std::vector<eval::Case> cases;
  for (int i = 0; i < users; ++i) {
    for (int t = 0; t < kHistory; ++t) hist[size_t(i)].push_back(item(g));
    cases.push_back({hist[size_t(i)].data(), hist[size_t(i)].size(), item(g), i + 1});
  }
  eval::Options o;
  o.exclude = eval::Exclude::history;
  for (auto _ : st) {
    auto r = eval::rank_and_topk_cases<B>(model, params.data(), acts, cases, o, 10);
    benchmark::DoNotOptimize(r.first.data());
  }
  st.counters["users/s"] = benchmark::Counter(double(users) * double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SASRec)->ArgNames({"N"})->Arg(1683)->Arg(50001)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
