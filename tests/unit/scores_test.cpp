// Evaluation scores (backend/cpu/scores.hpp, ops::score_rows): each entry within rounding of a
// double dot product, and bit-identical wherever it is computed: at any position of the output,
// in a product of any n, w and row stride, on any thread count. Equal item rows therefore tie
// exactly, and a target scored alone equals its score in a chunk, which full ranking relies on.
// Also built without AVX-512 (recdistill_vecmath_avx2_tests); on an AVX2 machine these tests
// fail with Eigen's GEMM in place of score_rows, as did the ranking tests (docs/metrics.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/backend/ops.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

template <class T>
std::vector<T> random_rows(int rows, int dim, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd;
  std::vector<T> v(size_t(rows) * dim);
  for (auto& x : v) x = T(nd(g));
  return v;
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
void check_position_independent() {
  // Sizes that leave every kind of edge: rows not a multiple of 4, items not a multiple of any
  // panel width, a depth that is no multiple of the unrolling of a GEMM.
  const int n = 11, w = 103, dim = 37, ld = w + 5;
  const auto q = random_rows<T>(n, dim, 1), e = random_rows<T>(w, dim, 2);
  std::vector<T> s(size_t(n) * ld, T(-7));
  ops::score_rows<B>(s.data(), ld, q.data(), n, e.data(), w, dim);
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < w; ++j) {
      double ref = 0, mag = 0;
      for (int k = 0; k < dim; ++k) {
        ref += double(q[size_t(r) * dim + k]) * double(e[size_t(j) * dim + k]);
        mag += std::abs(double(q[size_t(r) * dim + k]) * double(e[size_t(j) * dim + k]));
      }
      ASSERT_NEAR(double(s[size_t(r) * ld + j]), ref, mag * dim * std::numeric_limits<T>::epsilon());
    }
  for (int r = 0; r < n; ++r)  // the stride's gap is untouched
    for (int j = w; j < ld; ++j) ASSERT_EQ(s[size_t(r) * ld + j], T(-7));
  // Every entry alone (n = w = 1), and every item at another position of another product.
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < w; ++j) {
      T one = 0;
      ops::score_rows<B>(&one, 1, q.data() + size_t(r) * dim, 1, e.data() + size_t(j) * dim, 1, dim);
      ASSERT_TRUE(same_bits(one, s[size_t(r) * ld + j])) << "row " << r << " item " << j;
    }
  std::vector<T> rev(e.size());  // the items in reverse order, scored with 3 of the rows
  for (int j = 0; j < w; ++j) std::copy_n(e.data() + size_t(j) * dim, dim, rev.data() + size_t(w - 1 - j) * dim);
  std::vector<T> s2(size_t(3) * w);
  ops::score_rows<B>(s2.data(), w, q.data() + size_t(5) * dim, 3, rev.data(), w, dim);
  for (int r = 0; r < 3; ++r)
    for (int j = 0; j < w; ++j)
      ASSERT_TRUE(same_bits(s2[size_t(r) * w + w - 1 - j], s[size_t(5 + r) * ld + j])) << "row " << r << " item " << j;
  // Two threads give the same bits as one (a product large enough to run in parallel).
  const int bn = 128, bw = 2048, bd = 64;
  const auto bq = random_rows<T>(bn, bd, 3), be = random_rows<T>(bw, bd, 4);
  std::vector<T> t1(size_t(bn) * bw), t2(size_t(bn) * bw);
  B::set_threads(1);
  ops::score_rows<B>(t1.data(), bw, bq.data(), bn, be.data(), bw, bd);
  B::set_threads(2);
  ops::score_rows<B>(t2.data(), bw, bq.data(), bn, be.data(), bw, bd);
  B::set_threads(1);
  EXPECT_EQ(0, std::memcmp(t1.data(), t2.data(), t1.size() * sizeof(T)));
}

}  // namespace

TEST(ScoreRows, FloatEntriesAreExactDotsWhereverTheySit) { check_position_independent<float>(); }
TEST(ScoreRows, DoubleEntriesAreExactDotsWhereverTheySit) { check_position_independent<double>(); }

TEST(ScoreRows, EqualItemRowsTieExactly) {
  const int n = 9, w = 61, dim = 64;
  const auto q = random_rows<float>(n, dim, 5);
  auto e = random_rows<float>(w, dim, 6);
  std::copy_n(e.data() + size_t(7) * dim, dim, e.data() + size_t(w - 1) * dim);  // item 60 = item 7
  std::vector<float> s(size_t(n) * w);
  ops::score_rows<B>(s.data(), w, q.data(), n, e.data(), w, dim);
  for (int r = 0; r < n; ++r) EXPECT_TRUE(same_bits(s[size_t(r) * w + 7], s[size_t(r) * w + w - 1])) << "row " << r;
}

}  // namespace RD_TEST_FILE
