// tests/parity/cpu_reference.cpp: the CPU reference for the CUDA parity tests, as plain
// functions. Compiled by the host compiler (not nvcc) so Eigen never goes through nvcc; the
// declarations are repeated in cuda_parity_test.cu and cuda_ops_parity_test.cu, and the linker
// checks they match.
#include <cstdint>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/layers/activations.hpp"
#include "../common/test_util.hpp"
#include "../cuda_host/sasrec_run.hpp"

namespace recdistill::parity {

#define RD_PARITY_REFERENCE(T)                                                               \
  void ref_gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,         \
                const T* B, int ldb, T beta, T* C, int ldc) {                                \
    cpu::Backend::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);            \
  }                                                                                          \
  void ref_gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A,  \
                                int lda, long sa, const T* B, int ldb, long sb, T beta,      \
                                T* C, int ldc, long sc, int count) {                         \
    cpu::Backend::gemm_strided_batched<T>(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb,   \
                                          beta, C, ldc, sc, count);                          \
  }                                                                                          \
  void ref_gelu_forward(T* y, const T* x, int64_t n) { layers::gelu_forward<cpu::Backend, T>(y, x, n); }

RD_PARITY_REFERENCE(float)
RD_PARITY_REFERENCE(double)

#undef RD_PARITY_REFERENCE

// The GPU training test's data and its CPU run (cuda_ops_parity_test.cu).
data::Split ref_training_split() { return data::to_split(test::synthetic(80, 30, 12, 3)); }
std::pair<std::vector<float>, TrainResult> ref_train_small_sasrec(const data::Split& split) {
  return cudahost::train_small_sasrec<cpu::Backend>(split);
}

}  // namespace recdistill::parity
