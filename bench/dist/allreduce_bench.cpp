// bench/dist/allreduce_bench.cpp: seconds per gradient all-reduce of P floats through the app's
// dist::Comm (apps/mpi_world.cpp: non-blocking MPI_Iallreduce polled against the timeout, with
// the check-in to rank 0), against a plain blocking MPI_Allreduce. Built and run by
// bench/dist/run_scaling.sh:  mpirun -np N allreduce_bench P [REPS]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../../apps/mpi_world.hpp"

int main(int argc, char** argv) {
  recdistill::app::mpi_start(argc, argv);
  auto* w = recdistill::app::mpi_world();
  if (!w || argc < 2) {
    std::fprintf(stderr, "usage: mpirun -np N allreduce_bench P [REPS]\n");
    return 2;
  }
  const size_t P = std::strtoull(argv[1], nullptr, 10);
  const int reps = argc > 2 ? std::atoi(argv[2]) : 200;
  std::vector<float> g(P, 1.0f);
  auto time = [&](auto&& f) {
    for (int i = 0; i < 10; ++i) f();  // warm-up
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      const auto t0 = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const double ours = time([&] { w->allreduce_sum(g.data(), P, "bench"); });
  const double plain = time([&] { MPI_Allreduce(MPI_IN_PLACE, g.data(), int(P), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); });
  if (w->rank() == 0)
    std::printf("ranks %d  P %zu floats (%.2f MB)  median of %d: dist::Comm %.1f us  MPI_Allreduce %.1f us\n",
                w->size(), P, 4.0 * double(P) / 1e6, reps, ours * 1e6, plain * 1e6);
  recdistill::app::mpi_finish();
  return 0;
}
