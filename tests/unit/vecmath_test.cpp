// The vectorised element-wise loops: accuracy against double, aliasing, and bit-identical
// results wherever the data sits in memory (what determinism and batch invariance need).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "recdistill/backend/cpu/vecmath.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

TEST(VecMath, FloatMatchesDoubleAndIsAlignmentIndependent) {
  const int n = 53;  // not a multiple of any packet width
  std::vector<float> x(n + 7), g(n + 7);
  for (int i = 0; i < n + 7; ++i) x[size_t(i)] = -4.0f + 0.157f * float(i % 53), g[size_t(i)] = 0.5f + 0.01f * float(i);
  std::vector<double> xd(x.begin(), x.end()), gd(g.begin(), g.end());
  std::vector<double> yd(n + 7), dd(n + 7);
  vec::gelu(yd.data(), xd.data(), n);
  vec::gelu_grad(dd.data(), gd.data(), xd.data(), n);
  std::vector<float> y(n), d(n);
  vec::gelu(y.data(), x.data(), n);
  vec::gelu_grad(d.data(), g.data(), x.data(), n);
  for (int i = 0; i < n; ++i) {
    EXPECT_NEAR(y[size_t(i)], yd[size_t(i)], 2e-6);
    EXPECT_NEAR(d[size_t(i)], dd[size_t(i)], 2e-6);
  }
  // In place (dx aliases g), as the SASRec backward calls it.
  std::vector<float> inplace(g.begin(), g.begin() + n);
  vec::gelu_grad(inplace.data(), inplace.data(), x.data(), n);
  EXPECT_EQ(inplace, d);
  // The same values at every offset give the same bits (packets never peel to alignment).
  for (int off = 1; off < 7; ++off) {
    std::vector<float> xs(size_t(n) + size_t(off)), ys(size_t(n) + size_t(off));
    std::copy(x.begin(), x.begin() + n, xs.begin() + off);
    vec::gelu(ys.data() + off, xs.data() + off, n);
    EXPECT_TRUE(std::equal(y.begin(), y.end(), ys.begin() + off)) << "offset " << off;
    std::vector<float> e1(x.begin(), x.begin() + n), e2 = xs;
    vec::exp_shifted(e1.data(), n, 1.5f);
    vec::exp_shifted(e2.data() + off, n, 1.5f);
    EXPECT_TRUE(std::equal(e1.begin(), e1.end(), e2.begin() + off)) << "offset " << off;
    EXPECT_EQ(vec::sum(e1.data(), n), vec::sum(e2.data() + off, n));
    for (int i = 0; i < n; ++i) EXPECT_NEAR(e1[size_t(i)], std::exp(double(x[size_t(i)]) - 1.5), 1e-6 * std::exp(double(x[size_t(i)]) - 1.5));
  }
}

// The pairwise losses' term: float against a direct double evaluation, finite for extreme
// scores (no 0 * inf, no overflow), and the same bits at every offset.
TEST(VecMath, NegLogSigmoidGammaIsAccurateFiniteAndAlignmentIndependent) {
  const double gamma = 1e-10;
  std::vector<float> x;
  for (int i = 0; i < 61; ++i) x.push_back(-15.0f + 0.5f * float(i));
  for (float e : {-1e4f, -200.0f, -90.0f, -30.0f, 30.0f, 90.0f, 200.0f, 1e4f, 0.0f}) x.push_back(e);
  const int n = int(x.size());
  std::vector<float> l(x.size()), dl(x.size());
  vec::neg_log_sigmoid_gamma(l.data(), dl.data(), x.data(), n, float(gamma));
  std::vector<double> xd(x.begin(), x.end()), ld(x.size()), dld(x.size());
  vec::neg_log_sigmoid_gamma(ld.data(), dld.data(), xd.data(), n, gamma);
  for (int i = 0; i < n; ++i) {
    const double xi = xd[size_t(i)];
    // Direct, in long double: s = sigmoid(x), l = -log(gamma + s), l' = -s (1 - s) / (gamma + s).
    const long double s = 1.0L / (1.0L + std::exp(-(long double)xi));
    const double want_l = double(-std::log((long double)gamma + s));
    const double want_d = double(-s * (1.0L - s) / ((long double)gamma + s));
    EXPECT_NEAR(ld[size_t(i)], want_l, 1e-12 * (1 + std::abs(want_l))) << "x " << xi;
    EXPECT_NEAR(dld[size_t(i)], want_d, 1e-12) << "x " << xi;
    EXPECT_TRUE(std::isfinite(l[size_t(i)]) && std::isfinite(dl[size_t(i)])) << "x " << xi;
    EXPECT_NEAR(l[size_t(i)], want_l, 2e-6 * (1 + std::abs(want_l))) << "x " << xi;
    EXPECT_NEAR(dl[size_t(i)], want_d, 2e-7) << "x " << xi;
  }
  for (int off = 1; off < 7; ++off) {
    std::vector<float> xs(size_t(n + off)), ls(size_t(n + off)), ds(size_t(n + off));
    std::copy(x.begin(), x.end(), xs.begin() + off);
    vec::neg_log_sigmoid_gamma(ls.data() + off, ds.data() + off, xs.data() + off, n, float(gamma));
    EXPECT_TRUE(std::equal(l.begin(), l.end(), ls.begin() + off)) << "offset " << off;
    EXPECT_TRUE(std::equal(dl.begin(), dl.end(), ds.begin() + off)) << "offset " << off;
  }
}

// No float result is subnormal, whatever the instruction set (this file is also built without
// AVX-512: recdistill_vecmath_avx2_tests): exp of a masked entry (-inf, the mask's -10000) is
// exactly 0, results that would be subnormal are 0, and normal results keep their accuracy.
TEST(VecMath, ResultsAreZeroOrNormalNeverSubnormal) {
  const float fmin = std::numeric_limits<float>::min();
  auto normal_or_zero = [](float v) { return std::fpclassify(v) != FP_SUBNORMAL; };
  std::vector<float> x = {-std::numeric_limits<float>::infinity(), -1e30f, -10000.0f, -200.0f};
  for (int i = 0; i <= 12000; ++i) x.push_back(-120.0f + 0.01f * float(i));  // down to exp's subnormal range
  const int n = int(x.size());
  std::vector<float> e = x;
  vec::exp_shifted(e.data(), n, 0.0f);
  EXPECT_EQ(e[0], 0.0f);
  EXPECT_EQ(e[1], 0.0f);
  EXPECT_EQ(e[2], 0.0f);
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(normal_or_zero(e[size_t(i)])) << "exp(" << x[size_t(i)] << ") = " << e[size_t(i)];
    const double want = std::exp(double(x[size_t(i)]));
    if (want >= 2.0 * fmin) {
      EXPECT_NEAR(e[size_t(i)], want, 1e-6 * want) << "x " << x[size_t(i)];
    }
    if (want < 0.5 * fmin) {
      EXPECT_EQ(e[size_t(i)], 0.0f) << "x " << x[size_t(i)];
    }
  }
  // GELU's derivative at large |x| (its pdf term underflows) and the pairwise term at large |x|.
  std::vector<float> a, g;
  for (int i = 0; i <= 8000; ++i) a.push_back(-40.0f + 0.01f * float(i)), g.push_back(1.0f);
  std::vector<float> da(a.size());
  vec::gelu_grad(da.data(), g.data(), a.data(), int64_t(a.size()));
  for (size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(normal_or_zero(da[i])) << "gelu'(" << a[i] << ") = " << da[i];
  std::vector<float> s;
  for (int i = 0; i <= 4000; ++i) s.push_back(-200.0f + 0.1f * float(i));
  std::vector<float> l(s.size()), dl(s.size());
  vec::neg_log_sigmoid_gamma(l.data(), dl.data(), s.data(), int64_t(s.size()), 1e-10f);
  for (size_t i = 0; i < s.size(); ++i) {
    ASSERT_TRUE(normal_or_zero(l[i]) && normal_or_zero(dl[i])) << "x " << s[i] << ": " << l[i] << ", " << dl[i];
  }
}

}  // namespace RD_TEST_FILE
