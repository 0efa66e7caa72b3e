// Micro-benchmark: full-ranking evaluation throughput (docs/BENCHMARKS.md, "Evaluation
// throughput"), one thread, d = 64, random weights (the cost is the GEMM and the per-row
// scan, not the values), 1,024 users with 50 history items each, excluded from the ranking.
//   BM_Eval: eval::rank_full without a forward pass (fixed last hidden states): the score
//     products, masking, rank counting and top-K selection.
//   BM_ScoresOnly: the same score products alone (kernel 1, ops::score_rows), or Eigen's GEMM
//     on the shapes evaluation used before 2026-12-07 (kernel 0); share = time / BM_Eval's.
//   BM_SASRec: the real path (rank_and_topk_cases, top 10) with the SASRec forward pass
//     (L 50, d 64, 2 layers, 2 heads, inner 256).
// Reports users/s (and the score products' GFLOP/s). One thread: run with OMP_NUM_THREADS=1.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/eval/topk.hpp"

using namespace recdistill;
using B = cpu::Backend;
constexpr int kD = 64, kHistory = 50;

// A stand-in model whose "forward pass" is free: its query states are fixed random vectors
// (copied into place, 32 KB a block), so BM_Eval times the library's scoring path
// (eval::rank_full) through the evaluator's model contract: query() and scorer().
struct FixedModel {
  using BackendType = B;
  using Scalar = float;
  struct Activations {
    int capacity;
    std::vector<float> h;  // (capacity, d)
  };
  int N = 0;
  std::vector<float> E;  // (N, d): the "parameters", scored from offset 0
  Scorer scorer() const { return {0, -1, N, kD}; }
  void query(const float*, Activations& a, const eval::Case*, size_t, int rows, float* out) const {
    std::copy_n(a.h.data(), size_t(rows) * kD, out);
  }
};

struct EvalSetup {
  FixedModel model;
  FixedModel::Activations acts;
  std::vector<std::vector<int32_t>> hist;
  std::vector<eval::Case> cases;
  EvalSetup(int N, int users) {
    std::mt19937 g(1);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::uniform_int_distribution<int32_t> item(1, N - 1);
    model.N = N;
    model.E.resize(size_t(N) * kD);
    for (auto& x : model.E) x = nd(g);
    acts.capacity = eval::kEvalBlock;
    acts.h.resize(size_t(eval::kEvalBlock) * kD);
    for (auto& x : acts.h) x = nd(g);
    hist.resize(size_t(users));
    for (int i = 0; i < users; ++i) {
      for (int t = 0; t < kHistory; ++t) hist[size_t(i)].push_back(item(g));
      cases.push_back({hist[size_t(i)].data(), hist[size_t(i)].size(), item(g), i + 1});
    }
  }
};

// The library path: rank_full over 1,024 users with the user's 50 history items excluded.
// work: 1 = ranks, 2 = top-K, 3 = ranks and top-K.
static void BM_Eval(benchmark::State& st) {
  const int N = int(st.range(0)), K = int(st.range(1)), work = int(st.range(2)), users = 1024;
  EvalSetup s(N, users);
  eval::Options o;
  o.exclude = eval::Exclude::history;
  std::vector<int64_t> ranks(static_cast<size_t>(users));
  std::vector<int32_t> items(size_t(users) * size_t(K));
  std::vector<float> scores(size_t(users) * size_t(K));
  for (auto _ : st) {
    eval::rank_full<B>(s.model, static_cast<const float*>(s.model.E.data()), s.acts, s.cases, o,
                       work & 1 ? ranks.data() : nullptr, work & 2 ? K : 0, items.data(), scores.data());
    benchmark::DoNotOptimize(ranks.data());
    benchmark::DoNotOptimize(items.data());
  }
  st.counters["users/s"] = benchmark::Counter(double(users) * double(st.iterations()), benchmark::Counter::kIsRate);
}

// The same score products as BM_Eval (work 3) and nothing else: its time over BM_Eval's is the
// share of evaluation spent scoring. Catalogues up to kItemChunk ids: one (128, N) product per
// block; larger ones: ceil(N / kItemChunk) products of (128, kItemChunk) (the last one
// narrower) and the targets' (128, 128). `kernel` 1 is ops::score_rows (what evaluation runs);
// 0 is what evaluation ran before 2026-12-07, kept as the comparison: Eigen's GEMM, every
// product chunk-shaped (the targets' one and the last chunk padded to kItemChunk items).
static void BM_ScoresOnly(benchmark::State& st) {
  const int N = int(st.range(0)), kernel = int(st.range(1)), users = 1024, R = eval::kEvalBlock,
            C = eval::kItemChunk;
  EvalSetup s(N, 1);
  const bool chunked = N > C;
  const int width = chunked ? C : N, chunks = chunked ? (N + C - 1) / C : 1;
  std::vector<float> scores(size_t(R) * size_t(width)), items(size_t(width) * kD, 0.5f);
  double flops = 0;
  auto product = [&](const float* E, int w) {
    if (kernel == 1)
      ops::score_rows<B>(scores.data(), width, s.acts.h.data(), R, E, w, kD);
    else
      B::gemm<float>(false, true, R, w, kD, 1.f, s.acts.h.data(), kD, E, kD, 0.f, scores.data(), width);
    flops += 2.0 * R * w * kD;
  };
  for (auto _ : st) {
    for (int b = 0; b < users / R; ++b) {
      if (chunked) product(items.data(), kernel == 1 ? R : C);  // the targets
      for (int c = 0; c < chunks; ++c) {
        const int w = std::min(width, N - c * C);
        if (kernel == 0 && w < width)  // Eigen's last chunk: a copy padded with zero rows
          product(items.data(), width);
        else
          product(s.model.E.data() + size_t(c) * C * kD, w);
      }
    }
    benchmark::DoNotOptimize(scores.data());
  }
  st.counters["users/s"] = benchmark::Counter(double(users) * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

BENCHMARK(BM_Eval)->ArgNames({"N", "K", "work"})
    ->Args({1683, 10, 1})->Args({1683, 10, 2})->Args({1683, 10, 3})
    ->Args({50001, 10, 1})->Args({50001, 10, 2})->Args({50001, 10, 3})->Args({50001, 100, 3})
    ->Args({200001, 10, 1})->Args({200001, 10, 2})->Args({200001, 10, 3})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScoresOnly)->ArgNames({"N", "kernel"})
    ->Args({1683, 0})->Args({1683, 1})->Args({50001, 0})->Args({50001, 1})->Args({200001, 0})->Args({200001, 1})
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
