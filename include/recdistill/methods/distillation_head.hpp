// recdistill/methods/distillation_head.hpp: what profile distillation adds on top of a
// backbone's tapped hidden layer (specs/profile-distillation.md §3-§5): the aggregate, the
// projection T and the reconstruction loss against each user's profile embedding.
//
//   H = Agg(h)                    h (Bn, L, d): the tapped block, in train mode
//   down:  y = W_T e + b_T, p = H        (W_T (d, D); no stop-gradient: T learns from the loss)
//   up:    y = e,           p = W_U H + b_U   (W_U (D, d))
//   none:  y = e,           p = H        (needs D = d)
//   both:  y = W_T e + b_T, p = W_U H + b_U   (needs D = d)
//   L_distil = f * Loss(p, y) over the usable users (a profile, and a history to aggregate)
//
// Multi-profile targets (§7, K > 1 files): T is applied to each profile, z_k = T(e_k), and the
// combiner (mean, or attention q^T z_k + c' learned on the target side) gives y from the
// available ones; `multi_profile_missing: upstream_zero` lets the missing (zero) profiles join.
// A user is profiled when any of its K profiles is available.
//
// f = 1 under `null_profile_mode: drop`; under `upstream_copy` users without a profile still
// count in the denominator, as upstream's copied targets make them: f = B'/Bn (MSE, cosine) or
// sqrt(B'/Bn) (RMSE). Under beta any per-batch constant f cancels (§6).
//
// The head owns no parameter memory: describe() appends its tensors to the model's layout and
// forward/backward read them at the offsets it returned. All of it is backend ops, except the
// host-side preparation of the batch's slots and profile rows.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "recdistill/aggregators/aggregators.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/layers/linear.hpp"
#include "recdistill/losses/reconstruction.hpp"

namespace recdistill::methods {

enum class Projection { down, up, none, both };
enum class NullProfileMode { drop, upstream_copy };
enum class Combiner { mean, attention };

struct DistillHeadConfig {
  int d = 64;    // hidden_units
  int D = 64;    // profile width
  int L = 50;    // slots of the tapped tensor
  int max_rows = 256;
  Projection projection = Projection::down;
  bool mask_padding = true;
  bool detach_target = false;  // training.detach_target: no gradient into T
  NullProfileMode null_profile_mode = NullProfileMode::drop;
  int K = 1;  // profiles per user
  Combiner combiner = Combiner::mean;
  bool mask_missing_profiles = true;  // false: model.multi_profile_missing = upstream_zero
};

inline bool projects_target(Projection p) { return p == Projection::down || p == Projection::both; }
inline bool projects_model(Projection p) { return p == Projection::up || p == Projection::both; }

template <class B, class T, class Agg, class Loss>
class DistillationHead {
 public:
  DistillationHead(DistillHeadConfig c, Agg agg, Loss loss = {}) : c_(c), agg_(agg), loss_kind_(loss) {
    if ((c.projection == Projection::none || c.projection == Projection::both) && c.D != c.d)
      fail("profile distillation: projection ", c.projection == Projection::none ? "none" : "down + up",
           " needs the profile width D (", c.D, ") to equal model.hidden_units (", c.d, ")");
    const int Dp = width();
    work_.reserve(c.max_rows, c.L);
    loss_.reserve(c.max_rows, Dp);
    H_ = Buffer<B, T>(size_t(c.max_rows) * c.d);
    dH_ = Buffer<B, T>(size_t(c.max_rows) * c.d);
    RD_REQUIRE(c.K >= 1, "distillation head: K = ", c.K, " profiles per user");
    e_ = Buffer<B, T>(size_t(c.max_rows) * c.K * c.D);
    z_ = Buffer<B, T>(size_t(c.max_rows) * c.K * Dp);
    dz_ = Buffer<B, T>(size_t(c.max_rows) * c.K * Dp);
    if (c.K > 1) comb_work_.reserve(c.max_rows, c.K);
    p_ = Buffer<B, T>(size_t(c.max_rows) * Dp);
    y_ = Buffer<B, T>(size_t(c.max_rows) * Dp);
    dp_ = Buffer<B, T>(size_t(c.max_rows) * Dp);
    dy_ = Buffer<B, T>(size_t(c.max_rows) * Dp);
  }

  const DistillHeadConfig& config() const { return c_; }
  int width() const { return c_.projection == Projection::up ? c_.D : c_.d; }  // D' of p and y

  // Appends the head's tensors (PyTorch names and shapes) to `layout`.
  void describe(ParamLayout& layout, const std::string& prefix = "") {
    tensors_.clear();
    const auto add = [&](const std::string& name, std::vector<int> shape, int fan_in) {
      const size_t off = layout.add(prefix + name, shape);
      tensors_.push_back({off, layout.infos().back().size, fan_in});
      return off;
    };
    if (agg_.n_params(c_.d)) {  // a Linear(d, 1): weight a (1, d), then bias c (1)
      off_agg_ = add("aggregator.weight", {1, c_.d}, c_.d);
      add("aggregator.bias", {1}, c_.d);
    }
    if (projects_target(c_.projection)) {
      off_WT_ = add("profile_transform.weight", {c_.d, c_.D}, c_.D);
      off_bT_ = add("profile_transform.bias", {c_.d}, c_.D);
    }
    if (projects_model(c_.projection)) {
      off_WU_ = add("hidden_upscale.weight", {c_.D, c_.d}, c_.d);
      off_bU_ = add("hidden_upscale.bias", {c_.D}, c_.d);
    }
    if (learned_combiner()) {  // a Linear(D', 1) on the projected profiles
      off_comb_ = add("profile_combiner.weight", {1, width()}, width());
      add("profile_combiner.bias", {1}, width());
    }
  }

  // PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for every
  // tensor of the head (host values at the layout's offsets; the caller uploads them). Draws
  // come from the `init` stream keyed by (seed, tensor index 1000 + i, element).
  void init(std::vector<T>& host, uint64_t seed) const {
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const Tensor& t = tensors_[k];
      const double bound = 1.0 / std::sqrt(double(t.fan_in));
      for (size_t i = 0; i < t.size; ++i) {
        const auto u = uniform4(seed, Stream::init, uint32_t(1000 + k), 0, uint32_t(i >> 32), uint32_t(i));
        host[t.offset + i] = T((2.0 * double(u[0]) - 1.0) * bound);
      }
    }
  }

  // L_distil of a batch. h: the tap (Bn, L, d); slots: the batch's real items and recency;
  // profiles: (Bn, K, D) host rows and available: (Bn, K) (anything where a profile is
  // missing). Keeps what backward needs.
  double forward(CPtr<B, T> params, CPtr<B, T> h, const aggregators::Slots& slots, const std::vector<T>& profiles,
                 const std::vector<uint8_t>& available) {
    const int Bn = slots.Bn, d = c_.d, D = c_.D, K = c_.K, Dp = width();
    RD_REQUIRE(Bn <= c_.max_rows && slots.L == c_.L && profiles.size() == size_t(Bn) * K * D &&
                   available.size() == size_t(Bn) * K,
               "distillation head: batch of ", Bn, " x ", slots.L, " with ", profiles.size(), " profile values");
    h_ = h;
    aggregators::prepare(agg_, slots, c_.mask_padding, work_);
    usable_.resize(size_t(Bn));
    for (int u = 0; u < Bn; ++u) {
      bool any = false;
      for (int k = 0; k < K; ++k) any = any || available[size_t(u) * K + k];
      usable_[size_t(u)] = any && work_.nonempty[size_t(u)];
    }
    loss_.set_usable(usable_);
    aggregators::forward(agg_, H_.data(), h, agg_params(params), work_, d);
    // Targets: z = T(e) per profile, then y = the combination of a user's K profiles.
    B::template to_device<T>(e_.data(), profiles.data(), profiles.size());
    Ptr<B, T> z = K == 1 ? y_.data() : z_.data();
    if (projects_target(c_.projection))
      layers::linear_forward<B, T>(z, CPtr<B, T>(e_.data()), D, params + off_WT_, params + off_bT_, Bn * K, D, d);
    else
      B::template copy<T>(z, CPtr<B, T>(e_.data()), size_t(Bn) * K * D);
    if (K > 1) {
      aggregators::Slots ps;
      ps.Bn = Bn;
      ps.L = K;
      ps.real = available;
      ps.recency.assign(size_t(Bn) * K, 0);  // unused by mean and attention
      with_combiner([&](const auto& comb) {
        aggregators::prepare(comb, ps, c_.mask_missing_profiles, comb_work_);
        aggregators::forward(comb, y_.data(), CPtr<B, T>(z_.data()), comb_params(params), comb_work_, Dp);
      });
    }
    if (projects_model(c_.projection))
      layers::linear_forward<B, T>(p_.data(), CPtr<B, T>(H_.data()), d, params + off_WU_, params + off_bU_, Bn, d, D);
    else
      B::template copy<T>(p_.data(), CPtr<B, T>(H_.data()), size_t(Bn) * Dp);
    factor_ = null_factor(Bn);
    return factor_ * loss_kind_.value(CPtr<B, T>(p_.data()), CPtr<B, T>(y_.data()), loss_);
  }

  int usable_count() const { return loss_.n_usable; }

  // Data-parallel ranks (methods/profile_distillation.hpp): what this rank's slice adds to the
  // step's L_distil (the loss's raw sum, its usable users and its rows, after forward()); once
  // the ranks' sums are reduced, set_global() gives the global L_distil, and backward() then
  // writes this rank's share of its gradient. Under upstream_copy the factor f = B'/Bn becomes
  // the denominator: f times a mean over the B' users is their sum over all Bn rows (sqrt of it
  // for RMSE). (RMSE's cut-off, l < 1e-12 gives no gradient, then applies to f l, not to l: a
  // difference only for l below 1e-12 / f.)
  struct Sums {
    double raw = 0, usable = 0, rows = 0;
  };
  Sums sums() const { return {loss_.raw, double(loss_.n_usable), double(loss_.Bn)}; }
  double set_global(const Sums& g) {
    factor_ = 1.0;
    const double norm = c_.null_profile_mode == NullProfileMode::drop ? g.usable : g.rows;
    return losses::set_global(loss_kind_, loss_, g.raw, g.usable, norm);
  }

  // Adds scale * dL_distil into dh (the tap's gradient, (Bn, L, d)) and into the head's
  // gradients in `grads` (the model's gradient buffer, same layout as params).
  void backward(Ptr<B, T> grads, Ptr<B, T> dh, CPtr<B, T> params, double scale) {
    const int Bn = loss_.Bn, d = c_.d, D = c_.D, K = c_.K, Dp = width();
    // The target side learns too (no stop-gradient, ECIR) unless training.detach_target.
    const bool target_grad = (projects_target(c_.projection) || learned_combiner()) && !c_.detach_target;
    loss_kind_.backward(dp_.data(), target_grad ? dy_.data() : Ptr<B, T>{}, scale * factor_, loss_);
    if (projects_model(c_.projection))
      layers::linear_backward<B, T>(dH_.data(), grads + off_WU_, grads + off_bU_, CPtr<B, T>(dp_.data()), D,
                                    CPtr<B, T>(H_.data()), d, params + off_WU_, Bn, d, D);
    else
      B::template copy<T>(dH_.data(), CPtr<B, T>(dp_.data()), size_t(Bn) * d);
    aggregators::backward(agg_, dh, agg_grads(grads), CPtr<B, T>(dH_.data()), h_, agg_params(params), work_, d);
    if (!target_grad) return;
    CPtr<B, T> dz = dy_.data();
    if (K > 1) {
      ops::fill<B>(dz_.data(), int64_t(Bn) * K * Dp, T(0));
      with_combiner([&](const auto& comb) {
        aggregators::backward(comb, dz_.data(), comb_grads(grads), CPtr<B, T>(dy_.data()), CPtr<B, T>(z_.data()),
                              comb_params(params), comb_work_, Dp);
      });
      dz = dz_.data();
    }
    if (projects_target(c_.projection))
      layers::linear_backward<B, T>(Ptr<B, T>{}, grads + off_WT_, grads + off_bT_, dz, d, CPtr<B, T>(e_.data()), D,
                                    params + off_WT_, Bn * K, D, d);
  }

 private:
  bool learned_combiner() const { return c_.K > 1 && c_.combiner == Combiner::attention; }
  template <class F>
  void with_combiner(F&& f) const {
    if (c_.combiner == Combiner::attention)
      f(aggregators::Attention{});
    else
      f(aggregators::Mean{});
  }
  CPtr<B, T> comb_params(CPtr<B, T> params) const { return learned_combiner() ? params + off_comb_ : CPtr<B, T>{}; }
  Ptr<B, T> comb_grads(Ptr<B, T> grads) const { return learned_combiner() ? grads + off_comb_ : Ptr<B, T>{}; }
  CPtr<B, T> agg_params(CPtr<B, T> params) const { return agg_.n_params(c_.d) ? params + off_agg_ : CPtr<B, T>{}; }
  Ptr<B, T> agg_grads(Ptr<B, T> grads) const { return agg_.n_params(c_.d) ? grads + off_agg_ : Ptr<B, T>{}; }
  double null_factor(int Bn) const {
    if (c_.null_profile_mode == NullProfileMode::drop || Bn == 0) return 1.0;
    const double ratio = double(loss_.n_usable) / Bn;
    return losses::is_rmse(loss_kind_) ? std::sqrt(ratio) : ratio;
  }

  struct Tensor {
    size_t offset, size;
    int fan_in;
  };
  DistillHeadConfig c_;
  Agg agg_;
  Loss loss_kind_;
  std::vector<Tensor> tensors_;
  aggregators::Work<B, T> work_, comb_work_;
  losses::ReconstructionWork<B, T> loss_;
  Buffer<B, T> H_, dH_, e_, z_, dz_, p_, y_, dp_, dy_;
  CPtr<B, T> h_{};
  std::vector<uint8_t> usable_;
  double factor_ = 1.0;
  size_t off_agg_ = 0, off_WT_ = 0, off_bT_ = 0, off_WU_ = 0, off_bU_ = 0, off_comb_ = 0;
};

}  // namespace recdistill::methods
