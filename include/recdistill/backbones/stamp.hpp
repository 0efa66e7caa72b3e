// recdistill/backbones/stamp.hpp: STAMP (Liu et al., KDD 2018), a session read-out of short-term
// attention and memory, on the engine's contracts (specs/backbones.md §5, gradients §7):
//
//   STAMP<B>                          `recbole` (default): RecBole 1.2.1's model, tanh MLPs and
//                                     the trilinear score h = tanh(mlp_a(m_a)) * tanh(mlp_b(x_t)),
//                                     scored against its one item table (tied)
//   STAMP<B, T, stamp::Alkdrec>       `alkdrec_simplified`: ALKDRec's, no MLPs, alpha masked to
//                                     real slots, u = m_a scored against a separate output table
//
// One row is a window of up to L items left-aligned, pads (id 0) after them. With E_j the
// embedding of slot j (all L slots: pads read row 0, which both references keep random and
// block on the lookup path):
//   m_s = sum_{j<L} E_j / len            (pads included, divided by the real length)
//   x_t = E_{len-1}                      (the last real item)
//   alpha_j = w0 . sigmoid(W1 E_j + W2 x_t + W3 m_s + b_a)    (recbole: no mask, no softmax)
//   m_a = sum_j alpha_j E_j + m_s
// Its output() is one state per row, (rows, d); batches carry one target per row
// (backbones/session_batching.hpp). It has no blocks and takes no taps.
//
// Upstream's quirks (specs/active-llm-distillation.md §9), `alkdrec_simplified` only:
// model.legacy_pad_zero (Q1: item 0's input row is the pad row, random and frozen) and
// model.legacy_stamp_tables (Q4: one scored output row that is no item; item 0's output row frozen).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
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

enum class STAMPVariant { recbole, alkdrec_simplified };
inline constexpr std::array<std::pair<std::string_view, STAMPVariant>, 2> enum_names(STAMPVariant) {
  return {{{"recbole", STAMPVariant::recbole}, {"alkdrec_simplified", STAMPVariant::alkdrec_simplified}}};
}

struct STAMPConfig : SessionDims {
  STAMPVariant variant = STAMPVariant::recbole;
  // Upstream's STAMP tables (spec §9 Q4): its output table has n_item + 1 rows for n_item items,
  // so one row that is no item is scored too (never a target: in-batch BPR never trains it),
  // and item 0's output row is its padding_idx row, never trained. `alkdrec_simplified` only.
  bool legacy_stamp_tables = false;

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(variant, Key("model", "variant", "which reference STAMP to match (specs/backbones.md §5)").weights()
                   .preset("upstream_compat", "alkdrec_simplified"));
    v(legacy_stamp_tables, Key("model", "legacy_stamp_tables", "alkdrec_simplified: upstream's tables (spec §9 Q4): "
                                                               "one extra output row that is no item is scored (and "
                                                               "never trained), and item 0's output row is never trained")
                               .weights().preset("upstream_compat", "true"));
    SessionDims::keys(v);
  }
  template <class Given>
  void resolve_defaults(const Given& given) {
    resolve_session_defaults(given, variant == STAMPVariant::alkdrec_simplified);
  }
  // The upstream_compat preset's switches, off for `recbole` unless the user wrote them.
  template <class UserGiven>
  void drop_preset_quirks(const UserGiven& user_given) {
    const bool alkd = variant == STAMPVariant::alkdrec_simplified;
    drop_preset_legacy_pad_zero(user_given, alkd);
    if (!alkd && !user_given("model.legacy_stamp_tables")) legacy_stamp_tables = false;
  }
  void validate() const {
    SessionDims::validate();
    const bool alkd = variant == STAMPVariant::alkdrec_simplified;
    validate_legacy_pad_zero(alkd, "recbole");
    if (legacy_stamp_tables && !alkd)
      fail("model.legacy_stamp_tables: upstream's extra output row belongs to ALKDRec's STAMP (alkdrec_simplified), "
           "not to 'recbole'");
    // The extra row is a scored column of no item: only losses that read the targets' rows
    // (upstream's) leave it untrained; full softmax and sampled negatives would train it.
    if (legacy_stamp_tables && (loss == SessionLoss::ce || bce_negatives > 0))
      fail("model.legacy_stamp_tables: upstream trains STAMP with in-batch BPR; training.loss ce and "
           "training.bce_negatives would train its extra row (use inbatch_bpr, or drop legacy_stamp_tables)");
  }
  // Rows of the scored table: the items and the pad, plus upstream's extra row (Q4).
  int scored_rows() const { return n_items + (legacy_stamp_tables ? 1 : 0); }
};

namespace stamp {

struct RecBole {
  static constexpr STAMPVariant id = STAMPVariant::recbole;
  static constexpr const char* name = "recbole";
  static constexpr bool mlp = true;              // tanh MLPs and the trilinear product
  static constexpr bool mask_alpha = false;      // alpha on pad slots too
  static constexpr bool separate_output = false; // scored against item_embedding
};

struct Alkdrec {
  static constexpr STAMPVariant id = STAMPVariant::alkdrec_simplified;
  static constexpr const char* name = "alkdrec_simplified";
  static constexpr bool mlp = false;
  static constexpr bool mask_alpha = true;
  static constexpr bool separate_output = true;  // item_output, the raw E_out rows
};

inline const char* variant_name(STAMPVariant v) {
  return v == STAMPVariant::recbole ? RecBole::name : Alkdrec::name;
}

template <class F>
decltype(auto) with_variant(STAMPVariant v, F&& f) {
  if (v == STAMPVariant::alkdrec_simplified) return f.template operator()<Alkdrec>();
  return f.template operator()<RecBole>();
}

// Every buffer of one forward and backward pass over up to `capacity` rows.
template <class B, class T>
struct Activations {
  int capacity = 0, batch = 0;
  bool train = false;
  Buffer<B, int32_t> seq, last;  // (cap, L) ids, (cap) index of each row's last real slot
  Buffer<B, uint8_t> valid;      // (cap, L)
  Buffer<B, T> w_mean;           // (cap, L) 1 / len
  Buffer<B, T> E, sg;            // (cap, L, d) embeddings, sigmoid gate
  Buffer<B, T> alpha;            // (cap, L)
  Buffer<B, T> m_s, x_t, c, m_a, ha, hb, out;  // (cap, d)
  Buffer<B, T> g_E, g_sg, g_alpha, g_ms, g_xt, g_c, g_ma, g_ha, g_hb;
  std::vector<int32_t> seq_host;  // query staging
  Buffer<B, int32_t> seq_in;
  Activations() = default;
  Activations(int cap, int L, int d)
      : capacity(cap), seq(size_t(cap) * L), last(size_t(cap)), valid(size_t(cap) * L), w_mean(size_t(cap) * L),
        E(size_t(cap) * L * d), sg(size_t(cap) * L * d), alpha(size_t(cap) * L), m_s(size_t(cap) * d),
        x_t(size_t(cap) * d), c(size_t(cap) * d), m_a(size_t(cap) * d), ha(size_t(cap) * d), hb(size_t(cap) * d),
        out(size_t(cap) * d), g_E(size_t(cap) * L * d), g_sg(size_t(cap) * L * d), g_alpha(size_t(cap) * L),
        g_ms(size_t(cap) * d), g_xt(size_t(cap) * d), g_c(size_t(cap) * d), g_ma(size_t(cap) * d),
        g_ha(size_t(cap) * d), g_hb(size_t(cap) * d), seq_in(size_t(cap) * L) {}
};

}  // namespace stamp

template <Backend B, class T = float, class V = stamp::RecBole>
class STAMP {
 public:
  using BackendType = B;
  using Scalar = T;
  using Variant = V;
  using Activations = stamp::Activations<B, T>;
  using Batch = SeqBatch<B>;

  explicit STAMP(STAMPConfig cfg) : cfg_(cfg) {
    if (cfg_.variant != V::id)
      fail("STAMP: model.variant is '", stamp::variant_name(cfg_.variant), "' but this model type is the '", V::name,
           "' variant (pick the type with stamp::with_variant)");
    cfg_.validate();
    const int N = cfg_.n_items, d = cfg_.hidden;
    off_.item = layout_.add("item_embedding", {N, d});
    if (V::separate_output) off_.out = layout_.add("item_output", {cfg_.scored_rows(), d});
    off_.w1 = layout_.add("w1.weight", {d, d});
    off_.w2 = layout_.add("w2.weight", {d, d});
    off_.w3 = layout_.add("w3.weight", {d, d});
    off_.w0 = layout_.add("w0.weight", {1, d});
    off_.b_a = layout_.add("b_a", {d});
    if (V::mlp) {
      off_.mlp_a_w = layout_.add("mlp_a.weight", {d, d});
      off_.mlp_a_b = layout_.add("mlp_a.bias", {d});
      off_.mlp_b_w = layout_.add("mlp_b.weight", {d, d});
      off_.mlp_b_b = layout_.add("mlp_b.bias", {d});
    }
  }

  const STAMPConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return 0; }
  int max_len() const { return cfg_.max_len; }
  int hidden_size() const { return cfg_.hidden; }
  int n_items() const { return cfg_.n_items; }
  // The table a row's state is scored against: item_embedding (recbole, tied) or item_output.
  // With legacy_stamp_tables it has one row more than there are ids (Q4), scored like the others.
  Scorer scorer() const { return {V::separate_output ? off_.out : off_.item, -1, cfg_.scored_rows(), cfg_.hidden}; }
  bool legacy_pad_zero() const { return cfg_.legacy_pad_zero; }

  // Per row: W1 over L slots, W2, W3 and (recbole) the two MLPs, 2 flops per multiply-add.
  double forward_gemm_flops(int64_t rows) const {
    const double L = cfg_.max_len, d = cfg_.hidden;
    return double(rows) * 2.0 * d * d * (L + 2.0 + (V::mlp ? 2.0 : 0.0));
  }

  // RecBole's and ALKDRec's initialisation: item tables N(0, 0.002) (every row, the pad row
  // too), the attention and MLP weights N(0, 0.05), biases and b_a 0.
  void init(T* params, uint64_t seed) const {
    int tensor = 0;
    for (const auto& p : layout_.infos()) {
      T* w = params + p.offset;
      const bool table = p.name == "item_embedding" || p.name == "item_output";
      const bool bias = p.name == "b_a" || p.name.ends_with(".bias");
      const double sd = table ? 0.002 : 0.05;
      if (bias) std::fill(w, w + p.size, T(0));
      else encoder::init_fill(w, p.size, seed, tensor, [sd](float u1, float u2) { return T(sd * normal_from(u1, u2)); });
      ++tensor;
    }
    // legacy_pad_zero: item 0 (id 1) reads upstream's pad row, which is random and frozen.
    if (cfg_.legacy_pad_zero) std::copy(params + off_.item, params + off_.item + cfg_.hidden, params + off_.item + cfg_.hidden);
  }

  Activations make_activations(int capacity) const { return Activations(capacity, cfg_.max_len, cfg_.hidden); }

  // One state per row (rows, d), valid after forward().
  CPtr<B, T> output(const Activations& a) const { return V::mlp ? a.out.data() : a.m_a.data(); }
  CPtr<B, T> embedding_output(const Activations& a) const { return a.E.data(); }
  CPtr<B, T> block_output(const Activations&, int) const {
    fail("STAMP has no blocks to read");
  }
  CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  // seq (batch, L): windows left-aligned, pads 0 after (backend memory). STAMP has no dropout.
  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int batch, bool train,
               DropoutKey = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    const int L = cfg_.max_len, d = cfg_.hidden, R = batch * L;
    a.batch = batch;
    a.train = train;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(R));
    ops::nonzero_mask<B>(a.valid.data(), CPtr<B, int32_t>(a.seq.data()), int64_t(R));
    ops::length_weights<B>(a.w_mean.data(), CPtr<B, uint8_t>(a.valid.data()), batch, L);
    ops::last_slots<B>(a.last.data(), CPtr<B, uint8_t>(a.valid.data()), batch, L);
    // E (R, d) = table[seq]; m_s (Bn, d) = sum_j E_j / len; x_t (Bn, d) = E at the last real slot.
    layers::embedding_forward<B, T>(a.E.data(), params + off_.item, a.seq.data(), R, d);
    ops::slot_sum<B>(a.m_s.data(), CPtr<B, T>(a.E.data()), CPtr<B, T>(a.w_mean.data()), batch, L, d);
    ops::gather_rows<B>(a.x_t.data(), CPtr<B, T>(a.E.data()), CPtr<B, int32_t>(a.last.data()), batch, d, 1.0);
    // sg (R, d) = sigmoid(E W1^T + c), c (Bn, d) = x_t W2^T + m_s W3^T + b_a on every slot.
    layers::linear_forward<B, T>(a.sg.data(), a.E.data(), d, params + off_.w1, nullptr, R, d, d);
    layers::linear_forward<B, T>(a.c.data(), a.x_t.data(), d, params + off_.w2, params + off_.b_a, batch, d, d);
    B::template gemm<T>(false, true, batch, d, d, T(1), a.m_s.data(), d, params + off_.w3, d, T(1), a.c.data(), d);
    ops::broadcast_slots<B>(a.sg.data(), CPtr<B, T>(a.c.data()), batch, L, d);
    ops::sigmoid_forward<B>(a.sg.data(), CPtr<B, T>(a.sg.data()), int64_t(R) * d);
    // alpha (R) = sg w0^T; m_a (Bn, d) = sum_j alpha_j E_j + m_s.
    layers::linear_forward<B, T>(a.alpha.data(), a.sg.data(), d, params + off_.w0, nullptr, R, d, 1);
    if (V::mask_alpha) ops::mask_rows<B>(a.alpha.data(), CPtr<B, uint8_t>(a.valid.data()), R, 1);
    ops::slot_sum<B>(a.m_a.data(), CPtr<B, T>(a.E.data()), CPtr<B, T>(a.alpha.data()), batch, L, d);
    ops::add<B>(a.m_a.data(), CPtr<B, T>(a.m_a.data()), CPtr<B, T>(a.m_s.data()), int64_t(batch) * d);
    if constexpr (V::mlp) {
      // h = tanh(mlp_a(m_a)) * tanh(mlp_b(x_t)).
      layers::linear_forward<B, T>(a.ha.data(), a.m_a.data(), d, params + off_.mlp_a_w, params + off_.mlp_a_b, batch, d, d);
      ops::tanh_forward<B>(a.ha.data(), CPtr<B, T>(a.ha.data()), int64_t(batch) * d);
      layers::linear_forward<B, T>(a.hb.data(), a.x_t.data(), d, params + off_.mlp_b_w, params + off_.mlp_b_b, batch, d, d);
      ops::tanh_forward<B>(a.hb.data(), CPtr<B, T>(a.hb.data()), int64_t(batch) * d);
      ops::mul<B>(a.out.data(), CPtr<B, T>(a.ha.data()), CPtr<B, T>(a.hb.data()), int64_t(batch) * d, false);
    }
  }

  // Accumulates into grads the gradient of a loss whose gradient w.r.t. output() is d_out (Bn, d).
  void backward(CPtr<B, T> params, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out,
                const Taps<B, T>& taps = {}) const {
    if (!taps.at.empty()) fail("STAMP takes no taps (it has no blocks)");
    const int L = cfg_.max_len, d = cfg_.hidden, Bn = a.batch, R = Bn * L;
    const int64_t nd = int64_t(Bn) * d;
    if constexpr (V::mlp) {
      ops::mul<B>(a.g_ha.data(), d_out, CPtr<B, T>(a.hb.data()), nd, false);
      ops::tanh_backward<B>(a.g_ha.data(), CPtr<B, T>(a.g_ha.data()), CPtr<B, T>(a.ha.data()), nd);
      ops::mul<B>(a.g_hb.data(), d_out, CPtr<B, T>(a.ha.data()), nd, false);
      ops::tanh_backward<B>(a.g_hb.data(), CPtr<B, T>(a.g_hb.data()), CPtr<B, T>(a.hb.data()), nd);
      layers::linear_backward<B, T>(a.g_ma.data(), grads + off_.mlp_a_w, grads + off_.mlp_a_b, a.g_ha.data(), d,
                                    a.m_a.data(), d, params + off_.mlp_a_w, Bn, d, d);
      layers::linear_backward<B, T>(a.g_xt.data(), grads + off_.mlp_b_w, grads + off_.mlp_b_b, a.g_hb.data(), d,
                                    a.x_t.data(), d, params + off_.mlp_b_w, Bn, d, d);
    } else {
      B::template copy<T>(a.g_ma.data(), d_out, size_t(nd));
      ops::fill<B>(a.g_xt.data(), nd, 0.0);
    }
    // m_a = sum_j alpha_j E_j + m_s.
    B::template copy<T>(a.g_ms.data(), a.g_ma.data(), size_t(nd));
    ops::slot_sum_backward<B>(a.g_E.data(), a.g_alpha.data(), CPtr<B, T>(a.g_ma.data()), CPtr<B, T>(a.E.data()),
                              CPtr<B, T>(a.alpha.data()), Bn, L, d, false);
    if (V::mask_alpha) ops::mask_rows<B>(a.g_alpha.data(), CPtr<B, uint8_t>(a.valid.data()), R, 1);
    // alpha = sg w0^T; sg = sigmoid(pre).
    layers::linear_backward<B, T>(a.g_sg.data(), grads + off_.w0, Ptr<B, T>(), a.g_alpha.data(), 1, a.sg.data(), d,
                                  params + off_.w0, R, d, 1);
    ops::sigmoid_backward<B>(a.g_sg.data(), CPtr<B, T>(a.g_sg.data()), CPtr<B, T>(a.sg.data()), int64_t(R) * d);
    // pre = E W1^T + c on every slot; c = x_t W2^T + m_s W3^T + b_a.
    layers::linear_backward<B, T>(a.g_E.data(), grads + off_.w1, Ptr<B, T>(), a.g_sg.data(), d, a.E.data(), d,
                                  params + off_.w1, R, d, d, /*accumulate_dx=*/true);
    ops::slot_sum<B>(a.g_c.data(), CPtr<B, T>(a.g_sg.data()), CPtr<B, T>(), Bn, L, d);
    ops::bias_grad<B>(grads + off_.b_a, CPtr<B, T>(a.g_c.data()), d, Bn, d);
    layers::linear_backward<B, T>(a.g_xt.data(), grads + off_.w2, Ptr<B, T>(), a.g_c.data(), d, a.x_t.data(), d,
                                  params + off_.w2, Bn, d, d, true);
    layers::linear_backward<B, T>(a.g_ms.data(), grads + off_.w3, Ptr<B, T>(), a.g_c.data(), d, a.m_s.data(), d,
                                  params + off_.w3, Bn, d, d, true);
    // m_s = sum_j E_j / len; x_t = E at the last real slot; E = table[seq] (pad lookups blocked).
    ops::slot_sum_backward<B>(a.g_E.data(), Ptr<B, T>(), CPtr<B, T>(a.g_ms.data()), CPtr<B, T>(a.E.data()),
                              CPtr<B, T>(a.w_mean.data()), Bn, L, d, true);
    ops::scatter_add_rows<B>(a.g_E.data(), CPtr<B, T>(a.g_xt.data()), CPtr<B, int32_t>(a.last.data()), Bn, d, false, 1.0);
    layers::embedding_backward<B, T>(grads + off_.item, a.g_E.data(), a.seq.data(), R, d, /*skip_pad=*/true);
    // Rows upstream's padding_idx freezes (item 0 is its pad id): whatever wrote their gradient
    // (the objective writes the output rows' before this runs), they are never trained.
    if (cfg_.legacy_pad_zero) ops::fill<B>(grads + off_.item + d, d, 0.0);
    if (cfg_.legacy_stamp_tables) ops::fill<B>(grads + off_.out + d, d, 0.0);
  }

  // Evaluation queries: each case's last min(length, L) history items as one row; out (rows, d).
  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows, Ptr<B, T> out) const {
    session_query(*this, params, a, cases, n, rows, out);
  }

  SessionBatching batching(int = 0) const { return SessionBatching(cfg_.max_len, cfg_.rows); }

 private:
  struct Offsets {
    size_t item = 0, out = 0, w1 = 0, w2 = 0, w3 = 0, w0 = 0, b_a = 0, mlp_a_w = 0, mlp_a_b = 0, mlp_b_w = 0,
           mlp_b_b = 0;
  };
  STAMPConfig cfg_;
  ParamLayout layout_;
  Offsets off_;
};

}  // namespace recdistill
