// tests/parity/cuda_parity_test.cu: cuda::Backend against the CPU reference backend.
//
// Every GPU operation is run on random inputs and compared with cpu::Backend (compiled in
// cpu_reference.cpp by the host compiler, so Eigen never goes through nvcc). Without a CUDA
// device the GPU tests report SKIPPED, not passed; the compile-time checks run everywhere.
// Nothing here touches the GPU before a test body runs, so gtest_discover_tests can list the
// tests on a machine without a driver.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "recdistill/backend/cuda/backend.cuh"

namespace recdistill::parity {

// Defined in cpu_reference.cpp (cpu::Backend and layers::gelu_forward).
#define RD_PARITY_DECLARE(T)                                                                  \
  void ref_gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,          \
                const T* B, int ldb, T beta, T* C, int ldc);                                  \
  void ref_gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A,   \
                                int lda, long sa, const T* B, int ldb, long sb, T beta, T* C, \
                                int ldc, long sc, int count);                                 \
  void ref_gelu_forward(T* y, const T* x, int64_t n);
RD_PARITY_DECLARE(float)
RD_PARITY_DECLARE(double)
#undef RD_PARITY_DECLARE

namespace {

using GpuB = recdistill::cuda::Backend;
constexpr const char* kNoDevice = "no CUDA device present: CPU-vs-GPU parity not checked";

static_assert(recdistill::Backend<recdistill::cuda::Backend>);

// Normalised-error tolerances ||gpu - cpu|| / ||cpu|| for GEMM.
template <class T>
constexpr double gemm_tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = T(u(rng));
  return v;
}

// ||gpu - cpu|| / ||cpu|| over the logical (rows, cols) region of a row-major matrix with row
// stride ld, starting at offset; ||gpu - cpu|| itself where the reference is all zeros.
template <class T>
double normalised_error(const std::vector<T>& gpu, const std::vector<T>& cpu, std::size_t offset,
                        int rows, int cols, int ld) {
  double diff = 0, ref = 0;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const std::size_t i = offset + std::size_t(r) * ld + c;
      const double d = double(gpu[i]) - double(cpu[i]);
      diff += d * d;
      ref += double(cpu[i]) * double(cpu[i]);
    }
  return ref > 0 ? std::sqrt(diff) / std::sqrt(ref) : std::sqrt(diff);
}

// Elements of C outside every written (rows, cols) block must be untouched (bitwise, so NaN
// fill values compare equal).
template <class T>
void expect_untouched_outside(const std::vector<T>& got, const std::vector<T>& before,
                              const std::vector<char>& written, const char* who) {
  std::size_t changed = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!written[i] && std::memcmp(&got[i], &before[i], sizeof(T)) != 0) ++changed;
  EXPECT_EQ(changed, 0u) << who << " wrote outside the C blocks";
}

std::string case_name(bool ta, bool tb) {
  return std::string("trans_a=") + (ta ? "T" : "N") + " trans_b=" + (tb ? "T" : "N");
}

// One gemm case on both backends. A and B carry row padding (lda/ldb > stored columns);
// C has ldc > N and, with nan_c, starts as NaN everywhere (beta must be 0 then).
template <class T>
void check_gemm(bool ta, bool tb, int M, int N, int K, T alpha, T beta, bool nan_c,
                std::uint64_t seed) {
  SCOPED_TRACE(case_name(ta, tb) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
               " K=" + std::to_string(K));
  const int a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int lda = a_cols + 3, ldb = b_cols + 5, ldc = N + 7;
  const auto A = random_vector<T>(std::size_t(a_rows) * lda, seed);
  const auto B = random_vector<T>(std::size_t(b_rows) * ldb, seed + 1);
  auto C0 = random_vector<T>(std::size_t(M) * ldc, seed + 2);
  if (nan_c) C0.assign(C0.size(), std::numeric_limits<T>::quiet_NaN());

  std::vector<T> c_cpu = C0;
  ref_gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, c_cpu.data(), ldc);

  cuda::DeviceBuffer<T> dA(A), dB(B), dC(C0);
  GpuB::gemm<T>(ta, tb, M, N, K, alpha, dA.data(), lda, dB.data(), ldb, beta, dC.data(), ldc);
  const std::vector<T> c_gpu = dC.to_host();

  std::vector<char> written(C0.size(), 0);
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) written[std::size_t(r) * ldc + c] = 1;
  expect_untouched_outside(c_gpu, C0, written, "gpu gemm");
  expect_untouched_outside(c_cpu, C0, written, "cpu gemm");
  const double err = normalised_error(c_gpu, c_cpu, 0, M, N, ldc);
  EXPECT_LT(err, gemm_tolerance<T>()) << "normalised error " << err;
}

// `count` problems laid out one after another with a gap between them (stride > extent).
template <class T>
void check_gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, T beta,
                                int count, std::uint64_t seed) {
  SCOPED_TRACE(case_name(ta, tb) + " count=" + std::to_string(count));
  const int a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int lda = a_cols + 2, ldb = b_cols + 1, ldc = N + 3;
  const long sa = long(a_rows) * lda + 11, sb = long(b_rows) * ldb + 5,
             sc = long(M) * ldc + 9;
  const auto A = random_vector<T>(std::size_t(sa) * count, seed);
  const auto B = random_vector<T>(std::size_t(sb) * count, seed + 1);
  const auto C0 = random_vector<T>(std::size_t(sc) * count, seed + 2);

  std::vector<T> c_cpu = C0;
  ref_gemm_strided_batched(ta, tb, M, N, K, alpha, A.data(), lda, sa, B.data(), ldb, sb, beta,
                           c_cpu.data(), ldc, sc, count);

  cuda::DeviceBuffer<T> dA(A), dB(B), dC(C0);
  GpuB::gemm_strided_batched<T>(ta, tb, M, N, K, alpha, dA.data(), lda, sa, dB.data(), ldb, sb,
                                beta, dC.data(), ldc, sc, count);
  const std::vector<T> c_gpu = dC.to_host();

  std::vector<char> written(C0.size(), 0);
  for (int i = 0; i < count; ++i)
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < N; ++c) written[std::size_t(i) * sc + std::size_t(r) * ldc + c] = 1;
  expect_untouched_outside(c_gpu, C0, written, "gpu gemm_strided_batched");
  for (int i = 0; i < count; ++i) {
    const double err = normalised_error(c_gpu, c_cpu, std::size_t(i) * sc, M, N, ldc);
    EXPECT_LT(err, gemm_tolerance<T>()) << "batch " << i << ": normalised error " << err;
  }
}

template <class T>
class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << kNoDevice;
  }
};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaParity, Scalars);

// ---- runs everywhere ---------------------------------------------------------------------

TEST(CudaBackendStatic, SatisfiesBackendConcept) {
  static_assert(recdistill::Backend<recdistill::cuda::Backend>);
  EXPECT_STREQ(GpuB::name, "cuda");
  EXPECT_FALSE(GpuB::host_memory);
}

TEST(CudaBackendStatic, DeviceProbeNeverThrows) {
  bool available = false;
  EXPECT_NO_THROW(available = cuda::device_available());
  EXPECT_EQ(available, cuda::device_available());  // cached, stable
}

// ---- GEMM ------------------------------------------------------------------------------

TYPED_TEST(CudaParity, GemmAllTransposes) {
  using T = TypeParam;
  std::uint64_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm<T>(ta, tb, 67, 45, 129, T(0.75), T(-0.5), false, seed += 10);
      check_gemm<T>(ta, tb, 256, 192, 320, T(1.25), T(1), false, seed += 10);
      check_gemm<T>(ta, tb, 1, 33, 7, T(-2), T(0.25), false, seed += 10);
    }
}

// beta == 0: C is not read, so NaN already in C must not reach the result (as on the CPU).
TYPED_TEST(CudaParity, GemmBetaZeroIgnoresC) {
  using T = TypeParam;
  std::uint64_t seed = 200;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) check_gemm<T>(ta, tb, 31, 17, 40, T(0.5), T(0), true, seed += 10);
}

// K == 0: C = beta * C on both backends (zeros, NaN not read, when beta == 0).
TYPED_TEST(CudaParity, GemmEmptyInnerDimension) {
  using T = TypeParam;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm<T>(ta, tb, 9, 11, 0, T(1), T(0.5), false, 300);
      check_gemm<T>(ta, tb, 9, 11, 0, T(1), T(0), true, 310);
      check_gemm_strided_batched<T>(ta, tb, 5, 7, 0, T(1), T(-2), 3, 320);
    }
}

// ---- strided batched GEMM ----------------------------------------------------------------

TYPED_TEST(CudaParity, GemmStridedBatchedAllTransposes) {
  using T = TypeParam;
  std::uint64_t seed = 400;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm_strided_batched<T>(ta, tb, 33, 33, 16, T(0.25), T(0), 8, seed += 10);
      check_gemm_strided_batched<T>(ta, tb, 50, 24, 37, T(1), T(-1.5), 3, seed += 10);
    }
}

// Attention heads as layers/attention.hpp lays them out: Q, K, V are column blocks of one
// packed (L, 3*H*dh) buffer (row stride 3D), head h starts dh elements after head h-1
// (stride < matrix extent). Forward S_h = scale Q_h K_h^T, O_h = P_h V_h written back
// interleaved into (L, D); backward-like dV_h += P_h^T dO_h (trans_a, beta = 1).
TYPED_TEST(CudaParity, GemmStridedBatchedInterleavedHeads) {
  using T = TypeParam;
  constexpr int L = 41, H = 4, dh = 16, D = H * dh, ldqkv = 3 * D;
  const T scale = T(0.25);
  const auto QKV = random_vector<T>(std::size_t(L) * ldqkv, 501);
  const auto P = random_vector<T>(std::size_t(H) * L * L, 504, 0, 1);
  const auto dO = random_vector<T>(std::size_t(L) * D, 505);
  const auto dV0 = random_vector<T>(std::size_t(L) * D, 506);
  const T *q = QKV.data(), *k = q + D, *v = q + 2 * D;
  const long LL = long(L) * L;

  std::vector<T> s_cpu(std::size_t(H) * LL), o_cpu(std::size_t(L) * D), dv_cpu = dV0;
  ref_gemm_strided_batched(false, true, L, L, dh, scale, q, ldqkv, dh, k, ldqkv, dh, T(0),
                           s_cpu.data(), L, LL, H);
  ref_gemm_strided_batched(false, false, L, dh, L, T(1), P.data(), L, LL, v, ldqkv, dh, T(0),
                           o_cpu.data(), D, dh, H);
  ref_gemm_strided_batched(true, false, L, dh, L, T(1), P.data(), L, LL, dO.data(), D, dh, T(1),
                           dv_cpu.data(), D, dh, H);

  cuda::DeviceBuffer<T> dQKV(QKV), dP(P), ddO(dO), ddV(dV0);
  cuda::DeviceBuffer<T> dS(s_cpu.size()), dOut(o_cpu.size());
  const T *gq = dQKV.data(), *gk = gq + D, *gv = gq + 2 * D;
  GpuB::gemm_strided_batched<T>(false, true, L, L, dh, scale, gq, ldqkv, dh, gk, ldqkv, dh, T(0),
                                dS.data(), L, LL, H);
  GpuB::gemm_strided_batched<T>(false, false, L, dh, L, T(1), dP.data(), L, LL, gv, ldqkv, dh,
                                T(0), dOut.data(), D, dh, H);
  GpuB::gemm_strided_batched<T>(true, false, L, dh, L, T(1), dP.data(), L, LL, ddO.data(), D, dh,
                                T(1), ddV.data(), D, dh, H);
  const auto s_gpu = dS.to_host(), o_gpu = dOut.to_host(), dv_gpu = ddV.to_host();

  for (int h = 0; h < H; ++h) {
    SCOPED_TRACE("head " + std::to_string(h));
    EXPECT_LT(normalised_error(s_gpu, s_cpu, std::size_t(h) * LL, L, L, L), gemm_tolerance<T>());
    EXPECT_LT(normalised_error(o_gpu, o_cpu, std::size_t(h) * dh, L, dh, D), gemm_tolerance<T>());
    EXPECT_LT(normalised_error(dv_gpu, dv_cpu, std::size_t(h) * dh, L, dh, D),
              gemm_tolerance<T>());
  }
}

// ---- element-wise kernels ------------------------------------------------------------------

TYPED_TEST(CudaParity, GeluForward) {
  using T = TypeParam;
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-13;
  // More elements than one launch's threads (65535 blocks x 256) so the grid-stride loop runs.
  const std::size_t n = std::size_t(65535) * 256 + 4099;
  auto x = random_vector<T>(n, 600, -4, 4);
  const T special[] = {T(0), T(-0.0), T(1e-30), T(-1e-30), T(1), T(-1), T(3.999), T(-3.999)};
  for (std::size_t i = 0; i < std::size(special); ++i) x[i] = special[i];

  std::vector<T> y_cpu(n);
  ref_gelu_forward(y_cpu.data(), x.data(), int64_t(n));

  cuda::DeviceBuffer<T> dx(x), dy(n);
  GpuB::gelu_forward<T>(dy.data(), dx.data(), int64_t(n));
  const auto y_gpu = dy.to_host();
  // In place (y == x) gives the same values.
  GpuB::gelu_forward<T>(dx.data(), dx.data(), int64_t(n));
  const auto y_inplace = dx.to_host();

  double max_err = 0;
  std::size_t worst = 0, not_finite = 0, inplace_mismatch = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double e = std::abs(double(y_gpu[i]) - double(y_cpu[i]));
    if (!std::isfinite(e)) {
      ++not_finite;
    } else if (e > max_err) {
      max_err = e;
      worst = i;
    }
    if (std::memcmp(&y_gpu[i], &y_inplace[i], sizeof(T)) != 0) ++inplace_mismatch;
  }
  EXPECT_LT(max_err, tol) << "at x = " << double(x[worst]) << ": gpu " << double(y_gpu[worst])
                          << " cpu " << double(y_cpu[worst]);
  EXPECT_EQ(not_finite, 0u);
  EXPECT_EQ(inplace_mismatch, 0u);
}

}  // namespace
}  // namespace recdistill::parity
