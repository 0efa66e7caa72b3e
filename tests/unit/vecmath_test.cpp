// The vectorised element-wise loops: accuracy against double, aliasing, and bit-identical
// results wherever the data sits in memory (what determinism and batch invariance need).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "recdistill/backend/cpu/vecmath.hpp"

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
