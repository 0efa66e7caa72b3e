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
  template <class B, class T>
  static double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
    const double sq = detail::residual<B, T>(p, y, w);
    w.loss = w.n_usable ? sq / (double(w.n_usable) * w.D) : 0.0;
    return w.loss;
  }
  // dp, dy (Bn, D) written (dy may be null: a constant target).
  template <class B, class T>
  static void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) {
    detail::residual_grads<B, T>(dp, dy, w.n_usable ? scale * 2.0 / (double(w.n_usable) * w.D) : 0.0, w);
  }
};

struct RMSE {
  static constexpr std::string_view name = "RMSE";
  template <class B, class T>
  static double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
    const double sq = detail::residual<B, T>(p, y, w);
    w.loss = w.n_usable ? std::sqrt(sq / (double(w.n_usable) * w.D)) : 0.0;
    return w.loss;
  }
  template <class B, class T>
  static void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) {
    const bool live = w.n_usable && w.loss >= 1e-12;
    detail::residual_grads<B, T>(dp, dy, live ? scale / (double(w.n_usable) * w.D * w.loss) : 0.0, w);
  }
};

struct Cosine {
  static constexpr std::string_view name = "cosine";
  static constexpr double eps = 1e-6;
  template <class B, class T>
  static double value(CPtr<B, T> p, CPtr<B, T> y, ReconstructionWork<B, T>& w) {
    const int64_t n = int64_t(w.Bn) * w.D;
    ops::l2_normalise_forward<B>(w.pn.data(), w.p_norm.data(), p, w.Bn, w.D, eps);
    ops::l2_normalise_forward<B>(w.yn.data(), w.y_norm.data(), y, w.Bn, w.D, eps);
    ops::mask_rows<B>(w.pn.data(), CPtr<B, uint8_t>(w.usable.data()), w.Bn, w.D);  // unusable rows drop out
    const double sum_c = ops::dot<B>(CPtr<B, T>(w.pn.data()), CPtr<B, T>(w.yn.data()), n);
    w.loss = w.n_usable ? 1.0 - sum_c / w.n_usable : 0.0;
    return w.loss;
  }
  template <class B, class T>
  static void backward(Ptr<B, T> dp, Ptr<B, T> dy, double scale, ReconstructionWork<B, T>& w) {
    const int64_t n = int64_t(w.Bn) * w.D;
    const double c = w.n_usable ? -scale / w.n_usable : 0.0;
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

// Whether a loss is RMSE (its upstream null-profile factor is a square root).
template <class Loss>
bool is_rmse(const Loss& l) {
  if constexpr (requires { l.kind; })
    return l.kind == AnyReconstruction::Kind::rmse;
  else
    return std::is_same_v<Loss, RMSE>;
}

}  // namespace recdistill::losses
