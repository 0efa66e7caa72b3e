// recdistill/train/optimizer.hpp: Adam / AdamW and global gradient-norm clipping over the
// model's one flat parameter buffer, with PyTorch's semantics:
//   Adam:  g += wd * p (L2 in the gradient);   AdamW: p -= lr * wd * p (decoupled)
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   clip: c = max_norm / (||g||_2 + 1e-6); if c < 1, g *= c.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "recdistill/core/error.hpp"

namespace recdistill {

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;  // true = AdamW
};

template <class T>
class Adam {
 public:
  Adam(size_t n, AdamConfig cfg) : cfg_(cfg), m_(n, T(0)), v_(n, T(0)) {}
  const AdamConfig& config() const { return cfg_; }
  int64_t steps() const { return t_; }
  std::vector<T>& first_moment() { return m_; }
  std::vector<T>& second_moment() { return v_; }
  // Continues from saved state (train/checkpoint.hpp): step count and both moments.
  void restore(int64_t steps, std::vector<T> m, std::vector<T> v) {
    RD_REQUIRE(m.size() == m_.size() && v.size() == v_.size(), "Adam::restore: moment sizes differ");
    t_ = steps;
    m_ = std::move(m);
    v_ = std::move(v);
  }

  void step(T* p, const T* g) {
    ++t_;
    const double bc1 = 1.0 - std::pow(cfg_.beta1, double(t_));
    const double bc2 = 1.0 - std::pow(cfg_.beta2, double(t_));
    const T b1 = T(cfg_.beta1), b2 = T(cfg_.beta2), lr = T(cfg_.lr), wd = T(cfg_.weight_decay);
    const T step_size = T(cfg_.lr / bc1), inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2)), eps = T(cfg_.eps);
    for (size_t i = 0; i < m_.size(); ++i) {
      T gi = g[i];
      if (cfg_.decoupled) p[i] -= lr * wd * p[i];
      else if (wd != T(0)) gi += wd * p[i];
      m_[i] = b1 * m_[i] + (T(1) - b1) * gi;
      v_[i] = b2 * v_[i] + (T(1) - b2) * gi * gi;
      p[i] -= step_size * m_[i] / (std::sqrt(v_[i]) * inv_sqrt_bc2 + eps);
    }
  }

 private:
  AdamConfig cfg_;
  std::vector<T> m_, v_;
  int64_t t_ = 0;
};

// Returns the global L2 norm before clipping (max_norm <= 0: no clipping).
template <class T>
double clip_grad_norm(T* g, size_t n, double max_norm) {
  double sq = 0;
  for (size_t i = 0; i < n; ++i) sq += double(g[i]) * double(g[i]);
  const double norm = std::sqrt(sq);
  if (max_norm > 0) {
    const double c = max_norm / (norm + 1e-6);
    if (c < 1)
      for (size_t i = 0; i < n; ++i) g[i] = T(g[i] * c);
  }
  return norm;
}

}  // namespace recdistill
