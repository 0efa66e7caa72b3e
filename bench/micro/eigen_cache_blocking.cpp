// Does Eigen's float GEMM give the same bits under other cache sizes? Eigen sizes its GEMM
// blocks from the cache sizes the CPU reports, and the depth of a block sets the order in which
// a dot product is summed. Prints how many of the (64 x 256) results differ when the same
// product runs with other (smaller) cache sizes, for depth K (argument; default 1600, the depth
// of a weight gradient at batch 32 x L 50). Not built by CMake:
//   g++ -std=c++20 -O3 -march=native -I/usr/include/eigen3 bench/micro/eigen_cache_blocking.cpp -o /tmp/ecb && /tmp/ecb 1600
#include <Eigen/Dense>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

int main(int argc, char** argv) {
  const int M = 64, N = 256, K = argc > 1 ? std::atoi(argv[1]) : 1600;
  std::ptrdiff_t l1, l2, l3;
  Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  Eigen::MatrixXf A(M, K), B(K, N);
  for (Eigen::Index i = 0; i < A.size(); ++i) A.data()[i] = normal(gen);
  for (Eigen::Index i = 0; i < B.size(); ++i) B.data()[i] = normal(gen);
  const Eigen::MatrixXf host = A * B;
  Eigen::setCpuCacheSizes(32 * 1024, 256 * 1024, 8 * 1024 * 1024);
  const Eigen::MatrixXf other = A * B;
  Eigen::setCpuCacheSizes(l1, l2, l3);
  const Eigen::MatrixXf again = A * B;
  int differ = 0, differ_again = 0;
  for (Eigen::Index i = 0; i < host.size(); ++i) {
    differ += std::memcmp(&host.data()[i], &other.data()[i], sizeof(float)) != 0;
    differ_again += std::memcmp(&host.data()[i], &again.data()[i], sizeof(float)) != 0;
  }
  std::printf("K %d; reported caches l1 %td l2 %td l3 %td; with l1 32 KiB, l2 256 KiB, l3 8 MiB: %d of %td "
              "results differ; with the reported sizes again: %d\n",
              K, l1, l2, l3, differ, host.size(), differ_again);
}
