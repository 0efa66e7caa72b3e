// recdistill/backend/cuda/backend.cuh: the CUDA backend (cuBLAS GEMM + element-wise kernels).
//
// Compile with nvcc (this header defines kernels). Buffers are device pointers in the same
// row-major layout the CPU backend uses; the CPU backend is the reference. The ops' code is
// kernels.hpp, tested on the host against the CPU (tests/cuda_host/); tests/parity/ checks the
// GEMMs against the CPU and every op on the device against its host run.
//
// Row-major over a column-major library: a row-major (R, C) matrix with row stride ld is, to
// cuBLAS, a column-major (C, R) matrix with leading dimension ld, i.e. its transpose. So the
// row-major product C = op(A) op(B) is computed as the column-major product
// C^T = op(B)^T op(A)^T: swap the operands (and M/N), keep each operand's own transpose flag.
// No data moves.
//
// Precision: fp32 GEMM stays true fp32 (CUBLAS_DEFAULT_MATH, no TF32) so CPU/GPU parity can be
// tight; TF32 is an explicit choice (runtime.tf32, set_tf32), never a silent default.
//
// Memory: DeviceBuffers come from a caching allocator (caching_allocator.hpp), so buffers made
// and dropped again do not call cudaMalloc / cudaFree (which synchronise) each time.
//
// Streams and threads: every operation runs on the legacy default stream, so it is ordered
// with the copies in DeviceBuffer and with every other operation here; errors from a kernel
// may surface at the next synchronising call. Each host thread gets its own cuBLAS handle,
// created lazily on first use for the device current at that moment.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <string_view>
#include <typeinfo>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/cpu/ranking.hpp"  // host-side rank_sampled (no Eigen)
#include "recdistill/backend/cuda/caching_allocator.hpp"
#include "recdistill/backend/cuda/kernels.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"

namespace recdistill::cuda {

namespace detail {

template <class T>
inline constexpr bool unsupported_scalar = false;

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* call, const char* file, int line) {
  fail(file, ":", line, ": CUDA call ", call, " failed: ", cudaGetErrorName(e), " (",
       cudaGetErrorString(e), ")");
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* call, const char* file,
                                      int line) {
  fail(file, ":", line, ": cuBLAS call ", call, " failed: ", cublasGetStatusName(s), " (",
       cublasGetStatusString(s), ")");
}

}  // namespace detail

// Turns a failed CUDA runtime / cuBLAS call into recdistill::Error naming the call.
#define RD_CUDA_CHECK(call)                                                          \
  do {                                                                               \
    const cudaError_t rd_cuda_err_ = (call);                                         \
    if (rd_cuda_err_ != cudaSuccess)                                                 \
      ::recdistill::cuda::detail::throw_cuda(rd_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define RD_CUBLAS_CHECK(call)                                                            \
  do {                                                                                   \
    const cublasStatus_t rd_cublas_st_ = (call);                                         \
    if (rd_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                          \
      ::recdistill::cuda::detail::throw_cublas(rd_cublas_st_, #call, __FILE__, __LINE__); \
  } while (0)

// True when a CUDA driver and at least one device are present. Never throws or aborts: on a
// machine without a GPU or driver cudaGetDeviceCount reports an error, which is cleared and
// read as "no device". The answer is computed once per process.
inline bool device_available() {
  static const bool available = [] {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // clear it so later calls do not report it
      return false;
    }
    return count > 0;
  }();
  return available;
}

// Waits for all work queued on the device (use before timing, or to surface kernel errors).
inline void synchronize() { RD_CUDA_CHECK(cudaDeviceSynchronize()); }

// runtime.tf32: float GEMMs on TF32 tensor cores (10-bit mantissa products, fp32 sums), faster
// and less exact; off by default, so fp32 stays true fp32 and CPU/GPU parity stays tight.
inline std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> on{false};
  return on;
}
inline void set_tf32(bool on) { tf32_flag().store(on); }

// The calling thread's cuBLAS handle: created on first use, in the math mode runtime.tf32 asks
// for (checked at every call, so a change reaches handles made before it), bound to the legacy
// default stream, destroyed when the thread ends.
inline cublasHandle_t cublas_handle() {
  struct Owner {
    cublasHandle_t h = nullptr;
    bool tf32 = false;
    Owner() {
      RD_CUBLAS_CHECK(cublasCreate(&h));
      const cublasStatus_t s = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);  // no TF32
      if (s != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h);
        detail::throw_cublas(s, "cublasSetMathMode(h, CUBLAS_DEFAULT_MATH)", __FILE__, __LINE__);
      }
      RD_CUBLAS_CHECK(cublasSetStream(h, nullptr));
    }
    // At process exit the runtime may already be shutting down; a failed destroy is ignored.
    ~Owner() {
      if (h) (void)cublasDestroy(h);
    }
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;
  };
  thread_local Owner owner;
  if (const bool want = tf32_flag().load(); want != owner.tf32) {
    RD_CUBLAS_CHECK(cublasSetMathMode(owner.h, want ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    owner.tf32 = want;
  }
  return owner.h;
}

// cudaMalloc / cudaFree for the caching allocator (caching_allocator.hpp).
struct CudaRaw {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear it: the allocator may retry, or reports it itself
      return nullptr;
    }
    RD_CUDA_CHECK(e);
    return p;
  }
  static void release(void* p) noexcept { (void)cudaFree(p); }
  static int device() {
    int d = 0;
    RD_CUDA_CHECK(cudaGetDevice(&d));
    return d;
  }
};

// The process's device memory cache. Never destroyed: at exit the CUDA runtime may already be
// shutting down, and the driver frees the process's memory anyway.
inline CachingAllocator<CudaRaw>& device_allocator() {
  static auto* a = new CachingAllocator<CudaRaw>();
  return *a;
}

// Owning device buffer of n elements of T (uninitialised), from device_allocator(). Move-only.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) p_ = static_cast<T*>(device_allocator().allocate(n_ * sizeof(T)));
  }
  // Allocates host.size() elements and copies host to the device.
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    copy_from_host(host.data(), host.size());
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }

  // Copies count elements from host memory into the start of the buffer (synchronous).
  void copy_from_host(const T* src, std::size_t count) {
    RD_REQUIRE(count <= n_, "copy_from_host: ", count, " elements into a buffer of ", n_);
    if (count > 0) RD_CUDA_CHECK(cudaMemcpy(p_, src, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  // Copies the first count elements of the buffer to host memory (synchronous: waits for
  // the work queued before it on the default stream).
  void copy_to_host(T* dst, std::size_t count) const {
    RD_REQUIRE(count <= n_, "copy_to_host: ", count, " elements from a buffer of ", n_);
    if (count > 0) RD_CUDA_CHECK(cudaMemcpy(dst, p_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  std::vector<T> to_host() const {
    std::vector<T> v(n_);
    copy_to_host(v.data(), n_);
    return v;
  }

 private:
  void reset() noexcept {
    device_allocator().deallocate(p_);  // to the cache; never throws
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

namespace detail {

// C_i = beta * C_i for count row-major (rows, cols) blocks, row stride ld, stride apart;
// beta == 0 writes zeros without reading C. This is gemm with K == 0, done here rather than
// trusting every cuBLAS version's handling of k == 0 (and its ld checks on unread operands).
template <class T>
__global__ void scale_blocks_kernel(T* C, int rows, int cols, int ld, long stride, int count,
                                    T beta) {
  const int64_t per_block = int64_t(rows) * cols, total = per_block * count;
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t b = i / per_block, rc = i % per_block;
    T& c = C[b * stride + (rc / cols) * ld + rc % cols];
    c = beta == T(0) ? T(0) : beta * c;
  }
}

inline unsigned grid_for(int64_t n, int threads) {
  return static_cast<unsigned>(std::min<int64_t>((n + threads - 1) / threads, 65535));
}

template <class T>
void scale_blocks(T* C, int rows, int cols, int ld, long stride, int count, T beta) {
  if (beta == T(1)) return;
  constexpr int threads = 256;
  scale_blocks_kernel<T><<<grid_for(int64_t(rows) * cols * count, threads), threads>>>(
      C, rows, cols, ld, stride, count, beta);
  RD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace detail

struct Backend {
  static constexpr const char* name = "cuda";
  static constexpr bool host_memory = false;

  // Device memory: Ptr<T> is a device pointer, Buffer<T> a DeviceBuffer.
  template <class T>
  using Ptr = T*;
  template <class T>
  using Buffer = DeviceBuffer<T>;

  template <class T>
  static void to_device(T* dst, const T* host, std::size_t n) {
    if (n > 0) RD_CUDA_CHECK(cudaMemcpy(dst, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  template <class T>
  static void to_host(T* host, const T* src, std::size_t n) {
    if (n > 0) RD_CUDA_CHECK(cudaMemcpy(host, src, n * sizeof(T), cudaMemcpyDeviceToHost));
  }
  template <class T>
  static void copy(T* dst, const T* src, std::size_t n) {
    if (n > 0) RD_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice));
  }

  // C(M,N) = alpha * op(A) * op(B) + beta * C; op(A) is (M,K), op(B) is (K,N); row-major,
  // device pointers. Same contract as cpu::Backend::gemm: beta == 0 means C is not read
  // (NaN in C does not propagate), K == 0 gives C = beta * C.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda,
                   const T* B, int ldb, T beta, T* C, int ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) return detail::scale_blocks(C, M, N, ldc, 0L, 1, beta);
    // Column-major: C^T (N,M) = op(B)^T (N,K) * op(A)^T (K,M).
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasHandle_t h = cublas_handle();
    if constexpr (std::is_same_v<T, float>) {
      RD_CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
    } else if constexpr (std::is_same_v<T, double>) {
      RD_CUBLAS_CHECK(cublasDgemm(h, op_b, op_a, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
    } else {
      static_assert(detail::unsupported_scalar<T>, "cuda::Backend::gemm: float or double only");
    }
  }

  // `count` independent gemms whose operands start stride_a / stride_b / stride_c elements
  // apart (attention heads; strides may be smaller than a matrix, e.g. heads interleaved in
  // one (L, H*dh) row, as long as the C matrices share no element). One cuBLAS call.
  template <class T>
  static void gemm_strided_batched(bool trans_a, bool trans_b, int M, int N, int K, T alpha,
                                   const T* A, int lda, long stride_a, const T* B, int ldb,
                                   long stride_b, T beta, T* C, int ldc, long stride_c,
                                   int count) {
    if (M == 0 || N == 0 || count == 0) return;
    if (K == 0) return detail::scale_blocks(C, M, N, ldc, stride_c, count, beta);
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasHandle_t h = cublas_handle();
    const long long sa = stride_a, sb = stride_b, sc = stride_c;
    if constexpr (std::is_same_v<T, float>) {
      RD_CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, op_a, N, M, K, &alpha, B, ldb, sb, A,
                                                lda, sa, &beta, C, ldc, sc, count));
    } else if constexpr (std::is_same_v<T, double>) {
      RD_CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_b, op_a, N, M, K, &alpha, B, ldb, sb, A,
                                                lda, sa, &beta, C, ldc, sc, count));
    } else {
      static_assert(detail::unsupported_scalar<T>,
                    "cuda::Backend::gemm_strided_batched: float or double only");
    }
  }

  // y = GELU(x) element-wise (erf form, as layers::gelu_forward), n elements, device
  // pointers; y == x (in place) is allowed. Asynchronous; launch errors throw here.
  template <class T>
  static void gelu_forward(T* y, const T* x, int64_t n);
};


static_assert(recdistill::Backend<Backend>);

namespace detail {
// f(i) for i in [0, n): a grid-stride loop, so any n fits any grid.
template <class F>
__global__ void for_each_kernel(int64_t n, F f) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(i);
}
}  // namespace detail

// The executor of kernels.hpp's ops on the device: kernels on the legacy default stream,
// cuBLAS GEMMs, scratch kept per host thread (grown on demand, never shrunk).
struct DeviceExec {
  // RECDISTILL_CUDA_SYNC=1 waits after every kernel, so a fault names its kernel (the functor's
  // type) instead of surfacing at a later copy; for debugging, it serialises everything.
  static bool sync_each() {
    static const bool on = [] {
      const char* v = std::getenv("RECDISTILL_CUDA_SYNC");
      return v != nullptr && std::string_view(v) == "1";
    }();
    return on;
  }
  template <class F>
  static void for_each(int64_t n, const F& f) {
    if (n <= 0) return;
    constexpr int threads = 256;
    detail::for_each_kernel<F><<<detail::grid_for(n, threads), threads>>>(n, f);
    RD_CUDA_CHECK(cudaGetLastError());
    if (sync_each()) {
      const cudaError_t e = cudaDeviceSynchronize();
      if (e != cudaSuccess)
        fail("CUDA kernel ", typeid(F).name(), " (", n, " threads) failed: ", cudaGetErrorName(e), " (",
             cudaGetErrorString(e), ")");
    }
  }
  template <class T, class... A>
  static void gemm(A... a) {
    Backend::gemm<T>(a...);
  }
  template <class T, class... A>
  static void gemm_strided_batched(A... a) {
    Backend::gemm_strided_batched<T>(a...);
  }
  static void* scratch(int slot, std::size_t bytes) {
    thread_local DeviceBuffer<unsigned char> area[4];
    RD_REQUIRE(slot >= 0 && slot < 4, "cuda scratch slot ", slot, " (0..3)");
    if (area[slot].size() < bytes) area[slot] = DeviceBuffer<unsigned char>(bytes);
    return area[slot].data();
  }
  template <class T>
  static void to_host(T* host, const T* src, std::size_t n) {
    Backend::to_host<T>(host, src, n);
  }
  template <class T>
  static void to_device(T* dst, const T* host, std::size_t n) {
    Backend::to_device<T>(dst, host, n);
  }
  template <class T>
  using Vec = DeviceBuffer<T>;
};

using DeviceOps = kern::Ops<DeviceExec>;

template <class T>
void Backend::gelu_forward(T* y, const T* x, int64_t n) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cuda::Backend::gelu_forward: float or double only");
  DeviceOps::gelu_forward<T>(y, x, n);
}

}  // namespace recdistill::cuda

// The ops of backend/ops.hpp, every one (kernels.hpp). An op added to the contract later fails to
// compile on this backend with the missing-op message until it gets its kernel here.
namespace recdistill::ops {

#define RD_CUDA_OP(op)                                                               \
  template <>                                                                        \
  struct op##_impl<::recdistill::cuda::Backend> {                                    \
    template <class... A>                                                            \
    static decltype(auto) run(A&&... a) {                                            \
      return ::recdistill::cuda::DeviceOps::op(std::forward<A>(a)...);               \
    }                                                                                \
  };

RD_CUDA_OP(fill)
RD_CUDA_OP(add)
RD_CUDA_OP(nonzero_mask)
RD_CUDA_OP(mask_rows)
RD_CUDA_OP(gather_rows)
RD_CUDA_OP(scatter_add_rows)
RD_CUDA_OP(add_position)
RD_CUDA_OP(position_grad)
RD_CUDA_OP(add_bias)
RD_CUDA_OP(bias_grad)
RD_CUDA_OP(layer_norm_forward)
RD_CUDA_OP(layer_norm_backward)
RD_CUDA_OP(dropout_forward)
RD_CUDA_OP(dropout_backward)
RD_CUDA_OP(mul)
RD_CUDA_OP(gelu_forward)
RD_CUDA_OP(gelu_backward)
RD_CUDA_OP(relu_forward)
RD_CUDA_OP(relu_backward)
RD_CUDA_OP(attention_forward)
RD_CUDA_OP(attention_backward)
RD_CUDA_OP(masked_softmax_forward)
RD_CUDA_OP(masked_softmax_backward)
RD_CUDA_OP(l2_normalise_forward)
RD_CUDA_OP(l2_normalise_backward)
RD_CUDA_OP(l2_normalise_axis_forward)
RD_CUDA_OP(dot)
RD_CUDA_OP(sum)
RD_CUDA_OP(sum_squares)
RD_CUDA_OP(scale)
RD_CUDA_OP(adam_step)
RD_CUDA_OP(bpr_loss)
RD_CUDA_OP(sigmoid_forward)
RD_CUDA_OP(sigmoid_backward)
RD_CUDA_OP(tanh_forward)
RD_CUDA_OP(tanh_backward)
RD_CUDA_OP(length_weights)
RD_CUDA_OP(last_slots)
RD_CUDA_OP(broadcast_slots)
RD_CUDA_OP(slot_sum)
RD_CUDA_OP(slot_sum_backward)
RD_CUDA_OP(gather_row_pairs)
RD_CUDA_OP(scatter_row_pairs)
RD_CUDA_OP(bpr_gamma_loss)
RD_CUDA_OP(inbatch_bpr_loss)
RD_CUDA_OP(intent_slots)
RD_CUDA_OP(dropout_by_id_forward)
RD_CUDA_OP(l2_normalise_axis_backward)
RD_CUDA_OP(mixer_attention_forward)
RD_CUDA_OP(mixer_attention_backward)
RD_CUDA_OP(bce_multi_loss)
RD_CUDA_OP(weighted_pairwise_loss)
RD_CUDA_OP(score_rows)
RD_CUDA_OP(rank_rows)  // the block and its result arrays are host memory, the scores device
RD_CUDA_OP(rank_targets)
RD_CUDA_OP(rank_chunk)
#undef RD_CUDA_OP

// Sampled evaluation ranks a host copy of the row (backend/ops.hpp), as the CPU does.
template <>
struct rank_sampled_impl<::recdistill::cuda::Backend> {
  template <class T>
  static int64_t run(T* row, const eval::Case& c, const std::vector<int32_t>& negatives,
                     const eval::Options& o) {
    eval::mask_excluded(row, c, o.exclude);
    return eval::rank_among(row, negatives, c.target, o.ties);
  }
};

template <>
struct softmax_cross_entropy_impl<::recdistill::cuda::Backend> {
  template <class T>
  static double run(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets, int R,
                    int d, int N, CrossEntropyWorkspace<::recdistill::cuda::Backend, T>& ws,
                    int64_t* n_targets = nullptr, const T* bias = nullptr, T* dbias = nullptr) {
    return ::recdistill::cuda::DeviceOps::softmax_cross_entropy<T>(
        dh, dE, hidden, table, targets, R, d, N, ws.chunk, ws.h.data(), ws.z.data(), ws.dh.data(),
        n_targets, bias, dbias);
  }
};

}  // namespace recdistill::ops
