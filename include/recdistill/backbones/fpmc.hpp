// recdistill/backbones/fpmc.hpp: FPMC (Rendle et al., WWW 2010) on the engine's contracts, in
// two variants (specs/backbones.md §4):
//
//   FPMCRecBole<B>   `recbole` (the registry default for config files): RecBole 1.2.1's FPMC, the
//                    paper model with basket size 1, a user factor and a factorised last-item term,
//                      score(u, i) = UI[u] . IU[i] + LI[last] . IL[i]
//                    trained with RecBole's BPR (one uniform negative, gamma 1e-10,
//                    losses/recbole_bpr.hpp), its only loss
//   FPMCSession<B>   `session`: ALKDRec's, no user factor and no last-item term, the session
//                    state the mean of its window's input embeddings,
//                      u = sum_{j<L} LI[seq_j] / len   (pads read row 0 of LI, zero and never trained)
//                    scored against a separate output table: score(i) = u . E_out[i]
//
// Both give one state per row, (rows, dim), and batches carry one target per row
// (backbones/session_batching.hpp). Neither has blocks nor takes taps.
//
// FPMCRecBole's design:
//   Rows. Its row is (user, last item) -> target. UserLastItemBatching lays it out as seq =
//     [user id, last item] (max_len() = 2: slot 0 the user, slot 1 the item), one row per prefix
//     of each training sequence (RecBole's sequential data; `last`: one per sequence); query()
//     builds the same from eval::Case::user and the case's last history item. The user ids are
//     the split's (data::Split::train is indexed by them, so U = its size = the users + the pad).
//   Scoring through the one Scorer table. The engine scores a query state q against ONE (N, dim)
//     table. So the state is q = [UI[u], LI[last]] (2d) and the item table `item_factors` is
//     (N, 2d) with row i = [IU[i], IL[i]]: q . row_i is exactly RecBole's two products summed,
//     so training (the objective reads the scorer), evaluation and top-K lists score through
//     the Scorer unchanged. hidden_size() is that state width, 2d; model.hidden_units is d.
//   Tensors. Ours: UI_emb.weight (U, d), LI_emb.weight (N, d), item_factors (N, 2d) holding
//     RecBole's IU_emb.weight and IL_emb.weight interleaved by row. The parameter count is
//     RecBole's, (U + 3N) d (383,552 on ml-100k). RecBole's state_dict (four tensors) is
//     reference_tensors(); to_reference / from_reference move values between the two layouts,
//     and backbones/session_state_dict.hpp uses them for safetensors that RecBole loads with
//     load_state_dict(strict=True) (a tensor-to-tensor name map cannot split item_factors).
//   Init. Xavier-normal on each of RecBole's four tables, std sqrt(2 / (rows + d)), every row:
//     RecBole's _init_weights re-draws LI's padding_idx row too, so it is random; its lookup
//     gradient is blocked (padding_idx), and slot 1 always holds a real item anyway.
//   Limits. A case must name its user: query() refuses a user outside 1..U-1 and a case without
//     a target (the plugin's recommend() passes anonymous histories with the history's index
//     as the user, which this model cannot score: the spec's pitfall that `session` exists
//     for). eval.exclude `window` cuts histories to max_len() = 2 items, one more than the
//     model reads; RecBole's protocol excludes nothing (`none`).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
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

// FPMC's variants (specs/backbones.md §4, §0.2).
enum class FPMCVariant { recbole, session };
inline constexpr std::array<std::pair<std::string_view, FPMCVariant>, 2> enum_names(FPMCVariant) {
  return {{{"recbole", FPMCVariant::recbole}, {"session", FPMCVariant::session}}};
}

// FPMC's training objectives (specs/backbones.md §1): `bpr` RecBole's (one uniform negative per
// row, gamma 1e-10), `inbatch_bpr` ALKDRec's, `ce` the full softmax.
enum class FPMCLoss { bpr, inbatch_bpr, ce, weighted_pairwise };
inline constexpr std::array<std::pair<std::string_view, FPMCLoss>, 4> enum_names(FPMCLoss) {
  return {{{"bpr", FPMCLoss::bpr}, {"inbatch_bpr", FPMCLoss::inbatch_bpr}, {"ce", FPMCLoss::ce},
           {"weighted_pairwise", FPMCLoss::weighted_pairwise}}};
}

// FPMC's settings. Defaults: a config file without model.variant gets `recbole` (the spec's
// registry default, filled by resolve_defaults; `compat: upstream_compat` gives `session`); an
// FPMCConfig built in code keeps `session` and its ALKDRec defaults, as before `recbole` existed.
// FPMC declares its own keys (not SessionDims::keys) because its training.loss has the value
// `bpr`, which SessionLoss lacks: `loss` below hides SessionDims::loss, which FPMC never reads
// (losses/fpmc_objective.hpp reads this one).
struct FPMCConfig : SessionDims {
  FPMCVariant variant = FPMCVariant::session;
  int n_users = 0;                         // U: user ids including the pad id 0 (`recbole` only)
  FPMCLoss loss = FPMCLoss::inbatch_bpr;   // hides SessionDims::loss

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(variant, Key("model", "variant", "which reference FPMC to match: `recbole` (RecBole's user-based FPMC, "
                                       "specs/backbones.md §4.1) or `session` (ALKDRec's, §4.2)")
                   .weights().derived_default("`recbole`").preset("upstream_compat", "session"));
    v(n_users, Key("model", "n_users", "`recbole`: rows of the user table U, the data's users plus the pad id 0 "
                                       "(ml-100k: 944); training checks it against the data. Not used by `session`")
                   .range(0, 1e8).weights());
    v(max_len, Key("model", "maxlen", "window length L: a row reads the last L items before its target "
                                      "(`recbole` reads the last item alone: L must be 1)")
                   .range(1, 4096).weights().derived_default("1 (recbole), 10 (session)"));
    v(hidden, Key("model", "hidden_units", "hidden size d: each table's width (ALKDRec: teacher 100, student 10)")
                  .range(1, 8192).weights());
    v(rows, Key("training", "session_rows", "`last`: one row per training sequence, its last item the target "
                                            "(ALKDRec's instances); `prefixes`: one row per target (RecBole's augmentation)")
                .resume().derived_default("prefixes (recbole), last (session)"));
    v(loss, Key("training", "loss", "`bpr`: one uniform negative per row, -log(1e-10 + sigmoid(s+ - s-)) (RecBole's, "
                                    "the only loss of `recbole`); `inbatch_bpr`: the batch's other targets are the "
                                    "negatives; `ce`: full softmax; `weighted_pairwise`: active distillation's rows "
                                    "(`recdistill alkd`)")
                .resume().derived_default("bpr (recbole), inbatch_bpr (session)"));
    bce_key(v);
    legacy_pad_zero_key(v);
  }
  template <class Given>
  void resolve_defaults(const Given& given) {
    if (!given("model.variant")) variant = FPMCVariant::recbole;
    const bool rb = variant == FPMCVariant::recbole;
    resolve_session_defaults(given, !rb);
    if (rb && !given("model.maxlen")) max_len = 1;
    if (!given("training.loss")) loss = rb ? FPMCLoss::bpr : FPMCLoss::inbatch_bpr;
  }
  // The upstream_compat preset's switch, off for `recbole` unless the user wrote it.
  template <class UserGiven>
  void drop_preset_quirks(const UserGiven& user_given) {
    drop_preset_legacy_pad_zero(user_given, variant == FPMCVariant::session);
  }

  void validate() const {
    SessionDims::validate();
    validate_legacy_pad_zero(variant == FPMCVariant::session, "recbole");
    if (variant != FPMCVariant::recbole) return;
    if (n_users < 2)
      fail("model.n_users: FPMC's recbole variant needs the size of its user table, the data's users plus the "
           "pad id 0 (ml-100k: 944), found ", n_users, " (or use model.variant: session, which has no user factor)");
    if (max_len != 1)
      fail("model.maxlen: FPMC's recbole variant reads the last item alone (basket size 1): expected 1, found ", max_len);
    if (bce_negatives > 0)
      fail("training.bce_negatives: FPMC's recbole variant trains with bpr only (RecBole's FPMC has no other loss), "
           "found ", bce_negatives);
    if (loss != FPMCLoss::bpr)
      fail("training.loss: FPMC's recbole variant trains with bpr only (RecBole's FPMC has no other loss), found ",
           keys::name_of_enum(loss));
  }
};

namespace fpmc {

struct RecBole {
  static constexpr FPMCVariant id = FPMCVariant::recbole;
  static constexpr const char* name = "recbole";
};
struct Session {
  static constexpr FPMCVariant id = FPMCVariant::session;
  static constexpr const char* name = "session";
};

inline const char* variant_name(FPMCVariant v) { return v == FPMCVariant::recbole ? RecBole::name : Session::name; }

template <class F>
decltype(auto) with_variant(FPMCVariant v, F&& f) {
  if (v == FPMCVariant::session) return f.template operator()<Session>();
  return f.template operator()<RecBole>();
}

// FPMCSession's buffers.
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

// FPMCRecBole's buffers for up to `capacity` rows of [user, last item].
template <class B, class T>
struct RecBoleActivations {
  int capacity = 0, batch = 0;
  bool train = false;
  Buffer<B, int32_t> seq;    // (cap, 2): [user, last item]
  Buffer<B, uint8_t> valid;  // (cap, 2): 1 where the id is not 0 (both, in every real row)
  Buffer<B, T> q;            // (cap, 2d): [UI[user], LI[last]], also the (cap, 2, d) slot embeddings
  std::vector<int32_t> seq_host;  // query staging
  Buffer<B, int32_t> seq_in;
  RecBoleActivations() = default;
  RecBoleActivations(int cap, int d)
      : capacity(cap), seq(size_t(cap) * 2), valid(size_t(cap) * 2), q(size_t(cap) * 2 * d), seq_in(size_t(cap) * 2) {}
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
    if (cfg_.variant != FPMCVariant::session)
      fail("FPMC: model.variant is '", fpmc::variant_name(cfg_.variant),
           "' but this model type is the 'session' variant (pick the type with fpmc::with_variant)");
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
  bool legacy_pad_zero() const { return cfg_.legacy_pad_zero; }
  double forward_gemm_flops(int64_t) const { return 0; }

  // Xavier-normal on both tables (std sqrt(2 / (N + d))), the pad row of the input table zero.
  void init(T* params, uint64_t seed) const {
    const double sd = std::sqrt(2.0 / (double(cfg_.n_items) + cfg_.hidden));
    int tensor = 0;
    for (const auto& p : layout_.infos())
      encoder::init_fill(params + p.offset, p.size, seed, tensor++,
                         [sd](float u1, float u2) { return T(sd * normal_from(u1, u2)); });
    std::fill(params + off_item_, params + off_item_ + cfg_.hidden, T(0));
    // legacy_pad_zero: item 0 (id 1) reads upstream's pad row, zero and frozen (Q1).
    if (cfg_.legacy_pad_zero) std::fill(params + off_item_ + cfg_.hidden, params + off_item_ + 2 * cfg_.hidden, T(0));
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
    if (cfg_.legacy_pad_zero) ops::fill<B>(grads + off_item_ + d, d, 0.0);  // upstream's padding_idx row (Q1)
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


// RecBole 1.2.1's FPMC (specs/backbones.md §4.1; the design is in this file's header).
template <Backend B, class T = float>
class FPMCRecBole {
 public:
  using BackendType = B;
  using Scalar = T;
  using Activations = fpmc::RecBoleActivations<B, T>;
  using Batch = SeqBatch<B>;

  // RecBole's state_dict: its four nn.Embedding tables, in its registration order.
  struct ReferenceTensor {
    std::string name;
    int rows, cols;
  };

  explicit FPMCRecBole(FPMCConfig cfg) : cfg_(cfg) {
    if (cfg_.variant != FPMCVariant::recbole)
      fail("FPMC: model.variant is '", fpmc::variant_name(cfg_.variant),
           "' but this model type is the 'recbole' variant (pick the type with fpmc::with_variant)");
    cfg_.validate();
    const int U = cfg_.n_users, N = cfg_.n_items, d = cfg_.hidden;
    off_ui_ = layout_.add("UI_emb.weight", {U, d});
    off_li_ = layout_.add("LI_emb.weight", {N, d});
    off_items_ = layout_.add("item_factors", {N, 2 * d});  // row i = [IU_emb.weight[i], IL_emb.weight[i]]
  }

  const FPMCConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return 0; }
  int max_len() const { return 2; }                      // [user, last item]
  int hidden_size() const { return 2 * cfg_.hidden; }    // the state q = [UI[u], LI[last]]
  int n_items() const { return cfg_.n_items; }
  int n_users() const { return cfg_.n_users; }
  Scorer scorer() const { return {off_items_, -1, cfg_.n_items, 2 * cfg_.hidden}; }
  double forward_gemm_flops(int64_t) const { return 0; }

  std::vector<ReferenceTensor> reference_tensors() const {
    const int U = cfg_.n_users, N = cfg_.n_items, d = cfg_.hidden;
    return {{"UI_emb.weight", U, d}, {"IU_emb.weight", N, d}, {"LI_emb.weight", N, d}, {"IL_emb.weight", N, d}};
  }
  // Our flat parameters (num_params()) -> RecBole's four tensors concatenated in
  // reference_tensors() order (the same count), and back.
  template <class S>
  void to_reference(const S* ours, S* ref) const {
    for (const Piece& p : pieces()) std::copy_n(ours + p.ours, p.n, ref + p.ref);
  }
  template <class S>
  void from_reference(const S* ref, S* ours) const {
    for (const Piece& p : pieces()) std::copy_n(ref + p.ref, p.n, ours + p.ours);
  }

  // Xavier-normal on each of RecBole's tables, std sqrt(2 / (rows + d)), every row (the pad
  // rows too: RecBole's _init_weights re-draws them after nn.Embedding zeroed LI's).
  void init(T* params, uint64_t seed) const {
    const int d = cfg_.hidden;
    std::vector<T> ref(num_params());
    size_t at = 0;
    int tensor = 0;
    for (const auto& t : reference_tensors()) {
      const double sd = std::sqrt(2.0 / (double(t.rows) + d));
      const size_t n = size_t(t.rows) * d;
      encoder::init_fill(ref.data() + at, n, seed, tensor++, [sd](float u1, float u2) { return T(sd * normal_from(u1, u2)); });
      at += n;
    }
    from_reference(ref.data(), params);
  }

  Activations make_activations(int capacity) const { return Activations(capacity, cfg_.hidden); }

  // q (rows, 2d); viewed as (rows, 2, d) it is also the two slots' embeddings.
  CPtr<B, T> output(const Activations& a) const { return a.q.data(); }
  CPtr<B, T> embedding_output(const Activations& a) const { return a.q.data(); }
  CPtr<B, T> block_output(const Activations&, int) const { fail("FPMC has no blocks to read"); }
  CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  // seq (batch, 2): [user, last item] per row (backend memory). No dropout.
  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int batch, bool train,
               DropoutKey = {}) const {
    RD_REQUIRE(batch <= a.capacity, "batch larger than the activation capacity");
    a.batch = batch;
    a.train = train;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(batch) * 2);
    ops::nonzero_mask<B>(a.valid.data(), CPtr<B, int32_t>(a.seq.data()), int64_t(batch) * 2);
    ops::gather_row_pairs<B>(a.q.data(), params + off_ui_, params + off_li_, CPtr<B, int32_t>(a.seq.data()), batch,
                             cfg_.hidden);
  }

  // d_out (rows, 2d) -> the two rows each state read (LI's padding_idx 0: no lookup gradient).
  // The item tables' gradient comes from the objective, through the scorer.
  void backward(CPtr<B, T>, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out, const Taps<B, T>& taps = {}) const {
    if (!taps.at.empty()) fail("FPMC takes no taps (it has no blocks)");
    ops::scatter_row_pairs<B>(grads + off_ui_, grads + off_li_, d_out, CPtr<B, int32_t>(a.seq.data()), a.batch,
                              cfg_.hidden, /*skip_pad_a=*/false, /*skip_pad_b=*/true);
  }

  // Evaluation queries: [case.user, the case's last history item] per row; out (rows, 2d).
  // Rows n..rows-1 repeat case 0 and are ignored.
  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows, Ptr<B, T> out) const {
    RD_REQUIRE(rows <= a.capacity && n <= size_t(rows), "query: ", rows, " rows for activations of capacity ",
               a.capacity, " (", n, " cases)");
    a.seq_host.resize(size_t(rows) * 2);
    for (size_t i = 0; i < size_t(rows); ++i) {
      const eval::Case& c = cases[i < n ? i : 0];
      if (i < n) {
        if (c.target == 0)
          fail("FPMC (recbole variant): case ", i, " has no target: an anonymous history (as recommend() passes) "
               "names no user, and this variant scores (user, last item); use model.variant: session");
        if (c.user < 1 || c.user >= cfg_.n_users)
          fail("FPMC (recbole variant): case ", i, " names user ", c.user, ", outside the user table 1..",
               cfg_.n_users - 1, " (model.n_users = ", cfg_.n_users, ")");
        if (c.length == 0 || c.history == nullptr) fail("FPMC (recbole variant): case ", i, " has an empty history");
      }
      a.seq_host[2 * i] = c.user;
      a.seq_host[2 * i + 1] = c.history[c.length - 1];
    }
    B::template to_device<int32_t>(a.seq_in.data(), a.seq_host.data(), a.seq_host.size());
    forward(params, a, a.seq_in.data(), rows, /*train=*/false);
    B::template copy<T>(out, output(a), size_t(rows) * hidden_size());
  }

  UserLastItemBatching batching(int = 0) const { return UserLastItemBatching(cfg_.n_users, cfg_.rows); }

 private:
  // The runs that map our layout onto RecBole's: n values at our offset `ours` are RecBole's at
  // offset `ref` (its four tensors concatenated in reference_tensors() order).
  struct Piece {
    size_t ours, ref, n;
  };
  std::vector<Piece> pieces() const {
    const size_t U = size_t(cfg_.n_users), N = size_t(cfg_.n_items), d = size_t(cfg_.hidden);
    const size_t ref_iu = U * d, ref_li = ref_iu + N * d, ref_il = ref_li + N * d;
    std::vector<Piece> out{{off_ui_, 0, U * d}, {off_li_, ref_li, N * d}};
    out.reserve(2 + 2 * N);
    for (size_t i = 0; i < N; ++i) {
      out.push_back({off_items_ + i * 2 * d, ref_iu + i * d, d});
      out.push_back({off_items_ + i * 2 * d + d, ref_il + i * d, d});
    }
    return out;
  }

  FPMCConfig cfg_;
  ParamLayout layout_;
  size_t off_ui_ = 0, off_li_ = 0, off_items_ = 0;
};

}  // namespace recdistill
