// recdistill/methods/profile_distillation.hpp: LLM profile distillation as a model and an
// objective the library's trainer runs (specs/profile-distillation.md §1, §6, §8).
//
//   using M = ProfileDistillation<SASRec<cpu::Backend>, aggregators::ExpWeight, losses::MSE>;
//   M model(SASRec<cpu::Backend>(sc), dc, aggregators::ExpWeight{0.1}, profiles);
//   Trainer<M, DistillObjective> t(std::move(model), tc, eo, split, seed);
//   add_distillation_phases(t);   // the fine-tuning phase from dc.fine_tune_epoch on
//   TrainResult r = t.fit();
//
// The model is the backbone plus the distillation head's tensors (their layout nested after the
// backbone's). Forward, evaluation and `recommend` are the backbone's: the profile never enters
// the forward pass. The objective, per batch of rows (each a window of one user):
//   L = alpha * beta * L_distil + (1 - alpha) * L_rec   while distilling, else L = L_rec
// with beta = L_rec / (L_distil + 1e-8) computed from the batch's values and used as a constant
// (training.scale_guide_loss), else 1. L_rec is the backbone's own objective (NextItemCE for
// SASRec, ClozeCE for BERT4Rec). The head's gradient reaches the backbone as a tap at the
// configured block (model.reconstruction_layer, with each backbone's meaning of the number,
// §2); layers above the tap and the output layer get only (1 - alpha) L_rec. A batch without a
// usable user trains on (1 - alpha) L_rec (L_distil = 0, no beta), as the spec's §5 has it. The
// fine-tuning phase (epochs from fine_tune_epoch on) drops L_distil and freezes the head's
// tensors, which then stay bit-identical; best-epoch selection and early stopping count from
// that phase on.
#pragma once
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "recdistill/aggregators/aggregators.hpp"
#include "recdistill/backbones/backbone.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/dist/comm.hpp"
#include "recdistill/data/profiles.hpp"
#include "recdistill/io/safetensors.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/objective.hpp"
#include "recdistill/methods/distillation_head.hpp"
#include "recdistill/train/optimizer.hpp"

namespace recdistill {

// Profile embeddings by internal user id (row 0, the pad user, has none): K profiles of D values.
struct ProfileTargets {
  int K = 1, D = 0;
  std::vector<float> values;       // (U, K, D)
  std::vector<uint8_t> available;  // (U, K)
  int32_t users() const { return K == 0 ? 0 : int32_t(available.size() / size_t(K)); }

  static ProfileTargets from(const data::ProfileTable& t) {
    ProfileTargets p;
    p.K = t.n_profiles;
    p.D = int(t.dim);
    p.values = t.values;
    p.available = t.available;
    return p;
  }
};

struct DistillationConfig {
  int reconstruction_layer = -1;  // -1: the final output; k: the backbone's tap k (§2)
  double alpha = 0.5;
  bool scale_guide_loss = false;  // beta
  // The first recommendation-only epoch; <= 1: no distillation at all. It has no default here (the
  // config's is training.epochs // 2, which this struct cannot know): left unset, it is refused.
  static constexpr int kUnset = std::numeric_limits<int>::min();
  int fine_tune_epoch = kUnset;
  methods::DistillHeadConfig head;  // d, D, L and max_rows are set from the backbone and batch
};

// A batch of the method: the backbone's rows plus, for each, its user and its real-item count.
template <class B>
struct DistillBatch : SeqBatch<B> {
  std::vector<int32_t> users, lengths;
  DistillBatch() = default;
  DistillBatch(int capacity, int len) : SeqBatch<B>(capacity, len), users(size_t(capacity)), lengths(size_t(capacity)) {}
};

// The backbone's batching policy, also recording each row's user and real-item count.
template <class Inner>
class DistillBatching {
 public:
  explicit DistillBatching(Inner inner) : inner_(std::move(inner)) {}
  int length() const { return inner_.length(); }
  bool left_padded() const { return inner_.left_padded(); }
  auto rows(const std::vector<std::vector<int32_t>>& train) const { return inner_.rows(train); }
  template <class B, class Row>
  void fill(DistillBatch<B>& batch, const std::vector<std::vector<int32_t>>& train, const std::vector<Row>& rows,
            const uint32_t* ids, int n, const StepContext& ctx = {}) const {
    inner_.fill(static_cast<SeqBatch<B>&>(batch), train, rows, ids, n, ctx);
    for (int i = 0; i < n; ++i) {
      const Row& w = rows[ids[i]];
      batch.users[size_t(i)] = w.user;
      if constexpr (requires { w.pairs; })
        batch.lengths[size_t(i)] = w.pairs;  // SASRec windows: the inputs
      else
        batch.lengths[size_t(i)] = w.len;    // BERT4Rec windows: the items before masking
    }
  }

 private:
  Inner inner_;
};

// The tap of model.reconstruction_layer k on a backbone: SASRec's k is block k's output
// (0-based, before the final layer norm) and -1 the final output; BERT4Rec's k is entry k of
// its hidden-state list (0 = the embedding output, j = layer j, 1-based) and -1 the last layer.
template <class Bb>
int distillation_tap_point(const Bb& bb, int k) {
  const bool state_list = requires { Bb::hidden_states_include_embedding; };
  // -1 is the last encoder layer's output on BERT4Rec (recbole's output() is its head's input
  // transform, not an encoder layer), the final output (after the last LN) on SASRec.
  if (k == -1) return state_list ? bb.blocks() - 1 : TapPoint::final_output;
  const int hi = state_list ? bb.blocks() : bb.blocks() - 1;
  if (k < -1 || k > hi)
    fail("model.reconstruction_layer: expected -1 or a value in [0, ", hi, "] for ", bb.blocks(), " blocks, found ", k);
  if (state_list) return k == 0 ? TapPoint::embedding : k - 1;
  return k;
}

template <class Bb, class Agg, class Loss, template <class> class Rec = NextItemCE>
class ProfileDistillation {
 public:
  using Backbone = Bb;
  using BackendType = typename Bb::BackendType;
  using Scalar = typename Bb::Scalar;
  using B = BackendType;
  using T = Scalar;
  using Batch = DistillBatch<B>;
  using Head = methods::DistillationHead<B, T, Agg, Loss>;
  template <class M>
  using RecObjective = Rec<M>;
  using AggregatorType = Agg;

  struct Activations {
    typename Bb::Activations inner;
    Buffer<B, T> dtap;  // the head's gradient at the tap, (rows, L, d)
    bool tap_active = false;
  };

  ProfileDistillation(Bb backbone, DistillationConfig cfg, Agg agg, std::shared_ptr<const ProfileTargets> profiles,
                      Loss loss = {})
      : bb_(std::move(backbone)), cfg_(cfg), agg_(agg), loss_(loss), profiles_(std::move(profiles)) {
    RD_REQUIRE(profiles_, "profile distillation needs a profile table");
    if (cfg_.fine_tune_epoch == DistillationConfig::kUnset)
      fail("DistillationConfig::fine_tune_epoch is not set: give the first recommendation-only epoch (the seed's "
           "default is training epochs // 2; <= 1 trains without distillation)");
    cfg_.head.d = bb_.hidden_size();
    cfg_.head.L = bb_.max_len();
    cfg_.head.D = profiles_->D;
    cfg_.head.K = profiles_->K;
    cfg_.head.max_rows = 1;
    tap_ = distillation_tap_point(bb_, cfg_.reconstruction_layer);
    layout_.add_nested("", bb_.layout());
    Head head(cfg_.head, agg_, loss_);  // validates the projection against D and d
    head.describe(layout_);
    for (size_t i = bb_.layout().infos().size(); i < layout_.infos().size(); ++i)
      head_tensors_.push_back(layout_.infos()[i].name);
  }

  const Bb& backbone() const { return bb_; }
  const DistillationConfig& config() const { return cfg_; }
  const Agg& aggregator() const { return agg_; }
  const Loss& loss_policy() const { return loss_; }
  const ProfileTargets& profiles() const { return *profiles_; }
  int tap_point() const { return tap_; }
  // The head's configuration for batches of up to `rows` rows.
  methods::DistillHeadConfig head_config(int rows) const {
    auto c = cfg_.head;
    c.max_rows = rows;
    return c;
  }
  // The distillation-only tensors (frozen in the fine-tuning phase; dropped by export).
  const std::vector<std::string>& head_tensors() const { return head_tensors_; }

  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return bb_.blocks(); }
  int max_len() const { return bb_.max_len(); }
  int hidden_size() const { return bb_.hidden_size(); }
  int n_items() const { return bb_.n_items(); }
  Scorer scorer() const { return bb_.scorer(); }
  double forward_gemm_flops(int64_t rows) const { return bb_.forward_gemm_flops(rows); }

  // The backbone's initialisation, then PyTorch's default Linear initialisation of the head.
  void init(T* host, uint64_t seed) const {
    bb_.init(host, seed);
    Head head(cfg_.head, agg_, loss_);
    ParamLayout l;
    l.add_nested("", bb_.layout());
    head.describe(l);
    std::vector<T> all(layout_.size());
    head.init(all, seed);
    for (size_t i = bb_.num_params(); i < all.size(); ++i) host[i] = all[i];
  }

  Activations make_activations(int capacity) const {
    Activations a{bb_.make_activations(capacity), Buffer<B, T>(size_t(capacity) * bb_.max_len() * bb_.hidden_size()), false};
    return a;
  }
  void forward(CPtr<B, T> params, Activations& a, CPtr<B, int32_t> seq, int rows, bool train, DropoutKey key) const {
    a.tap_active = false;
    bb_.forward(params, a.inner, seq, rows, train, key);
  }
  CPtr<B, T> output(const Activations& a) const { return bb_.output(a.inner); }
  CPtr<B, T> block_output(const Activations& a, int k) const { return bb_.block_output(a.inner, k); }
  CPtr<B, T> embedding_output(const Activations& a) const { return bb_.embedding_output(a.inner); }
  CPtr<B, uint8_t> mask(const Activations& a) const { return bb_.mask(a.inner); }
  // The tapped tensor after forward() (train mode: dropout active, as upstream).
  CPtr<B, T> tapped(const Activations& a) const {
    return tap_ == TapPoint::final_output ? output(a) : tap_ == TapPoint::embedding ? embedding_output(a) : block_output(a, tap_);
  }

  void backward(CPtr<B, T> params, Ptr<B, T> grads, Activations& a, CPtr<B, T> d_out, const Taps<B, T>& taps = {}) const {
    if (!a.tap_active) return bb_.backward(params, grads, a.inner, d_out, taps);
    Taps<B, T> with_head = taps;
    with_head.at.push_back({tap_, CPtr<B, T>(a.dtap.data())});
    bb_.backward(params, grads, a.inner, d_out, with_head);
  }

  void query(CPtr<B, T> params, Activations& a, const eval::Case* cases, size_t n, int rows, Ptr<B, T> out) const {
    bb_.query(params, a.inner, cases, n, rows, out);
  }
  auto batching(int stride = 0) const { return DistillBatching(bb_.batching(stride)); }

 private:
  Bb bb_;
  DistillationConfig cfg_;
  Agg agg_;
  Loss loss_;
  std::shared_ptr<const ProfileTargets> profiles_;
  ParamLayout layout_;
  std::vector<std::string> head_tensors_;
  int tap_ = TapPoint::final_output;
};

// The method's objective over M = ProfileDistillation<...> (the trainer's O<M>).
template <class M>
class DistillObjective {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  using Bb = typename M::Backbone;
  using Rec = typename M::template RecObjective<Bb>;

  // The last batch's terms (logs and tests).
  struct Terms {
    double rec = 0, distil = 0, beta = 1, total = 0;
    int usable = 0;
    bool distilled = false;
  };

  DistillObjective(const M& m, int capacity)
      : rec_(m.backbone(), capacity), head_(m.head_config(capacity), m.aggregator(), m.loss_policy()),
        distill_(m.config().fine_tune_epoch > 1) {
    ParamLayout l;
    l.add_nested("", m.backbone().layout());
    head_.describe(l);
    RD_REQUIRE(l.size() == m.num_params(), "distillation head layout differs from the model's");
    const int L = m.max_len(), K = m.profiles().K, D = m.profiles().D;
    slots_.real.reserve(size_t(capacity) * L);
    rows_profiles_.resize(size_t(capacity) * K * D);
    rows_available_.resize(size_t(capacity) * K);
  }

  // Data-parallel ranks (train/trainer.hpp): this objective all-reduces its own global
  // quantities (the target count and L_rec; the reconstruction loss's sums, so L_distil and beta
  // too) and returns this rank's share of the global gradient; the trainer sums them.
  static constexpr bool reduces_itself = true;
  void set_comm(const M&, dist::Comm* comm) {
    comm_ = comm;
    if (!dist::parallel(comm_)) return;
    bool rec_exact = false;
    if constexpr (requires { Rec::data_parallel; }) rec_exact = Rec::data_parallel;
    // A loss with collectives or weights of its own (in-batch negatives) would need them
    // forwarded here and its weight honoured: only plain means over targets are taken.
    if constexpr (requires(Rec& r, const Bb& b, dist::Comm* c) { r.set_comm(b, c); }) rec_exact = false;
    if (!rec_exact) fail("data-parallel profile distillation: the recommendation loss is not supported (docs/distributed.md)");
  }

  // Phases switch distillation off (the fine-tuning phase) or on.
  void set_distill(bool on) { distill_ = on; }
  bool distilling() const { return distill_; }
  const Terms& last() const { return last_; }

  // Sums of the batches' terms since the last take_epoch_terms(), which the app logs per epoch
  // (the spec's §4 and §6 ask for L_distil and beta; under beta the logged loss is L_rec alone).
  struct EpochTerms {
    int batches = 0, distilled = 0;           // batches; of them, with a usable user
    double rec = 0;                           // over all batches
    double distil = 0, beta = 0, usable = 0;  // over the distilled batches
  };
  EpochTerms take_epoch_terms() { return std::exchange(epoch_, EpochTerms{}); }

  LossValue loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                 const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const LossValue v = batch_loss(m, params, grads, a, batch, ctx, d_out);
    add_to_epoch();
    return v;
  }

  double gemm_flops(const M& m, LossValue v) { return rec_.gemm_flops(m.backbone(), v); }

  // A data-parallel rank whose slice of the step's batch is empty joins the step's reductions.
  LossValue idle_loss(const M& m, const StepContext& ctx) {
    const LossValue v = idle_batch_loss(m, ctx);
    add_to_epoch();
    return v;
  }

 private:
  void add_to_epoch() {
    if (!std::isfinite(last_.rec) || !std::isfinite(last_.distil)) return;  // a skipped step
    ++epoch_.batches;
    epoch_.rec += last_.rec;
    if (!last_.distilled) return;
    ++epoch_.distilled;
    epoch_.distil += last_.distil;
    epoch_.beta += last_.beta;
    epoch_.usable += last_.usable;
  }

  LossValue batch_loss(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                       const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out) {
    const LossValue rec = rec_.loss(m.backbone(), params, grads, a.inner, batch, ctx, d_out);
    if (dist::parallel(comm_)) return loss_data_parallel(m, params, grads, a, batch, ctx, d_out, rec);
    a.tap_active = false;
    last_ = Terms{rec.loss, 0, 1, rec.loss, 0, false};
    if (!distill_ || !std::isfinite(rec.loss)) return rec;
    fill_rows(m, batch);
    const double distil = head_.forward(params, m.tapped(a), slots_, rows_profiles_, rows_available_);
    last_.usable = head_.usable_count();
    const auto& c = m.config();
    // What L_rec wrote (d_out and the scorer table's gradient; grads held nothing else) gets
    // 1 - alpha; the head adds alpha * beta * dL_distil.
    const int64_t n_out = int64_t(batch.rows) * m.max_len() * m.hidden_size();
    ops::scale<B>(d_out, n_out, 1.0 - c.alpha);
    ops::scale<B>(grads, int64_t(m.num_params()), 1.0 - c.alpha);
    if (head_.usable_count() == 0) {  // no usable user: the distillation term and beta are skipped
      last_.total = (1 - c.alpha) * rec.loss;
      return {last_.total, rec.targets};
    }
    const double beta = c.scale_guide_loss ? rec.loss / (distil + 1e-8) : 1.0;
    ops::fill<B>(a.dtap.data(), n_out, 0.0);
    head_.backward(grads, a.dtap.data(), params, c.alpha * beta);
    a.tap_active = true;
    last_ = Terms{rec.loss, distil, beta, c.alpha * beta * distil + (1 - c.alpha) * rec.loss, head_.usable_count(), true};
    return {last_.total, rec.targets};
  }

  LossValue idle_batch_loss(const M& m, const StepContext& ctx) {
    double v[2] = {0, 0};
    comm_->allreduce_sum(v, 2, loss_reduction(ctx));
    const double rec = v[1] > 0 ? v[0] / v[1] : 0.0;
    last_ = Terms{rec, 0, 1, rec, 0, false};
    if (!distill_ || !std::isfinite(rec)) return {rec, int64_t(v[1])};
    double w[3] = {0, 0, 0};
    comm_->allreduce_sum(w, 3, profile_reduction(ctx));
    return {global_total(m, rec, w).loss, int64_t(v[1])};
  }

  static std::string loss_reduction(const StepContext& c) { return cat("epoch ", c.epoch, " step ", c.step + 1, "'s loss all-reduce"); }
  static std::string profile_reduction(const StepContext& c) {
    return cat("epoch ", c.epoch, " step ", c.step + 1, "'s profile-loss all-reduce");
  }
  // The step's total from the reduced sums {raw, U, rows} of the head (and beta); sets last_.
  LossValue global_total(const M& m, double rec, const double w[3]) {
    const auto& c = m.config();
    const double U = w[1], distil = head_.set_global({w[0], w[1], w[2]});
    if (U == 0) {
      last_ = Terms{rec, 0, 1, (1 - c.alpha) * rec, 0, false};
      return {last_.total, 0};
    }
    const double beta = c.scale_guide_loss ? rec / (distil + 1e-8) : 1.0;
    last_ = Terms{rec, distil, beta, c.alpha * beta * distil + (1 - c.alpha) * rec, int(U), true};
    return {last_.total, 0};
  }

  // loss() on one rank of several: L_rec is a mean over the global batch's targets (T), L_distil
  // the reconstruction loss of the global batch's sums (users with a profile U, or all rows under
  // upstream_copy); this rank's gradient is its share, (t/T) dL_rec,t and alpha beta times the
  // head's share of dL_distil, beta from the global values.
  LossValue loss_data_parallel(const M& m, CPtr<B, T> params, Ptr<B, T> grads, typename M::Activations& a,
                               const typename M::Batch& batch, const StepContext& ctx, Ptr<B, T> d_out,
                               const LossValue& here) {
    const auto& c = m.config();
    double v[2] = {here.targets > 0 ? here.loss * double(here.targets) : 0.0, double(here.targets)};
    comm_->allreduce_sum(v, 2, loss_reduction(ctx));
    const double Tg = v[1], rec = Tg > 0 ? v[0] / Tg : 0.0;
    const int64_t n_out = int64_t(batch.rows) * m.max_len() * m.hidden_size();
    auto share = [&](double factor) {  // scales what L_rec wrote (d_out, the table's gradient)
      const double f = here.targets > 0 ? factor * double(here.targets) / Tg : 0.0;
      ops::scale<B>(d_out, n_out, f);
      ops::scale<B>(grads, int64_t(m.num_params()), f);
    };
    a.tap_active = false;
    last_ = Terms{rec, 0, 1, rec, 0, false};
    if (!distill_ || !std::isfinite(rec)) {
      share(1.0);
      return {rec, int64_t(Tg)};
    }
    fill_rows(m, batch);
    head_.forward(params, m.tapped(a), slots_, rows_profiles_, rows_available_);
    const auto here_sums = head_.sums();
    double w[3] = {here_sums.raw, here_sums.usable, here_sums.rows};
    comm_->allreduce_sum(w, 3, profile_reduction(ctx));
    share(1.0 - c.alpha);
    const LossValue total = global_total(m, rec, w);
    if (last_.distilled && here_sums.usable > 0) {
      ops::fill<B>(a.dtap.data(), n_out, 0.0);
      head_.backward(grads, a.dtap.data(), params, c.alpha * last_.beta);
      a.tap_active = true;
    }
    return {total.loss, int64_t(Tg)};
  }

  // The batch's slots (real items and recency) and its users' profile rows, on the host.
  void fill_rows(const M& m, const typename M::Batch& batch) {
    const int n = batch.rows, L = m.max_len(), K = m.profiles().K, D = m.profiles().D;
    const bool left = m.batching().left_padded();
    slots_.Bn = n;
    slots_.L = L;
    slots_.real.assign(size_t(n) * L, 0);
    slots_.recency.assign(size_t(n) * L, 0);
    for (int i = 0; i < n; ++i) {
      const int len = std::min(batch.lengths[size_t(i)], L);
      const int first = left ? L - len : 0;  // the real items are [first, first + len)
      int pad = 0;
      for (int t = 0; t < L; ++t) {
        const size_t s = size_t(i) * L + t;
        if (t >= first && t < first + len) {
          slots_.real[s] = 1;
          slots_.recency[s] = first + len - 1 - t;
        } else {
          slots_.recency[s] = L - 1 - pad++;  // where upstream's left padding puts the pads
        }
      }
    }
    const ProfileTargets& p = m.profiles();
    rows_profiles_.resize(size_t(n) * K * D);
    rows_available_.resize(size_t(n) * K);
    for (int i = 0; i < n; ++i) {
      const int32_t u = batch.users[size_t(i)];
      const bool known = u >= 0 && u < p.users();
      for (int k = 0; k < K; ++k) {
        const bool has = known && p.available[size_t(u) * K + k];
        rows_available_[size_t(i) * K + k] = has;
        for (int j = 0; j < D; ++j)
          rows_profiles_[(size_t(i) * K + k) * D + j] = has ? T(p.values[(size_t(u) * K + k) * D + j]) : T(0);
      }
    }
  }

  Rec rec_;
  typename M::Head head_;
  bool distill_;
  Terms last_;
  EpochTerms epoch_;
  dist::Comm* comm_ = nullptr;
  aggregators::Slots slots_;
  std::vector<T> rows_profiles_;
  std::vector<uint8_t> rows_available_;
};

// The method's weights as a state_dict (backbones/state_dict.hpp): the backbone's tensors under
// its reference module's names, then the head's under their own (aggregator.*,
// profile_transform.*, hidden_upscale.*, profile_combiner.*).
template <class Bb, class Agg, class Loss, template <class> class Rec>
std::pair<std::string, bool> torch_name(const ProfileDistillation<Bb, Agg, Loss, Rec>& m, const std::string& ours) {
  for (const auto& h : m.head_tensors())
    if (h == ours) return {ours, false};
  return torch_name(m.backbone(), ours);
}
template <class Bb, class Agg, class Loss, template <class> class Rec>
std::string state_dict_model_text(const ProfileDistillation<Bb, Agg, Loss, Rec>& m) {
  return state_dict_model_text(m.backbone()) + " with profile distillation";
}
template <class Bb, class Agg, class Loss, template <class> class Rec>
std::string state_dict_hint(const ProfileDistillation<Bb, Agg, Loss, Rec>& m, const io::SafeTensors& st) {
  return state_dict_hint(m.backbone(), st);
}

// The fine-tuning phase: from config().fine_tune_epoch on, L_rec alone, the head's tensors
// frozen (bit-identical), and model selection counting from there. With fine_tune_epoch <= 1
// there is no distillation at all (the head stays frozen at its initial values).
// With training.detach_target, T and the profile combiner are frozen from the first step
// (no gradient and no weight decay: they keep their initial values, spec §4).
template <class TrainerT>
void add_distillation_phases(TrainerT& t) {
  const auto& m = t.model();
  const int ft = m.config().fine_tune_epoch;
  const auto frozen = [](std::string name, std::vector<std::string> tensors) {
    ParamGroup g;
    g.name = std::move(name);
    g.tensors = std::move(tensors);
    g.frozen = true;
    return g;
  };
  auto groups = t.config().groups;
  if (m.config().head.detach_target) {
    std::vector<std::string> target_side;
    for (const auto& n : m.head_tensors())
      if (n.rfind("profile_transform.", 0) == 0 || n.rfind("profile_combiner.", 0) == 0) target_side.push_back(n);
    if (!target_side.empty()) {
      groups.push_back(frozen("detached_target", target_side));
      t.optimizer().set_groups(groups);
    }
  }
  const auto freeze = [groups, g = frozen("distillation", m.head_tensors())](TrainerT& tr) {
    auto all = groups;
    all.push_back(g);
    tr.optimizer().set_groups(all);
    if (tr.objective()) tr.objective()->set_distill(false);
  };
  if (ft <= 1) {
    freeze(t);
    return;
  }
  typename TrainerT::Phase p;
  p.start_epoch = ft;
  p.enter = freeze;
  p.restart_selection = true;
  t.add_phase(p);
}

}  // namespace recdistill
