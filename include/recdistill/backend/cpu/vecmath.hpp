// recdistill/backend/cpu/vecmath.hpp: the CPU's hot element-wise loops (exp, GELU, sums), written
// so that every element goes through the same code path.
//
// Why not plain Eigen array expressions: Eigen peels unaligned heads and tails into scalar
// code (std::exp) and vectorises the middle (its own exp), and its reductions start at the
// first aligned element. Results would then depend on where a row happens to sit in memory,
// which breaks bit-for-bit determinism and batch invariance. Here float data always goes
// through Eigen's packet functions (unaligned loads, a padded last packet) and reductions
// use a fixed lane order. double (gradient checks, fixtures) uses plain scalar loops.
#pragma once
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

// GCC 12 flags its own AVX-512 intrinsics (_mm512_undefined_ps inside Eigen's packet exp and
// erf) as "used uninitialized"; the warning is about the compiler's header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace recdistill::vec {

namespace detail {
using PF = Eigen::internal::packet_traits<float>::type;
constexpr int kW = Eigen::internal::packet_traits<float>::size;

// y[i] = f(x[i], g[i]) for packets of x (and g, when given) over [0, n), including a padded
// last packet. y may alias x or g.
template <class F>
void packet_map(float* y, const float* x, const float* g, int64_t n, F f) {
  using namespace Eigen::internal;
  const PF one = pset1<PF>(1.0f);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) pstoreu(y + i, f(ploadu<PF>(x + i), g ? ploadu<PF>(g + i) : one));
  if (i < n) {
    alignas(64) float bx[kW] = {}, bg[kW] = {};
    for (int64_t k = i; k < n; ++k) bx[k - i] = x[k], bg[k - i] = g ? g[k] : 1.0f;
    pstore(bx, f(pload<PF>(bx), pload<PF>(bg)));
    for (int64_t k = i; k < n; ++k) y[k] = bx[k - i];
  }
}

// exp(x), with every result below FLT_MIN (a subnormal) made 0. Eigen 3.4's generic packet exp
// (SSE, AVX2) returns about 2.9e-39, a subnormal, for every input below about -88.7, -inf and
// the attention mask's -10000 included, where its AVX-512 exp returns 0. Subnormals cost a
// microcode assist in every later product that reads them on Intel cores: an AVX2 build trained
// BERT4Rec 6x slower than with them flushed (docs/BENCHMARKS.md, "Subnormals"). So a masked
// entry is exactly 0, and exp underflows alike, on every instruction set.
inline PF pexp_normal(const PF& x) {
  using namespace Eigen::internal;
  const PF y = pexp(x);
  return pselect(pcmp_lt(y, pset1<PF>(std::numeric_limits<float>::min())), pzero(y), y);
}
}  // namespace detail

// x = exp(x - shift)
template <class T>
void exp_shifted(T* x, int64_t n, T shift) {
  if constexpr (std::is_same_v<T, float>) {
    using namespace Eigen::internal;
    const auto s = pset1<detail::PF>(shift);
    detail::packet_map(x, x, nullptr, n,
                        [&](const detail::PF& p, const detail::PF&) { return detail::pexp_normal(psub(p, s)); });
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i] - shift);
  }
}

template <class T>
T max(const T* x, int64_t n) {
  T m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Sum in 16 interleaved lanes, combined in a fixed order: vectorisable and independent of
// the data's alignment.
template <class T>
T sum(const T* x, int64_t n) {
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += x[i + k];
  T s = 0;
  for (int k = 0; k < 16; ++k) s += acc[k];
  for (; i < n; ++i) s += x[i];
  return s;
}

// y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2
template <class T>
void gelu(T* y, const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    using namespace Eigen::internal;
    const auto half = pset1<detail::PF>(0.5f), one = pset1<detail::PF>(1.0f),
               r2 = pset1<detail::PF>(float(M_SQRT1_2));
    detail::packet_map(y, x, nullptr, n, [&](const detail::PF& a, const detail::PF&) {
      return pmul(pmul(a, half), padd(one, perf(pmul(a, r2))));
    });
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * T(0.5) * (T(1) + std::erf(x[i] * T(M_SQRT1_2)));
  }
}

// dx = g * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
template <class T>
void gelu_grad(T* dx, const T* g, const T* x, int64_t n) {
  constexpr double inv_sqrt_2pi = 0.3989422804014327;
  if constexpr (std::is_same_v<T, float>) {
    using namespace Eigen::internal;
    const auto half = pset1<detail::PF>(0.5f), one = pset1<detail::PF>(1.0f),
               r2 = pset1<detail::PF>(float(M_SQRT1_2)), mhalf = pset1<detail::PF>(-0.5f),
               c = pset1<detail::PF>(float(inv_sqrt_2pi));
    detail::packet_map(dx, x, g, n, [&](const detail::PF& a, const detail::PF& up) {
      const auto cdf = pmul(half, padd(one, perf(pmul(a, r2))));
      const auto pdf = pmul(c, detail::pexp_normal(pmul(mhalf, pmul(a, a))));
      return pmul(up, padd(cdf, pmul(a, pdf)));
    });
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T cdf = T(0.5) * (T(1) + std::erf(x[i] * T(M_SQRT1_2)));
      const T pdf = T(inv_sqrt_2pi) * std::exp(T(-0.5) * x[i] * x[i]);
      dx[i] = g[i] * (cdf + x[i] * pdf);
    }
  }
}

// The pairwise losses' term (in-batch BPR, the weighted pairwise loss): for i < n,
//   l[i] = -log(gamma + sigmoid(x[i])),  dl[i] = l'(x[i]) = -s (1 - s) / (gamma + s),  s = sigmoid(x[i]).
// With e = exp(-|x|) (never overflows) and r = 1 / (1 + e): s = r for x >= 0 and e r otherwise,
// and s (1 - s) = e r^2 for either sign, so no 0 * inf and no 1 - s cancellation.
template <class T>
void neg_log_sigmoid_gamma(T* l, T* dl, const T* x, int64_t n, T gamma) {
  if constexpr (std::is_same_v<T, float>) {
    using namespace Eigen::internal;
    using detail::PF;
    constexpr int kW = detail::kW;
    const PF one = pset1<PF>(1.0f), zero = pset1<PF>(0.0f), g = pset1<PF>(gamma);
    const auto f = [&](const PF& a, PF& lo, PF& dlo) {
      const PF e = detail::pexp_normal(pnegate(pabs(a)));
      const PF r = pdiv(one, padd(one, e));
      const PF s = pselect(pcmp_le(zero, a), r, pmul(e, r));
      const PF gs = padd(g, s);
      lo = pnegate(plog(gs));
      dlo = pnegate(pdiv(pmul(e, pmul(r, r)), gs));
    };
    int64_t i = 0;
    PF lo, dlo;
    for (; i + kW <= n; i += kW) {
      f(ploadu<PF>(x + i), lo, dlo);
      pstoreu(l + i, lo);
      pstoreu(dl + i, dlo);
    }
    if (i < n) {  // the padded last packet
      alignas(64) float bx[kW] = {}, bl[kW], bd[kW];
      for (int64_t k = i; k < n; ++k) bx[k - i] = x[k];
      f(pload<PF>(bx), lo, dlo);
      pstore(bl, lo);
      pstore(bd, dlo);
      for (int64_t k = i; k < n; ++k) l[k] = bl[k - i], dl[k] = bd[k - i];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T e = std::exp(-std::abs(x[i])), r = T(1) / (T(1) + e);
      const T s = x[i] >= T(0) ? r : e * r;
      l[i] = -std::log(gamma + s);
      dl[i] = -(e * r * r) / (gamma + s);
    }
  }
}

}  // namespace recdistill::vec

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
