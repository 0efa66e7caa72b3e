// How fast is ops::score_rows (backend/cpu/scores.hpp) for one evaluation block, depending on
// where the scores buffer starts? One block of eval::kEvalBlock = 128 queries against 1,683
// items (ml-100k), d = 64, row stride 1,683; the scores buffer starts `off` floats after a
// page boundary. Prints milliseconds per block and GFLOP/s for each offset. Not built by CMake:
//   g++ -std=c++20 -O3 -march=native -fopenmp -Iinclude -I/usr/include/eigen3 \
//       bench/micro/score_rows_offsets.cpp -o /tmp/sro && OMP_NUM_THREADS=1 /tmp/sro
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "recdistill/backend/cpu/scores.hpp"

int main() {
  const int n = 128, N = 1683, d = 64, reps = 150;
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  std::vector<float> q(size_t(n) * d), items(size_t(N) * d);
  for (auto& x : q) x = normal(gen);
  for (auto& x : items) x = normal(gen);
  float* page = static_cast<float*>(std::aligned_alloc(4096, (size_t(n) * N + 2048) * sizeof(float)));
  for (int off = 0; off < 1024; off += 64) {
    float* scores = page + off;
    recdistill::cpu::score_rows(scores, N, q.data(), n, items.data(), N, d);  // pages touched
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) recdistill::cpu::score_rows(scores, N, q.data(), n, items.data(), N, d);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::printf("scores at page + %4d bytes: %.3f ms per block (%.1f GFLOP/s)\n", off * 4, ms,
                2.0 * n * N * d / ms / 1e6);
  }
  std::free(page);
}
