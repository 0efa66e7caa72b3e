// recdistill/backend/backend.hpp: what a compute backend must provide.
//
// A backend is a policy class with static operations over raw, row-major buffers that live
// in its own memory space. Backbones and layers reach the hardware only through these
// operations, so one backbone source compiles for the CPU (Eigen) and the GPU (cuBLAS).
//
//   gemm:                C(M,N) = alpha * op(A) * op(B) + beta * C, all row-major,
//                        op(X) = X or X^T; lda/ldb/ldc are row strides.
//   gemm_strided_batched: the same for `count` independent problems whose operands start
//                        stride_a / stride_b / stride_c elements apart (attention heads).
//
// The CPU backend is the reference every other backend is tested against.
#pragma once
#include <concepts>
#include <cstddef>

namespace recdistill {

template <class B>
concept Backend = requires(bool t, int n, float a, const float* cp, float* p, long s) {
  { B::name } -> std::convertible_to<const char*>;
  { B::host_memory } -> std::convertible_to<bool>;
  B::template gemm<float>(t, t, n, n, n, a, cp, n, cp, n, a, p, n);
  B::template gemm_strided_batched<float>(t, t, n, n, n, a, cp, n, s, cp, n, s, a, p, n, s, n);
};

// A backend that cannot run an operation leaves it unspecialised; calling it then fails to
// compile with this message instead of silently picking a slow path.
template <class B>
inline constexpr bool no_implementation_for_backend = false;

}  // namespace recdistill
