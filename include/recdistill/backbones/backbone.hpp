// recdistill/backbones/backbone.hpp: what a model promises the trainer, the objectives, the
// evaluator and the methods built on it (DESIGN.md, "The engine's contracts").
//
// A Backbone M over backend B and scalar T:
//   layout()                     the named tensors of its one flat parameter buffer (nestable:
//                                a method appends its own tensors after the backbone's)
//   init(T* host_params, seed)   initial values, on host memory
//   make_activations(capacity)   every activation buffer for up to `capacity` rows, once
//   forward(params, acts, seq, rows, train, key)
//                                keeps every block's output, the final output and the mask
//   output(acts)                 the final output (rows, L, d), after the last layer norm
//   block_output(acts, k)        block k's output (rows, L, d); blocks() of them
//   embedding_output(acts)       the stream entering block 0 (rows, L, d)
//   mask(acts)                   (rows, L) uint8, 1 = real item
//   backward(params, grads, acts, d_out, taps)
//                                accumulates parameter gradients of a loss with gradient d_out
//                                at output() plus the taps' gradients at their points
//   scorer()                     how a query meets the items (Scorer below): evaluation,
//                                recommend and the objectives never reach into tables
//   query(params, acts, cases, n, rows, out)
//                                the query state of each case's history, (rows, dim)
//   batching(stride)             its batching policy: rows(train sequences) and
//                                fill(batch, train, rows, ids, n, step context), which may draw
//                                (backbones/window_batching.hpp is SASRec's, cloze_batching.hpp
//                                BERT4Rec's)
//   max_len(), hidden_size(), n_items(), forward_gemm_flops(rows) (logs only)
#pragma once
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <vector>

#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/eval/case.hpp"

namespace recdistill {

// Where a backbone's backward accepts an extra gradient: a block index k in [0, blocks()), or
// one of these.
struct TapPoint {
  static constexpr int embedding = -1;           // the stream entering block 0
  static constexpr int final_output = 1 << 20;   // output(), after the last layer norm
};

// Extra gradients at tapped points, each (rows, L, d) in backend memory.
template <class B, class T>
struct Taps {
  struct Tap {
    int point;
    CPtr<B, T> grad;
  };
  std::vector<Tap> at;
};

// g (n) += the gradient of every tap at `point` (a backbone's backward calls it at each point).
template <class B, class T>
void add_taps_at(Ptr<B, T> g, const Taps<B, T>& taps, int point, int64_t n) {
  for (const auto& t : taps.at)
    if (t.point == point) ops::add<B>(g, CPtr<B, T>(g), t.grad, n);
}

// Scores of a query state q (dim) against items: s_j = q . table[j] (+ bias[j]). The table
// (n_items, dim) and optional bias (n_items) are offsets into the model's parameter buffer, so
// the same scorer reads weights and writes gradients.
// normalise_rows: score against the L2-normalised rows instead, s_j = q . n(table[j]) (+ bias[j])
// with n(x) = x / (||x|| + kScorerNormEps) (official Atten-Mixer, specs/backbones.md §6.1 step 7;
// a constant scale on the scores, like its 16, changes no rank and is left to the objective).
// Every scoring path honours it (eval/ranking.hpp, eval/topk.hpp: a normalised copy of the table
// per evaluation pass); an objective that reads the raw table refuses such a scorer
// (detail::require_dot_scorer) unless it handles the normalisation itself.
inline constexpr double kScorerNormEps = 1e-12;
struct Scorer {
  size_t table = 0;      // offset of the (n_items, dim) table
  int64_t bias = -1;     // offset of the (n_items) bias, -1 = none
  int n_items = 0, dim = 0;
  bool normalise_rows = false;  // score against n(table[j]) (above)
  // With normalise_rows: inverted dropout of the normalised rows at this rate, one mask per
  // scoring pass keyed by (row_dropout_key, row_dropout_site) (Atten-Mixer's train-mode
  // prediction scores, model.train_mode_queries); 0 = none.
  double row_dropout = 0;
  DropoutKey row_dropout_key{};
  uint32_t row_dropout_site = 0;
};

// A batch of fixed-length rows: item ids (rows, L) and next-item targets, 0 = pad / no target;
// staged on the host, uploaded once per step. A sequential model has a target per slot
// (rows, L); a session model one per row (targets_per_row 1: target[0..rows)), matching its
// output() of (target_rows(), d).
template <class B>
struct SeqBatch {
  int rows = 0, L = 0;
  int targets_per_row = 0;  // 0 = L
  int target_rows() const { return rows * (targets_per_row > 0 ? targets_per_row : L); }
  std::vector<int32_t> seq_host, target_host;
  // Row i's training sequence (its index in the split's train), where the batching sets it
  // (session batchings): objectives that weight rows look their annotations up by it.
  std::vector<int32_t> row_host;
  Buffer<B, int32_t> seq, target;
  SeqBatch() = default;
  SeqBatch(int capacity, int len)
      : L(len), seq_host(size_t(capacity) * len), target_host(size_t(capacity) * len), row_host(size_t(capacity)),
        seq(size_t(capacity) * len), target(size_t(capacity) * len) {}
  int capacity() const { return L == 0 ? 0 : int(seq_host.size() / size_t(L)); }
  void upload() {
    B::template to_device<int32_t>(seq.data(), seq_host.data(), size_t(rows) * L);
    B::template to_device<int32_t>(target.data(), target_host.data(), size_t(rows) * L);
  }
};

// The contract above as a concept (compile-time check with a readable failure).
template <class M>
concept Backbone = requires(const M& m, typename M::Activations& a, const typename M::Activations& ca,
                            CPtr<typename M::BackendType, typename M::Scalar> cp,
                            Ptr<typename M::BackendType, typename M::Scalar> p,
                            CPtr<typename M::BackendType, int32_t> ids,
                            const Taps<typename M::BackendType, typename M::Scalar>& taps,
                            typename M::Scalar* host, const eval::Case* cases, DropoutKey key) {
  requires Backend<typename M::BackendType>;
  { m.layout() } -> std::same_as<const ParamLayout&>;
  { m.num_params() } -> std::convertible_to<size_t>;
  m.init(host, uint64_t(1));
  { m.make_activations(1) } -> std::same_as<typename M::Activations>;
  m.forward(cp, a, ids, 1, true, key);
  { m.output(ca) } -> std::convertible_to<CPtr<typename M::BackendType, typename M::Scalar>>;
  { m.block_output(ca, 0) } -> std::convertible_to<CPtr<typename M::BackendType, typename M::Scalar>>;
  { m.embedding_output(ca) } -> std::convertible_to<CPtr<typename M::BackendType, typename M::Scalar>>;
  { m.mask(ca) } -> std::convertible_to<CPtr<typename M::BackendType, uint8_t>>;
  { m.blocks() } -> std::convertible_to<int>;
  m.backward(cp, p, a, cp, taps);
  { m.scorer() } -> std::same_as<Scorer>;
  m.query(cp, a, cases, size_t(1), 1, p);
  { m.max_len() } -> std::convertible_to<int>;
  { m.hidden_size() } -> std::convertible_to<int>;
  { m.n_items() } -> std::convertible_to<int>;
  { m.forward_gemm_flops(int64_t(1)) } -> std::convertible_to<double>;
  m.batching(0);
};

}  // namespace recdistill
