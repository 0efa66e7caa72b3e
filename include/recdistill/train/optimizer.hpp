// recdistill/train/optimizer.hpp: Adam / AdamW, learning-rate schedules and global
// gradient-norm clipping over a model's one flat parameter buffer, per tensor, with PyTorch's
// semantics:
//   Adam:  g += wd * p (L2 in the gradient);   AdamW: p -= lr * wd * p (decoupled)
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   clip: c = max_norm / (||g||_2 + 1e-6); if c < 1, g *= c.
// Every tensor keeps its own step count t. A frozen tensor (ParamGroup::frozen) is skipped
// entirely: no step, no decay, no moment update and no part in the clipping norm, so it stays
// bit-identical however long it is frozen. The moments live in backend buffers.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "recdistill/backend/backend.hpp"
#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/params.hpp"

namespace recdistill {

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;  // true = AdamW
};

// Learning rate as a function of the optimiser step t (1-based), given the base rate:
//   constant; linear warm-up (step t <= warmup_steps takes base * t / warmup_steps) then
//   constant; step decay (x gamma after every step_size steps, counted after any warm-up);
//   cosine from the base rate (the first step after any warm-up) to min_lr, reached
//   total_steps steps later (PyTorch's CosineAnnealingLR with T_max = total_steps).
struct LRSchedule {
  enum class Kind { constant, warmup, step, cosine };
  Kind kind = Kind::constant;
  int64_t warmup_steps = 0;  // warmup (and a warm-up before step/cosine)
  int64_t step_size = 0;     // step: steps between decays
  double gamma = 0.1;        // step: decay factor
  int64_t total_steps = 0;   // cosine: length of the decay
  double min_lr = 0.0;       // cosine: final rate

  double at(double base, int64_t t) const {
    if (warmup_steps > 0 && t <= warmup_steps) return base * double(t) / double(warmup_steps);
    const int64_t s = t - warmup_steps - 1;  // steps taken since the warm-up: 0 on the first
    switch (kind) {
      case Kind::constant:
      case Kind::warmup: return base;
      case Kind::step: return step_size > 0 ? base * std::pow(gamma, double(s / step_size)) : base;
      case Kind::cosine: {
        if (total_steps <= 0) return base;
        const double x = std::min(1.0, double(s) / double(total_steps));
        return min_lr + 0.5 * (base - min_lr) * (1.0 + std::cos(M_PI * x));
      }
    }
    return base;
  }
};

// A named set of tensors with their own settings: a learning-rate multiplier, a weight decay
// (negative = the optimiser's), or frozen (no update at all).
struct ParamGroup {
  std::string name;
  std::vector<std::string> tensors;  // names from the model's ParamLayout
  double lr_scale = 1.0;
  double weight_decay = -1.0;
  bool frozen = false;
};

template <class B, class T>
class Adam {
 public:
  Adam(const ParamLayout& layout, AdamConfig cfg)
      : infos_(layout.infos()), total_(layout.size()), cfg_(cfg), m_(layout.size()), v_(layout.size()),
        steps_(layout.infos().size(), 0), lr_scale_(layout.infos().size(), 1.0),
        wd_(layout.infos().size(), cfg.weight_decay), frozen_(layout.infos().size(), 0) {
    ops::fill<B>(m_.data(), int64_t(layout.size()), 0.0);
    ops::fill<B>(v_.data(), int64_t(layout.size()), 0.0);
  }

  const AdamConfig& config() const { return cfg_; }
  // Applies groups in order (a later group overrides an earlier one for a shared tensor).
  void set_groups(const std::vector<ParamGroup>& groups) {
    for (const auto& g : groups)
      for (const auto& name : g.tensors) {
        const size_t i = index_of(name, g.name);
        lr_scale_[i] = g.lr_scale;
        wd_[i] = g.weight_decay >= 0 ? g.weight_decay : cfg_.weight_decay;
        frozen_[i] = g.frozen;
      }
  }
  bool frozen(size_t tensor) const { return frozen_[tensor] != 0; }
  bool any_frozen() const {
    for (uint8_t f : frozen_)
      if (f) return true;
    return false;
  }
  // Optimiser steps taken (the largest per-tensor count).
  int64_t steps() const {
    int64_t t = 0;
    for (int64_t s : steps_) t = std::max(t, s);
    return t;
  }
  const std::vector<int64_t>& tensor_steps() const { return steps_; }
  std::vector<T> first_moment() const { return host(m_); }
  std::vector<T> second_moment() const { return host(v_); }
  // Continues from saved state (train/checkpoint.hpp): per-tensor step counts and both moments.
  void restore(std::vector<int64_t> steps, const std::vector<T>& m, const std::vector<T>& v) {
    RD_REQUIRE(m.size() == m_.size() && v.size() == v_.size() && steps.size() == steps_.size(),
               "Adam::restore: state sizes differ");
    steps_ = std::move(steps);
    B::template to_device<T>(m_.data(), m.data(), m.size());
    B::template to_device<T>(v_.data(), v.data(), v.size());
  }

  // One update of every tensor that is not frozen, at learning rate lr (times its group's).
  void step(Ptr<B, T> p, CPtr<B, T> g, double lr) {
    const auto& infos = infos_;
    for (size_t i = 0; i < infos.size(); ++i) {
      if (frozen_[i]) continue;
      AdamStep s{lr * lr_scale_[i], cfg_.beta1, cfg_.beta2, cfg_.eps, wd_[i], cfg_.decoupled, ++steps_[i]};
      const size_t o = infos[i].offset;
      ops::adam_step<B>(p + o, g + o, m_.data() + o, v_.data() + o, int64_t(infos[i].size), s);
    }
  }

  // Global L2 norm of the gradients of the tensors that are not frozen; with max_norm > 0 they
  // are scaled down to that norm. Returns the norm before clipping.
  double clip(Ptr<B, T> g, double max_norm) const {
    const auto& infos = infos_;
    const bool all = !any_frozen();
    double sq = 0;
    if (all) {
      sq = ops::sum_squares<B>(CPtr<B, T>(g), int64_t(total_));
    } else {
      for (size_t i = 0; i < infos.size(); ++i)
        if (!frozen_[i]) sq += ops::sum_squares<B>(CPtr<B, T>(g + infos[i].offset), int64_t(infos[i].size));
    }
    const double norm = std::sqrt(sq);
    if (max_norm > 0) {
      const double c = max_norm / (norm + 1e-6);
      if (c < 1) {
        if (all) ops::scale<B>(g, int64_t(total_), c);
        else
          for (size_t i = 0; i < infos.size(); ++i)
            if (!frozen_[i]) ops::scale<B>(g + infos[i].offset, int64_t(infos[i].size), c);
      }
    }
    return norm;
  }

 private:
  size_t index_of(const std::string& name, const std::string& group) const {
    for (size_t i = 0; i < infos_.size(); ++i)
      if (infos_[i].name == name) return i;
    fail("parameter group '", group, "': the model has no tensor named '", name, "'");
  }
  std::vector<T> host(const Buffer<B, T>& b) const {
    std::vector<T> h(b.size());
    B::template to_host<T>(h.data(), b.data(), h.size());
    return h;
  }

  std::vector<ParamInfo> infos_;  // the model's tensors (a copy: the optimiser outlives moves)
  size_t total_;
  AdamConfig cfg_;
  Buffer<B, T> m_, v_;
  std::vector<int64_t> steps_;
  std::vector<double> lr_scale_, wd_;
  std::vector<uint8_t> frozen_;
};

}  // namespace recdistill
