// recdistill/backend/cpu/backend.hpp: the CPU backend (Eigen GEMM over row-major views, plain
// loops for every other op in backend/cpu/ops.hpp).
//
// Memory is the host's: Ptr<T> is T*, Buffer<T> a std::vector<T>. Eigen maps the caller's
// buffers without copying. Threads (when built with OpenMP): Eigen parallelises large GEMMs and
// the ops split independent sequences or rows; set_threads() sets both counts. Dropout masks,
// shuffles and the ops' own loops do not depend on the thread count; Eigen's multi-threaded
// GEMM blocks its sums by thread count, so weights can differ in the last bits between thread
// counts (a fixed count is bit-for-bit repeatable). Measure before assuming more threads help.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "recdistill/backend/backend.hpp"

namespace recdistill::cpu {

struct Backend {
  static constexpr const char* name = "cpu";
  static constexpr bool host_memory = true;

  template <class T>
  using Ptr = T*;
  template <class T>
  using Buffer = std::vector<T>;

  template <class T>
  static void to_device(T* dst, const T* host, size_t n) { std::copy_n(host, n, dst); }
  template <class T>
  static void to_host(T* host, const T* src, size_t n) { std::copy_n(src, n, host); }
  template <class T>
  static void copy(T* dst, const T* src, size_t n) { std::copy_n(src, n, dst); }

  template <class T>
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  template <class T>
  using ConstMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
  template <class T>
  using Map = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

  static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    Eigen::setNbThreads(n);
  }

  // C(M,N) = alpha * op(A) * op(B) + beta * C; op(A) is (M,K), op(B) is (K,N); row-major.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda,
                   const T* B, int ldb, T beta, T* C, int ldc) {
    if (M == 0 || N == 0) return;
    Map<T> c(C, M, N, Eigen::OuterStride<>(ldc));
    if (beta == T(0)) {
      c.setZero();
    } else if (beta != T(1)) {
      c *= beta;
    }
    if (K == 0) return;
    // Stored shapes: A is (M,K) or (K,M); B is (K,N) or (N,K).
    ConstMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
    ConstMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
    if (!trans_a && !trans_b) c.noalias() += alpha * a * b;
    else if (!trans_a && trans_b) c.noalias() += alpha * a * b.transpose();
    else if (trans_a && !trans_b) c.noalias() += alpha * a.transpose() * b;
    else c.noalias() += alpha * a.transpose() * b.transpose();
  }

  template <class T>
  static void gemm_strided_batched(bool trans_a, bool trans_b, int M, int N, int K, T alpha,
                                   const T* A, int lda, long stride_a, const T* B, int ldb,
                                   long stride_b, T beta, T* C, int ldc, long stride_c,
                                   int count) {
    for (int i = 0; i < count; ++i)
      gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
           C + i * stride_c, ldc);
  }
};

static_assert(recdistill::Backend<Backend>);

}  // namespace recdistill::cpu

#include "recdistill/backend/cpu/ops.hpp"
