// recdistill/backbones/attenmixer.hpp: Atten-Mixer (Zhang et al., WSDM 2023), a session read-out
// by multi-level intent queries over the window's items, on the engine's contracts
// (specs/backbones.md §6, gradients §7):
//
//   AttenMixer<B, T, attenmixer::Official>  `official`: the authors' model (Peiyance/Atten-Mixer-
//                                           torch src/models/CCSGNN.py, §6.1): one item table E,
//                                           per-node dropout, scores 16 z . dropout(n(E_1..))^T
//                                           trained by full-softmax CE
//                                           (losses/attenmixer_official_ce.hpp); its Scorer has
//                                           normalise_rows, so evaluation ranks by z . n(E_i)
//   AttenMixer<B, T, attenmixer::Alkdrec>   `alkdrec`: ALKDRec's AttMix (kk97111/ALKDRec
//                                           AttMix.py), an input table LI and an output table
//                                           item_emb whose raw rows score the session (§6.2)
//
// One row is a window of up to L items left-aligned, pads (id 0) after them, m_j = 1 on real
// slots, len the row's real length. Forward:
//   S  = dropout(n(n(LI[seq] * m)))          alkdrec: n(x) = x / (||x|| + 1e-12) per slot, applied
//                                            twice as the reference does; dropout per element
//                                            (site 0)
//   S  = n(n(E[seq] * m) * D)                official: the unique items' normalised rows dropped
//                                            out with ONE mask per (row, item id) (D keyed by
//                                            (batch row, item id, channel), site 0, op
//                                            dropout_by_id_forward: repeated items share it),
//                                            gathered to slots, times m, re-normalised (pads 0)
//   c_i = [S_{len-1}; S_{len-2}; ...; S_{len-1-i}] for i < K; a slot before 0 reads a zero
//        vector (the reference's clamp to -1 reads its last column, a pad whenever it fires
//        as long as K <= L, ALKDRec's K = L = 10; with K > L and a full row it would read the
//        last item instead, which this model does not copy; the official rows are padded to
//        len_max + 1, so there it always reads a pad)
//   Qh = stack_i linear_q[i](c_i) (B, K, d), normalised along K per channel (+1e-12)
//   x_t = S_{len-1}
//   a  = LN_a(read-out(Qh W0^T + b0, S W1^T + b1, S W2^T + b2))   (§6.3, LN eps 1e-8; the
//        read-out's A3 has dropout, site 1)
//   z  = n(W_T [a; x_t] + b_T)              output(): (rows, d); alkdrec scores it against
//                                            item_emb's raw rows, official against n(E) (x16
//                                            and with dropout on the rows in training, site 2,
//                                            in its objective)
//
// Parameters, in flat-buffer order, under AttMix's state_dict names (its unused
// mattn.linear_three/four/five are left out; K = model.intent_levels):
//   LI.weight (N, d)                        alkdrec: input table (row 0 random, read only at pads,
//                                           where the mask zeroes it: it never gets a gradient)
//   item_emb.weight (N, d)                  alkdrec: output table (the Scorer's)
//   embedding.weight (N, d)                 official, instead of the two: the one table E, read
//                                           by the lookups and (normalised) by the Scorer; row 0
//                                           is the pad, masked at lookups and never scored
//   mattn.linear_zero.weight (d, d), .bias  W0, queries
//   mattn.linear_one.weight (d, d), .bias   W1, keys
//   mattn.linear_two.weight (d, d), .bias   W2, values
//   mattn.last_layernorm.weight (d), .bias  LN_a
//   linear_q.{i}.weight ((d, (i+1) d)), linear_q.{i}.bias (d), i = 0..K-1
//   linear_transform.weight (d, 2d), .bias  W_T
// The official names are the AttMix ones (ALKDRec's module copies the official one) with the
// official single table named `embedding.weight`; they were not checked against a state_dict of
// CCSGNN itself.
// Initialisation: every tensor U(+-1/sqrt(d)), the layer norm and the pad row included (§6.1,
// §6.2).
//
// Its output() is one state per row, (rows, d); batches carry one target per row
// (backbones/session_batching.hpp). It has no blocks and takes no taps.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
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

enum class AttenMixerVariant { official, alkdrec };
inline constexpr std::array<std::pair<std::string_view, AttenMixerVariant>, 2> enum_names(AttenMixerVariant) {
  return {{{"official", AttenMixerVariant::official}, {"alkdrec", AttenMixerVariant::alkdrec}}};
}
inline constexpr std::array<std::pair<std::string_view, HeadSplit>, 2> enum_names(HeadSplit) {
  return {{{"official_reshape", HeadSplit::official_reshape}, {"standard", HeadSplit::standard}}};
}

struct AttenMixerConfig : SessionDims {
  AttenMixerVariant variant = AttenMixerVariant::official;
  int heads = 8;               // H (official 8, alkdrec 2)
  int intent_levels = 7;       // K (official 7, alkdrec 10)
  double lp_exponent = 4;      // p (official 4, alkdrec 1: a plain sum over K)
  double dropout = 0.1;
  HeadSplit head_split = HeadSplit::official_reshape;
  // Upstream ALKDRec's prediction step ranks with AttMix's forward-pass scores in train mode
  // (spec §3, §9 Q5): dropout on, z against the dropped-out L2-normalised output rows. true makes
  // the queries (evaluation, recommend) do that; `recdistill alkd` sets it for its prediction
  // step alone under alkd.attmix_prediction_forward_scores. alkdrec only.
  bool train_mode_queries = false;
  uint64_t query_seed = 0;  // not a key: the run's seed (AttenMixerFamily::make), keys those masks

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(variant, Key("model", "variant", "which reference Atten-Mixer to match (specs/backbones.md §6): `official` "
                                       "(the authors': one table, scores 16 z . n(E), full-softmax CE) or `alkdrec` "
                                       "(ALKDRec's AttMix)")
                   .weights().spelling("attenmixer.flavor").preset("upstream_compat", "alkdrec"));
    v(heads, Key("model", "num_heads", "read-out heads H (d must be a multiple)")
                 .range(1, 1024).weights().derived_default("8 (official), 2 (alkdrec)"));
    v(intent_levels, Key("model", "intent_levels", "intent levels K: query i reads the last i + 1 items")
                         .range(1, 1024).weights().derived_default("7 (official), 10 (alkdrec)"));
    v(lp_exponent, Key("model", "lp_exponent", "LP pooling exponent p over the K levels (1: a sum)")
                       .range(1, 64).weights().derived_default("4 (official), 1 (alkdrec)"));
    v(dropout, Key("model", "dropout_rate", "dropout of the slot embeddings and of the read-out weights")
                   .range_open(0, 1).resume());
    v(head_split, Key("model", "head_split", "`official_reshape`: both references' row-major reinterpretation of "
                                             "queries and keys; `standard`: channel blocks (equal at H = 1)")
                      .weights().spelling("attenmixer.head_split"));
    v(train_mode_queries, Key("model", "train_mode_queries", "alkdrec: queries (evaluation, recommend) run the "
                                                             "train-mode forward pass and score z against the "
                                                             "dropped-out, L2-normalised output rows, as upstream's "
                                                             "prediction step (spec §9 Q5; `recdistill alkd` sets it "
                                                             "for that step under alkd.attmix_prediction_forward_scores)")
                              .resume());
    SessionDims::keys(v);
  }
  template <class Given>
  void resolve_defaults(const Given& given) {
    const bool alkd = variant == AttenMixerVariant::alkdrec;
    resolve_session_defaults(given, alkd);
    if (!given("model.num_heads")) heads = alkd ? 2 : 8;
    if (!given("model.intent_levels")) intent_levels = alkd ? 10 : 7;
    if (!given("model.lp_exponent")) lp_exponent = alkd ? 1 : 4;
    if (!alkd && !given("model.hidden_units")) hidden = 256;
  }
  // The upstream_compat preset's switch, off for `official` unless the user wrote it.
  template <class UserGiven>
  void drop_preset_quirks(const UserGiven& user_given) {
    drop_preset_legacy_pad_zero(user_given, variant == AttenMixerVariant::alkdrec);
  }
  void validate() const {
    SessionDims::validate();
    if (heads < 1 || hidden % heads != 0)
      fail("model.num_heads: ", heads, " heads do not divide model.hidden_units = ", hidden);
    if (intent_levels < 1) fail("model.intent_levels: expected >= 1, found ", intent_levels);
    if (!(lp_exponent >= 1)) fail("model.lp_exponent: expected >= 1, found ", lp_exponent);
    if (!(dropout >= 0 && dropout < 1)) fail("model.dropout_rate: expected in [0, 1), found ", dropout);
    validate_legacy_pad_zero(variant == AttenMixerVariant::alkdrec, "official");
    if (train_mode_queries && variant != AttenMixerVariant::alkdrec)
      fail("model.train_mode_queries: upstream's train-mode prediction scores belong to ALKDRec's AttMix "
           "(model.variant alkdrec), not to 'official'");
  }
};

namespace attenmixer {

struct Official {
  static constexpr AttenMixerVariant id = AttenMixerVariant::official;
  static constexpr const char* name = "official";
};
struct Alkdrec {
  static constexpr AttenMixerVariant id = AttenMixerVariant::alkdrec;
  static constexpr const char* name = "alkdrec";
};

inline const char* variant_name(AttenMixerVariant v) { return v == AttenMixerVariant::alkdrec ? "alkdrec" : "official"; }

template <class F>
decltype(auto) with_variant(AttenMixerVariant v, F&& f) {
  if (v == AttenMixerVariant::official) return f.template operator()<Official>();
  return f.template operator()<Alkdrec>();
}

inline constexpr double kNormEps = 1e-12;  // n(x) = x / (||x|| + eps), spec §6
inline constexpr double kLnEps = 1e-8;     // LN_a
inline constexpr uint32_t kSiteSlots = 0, kSiteReadout = 1;
inline constexpr uint32_t kSiteItems = 2;  // official: the dropout of the normalised item rows (its objective)
// train_mode_queries: the epoch of the query masks' keys, out of the range of training's epochs.
inline constexpr uint32_t kQueryEpoch = 0xFFFFFFFFu;
inline constexpr double kScoreScale = 16;  // official: scores = 16 z . E^ (spec §6.1 step 8)

// Every buffer of one forward and backward pass over up to `capacity` rows (R = cap L).
template <class B, class T>
struct Activations {
  int capacity = 0, batch = 0;
  bool train = false;
  Buffer<B, int32_t> seq, idx;     // (cap, L) ids; (cap, K) 1 + slot of each intent item, 0 = none
  Buffer<B, uint8_t> valid;        // (cap, L)
  Buffer<B, T> S0, S1, S2, n1, n2; // (R, d) masked lookups, once and twice normalised; norms (R)
  Buffer<B, T> Spad, Sdrop;        // (1 + R, d): zero row 0, then S (after dropout); mask (R, d)
  Buffer<B, T> Cg;                 // (cap, K, d) the intent items, newest first (zero rows past 0)
  Buffer<B, T> Qraw, Qh, nq;       // (cap, K, d) linear_q outputs, normalised along K; norms (cap, d)
  Buffer<B, T> Qp, Kp, Vp;         // (cap K, d), (R, d), (R, d)
  Buffer<B, T> G, A1, P;           // (cap, H, K, L); P: backward scratch
  Buffer<B, T> A2, A3, Adrop;      // (cap, H, L)
  Buffer<B, T> att, a, a_xhat, a_rstd;  // (cap, d) read-out, LN_a output; LN saves
  Buffer<B, T> zr, z, nz;          // (cap, d) W_T output, normalised; norms (cap)
  Buffer<B, T> g_z, g_a, g_att, g_Qp, g_Kp, g_Vp, g_Qh, g_Cg, g_Spad;
  std::vector<int32_t> seq_host;   // query staging
  Buffer<B, int32_t> seq_in;
  Activations() = default;
  Activations(int cap, int L, int K, int H, int d) : capacity(cap) {
    const size_t R = size_t(cap) * L, Q = size_t(cap) * K;
    seq = Buffer<B, int32_t>(R);
    idx = Buffer<B, int32_t>(Q);
    valid = Buffer<B, uint8_t>(R);
    for (auto* b : {&S0, &S1, &S2, &Sdrop, &Kp, &Vp, &g_Kp, &g_Vp}) *b = Buffer<B, T>(R * d);
    n1 = Buffer<B, T>(R);
    n2 = Buffer<B, T>(R);
    Spad = Buffer<B, T>((R + 1) * d);
    g_Spad = Buffer<B, T>((R + 1) * d);
    for (auto* b : {&Cg, &Qraw, &Qh, &Qp, &g_Qp, &g_Qh, &g_Cg}) *b = Buffer<B, T>(Q * d);
    nq = Buffer<B, T>(size_t(cap) * d);
    for (auto* b : {&G, &A1, &P}) *b = Buffer<B, T>(size_t(cap) * H * K * L);
    for (auto* b : {&A2, &A3, &Adrop}) *b = Buffer<B, T>(size_t(cap) * H * L);
    for (auto* b : {&att, &a, &a_xhat, &zr, &z, &g_z, &g_a, &g_att}) *b = Buffer<B, T>(size_t(cap) * d);
    a_rstd = Buffer<B, T>(size_t(cap));
    nz = Buffer<B, T>(size_t(cap));
    seq_in = Buffer<B, int32_t>(R);
  }
};

}  // namespace attenmixer

template <Backend B, class T = float, class V = attenmixer::Alkdrec>
class AttenMixer {
 public:
  using BackendType = B;
  using Scalar = T;
  using Variant = V;
  using Activations = attenmixer::Activations<B, T>;
  using Batch = SeqBatch<B>;
  static constexpr bool kOfficial = V::id == AttenMixerVariant::official;

  explicit AttenMixer(AttenMixerConfig cfg) : cfg_(cfg) {
    if (cfg_.variant != V::id)
      fail("Atten-Mixer: model.variant is '", attenmixer::variant_name(cfg_.variant), "' but this model type is the '",
           V::name, "' variant (pick the type with attenmixer::with_variant)");
    cfg_.validate();
    const int N = cfg_.n_items, d = cfg_.hidden, K = cfg_.intent_levels;
    if constexpr (kOfficial) {
      off_.li = off_.out = layout_.add("embedding.weight", {N, d});  // one table: lookups and scores
    } else {
      off_.li = layout_.add("LI.weight", {N, d});
      off_.out = layout_.add("item_emb.weight", {N, d});
    }
    off_.w0 = layout_.add("mattn.linear_zero.weight", {d, d});
    off_.b0 = layout_.add("mattn.linear_zero.bias", {d});
    off_.w1 = layout_.add("mattn.linear_one.weight", {d, d});
    off_.b1 = layout_.add("mattn.linear_one.bias", {d});
    off_.w2 = layout_.add("mattn.linear_two.weight", {d, d});
    off_.b2 = layout_.add("mattn.linear_two.bias", {d});
    off_.ln_w = layout_.add("mattn.last_layernorm.weight", {d});
    off_.ln_b = layout_.add("mattn.last_layernorm.bias", {d});
    for (int i = 0; i < K; ++i) {
      off_.q_w.push_back(layout_.add("linear_q." + std::to_string(i) + ".weight", {d, (i + 1) * d}));
      off_.q_b.push_back(layout_.add("linear_q." + std::to_string(i) + ".bias", {d}));
    }
    off_.wt = layout_.add("linear_transform.weight", {d, 2 * d});
    off_.bt = layout_.add("linear_transform.bias", {d});
  }

  const AttenMixerConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return 0; }
  int max_len() const { return cfg_.max_len; }
  int hidden_size() const { return cfg_.hidden; }
  int n_items() const { return cfg_.n_items; }
  // alkdrec: the session state z meets the raw rows of item_emb (§6.2 point 5). official: the
  // L2-normalised rows of E (§6.1 step 7; the factor 16 and the dropout of those rows are the
  // training objective's, losses/attenmixer_official_ce.hpp: neither changes a rank).
  // train_mode_queries (alkdrec, Q5): n(E_out) with dropout (site 2), one mask per scoring pass.
  Scorer scorer() const {
    if (!cfg_.train_mode_queries) return {off_.out, -1, cfg_.n_items, cfg_.hidden, kOfficial};
    return {off_.out, -1, cfg_.n_items, cfg_.hidden, true, cfg_.dropout,
            DropoutKey{cfg_.query_seed, attenmixer::kQueryEpoch, 0}, attenmixer::kSiteItems};
  }
  bool legacy_pad_zero() const { return cfg_.legacy_pad_zero; }

  // Per row: linear_q (K (K + 1) / 2 d^2), W0 (K d^2), W1 and W2 (2 L d^2), W_T (2 d^2), and the
  // read-out's two products (2 K L d); 2 flops per multiply-add.
  double forward_gemm_flops(int64_t rows) const {
    const double L = cfg_.max_len, d = cfg_.hidden, K = cfg_.intent_levels;
    return double(rows) * 2.0 * (d * d * (K * (K + 1) / 2 + K + 2 * L + 2) + 2 * K * L * d);
  }

  // AttMix.reset_parameters: every tensor U(-1/sqrt(d), 1/sqrt(d)), LN and pad row included.
  void init(T* params, uint64_t seed) const {
    const double bound = 1.0 / std::sqrt(double(cfg_.hidden));
    int tensor = 0;
    for (const auto& p : layout_.infos())
      encoder::init_fill(params + p.offset, p.size, seed, tensor++,
                         [bound](float u1, float) { return T(bound * (2.0 * double(u1) - 1.0)); });
    // legacy_pad_zero: item 0 (id 1) reads upstream's pad row, random and frozen (Q1).
    if (cfg_.legacy_pad_zero) std::copy(params + off_.li, params + off_.li + cfg_.hidden, params + off_.li + cfg_.hidden);
  }

  Activations make_activations(int capacity) const {
    return Activations(capacity, cfg_.max_len, cfg_.intent_levels, cfg_.heads, cfg_.hidden);
  }

  CPtr<B, T> output(const Activations& a) const { return a.z.data(); }
  CPtr<B, T> embedding_output(const Activations& a) const { return CPtr<B, T>(a.Spad.data()) + cfg_.hidden; }
  CPtr<B, T> block_output(const Activations&, int) const { fail("Atten-Mixer has no blocks to read"); }
  CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  // seq (batch, L): windows left-aligned, pads 0 after (backend memory). Dropout (train only)
  // is keyed by `key`: the slot embeddings at site 0, the read-out weights at site 1, their rows
  // counted from the global batch row key.first_seq (data-parallel ranks draw one process's masks).
  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int batch, bool train,
               DropoutKey key = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    const int L = cfg_.max_len, d = cfg_.hidden, K = cfg_.intent_levels, R = batch * L;
    const double p = train ? cfg_.dropout : 0.0;
    a.batch = batch;
    a.train = train;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(R));
    ops::nonzero_mask<B>(a.valid.data(), CPtr<B, int32_t>(a.seq.data()), int64_t(R));
    // alkdrec: S = dropout(n(n(LI[seq] * m))); official: S = n(dropout_node(n(E[seq] * m))), the
    // dropout mask keyed by (row, item id, channel) so repeated items share it. S is kept at row
    // 1.. of Spad behind a zero row 0.
    layers::embedding_forward<B, T>(a.S0.data(), params + off_.li, a.seq.data(), R, d);
    ops::mask_rows<B>(a.S0.data(), CPtr<B, uint8_t>(a.valid.data()), R, d);
    ops::l2_normalise_axis_forward<B>(a.S1.data(), a.n1.data(), CPtr<B, T>(a.S0.data()), R, d, 1, attenmixer::kNormEps);
    ops::fill<B>(a.Spad.data(), int64_t(d), 0.0);
    const Ptr<B, T> S = a.Spad.data() + d;
    if constexpr (kOfficial) {
      if (p > 0 && (int64_t(key.first_seq) + batch) * ((d + 3) / 4) >= (int64_t(1) << 20))
        fail("Atten-Mixer official: a batch of ", int64_t(key.first_seq) + batch, " rows of ", d,
             " channels is too large for the per-item dropout's counter (rows x ceil(d / 4) must stay below 2^20)");
      ops::dropout_by_id_forward<B>(a.S2.data(), a.Sdrop.data(), CPtr<B, T>(a.S1.data()), CPtr<B, int32_t>(a.seq.data()),
                                    batch, L, d, p, key, attenmixer::kSiteSlots);
      ops::l2_normalise_axis_forward<B>(S, a.n2.data(), CPtr<B, T>(a.S2.data()), R, d, 1, attenmixer::kNormEps);
    } else {
      ops::l2_normalise_axis_forward<B>(a.S2.data(), a.n2.data(), CPtr<B, T>(a.S1.data()), R, d, 1,
                                        attenmixer::kNormEps);
      layers::dropout_forward<B, T>(S, a.Sdrop.data(), a.S2.data(), R, d, p, key, attenmixer::kSiteSlots,
                                    key.first_seq * uint32_t(L));
    }
    // Cg (Bn, K, d): row k = S at slot len - 1 - k (zero before slot 0); x_t = Cg[:, 0].
    ops::intent_slots<B>(a.idx.data(), CPtr<B, uint8_t>(a.valid.data()), batch, L, K);
    ops::gather_rows<B>(a.Cg.data(), CPtr<B, T>(a.Spad.data()), CPtr<B, int32_t>(a.idx.data()), batch * K, d, 1.0);
    // Qraw[:, i] = linear_q[i](Cg[:, 0..i] flattened); Qh = Qraw normalised along K.
    for (int i = 0; i < K; ++i)
      layers::linear_forward<B, T>(a.Qraw.data() + int64_t(i) * d, a.Cg.data(), K * d, params + off_.q_w[size_t(i)],
                                   params + off_.q_b[size_t(i)], batch, (i + 1) * d, d, K * d);
    ops::l2_normalise_axis_forward<B>(a.Qh.data(), a.nq.data(), CPtr<B, T>(a.Qraw.data()), batch, K, d,
                                      attenmixer::kNormEps);
    // The read-out over Q' = Qh W0^T + b0, K' = S W1^T + b1, V' = S W2^T + b2, then LN_a.
    layers::linear_forward<B, T>(a.Qp.data(), a.Qh.data(), d, params + off_.w0, params + off_.b0, batch * K, d, d);
    layers::linear_forward<B, T>(a.Kp.data(), S, d, params + off_.w1, params + off_.b1, R, d, d);
    layers::linear_forward<B, T>(a.Vp.data(), S, d, params + off_.w2, params + off_.b2, R, d, d);
    ops::mixer_attention_forward<B>(a.att.data(), a.G.data(), a.A1.data(), a.A2.data(), a.A3.data(), a.Adrop.data(),
                                    CPtr<B, T>(a.Qp.data()), CPtr<B, T>(a.Kp.data()), CPtr<B, T>(a.Vp.data()),
                                    CPtr<B, uint8_t>(a.valid.data()), shape(batch), cfg_.head_split,
                                    cfg_.lp_exponent, p, key, attenmixer::kSiteReadout);
    layers::layer_norm_forward<B, T>(a.a.data(), a.a_xhat.data(), a.a_rstd.data(), a.att.data(), params + off_.ln_w,
                                     params + off_.ln_b, batch, d, attenmixer::kLnEps);
    // z = n(W_T [a; x_t] + b_T): W_T's first d columns meet a, the last d x_t.
    B::template gemm<T>(false, true, batch, d, d, T(1), a.a.data(), d, params + off_.wt, 2 * d, T(0), a.zr.data(), d);
    B::template gemm<T>(false, true, batch, d, d, T(1), a.Cg.data(), K * d, params + off_.wt + d, 2 * d, T(1),
                        a.zr.data(), d);
    ops::add_bias<B>(a.zr.data(), d, params + off_.bt, batch, d);
    ops::l2_normalise_axis_forward<B>(a.z.data(), a.nz.data(), CPtr<B, T>(a.zr.data()), batch, d, 1,
                                      attenmixer::kNormEps);
  }

  // Accumulates into grads the gradient of a loss whose gradient w.r.t. output() is d_out (Bn, d).
  void backward(CPtr<B, T> params, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out,
                const Taps<B, T>& taps = {}) const {
    if (!taps.at.empty()) fail("Atten-Mixer takes no taps (it has no blocks)");
    const int L = cfg_.max_len, d = cfg_.hidden, K = cfg_.intent_levels, Bn = a.batch, R = Bn * L;
    const CPtr<B, T> S = CPtr<B, T>(a.Spad.data()) + d;
    const Ptr<B, T> g_S = a.g_Spad.data() + d;
    // z = n(zr); zr = [a; x_t] W_T^T + b_T.
    ops::l2_normalise_axis_backward<B>(a.g_z.data(), d_out, CPtr<B, T>(a.z.data()), CPtr<B, T>(a.nz.data()), Bn, d, 1,
                                       attenmixer::kNormEps);
    B::template gemm<T>(true, false, d, d, Bn, T(1), a.g_z.data(), d, a.a.data(), d, T(1), grads + off_.wt, 2 * d);
    B::template gemm<T>(true, false, d, d, Bn, T(1), a.g_z.data(), d, a.Cg.data(), K * d, T(1), grads + off_.wt + d,
                        2 * d);
    ops::bias_grad<B>(grads + off_.bt, CPtr<B, T>(a.g_z.data()), d, Bn, d);
    B::template gemm<T>(false, false, Bn, d, d, T(1), a.g_z.data(), d, params + off_.wt, 2 * d, T(0), a.g_a.data(), d);
    ops::fill<B>(a.g_Cg.data(), int64_t(Bn) * K * d, 0.0);
    B::template gemm<T>(false, false, Bn, d, d, T(1), a.g_z.data(), d, params + off_.wt + d, 2 * d, T(1),
                        a.g_Cg.data(), K * d);
    // LN_a, the read-out, and its three projections.
    layers::layer_norm_backward<B, T>(a.g_att.data(), grads + off_.ln_w, grads + off_.ln_b, a.g_a.data(),
                                      a.a_xhat.data(), a.a_rstd.data(), params + off_.ln_w, Bn, d);
    ops::mixer_attention_backward<B>(a.g_Qp.data(), a.g_Kp.data(), a.g_Vp.data(), a.P.data(),
                                     CPtr<B, T>(a.g_att.data()), CPtr<B, T>(a.G.data()), CPtr<B, T>(a.A1.data()),
                                     CPtr<B, T>(a.A2.data()), CPtr<B, T>(a.A3.data()), CPtr<B, T>(a.Adrop.data()),
                                     CPtr<B, T>(a.Qp.data()), CPtr<B, T>(a.Kp.data()), CPtr<B, T>(a.Vp.data()),
                                     CPtr<B, uint8_t>(a.valid.data()), shape(Bn), cfg_.head_split, cfg_.lp_exponent);
    layers::linear_backward<B, T>(a.g_Qh.data(), grads + off_.w0, grads + off_.b0, a.g_Qp.data(), d, a.Qh.data(), d,
                                  params + off_.w0, Bn * K, d, d);
    layers::linear_backward<B, T>(g_S, grads + off_.w1, grads + off_.b1, a.g_Kp.data(), d, S, d, params + off_.w1, R,
                                  d, d);
    layers::linear_backward<B, T>(g_S, grads + off_.w2, grads + off_.b2, a.g_Vp.data(), d, S, d, params + off_.w2, R,
                                  d, d, /*accumulate_dx=*/true);
    // Qh = Qraw normalised along K; Qraw[:, i] = linear_q[i](Cg[:, 0..i]).
    ops::l2_normalise_axis_backward<B>(a.g_Qh.data(), CPtr<B, T>(a.g_Qh.data()), CPtr<B, T>(a.Qh.data()),
                                       CPtr<B, T>(a.nq.data()), Bn, K, d, attenmixer::kNormEps);
    for (int i = 0; i < K; ++i)
      layers::linear_backward<B, T>(a.g_Cg.data(), grads + off_.q_w[size_t(i)], grads + off_.q_b[size_t(i)],
                                    a.g_Qh.data() + int64_t(i) * d, K * d, a.Cg.data(), K * d,
                                    params + off_.q_w[size_t(i)], Bn, (i + 1) * d, d, /*accumulate_dx=*/true, K * d);
    // Cg = Spad[idx] (the zero row 0 takes no gradient); S = dropout(n(n(LI[seq] * m))) (alkdrec)
    // or n(dropout_node(n(E[seq] * m))) (official).
    ops::scatter_add_rows<B>(a.g_Spad.data(), CPtr<B, T>(a.g_Cg.data()), CPtr<B, int32_t>(a.idx.data()), Bn * K, d,
                             /*skip_pad=*/true, 1.0);
    if constexpr (kOfficial) {
      ops::l2_normalise_axis_backward<B>(g_S, CPtr<B, T>(g_S), S, CPtr<B, T>(a.n2.data()), R, d, 1,
                                         attenmixer::kNormEps);
      layers::dropout_backward<B, T>(g_S, CPtr<B, T>(g_S), a.Sdrop.data(), int64_t(R) * d);
    } else {
      layers::dropout_backward<B, T>(g_S, CPtr<B, T>(g_S), a.Sdrop.data(), int64_t(R) * d);
      ops::l2_normalise_axis_backward<B>(g_S, CPtr<B, T>(g_S), CPtr<B, T>(a.S2.data()), CPtr<B, T>(a.n2.data()), R, d,
                                         1, attenmixer::kNormEps);
    }
    ops::l2_normalise_axis_backward<B>(g_S, CPtr<B, T>(g_S), CPtr<B, T>(a.S1.data()), CPtr<B, T>(a.n1.data()), R, d, 1,
                                       attenmixer::kNormEps);
    ops::mask_rows<B>(g_S, CPtr<B, uint8_t>(a.valid.data()), R, d);
    layers::embedding_backward<B, T>(grads + off_.li, CPtr<B, T>(g_S), a.seq.data(), R, d, /*skip_pad=*/true);
    if (cfg_.legacy_pad_zero) ops::fill<B>(grads + off_.li + d, d, 0.0);  // upstream's padding_idx row (Q1)
  }

  // Evaluation queries: each case's last min(length, L) history items as one row; out (rows, d).
  // train_mode_queries: in train mode, the masks keyed by the run's seed and the block's first
  // case (so each block of a pass draws its own).
  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows, Ptr<B, T> out) const {
    if (!cfg_.train_mode_queries) return session_query(*this, params, a, cases, n, rows, out);
    const uint32_t block = n > 0 ? uint32_t(cases[0].user) : 0;
    session_query(*this, params, a, cases, n, rows, out, true, DropoutKey{cfg_.query_seed, attenmixer::kQueryEpoch, block});
  }

  SessionBatching batching(int = 0) const { return SessionBatching(cfg_.max_len, cfg_.rows); }

 private:
  MixerAttentionShape shape(int batch) const {
    return {batch, cfg_.intent_levels, cfg_.max_len, cfg_.heads, cfg_.hidden / cfg_.heads};
  }
  struct Offsets {
    size_t li = 0, out = 0, w0 = 0, b0 = 0, w1 = 0, b1 = 0, w2 = 0, b2 = 0, ln_w = 0, ln_b = 0, wt = 0, bt = 0;
    std::vector<size_t> q_w, q_b;
  };
  AttenMixerConfig cfg_;
  ParamLayout layout_;
  Offsets off_;
};

}  // namespace recdistill
