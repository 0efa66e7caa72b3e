// Helpers shared by the tests: deterministic random tensors and a finite-difference checker.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace rdtest {

inline std::vector<double> randn(size_t n, unsigned seed, double sd = 1.0) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> dist(0.0, sd);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(g);
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of `loss` w.r.t. every element of `x`, compared with `analytic` by the
// tensor-wise relative error ||a - n|| / max(||a||, ||n||). Returns that error. A tensor whose
// true gradient is zero (SASRec's key bias: softmax ignores a per-row shift) has no scale to
// be relative to; below 1e-8 in both norms the absolute error is returned instead.
inline double gradcheck(std::vector<double>& x, const std::vector<double>& analytic,
                        const std::function<double()>& loss, double h = 1e-5) {
  double diff = 0, na = 0, nn = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double orig = x[i];
    x[i] = orig + h;
    const double lp = loss();
    x[i] = orig - h;
    const double lm = loss();
    x[i] = orig;
    const double num = (lp - lm) / (2 * h);
    diff += (num - analytic[i]) * (num - analytic[i]);
    na += analytic[i] * analytic[i];
    nn += num * num;
  }
  const double scale = std::max(std::sqrt(na), std::sqrt(nn));
  return scale < 1e-8 ? std::sqrt(diff) : std::sqrt(diff) / scale;
}

}  // namespace rdtest
