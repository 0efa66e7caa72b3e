// recdistill/losses/reconstruction.hpp: the reconstruction losses of profile distillation
// (specs/profile-distillation.md §5) between predictions p and targets y (Bn, D), over the
// usable rows only (a profile, and a history to aggregate): B' = their count, r = p - y.
//
//   MSE     l = sum ||r_u||^2 / (B' D)               dl/dp_u = 2 r_u / (B' D)
//   RMSE    l = sqrt(MSE)                            dl/dp_u = r_u / (B' D l); 0 when l < 1e-12
//   Cosine  l = 1 - (1/B') sum_u c_u, c_u = p^_u . y^_u with x^ = x / max(||x||, 1e-6)
// dl/dy = -dl/dp for MSE and RMSE; for cosine each side goes through its normalisation. With no
// usable row (B' = 0) the loss is 0 and so are the gradients: finite for all three (the
// upstream RMSE differentiates sqrt at 0 there and gets NaN).
//
// value() computes l and keeps what backward() needs; backward(scale) writes scale * dl/dp and
// scale * dl/dy (the method passes alpha * beta, known only once l is).
//
// Each loss is a function of sums over the rows, so data-parallel ranks can reduce them
// (docs/distributed.md): raw (sum ||r_u||^2, or sum c_u for cosine), the usable count and a
// denominator `norm` (B' here; set_global() sets the reduced ones, and backward() then writes
// this rank's rows' share of the global gradient). from_sums() is the one formula for l.
#pragma once
#include <cmath>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "recdistill/backend/ops.hpp"

namespace recdistill::losses {

template <class B, class T>
struct ReconstructionWork {
  int Bn = 0, D = 0, n_usable = 0;
  double raw = 0;   // the loss's sum over the usable rows: sum ||r_u||^2, or sum c_u (cosine)
  double norm = 0;  // the denominator of the mean: n_usable, or the reduced count (set_global())
  double loss = 0;
  Buffer<B, T> r, pn, yn, tmp;  // (Bn, D): residual, or the normalised p and y
  Buffer<B, T> p_norm, y_norm;  // (Bn)
  Buffer<B, uint8_t> usable;    // (Bn)
  void reserve(int max_rows, int D_) {
    D = D_;
    r = Buffer<B, T>(size_t(max_rows) * D_);
    pn = Buffer<B, T>(size_t(max_rows) * D_);
    yn = Buffer<B, T>(size_t(max_rows) * D_);
    tmp = Buffer<B, T>(size_t(max_rows) * D_);
    p_norm = Buffer<B, T>(size_t(max_rows));
    y_norm = Buffer<B, T>(size_t(max_rows));
    usable = Buffer<B, uint8_t>(size_t(max_rows));
  }
  // The usable rows of this batch (host flags, copied once).
  void set_usable(const std::vector<uint8_t>& u) {
    Bn = int(u.size());
    n_usable = 0;
    for (uint8_t x : u) n_usable += x != 0;
    norm = n_usable;
    B::template to_device<uint8_t>(usable.data(), u.data(), u.size());
  }
};

namespace detail {

// w.r = (p - y) on usable rows, 0 elsewhere; returns sum r^2.
template <class B, class T>
double residual(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
  const int64_t n = int64_t(w.Bn) * w.D;
  B::template copy<T>(w.r.data(), y, size_t(n));
  ops::scale<B>(w.r.data(), n, -1.0);
  ops::add<B>(w.r.data(), p, CPtr<B, T>(w.r.data()), n);
  ops::mask_rows<B>(w.r.data(), CPtr<B, uint8_t>(w.usable.data()), w.Bn, w.D);
  return ops::sum_squares<B>(CPtr<B, T>(w.r.data()), n);
}

// dp = c * r, dy = -c * r.
template <class B, class T>
void residual_grads(Ptr<B, T> dp, Ptr<B, T> dy, double c, ReconstructionWork<B, T>& w) {
  const int64_t n = int64_t(w.Bn) * w.D;
  B::template copy<T>(dp, CPtr<B, T>(w.r.data()), size_t(n));
  ops::scale<B>(dp, n, c);
  if (dy) {
    B::template copy<T>(dy, CPtr<B, T>(w.r.data()), size_t(n));
    ops::scale<B>(dy, n, -c);
  }
}

}  // namespace detail

struct MSE {
  static constexpr std::string_view name = "MSE";
  static double from_sums(double raw, double /*usable*/, double norm, int D) { return norm > 0 ? raw / (norm * D) : 0.0; }
  template <class B, class T>
  static double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
    w.raw = detail::residual<B, T>(p, y, w);
    return w.loss = from_sums(w.raw, w.n_usable, w.norm, w.D);
  }
  // dp, dy (Bn, D) written (dy may be null: a constant target).
  template <class B, class T>
  static void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) {
    detail::residual_grads<B, T>(dp, dy, w.norm > 0 ? scale * 2.0 / (w.norm * w.D) : 0.0, w);
  }
};

struct RMSE {
  static constexpr std::string_view name = "RMSE";
  static double from_sums(double raw, double usable, double norm, int D) { return std::sqrt(MSE::from_sums(raw, usable, norm, D)); }
  template <class B, class T>
  static double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
    w.raw = detail::residual<B, T>(p, y, w);
    return w.loss = from_sums(w.raw, w.n_usable, w.norm, w.D);
  }
  template <class B, class T>
  static void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) {
    const bool live = w.norm > 0 && w.loss >= 1e-12;
    detail::residual_grads<B, T>(dp, dy, live ? scale / (w.norm * w.D * w.loss) : 0.0, w);
  }
};

struct Cosine {
  static constexpr std::string_view name = "cosine";
  static constexpr double eps = 1e-6;
  // sum over the usable rows of (1 - c_u), over norm (usable / norm is exactly 1 when they agree).
  static double from_sums(double raw, double usable, double norm, int /*D*/) {
    return norm > 0 ? usable / norm - raw / norm : 0.0;
  }
  template <class B, class T>
  static double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
    const int64_t n = int64_t(w.Bn) * w.D;
    ops::l2_normalise_forward<B>(w.pn.data(), w.p_norm.data(), p, w.Bn, w.D, eps);
    ops::l2_normalise_forward<B>(w.yn.data(), w.y_norm.data(), y, w.Bn, w.D, eps);
    ops::mask_rows<B>(w.pn.data(), CPtr<B, uint8_t>(w.usable.data()), w.Bn, w.D);  // unusable rows drop out
    w.raw = ops::dot<B>(CPtr<B, T>(w.pn.data()), CPtr<B, T>(w.yn.data()), n);
    return w.loss = from_sums(w.raw, w.n_usable, w.norm, w.D);
  }
  template <class B, class T>
  static void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) {
    const int64_t n = int64_t(w.Bn) * w.D;
    const double c = w.norm > 0 ? -scale / w.norm : 0.0;
    // dl/dp^ = c y^ on usable rows; then through p^ = p / ||p||.
    B::template copy<T>(w.tmp.data(), CPtr<B, T>(w.yn.data()), size_t(n));
    ops::mask_rows<B>(w.tmp.data(), CPtr<B, uint8_t>(w.usable.data()), w.Bn, w.D);
    ops::scale<B>(w.tmp.data(), n, c);
    ops::l2_normalise_backward<B>(dp, CPtr<B, T>(w.tmp.data()), CPtr<B, T>(w.pn.data()), CPtr<B, T>(w.p_norm.data()), w.Bn,
                                  w.D, eps);
    if (dy) {  // dl/dy^ = c p^ (already 0 on unusable rows)
      B::template copy<T>(w.tmp.data(), CPtr<B, T>(w.pn.data()), size_t(n));
      ops::scale<B>(w.tmp.data(), n, c);
      ops::l2_normalise_backward<B>(dy, CPtr<B, T>(w.tmp.data()), CPtr<B, T>(w.yn.data()), CPtr<B, T>(w.y_norm.data()), w.Bn,
                                    w.D, eps);
    }
  }
};

// Any of the three, chosen at run time (the plugins' configs): one instantiation for all.
struct AnyReconstruction {
  enum class Kind { mse, rmse, cosine };
  Kind kind = Kind::mse;
  std::string_view name() const { return kind == Kind::mse ? MSE::name : kind == Kind::rmse ? RMSE::name : Cosine::name; }
  template <class B, class T>
  double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) const {
    return kind == Kind::mse ? MSE::value(p, y, w) : kind == Kind::rmse ? RMSE::value(p, y, w) : Cosine::value(p, y, w);
  }
  double from_sums(double raw, double usable, double norm, int D) const {
    return kind == Kind::mse    ? MSE::from_sums(raw, usable, norm, D)
           : kind == Kind::rmse ? RMSE::from_sums(raw, usable, norm, D)
                                : Cosine::from_sums(raw, usable, norm, D);
  }
  template <class B, class T>
  void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) const {
    if (kind == Kind::mse)
      MSE::backward(dp, dy, scale, w);
    else if (kind == Kind::rmse)
      RMSE::backward(dp, dy, scale, w);
    else
      Cosine::backward(dp, dy, scale, w);
  }
};

// Data-parallel ranks: the step's reduced sums (raw, usable rows, denominator) replace this
// rank's after value(); returns the global l, and backward() then writes this rank's share of
// the global gradient.
template <class Loss, class B, class T>
double set_global(const Loss& loss, ReconstructionWork<B, T>& w, double raw, double usable, double norm) {
  w.norm = norm;
  return w.loss = loss.from_sums(raw, usable, norm, w.D);
}

// Whether a loss is RMSE (its upstream null-profile factor is a square root).
template <class Loss>
bool is_rmse(const Loss& l) {
  if constexpr (requires { l.kind; })
    return l.kind == AnyReconstruction::Kind::rmse;
  else
    return std::is_same_v<Loss, RMSE>;
}

}  // namespace recdistill::losses
