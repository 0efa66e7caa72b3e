// recdistill/backend/backend.hpp: what a compute backend must provide.
//
// A backend is a policy class that owns a memory space and the GEMMs over it:
//
//   Ptr<T>      a position in the backend's memory (CPU: T*). Code above the backend only
//               offsets it (p + n) and hands it to backend operations; it never dereferences
//               it, so the same source compiles for device memory (and for the opaque-handle
//               test backend, which would reject any dereference at compile time).
//   Buffer<T>   an owning allocation of n elements: Buffer<T>(n), data() -> Ptr<T> (const:
//               Ptr<const T>), size(). Allocated once by models and trainers, never inside a
//               forward or backward pass.
//   to_device(Ptr<T> dst, const T* host, n) / to_host(T* host, Ptr<const T> src, n) /
//   copy(Ptr<T> dst, Ptr<const T> src, n): element copies between and within memory spaces.
//   gemm:       C(M,N) = alpha * op(A) * op(B) + beta * C, all row-major, op(X) = X or X^T;
//               lda/ldb/ldc are row strides.
//   gemm_strided_batched: the same for `count` independent problems whose operands start
//               stride_a / stride_b / stride_c elements apart (attention heads).
//
// Every other operation (embedding gather/scatter, bias, layer norm, attention softmax,
// dropout, activations, losses, optimiser, reductions, ranking) is a function template in
// backend/ops.hpp that a backend specialises; an op a backend lacks fails to compile with a
// message naming the op, never a silent host fallback.
//
// The CPU backend is the reference every other backend is tested against.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace recdistill {

template <class B>
concept Backend = requires(bool t, int n, size_t sz, float a, float* host, const float* chost,
                           typename B::template Ptr<float> p, typename B::template Ptr<const float> cp,
                           typename B::template Buffer<float>& buf,
                           const typename B::template Buffer<float>& cbuf, long s) {
  { B::name } -> std::convertible_to<const char*>;
  { B::host_memory } -> std::convertible_to<bool>;
  requires std::constructible_from<typename B::template Buffer<float>, size_t>;
  requires std::default_initializable<typename B::template Buffer<float>>;
  requires std::constructible_from<typename B::template Ptr<const float>,
                                   typename B::template Ptr<float>>;
  { buf.data() } -> std::same_as<typename B::template Ptr<float>>;
  { cbuf.data() } -> std::same_as<typename B::template Ptr<const float>>;
  { buf.size() } -> std::convertible_to<size_t>;
  { p + s } -> std::same_as<typename B::template Ptr<float>>;
  B::template to_device<float>(p, chost, sz);
  B::template to_host<float>(host, cp, sz);
  B::template copy<float>(p, cp, sz);
  B::template gemm<float>(t, t, n, n, n, a, cp, n, cp, n, a, p, n);
  B::template gemm_strided_batched<float>(t, t, n, n, n, a, cp, n, s, cp, n, s, a, p, n, s, n);
};

// Shorthands for a backend's pointer types.
template <class B, class T>
using Ptr = typename B::template Ptr<T>;
template <class B, class T>
using CPtr = typename B::template Ptr<const T>;
template <class B, class T>
using Buffer = typename B::template Buffer<T>;

// A backend that cannot run an operation leaves it unspecialised; calling it then fails to
// compile with a message naming the op instead of silently picking a slow path.
template <class B>
inline constexpr bool no_implementation_for_backend = false;

}  // namespace recdistill
