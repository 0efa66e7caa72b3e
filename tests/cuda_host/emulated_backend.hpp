// cudahost::Backend: the CUDA backend's ops, run on the CPU. Memory is the opaque test
// backend's (tests/opaque/): handles that code above the backend cannot dereference. Every op
// the CUDA backend has (backend/cuda/kernels.hpp) runs its kernel bodies through HostExec, with
// cpu::Backend's GEMMs standing in for cuBLAS. Models, objectives and the trainer instantiated
// on it therefore run the CUDA backend's algorithms end to end without a GPU.
#pragma once
#include <utility>

#include "../opaque/opaque_backend.hpp"
#include "host_exec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/backend/cuda/kernels.hpp"

namespace cudahost {

using Exec = HostExec<recdistill::cpu::Backend>;
using K = recdistill::cuda::kern::Ops<Exec>;

struct Backend : opaque::Backend {
  static constexpr const char* name = "cuda-on-host";
};
static_assert(recdistill::Backend<Backend>);

}  // namespace cudahost

namespace recdistill::ops {

#define RD_CUDAHOST_OP(op)                                                           \
  template <>                                                                        \
  struct op##_impl<::cudahost::Backend> {                                            \
    template <class... A>                                                            \
    static decltype(auto) run(A&&... a) {                                            \
      return ::cudahost::K::op(::opaque::un(std::forward<A>(a))...);                 \
    }                                                                                \
  };

RD_CUDAHOST_OP(fill)
RD_CUDAHOST_OP(add)
RD_CUDAHOST_OP(nonzero_mask)
RD_CUDAHOST_OP(mask_rows)
RD_CUDAHOST_OP(gather_rows)
RD_CUDAHOST_OP(scatter_add_rows)
RD_CUDAHOST_OP(add_position)
RD_CUDAHOST_OP(position_grad)
RD_CUDAHOST_OP(add_bias)
RD_CUDAHOST_OP(bias_grad)
RD_CUDAHOST_OP(layer_norm_forward)
RD_CUDAHOST_OP(layer_norm_backward)
RD_CUDAHOST_OP(dropout_forward)
RD_CUDAHOST_OP(dropout_backward)
RD_CUDAHOST_OP(mul)
RD_CUDAHOST_OP(gelu_forward)
RD_CUDAHOST_OP(gelu_backward)
RD_CUDAHOST_OP(relu_forward)
RD_CUDAHOST_OP(relu_backward)
RD_CUDAHOST_OP(attention_forward)
RD_CUDAHOST_OP(attention_backward)
RD_CUDAHOST_OP(masked_softmax_forward)
RD_CUDAHOST_OP(masked_softmax_backward)
RD_CUDAHOST_OP(l2_normalise_forward)
RD_CUDAHOST_OP(l2_normalise_backward)
RD_CUDAHOST_OP(l2_normalise_axis_forward)
RD_CUDAHOST_OP(dot)
RD_CUDAHOST_OP(sum)
RD_CUDAHOST_OP(sum_squares)
RD_CUDAHOST_OP(scale)
RD_CUDAHOST_OP(adam_step)
RD_CUDAHOST_OP(sigmoid_forward)
RD_CUDAHOST_OP(sigmoid_backward)
RD_CUDAHOST_OP(tanh_forward)
RD_CUDAHOST_OP(tanh_backward)
RD_CUDAHOST_OP(length_weights)
RD_CUDAHOST_OP(last_slots)
RD_CUDAHOST_OP(broadcast_slots)
RD_CUDAHOST_OP(slot_sum)
RD_CUDAHOST_OP(slot_sum_backward)
RD_CUDAHOST_OP(gather_row_pairs)
RD_CUDAHOST_OP(scatter_row_pairs)
RD_CUDAHOST_OP(inbatch_bpr_loss)
RD_CUDAHOST_OP(intent_slots)
RD_CUDAHOST_OP(dropout_by_id_forward)
RD_CUDAHOST_OP(l2_normalise_axis_backward)
RD_CUDAHOST_OP(mixer_attention_forward)
RD_CUDAHOST_OP(mixer_attention_backward)
RD_CUDAHOST_OP(bce_multi_loss)
RD_CUDAHOST_OP(score_rows)
RD_CUDAHOST_OP(rank_rows)  // the block and its host result arrays pass through
RD_CUDAHOST_OP(rank_targets)
RD_CUDAHOST_OP(rank_chunk)
#undef RD_CUDAHOST_OP

template <>
struct bpr_loss_impl<::cudahost::Backend> {  // n_targets is host memory
  template <class... A>
  static decltype(auto) run(A&&... a) {
    return ::cudahost::K::bpr_loss(::opaque::un_host(std::forward<A>(a))...);
  }
};
template <>
struct weighted_pairwise_loss_impl<::cudahost::Backend> {  // weight_sum is host memory
  template <class... A>
  static decltype(auto) run(A&&... a) {
    return ::cudahost::K::weighted_pairwise_loss(::opaque::un_host(std::forward<A>(a))...);
  }
};
template <>
struct bpr_gamma_loss_impl<::cudahost::Backend> {
  template <class... A>
  static decltype(auto) run(A&&... a) {
    return ::cudahost::K::bpr_gamma_loss(::opaque::un_host(std::forward<A>(a))...);
  }
};

template <>
struct softmax_cross_entropy_impl<::cudahost::Backend> {
  template <class T>
  static double run(::opaque::Handle<T> dh, ::opaque::Handle<T> dE, ::opaque::Handle<const T> hidden,
                    ::opaque::Handle<const T> table, ::opaque::Handle<const int32_t> targets, int R,
                    int d, int N, CrossEntropyWorkspace<::cudahost::Backend, T>& ws,
                    int64_t* n_targets = nullptr, ::opaque::Handle<const T> bias = {},
                    ::opaque::Handle<T> dbias = {}) {
    return ::cudahost::K::softmax_cross_entropy<T>(
        ::opaque::raw(dh), ::opaque::raw(dE), ::opaque::raw(hidden), ::opaque::raw(table),
        ::opaque::raw(targets), R, d, N, ws.chunk, ::opaque::raw(ws.h.data()),
        ::opaque::raw(ws.z.data()), ::opaque::raw(ws.dh.data()), n_targets, ::opaque::raw(bias),
        ::opaque::raw(dbias));
  }
};

// rank_sampled works on a host copy of the row (backend/ops.hpp), as on the CPU.
template <>
struct rank_sampled_impl<::cudahost::Backend> {
  template <class... A>
  static decltype(auto) run(A&&... a) {
    return rank_sampled_impl<::opaque::Backend>::run(std::forward<A>(a)...);
  }
};

}  // namespace recdistill::ops
