// recdistill/backbones/fpmc.hpp: FPMC's `session` variant (ALKDRec's; specs/backbones.md §4.2)
// on the engine's contracts: no user factor and no last-item term, the session state is the
// mean of its window's input embeddings,
//   u = sum_{j<L} LI[seq_j] / len       (pads read row 0 of LI, which is zero and never trained)
// scored against a separate output table: score(i) = u . E_out[i].
// Its output() is one state per row, (rows, d); batches carry one target per row
// (backbones/session_batching.hpp). It has no blocks and takes no taps.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backbones/encoder.hpp"
#include "recdistill/backbones/session_batching.hpp"
#include "recdistill/backbones/session_config.hpp"
#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/case.hpp"
#include "recdistill/layers/layers.hpp"

namespace recdistill {

// FPMC's variants (specs/backbones.md §4): only `session` is built so far; `recbole` (the
// user-based model with its user factor) is refused by name.
enum class FPMCVariant { session };
inline constexpr std::array<std::pair<std::string_view, FPMCVariant>, 1> enum_names(FPMCVariant) {
  return {{{"session", FPMCVariant::session}}};
}

struct FPMCConfig : SessionDims {
  FPMCVariant variant = FPMCVariant::session;

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(variant, Key("model", "variant", "which reference FPMC to match: `session` (ALKDRec's, specs/backbones.md §4.2)")
                   .weights());
    SessionDims::keys(v);
  }
  template <class Given>
  void resolve_defaults(const Given& given) {
    resolve_session_defaults(given, true);
  }
};

namespace fpmc {

template <class B, class T>
struct Activations {
  int capacity = 0, batch = 0;
  bool train = false;
  Buffer<B, int32_t> seq;   // (cap, L)
  Buffer<B, uint8_t> valid; // (cap, L)
  Buffer<B, T> w_mean;      // (cap, L) 1 / len
  Buffer<B, T> E, g_E;      // (cap, L, d)
  Buffer<B, T> u;           // (cap, d)
  std::vector<int32_t> seq_host;
  Buffer<B, int32_t> seq_in;
  Activations() = default;
  Activations(int cap, int L, int d)
      : capacity(cap), seq(size_t(cap) * L), valid(size_t(cap) * L), w_mean(size_t(cap) * L),
        E(size_t(cap) * L * d), g_E(size_t(cap) * L * d), u(size_t(cap) * d), seq_in(size_t(cap) * L) {}
};

}  // namespace fpmc

template <Backend B, class T = float>
class FPMCSession {
 public:
  using BackendType = B;
  using Scalar = T;
  using Activations = fpmc::Activations<B, T>;
  using Batch = SeqBatch<B>;

  explicit FPMCSession(FPMCConfig cfg) : cfg_(cfg) {
    cfg_.validate();
    off_item_ = layout_.add("item_embedding", {cfg_.n_items, cfg_.hidden});
    off_out_ = layout_.add("item_output", {cfg_.n_items, cfg_.hidden});
  }

  const FPMCConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return 0; }
  int max_len() const { return cfg_.max_len; }
  int hidden_size() const { return cfg_.hidden; }
  int n_items() const { return cfg_.n_items; }
  Scorer scorer() const { return {off_out_, -1, cfg_.n_items, cfg_.hidden}; }
  double forward_gemm_flops(int64_t) const { return 0; }

  // Xavier-normal on both tables (std sqrt(2 / (N + d))), the pad row of the input table zero.
  void init(T* params, uint64_t seed) const {
    const double sd = std::sqrt(2.0 / (double(cfg_.n_items) + cfg_.hidden));
    int tensor = 0;
    for (const auto& p : layout_.infos())
      encoder::init_fill(params + p.offset, p.size, seed, tensor++,
                         [sd](float u1, float u2) { return T(sd * normal_from(u1, u2)); });
    std::fill(params + off_item_, params + off_item_ + cfg_.hidden, T(0));
  }

  Activations make_activations(int capacity) const { return Activations(capacity, cfg_.max_len, cfg_.hidden); }

  CPtr<B, T> output(const Activations& a) const { return a.u.data(); }
  CPtr<B, T> embedding_output(const Activations& a) const { return a.E.data(); }
  CPtr<B, T> block_output(const Activations&, int) const { fail("FPMC has no blocks to read"); }
  CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int batch, bool train,
               DropoutKey = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    const int L = cfg_.max_len, d = cfg_.hidden, R = batch * L;
    a.batch = batch;
    a.train = train;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(R));
    ops::nonzero_mask<B>(a.valid.data(), CPtr<B, int32_t>(a.seq.data()), int64_t(R));
    ops::length_weights<B>(a.w_mean.data(), CPtr<B, uint8_t>(a.valid.data()), batch, L);
    layers::embedding_forward<B, T>(a.E.data(), params + off_item_, a.seq.data(), R, d);
    ops::slot_sum<B>(a.u.data(), CPtr<B, T>(a.E.data()), CPtr<B, T>(a.w_mean.data()), batch, L, d);
  }

  void backward(CPtr<B, T>, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out, const Taps<B, T>& taps = {}) const {
    if (!taps.at.empty()) fail("FPMC takes no taps (it has no blocks)");
    const int L = cfg_.max_len, d = cfg_.hidden, R = a.batch * L;
    ops::slot_sum_backward<B>(a.g_E.data(), Ptr<B, T>(), d_out, CPtr<B, T>(a.E.data()), CPtr<B, T>(a.w_mean.data()),
                              a.batch, L, d, false);
    layers::embedding_backward<B, T>(grads + off_item_, a.g_E.data(), a.seq.data(), R, d, /*skip_pad=*/true);
  }

  // Evaluation queries: each case's last min(length, L) history items as one row; out (rows, d).
  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows, Ptr<B, T> out) const {
    session_query(*this, params, a, cases, n, rows, out);
  }

  SessionBatching batching(int = 0) const { return SessionBatching(cfg_.max_len, cfg_.rows); }

 private:
  FPMCConfig cfg_;
  ParamLayout layout_;
  size_t off_item_ = 0, off_out_ = 0;
};

}  // namespace recdistill
