// Tier 1: finite-difference gradient checks (double precision, central differences) for
// every layer. Each check uses loss = <output, R> for a fixed random R, so the upstream
// gradient is R, and requires a tensor-wise relative error below 1e-6 for every input and
// parameter.
#include <gtest/gtest.h>

#include "../test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/layers/layers.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using rdtest::dot;
using rdtest::gradcheck;
using rdtest::randn;
constexpr double kTol = 1e-6;

TEST(GradCheck, Linear) {
  const int R = 5, in = 4, out = 3;
  auto x = randn(R * in, 1), W = randn(out * in, 2), b = randn(out, 3), Rg = randn(R * out, 4);
  std::vector<double> y(R * out);
  auto loss = [&] {
    layers::linear_forward<B, double>(y.data(), x.data(), in, W.data(), b.data(), R, in, out);
    return dot(y, Rg);
  };
  std::vector<double> dx(R * in), dW(out * in, 0.0), db(out, 0.0);
  layers::linear_backward<B, double>(dx.data(), dW.data(), db.data(), Rg.data(), out, x.data(), in,
                                     W.data(), R, in, out);
  EXPECT_LT(gradcheck(x, dx, loss), kTol);
  EXPECT_LT(gradcheck(W, dW, loss), kTol);
  EXPECT_LT(gradcheck(b, db, loss), kTol);
}

TEST(GradCheck, LayerNorm) {
  const int R = 4, d = 6;
  auto x = randn(R * d, 5), g = randn(d, 6), be = randn(d, 7), Rg = randn(R * d, 8);
  for (auto& v : g) v += 1.0;
  std::vector<double> y(R * d), xhat(R * d), rstd(R);
  auto loss = [&] {
    layers::layer_norm_forward<B, double>(y.data(), xhat.data(), rstd.data(), x.data(), g.data(), be.data(), R,
                               d, 1e-12);
    return dot(y, Rg);
  };
  loss();
  std::vector<double> dx(R * d), dg(d, 0.0), db(d, 0.0);
  layers::layer_norm_backward<B, double>(dx.data(), dg.data(), db.data(), Rg.data(), xhat.data(), rstd.data(),
                              g.data(), R, d);
  EXPECT_LT(gradcheck(x, dx, loss), kTol);
  EXPECT_LT(gradcheck(g, dg, loss), kTol);
  EXPECT_LT(gradcheck(be, db, loss), kTol);
}

TEST(GradCheck, GeluAndRelu) {
  const int n = 40;
  auto x = randn(n, 9, 2.0), Rg = randn(n, 10);
  std::vector<double> y(n), dx(n);
  auto gelu = [&] {
    layers::gelu_forward<B, double>(y.data(), x.data(), n);
    return dot(y, Rg);
  };
  layers::gelu_backward<B, double>(dx.data(), Rg.data(), x.data(), n);
  EXPECT_LT(gradcheck(x, dx, gelu), kTol);
  for (auto& v : x)
    if (std::abs(v) < 1e-3) v = 0.5;  // keep away from ReLU's kink
  auto relu = [&] {
    layers::relu_forward<B, double>(y.data(), x.data(), n);
    return dot(y, Rg);
  };
  relu();
  layers::relu_backward<B, double>(dx.data(), Rg.data(), y.data(), n);
  EXPECT_LT(gradcheck(x, dx, relu), kTol);
}

TEST(GradCheck, DropoutIsDeterministicAndInverted) {
  const int R = 8, n = 33;
  auto x = randn(R * n, 11), Rg = randn(R * n, 12);
  std::vector<double> y(R * n), mask(R * n), mask2(R * n), dx(R * n);
  layers::DropoutKey key{42, 3, 7};
  auto loss = [&] {
    layers::dropout_forward<B, double>(y.data(), mask.data(), x.data(), R, n, 0.3, key, 1);
    return dot(y, Rg);
  };
  loss();
  int dropped = 0;
  for (double m : mask) {
    ASSERT_TRUE(m == 0.0 || std::abs(m - 1.0 / 0.7) < 1e-12);
    dropped += m == 0.0;
  }
  EXPECT_GT(dropped, R * n / 10);
  EXPECT_LT(dropped, R * n / 2);
  layers::dropout_forward<B, double>(y.data(), mask2.data(), x.data(), R, n, 0.3, key, 1);
  EXPECT_EQ(mask, mask2);  // same key, same mask
  layers::dropout_forward<B, double>(y.data(), mask2.data(), x.data(), R, n, 0.3, key, 2);
  EXPECT_NE(mask, mask2);  // another site, another mask
  layers::dropout_backward<B, double>(dx.data(), Rg.data(), mask.data(), R * n);
  EXPECT_LT(gradcheck(x, dx, loss), kTol);
}

TEST(GradCheck, EmbeddingSkipsPadOnLookup) {
  const int N = 5, d = 3, R = 6;
  std::vector<int32_t> ids = {1, 0, 4, 1, 2, 0};
  auto E = randn(N * d, 13), Rg = randn(R * d, 14);
  std::vector<double> y(R * d);
  auto loss = [&] {
    layers::embedding_forward<B, double>(y.data(), E.data(), ids.data(), R, d, 2.0);
    return dot(y, Rg);
  };
  std::vector<double> dE(N * d, 0.0);
  layers::embedding_backward<B, double>(dE.data(), Rg.data(), ids.data(), R, d, /*skip_pad=*/false, 2.0);
  EXPECT_LT(gradcheck(E, dE, loss), kTol);
  std::vector<double> dE_pad(N * d, 0.0);
  layers::embedding_backward<B, double>(dE_pad.data(), Rg.data(), ids.data(), R, d, /*skip_pad=*/true, 2.0);
  for (int c = 0; c < d; ++c) EXPECT_EQ(dE_pad[c], 0.0);
  for (int i = d; i < N * d; ++i) EXPECT_EQ(dE_pad[i], dE[i]);
}

class AttentionGrad : public ::testing::TestWithParam<std::tuple<layers::AttentionMask, double>> {};

TEST_P(AttentionGrad, MatchesFiniteDifferences) {
  // (Not a structured binding: clang 14 cannot capture one in the lambda below.)
  const layers::AttentionMask mask = std::get<0>(GetParam());
  const double p = std::get<1>(GetParam());
  const int Bn = 3, L = 5, H = 2, dh = 3, d = H * dh, R = Bn * L;
  // Right-padded rows of length 5, 3 and 1 (pads are never the only key of a row).
  std::vector<uint8_t> valid = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0};
  const layers::AttentionShape s{Bn, L, H, dh};
  auto qkv = randn(R * 3 * d, 15), Rg = randn(R * d, 16);
  std::vector<double> out(R * d), probs(s.probs_size()), dropped(s.probs_size()),
      dmask(s.probs_size());
  layers::DropoutKey key{7, 1, 2};
  auto loss = [&] {
    layers::attention_forward<B, double>(out.data(), probs.data(), dropped.data(), dmask.data(),
                                         qkv.data(), 3 * d, qkv.data() + d, 3 * d,
                                         qkv.data() + 2 * d, 3 * d, valid.data(), s, mask, p, key,
                                         0);
    return dot(out, Rg);
  };
  loss();
  std::vector<double> dqkv(R * 3 * d), scratch(s.probs_size());
  layers::attention_backward<B, double>(dqkv.data(), 3 * d, dqkv.data() + d, 3 * d,
                                        dqkv.data() + 2 * d, 3 * d, scratch.data(), Rg.data(),
                                        probs.data(), dropped.data(), dmask.data(), qkv.data(),
                                        3 * d, qkv.data() + d, 3 * d, qkv.data() + 2 * d, 3 * d, s,
                                        p);
  EXPECT_LT(gradcheck(qkv, dqkv, loss), kTol);
  // Masked entries carry exactly zero probability: future keys (causal masks), pad keys
  // (bidirectional: every real key, future ones included, gets some).
  for (int b = 0; b < Bn; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i)
        for (int j = 0; j < L; ++j) {
          const double pr = probs[((b * H + h) * L + i) * L + j];
          if (mask == layers::AttentionMask::bidirectional) {
            if (valid[size_t(b * L + j)]) {
              EXPECT_GT(pr, 0.0);
            } else {
              EXPECT_EQ(pr, 0.0);
            }
          } else if (j > i) {
            EXPECT_EQ(pr, 0.0);
          }
        }
}

INSTANTIATE_TEST_SUITE_P(Masks, AttentionGrad,
                         ::testing::Values(std::make_tuple(layers::AttentionMask::additive_key_padding, 0.0),
                                           std::make_tuple(layers::AttentionMask::causal, 0.0),
                                           std::make_tuple(layers::AttentionMask::bidirectional, 0.0),
                                           std::make_tuple(layers::AttentionMask::bidirectional, 0.4),
                                           std::make_tuple(layers::AttentionMask::additive_key_padding, 0.4)));

TEST(GradCheck, SoftmaxCrossEntropyTied) {
  const int R = 7, d = 4, N = 6;
  std::vector<int32_t> y = {1, 0, 5, 2, 0, 3, 5};  // 0 = ignored
  auto h = randn(R * d, 17), E = randn(N * d, 18);
  CrossEntropyWorkspace<B, double> ws;
  ws.reserve(R, 2, d, N);  // chunk of 2 rows exercises the chunking
  auto loss = [&] {
    return layers::softmax_cross_entropy<B, double>(nullptr, nullptr, h.data(), E.data(), y.data(),
                                                    R, d, N, ws);
  };
  std::vector<double> dh(R * d), dE(N * d, 0.0);
  int64_t count = 0;
  const double l = layers::softmax_cross_entropy<B, double>(dh.data(), dE.data(), h.data(),
                                                            E.data(), y.data(), R, d, N, ws, &count);
  EXPECT_EQ(count, 5);
  // Hand check of the first row's term against a direct computation.
  double manual = 0;
  for (int r = 0; r < R; ++r) {
    if (!y[r]) continue;
    std::vector<double> z(N);
    double mx = -1e300;
    for (int j = 0; j < N; ++j) {
      z[j] = 0;
      for (int c = 0; c < d; ++c) z[j] += h[r * d + c] * E[j * d + c];
      mx = std::max(mx, z[j]);
    }
    double s = 0;
    for (double v : z) s += std::exp(v - mx);
    manual += mx + std::log(s) - z[y[r]];
  }
  EXPECT_NEAR(l, manual / 5, 1e-12);
  EXPECT_LT(gradcheck(h, dh, loss), kTol);
  EXPECT_LT(gradcheck(E, dE, loss), kTol);
}

TEST(GradCheck, MaskedSoftmax) {
  const int R = 4, n = 5;
  auto x = randn(R * n, 21, 2.0), Rg = randn(R * n, 22);
  // Row 2 keeps one entry, row 3 none (all-zero output and gradient).
  std::vector<uint8_t> mask = {1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  std::vector<double> p(R * n);
  auto loss = [&] {
    ops::masked_softmax_forward<B>(p.data(), x.data(), mask.data(), R, n);
    return dot(p, Rg);
  };
  loss();
  for (int r = 0; r < R; ++r) {
    double total = 0;
    for (int j = 0; j < n; ++j) {
      if (!mask[size_t(r * n + j)]) {
        EXPECT_EQ(p[size_t(r * n + j)], 0.0);
      }
      total += p[size_t(r * n + j)];
    }
    EXPECT_NEAR(total, r == 3 ? 0.0 : 1.0, 1e-15) << r;
  }
  std::vector<double> dx(R * n);
  ops::masked_softmax_backward<B>(dx.data(), Rg.data(), p.data(), R, n);
  EXPECT_LT(gradcheck(x, dx, loss), kTol);
}

TEST(GradCheck, L2Normalise) {
  const double eps = 1e-6;
  // Rows of ordinary scale, then one row whose norm is below eps (y = x / eps there: the clamp
  // is a constant, so a step small enough to stay below eps is needed).
  for (const double scale : {1.0, 1e-9}) {
    const int R = scale == 1.0 ? 3 : 1, d = 4;
    auto x = randn(R * d, 23), Rg = randn(R * d, 24);
    for (auto& v : x) v *= scale;
    std::vector<double> y(R * d), norm(R);
    auto loss = [&] {
      ops::l2_normalise_forward<B>(y.data(), norm.data(), x.data(), R, d, eps);
      return dot(y, Rg);
    };
    loss();
    for (int r = 0; r < R; ++r) {
      double sq = 0;
      for (int c = 0; c < d; ++c) sq += y[size_t(r * d + c)] * y[size_t(r * d + c)];
      if (scale == 1.0) {
        EXPECT_NEAR(sq, 1.0, 1e-12);
      } else {
        EXPECT_EQ(norm[size_t(r)], eps);
      }
    }
    std::vector<double> dx(R * d);
    ops::l2_normalise_backward<B>(dx.data(), Rg.data(), y.data(), norm.data(), R, d, eps);
    EXPECT_LT(gradcheck(x, dx, loss, scale == 1.0 ? 1e-5 : 1e-13), kTol) << "scale " << scale;
  }
}

TEST(Ops, DotAndSum) {
  const std::vector<double> a = {1, 2, 3, 4}, b = {0.5, -1, 2, 0};
  EXPECT_DOUBLE_EQ(ops::dot<B>(a.data(), b.data(), 4), 4.5);
  EXPECT_DOUBLE_EQ(ops::sum<B>(a.data(), 4), 10.0);
  const std::vector<float> f = {1.5f, 2.5f};
  EXPECT_DOUBLE_EQ(ops::sum<B>(f.data(), 2), 4.0);
}

}  // namespace RD_TEST_FILE
