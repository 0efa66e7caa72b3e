// A test backend whose memory is reached only through opaque handles: Ptr<T> is a Handle<T>
// that can be offset, compared with null and converted to Handle<const T>, but never
// dereferenced. If any code above the backend (layers, backbones, objectives, trainer,
// evaluator) read or wrote a tensor element itself, instantiating it on this backend would not
// compile. Its ops unwrap the handles and run the CPU backend's implementations, so results
// must equal the CPU backend's bit for bit.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/backend/ops.hpp"

namespace opaque {

struct Backend;

template <class T>
class Handle {
 public:
  Handle() = default;
  Handle(std::nullptr_t) {}
  template <class U>
    requires(std::is_convertible_v<U*, T*> && !std::is_same_v<U, T>)
  Handle(Handle<U> o) : p_(o.p_) {}
  template <std::integral I>
  Handle operator+(I n) const {
    return Handle(p_ + n);
  }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  explicit Handle(T* p) : p_(p) {}
  T* p_ = nullptr;
  template <class U>
  friend class Handle;
  template <class U>
  friend class Buffer;
  template <class U>
  friend U* raw(Handle<U> h);
};

// Only the backend's own ops call this.
template <class U>
U* raw(Handle<U> h) {
  return h.p_;
}

// Move-only, like the CUDA backend's DeviceBuffer: generic code that copied a buffer would
// compile on the CPU backend (std::vector) but not here.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) : v_(n) {}
  Buffer(Buffer&&) noexcept = default;
  Buffer& operator=(Buffer&&) noexcept = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Handle<T> data() { return Handle<T>(v_.data()); }
  Handle<const T> data() const { return Handle<const T>(v_.data()); }
  size_t size() const { return v_.size(); }

 private:
  std::vector<T> v_;
};

template <class A>
inline constexpr bool is_handle = false;
template <class T>
inline constexpr bool is_handle<Handle<T>> = true;

// A handle becomes its raw pointer; a raw pointer is refused (a host pointer where the op wants
// backend memory would only fail on a real device); anything else passes through unchanged.
template <class A>
decltype(auto) un(A&& a) {
  static_assert(!std::is_pointer_v<std::remove_cvref_t<A>>,
                "a raw pointer was passed to a backend op where backend memory is expected");
  if constexpr (is_handle<std::remove_cvref_t<A>>) return raw(a);
  else return std::forward<A>(a);
}
// For the arguments an op documents as host memory (a loss's target count, a host score row).
template <class A>
decltype(auto) un_host(A&& a) {
  if constexpr (is_handle<std::remove_cvref_t<A>>) return raw(a);
  else return std::forward<A>(a);
}

struct Backend {
  static constexpr const char* name = "opaque";
  static constexpr bool host_memory = false;
  template <class T>
  using Ptr = Handle<T>;
  template <class T>
  using Buffer = opaque::Buffer<T>;

  template <class T>
  static void to_device(Handle<T> dst, const T* host, size_t n) {
    recdistill::cpu::Backend::to_device<T>(raw(dst), host, n);
  }
  template <class T>
  static void to_host(T* host, Handle<const T> src, size_t n) {
    recdistill::cpu::Backend::to_host<T>(host, raw(src), n);
  }
  template <class T>
  static void copy(Handle<T> dst, Handle<const T> src, size_t n) {
    recdistill::cpu::Backend::copy<T>(raw(dst), raw(src), n);
  }
  template <class T>
  static void gemm(bool ta, bool tb, int M, int N, int K, T alpha, Handle<const T> A, int lda,
                   Handle<const T> B, int ldb, T beta, Handle<T> C, int ldc) {
    recdistill::cpu::Backend::gemm<T>(ta, tb, M, N, K, alpha, raw(A), lda, raw(B), ldb, beta, raw(C), ldc);
  }
  template <class T>
  static void gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, Handle<const T> A,
                                   int lda, long sa, Handle<const T> B, int ldb, long sb, T beta,
                                   Handle<T> C, int ldc, long sc, int count) {
    recdistill::cpu::Backend::gemm_strided_batched<T>(ta, tb, M, N, K, alpha, raw(A), lda, sa, raw(B), ldb,
                                                      sb, beta, raw(C), ldc, sc, count);
  }
};

static_assert(recdistill::Backend<Backend>);

}  // namespace opaque

namespace recdistill::ops {

// Every op of backend/ops.hpp, by unwrapping the handles for the CPU's implementation. Leave
// one out (tests/compile_fail) and instantiating a model fails with the missing-op message.
#define RD_OPAQUE_OP(op)                                                                       \
  template <>                                                                                  \
  struct op##_impl<::opaque::Backend> {                                                        \
    template <class... A>                                                                      \
    static decltype(auto) run(A&&... a) {                                                      \
      return op##_impl<::recdistill::cpu::Backend>::run(::opaque::un(std::forward<A>(a))...);  \
    }                                                                                          \
  };

RD_OPAQUE_OP(fill)
RD_OPAQUE_OP(add)
RD_OPAQUE_OP(nonzero_mask)
RD_OPAQUE_OP(mask_rows)
RD_OPAQUE_OP(gather_rows)
RD_OPAQUE_OP(scatter_add_rows)
RD_OPAQUE_OP(add_position)
RD_OPAQUE_OP(position_grad)
RD_OPAQUE_OP(add_bias)
RD_OPAQUE_OP(bias_grad)
#ifndef OPAQUE_WITHOUT_LAYER_NORM
RD_OPAQUE_OP(layer_norm_forward)
#endif
RD_OPAQUE_OP(layer_norm_backward)
RD_OPAQUE_OP(dropout_forward)
RD_OPAQUE_OP(dropout_backward)
RD_OPAQUE_OP(gelu_forward)
RD_OPAQUE_OP(gelu_backward)
RD_OPAQUE_OP(relu_forward)
RD_OPAQUE_OP(relu_backward)
RD_OPAQUE_OP(attention_forward)
RD_OPAQUE_OP(attention_backward)
RD_OPAQUE_OP(masked_softmax_forward)
RD_OPAQUE_OP(masked_softmax_backward)
RD_OPAQUE_OP(l2_normalise_forward)
RD_OPAQUE_OP(l2_normalise_backward)
RD_OPAQUE_OP(dot)
RD_OPAQUE_OP(sum)
RD_OPAQUE_OP(sum_squares)
RD_OPAQUE_OP(scale)
RD_OPAQUE_OP(adam_step)
RD_OPAQUE_OP(score_rows)
RD_OPAQUE_OP(rank_rows)
RD_OPAQUE_OP(rank_targets)
RD_OPAQUE_OP(rank_chunk)
RD_OPAQUE_OP(l2_normalise_axis_forward)  // evaluation of a normalise_rows scorer (eval/ranking.hpp)

#undef RD_OPAQUE_OP

// Ops with documented host-memory arguments: bpr_loss's target count, rank_sampled's host row.
template <>
struct bpr_loss_impl<::opaque::Backend> {
  template <class... A>
  static decltype(auto) run(A&&... a) {
    return bpr_loss_impl<::recdistill::cpu::Backend>::run(::opaque::un_host(std::forward<A>(a))...);
  }
};
template <>
struct rank_sampled_impl<::opaque::Backend> {
  template <class... A>
  static decltype(auto) run(A&&... a) {
    return rank_sampled_impl<::recdistill::cpu::Backend>::run(::opaque::un_host(std::forward<A>(a))...);
  }
};

// The CE workspace holds opaque buffers: the CPU implementation gets a workspace of its own.
template <>
struct softmax_cross_entropy_impl<::opaque::Backend> {
  template <class T>
  static double run(::opaque::Handle<T> dh, ::opaque::Handle<T> dE, ::opaque::Handle<const T> hidden,
                    ::opaque::Handle<const T> table, ::opaque::Handle<const int32_t> targets, int R, int d,
                    int N, CrossEntropyWorkspace<::opaque::Backend, T>& ws, int64_t* n_targets = nullptr,
                    ::opaque::Handle<const T> bias = {}, ::opaque::Handle<T> dbias = {}) {
    CrossEntropyWorkspace<::recdistill::cpu::Backend, T> cpu_ws;
    cpu_ws.reserve(R, ws.chunk, d, N);
    return softmax_cross_entropy_impl<::recdistill::cpu::Backend>::run(
        ::opaque::raw(dh), ::opaque::raw(dE), ::opaque::raw(hidden), ::opaque::raw(table),
        ::opaque::raw(targets), R, d, N, cpu_ws, n_targets, ::opaque::raw(bias), ::opaque::raw(dbias));
  }
};

}  // namespace recdistill::ops
