// The CUDA backend's kernels (backend/cuda/kernels.hpp), run on the CPU (host_exec.hpp),
// against cpu::Backend, the reference. Runs everywhere, GPU or not: it checks the code each
// GPU thread runs (indexing, masks, Philox draws, reduction order). What it cannot check, the
// launch and cuBLAS on a real device, is tests/parity/'s job.
//
// Data movement and masks (nonzero ids, dropout masks: the same Philox draws) must be
// identical. Arithmetic is compared within `tight` where the kernel runs the CPU's formula in
// the CPU's order (compilers may still contract multiply-adds differently, here and in nvcc),
// and within `tol` where exp/erf or summation orders differ (the CPU's float exp and erf are
// Eigen's packet versions; its softmax sums run in 16 lanes). Then SASRec and its trainer run
// on cudahost::Backend (every op the GPU's): the gradient check passes there, and training
// follows the CPU's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "../common/test_util.hpp"
#include "../gradcheck/bert4rec_gradcheck.hpp"
#include "../gradcheck/sasrec_gradcheck.hpp"
#include "emulated_backend.hpp"
#include "random_inputs.hpp"
#include "sasrec_run.hpp"
#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/losses/attenmixer_official_ce.hpp"
#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/session_objective.hpp"
#include "recdistill/losses/recbole_bpr.hpp"
#include "../common/distill_run.hpp"
#include "../common/sessions.hpp"
#include "recdistill/eval/topk.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/train/trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using Cpu = cpu::Backend;
using K = cudahost::K;

namespace {

using cudahost::ids;
using cudahost::rnd;
std::vector<uint8_t> valid_of(const std::vector<int32_t>& v) {
  std::vector<uint8_t> m(v.size());
  for (size_t i = 0; i < v.size(); ++i) m[i] = v[i] != 0;
  return m;
}

// max |a - b| / max(1, max |b|)
template <class T>
double rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
    if (std::isnan(double(a[i])) != std::isnan(double(b[i]))) return INFINITY;
  }
  return diff / scale;
}
// Same formula, same order: only the compilers' multiply-add contraction (FMA) may differ.
template <class T>
constexpr double tight() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-14;
}
// Different exp/erf implementations or summation orders.
template <class T>
constexpr double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

}  // namespace

template <class T>
class CudaKernelsOnHost : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaKernelsOnHost, Scalars);

TYPED_TEST(CudaKernelsOnHost, ElementwiseAndMemoryOpsEqualTheCpuBitForBit) {
  using T = TypeParam;
  const int R = 37, d = 13, N = 11;
  const auto a = rnd<T>(size_t(R) * d, 1), b = rnd<T>(size_t(R) * d, 2);
  const auto id = ids(size_t(R), N, 3);
  const auto valid = valid_of(id);
  using KOps = K;
  // Each op once on the CPU backend, once through the kernels.
  {
    std::vector<T> x(size_t(R) * d), y(x.size());
    ops::fill<Cpu>(x.data(), int64_t(x.size()), 0.25);
    KOps::fill<T>(y.data(), int64_t(y.size()), 0.25);
    EXPECT_LT(rel_err(y, x), tight<T>());
    ops::add<Cpu>(x.data(), a.data(), b.data(), int64_t(x.size()));
    KOps::add<T>(y.data(), a.data(), b.data(), int64_t(y.size()));
    EXPECT_LT(rel_err(y, x), tight<T>());
    ops::mul<Cpu>(x.data(), a.data(), b.data(), int64_t(x.size()), true);
    KOps::mul<T>(y.data(), a.data(), b.data(), int64_t(y.size()), true);
    EXPECT_LT(rel_err(y, x), tight<T>());
    ops::mask_rows<Cpu>(x.data(), valid.data(), R, d);
    KOps::mask_rows<T>(y.data(), valid.data(), R, d);
    EXPECT_LT(rel_err(y, x), tight<T>());
    ops::relu_forward<Cpu>(x.data(), a.data(), int64_t(x.size()));
    KOps::relu_forward<T>(y.data(), a.data(), int64_t(y.size()));
    EXPECT_LT(rel_err(y, x), tight<T>());
    ops::relu_backward<Cpu>(x.data(), b.data(), a.data(), int64_t(x.size()));
    KOps::relu_backward<T>(y.data(), b.data(), a.data(), int64_t(y.size()));
    EXPECT_LT(rel_err(y, x), tight<T>());
    ops::scale<Cpu>(x.data(), int64_t(x.size()), -0.3);
    KOps::scale<T>(y.data(), int64_t(y.size()), -0.3);
    EXPECT_LT(rel_err(y, x), tight<T>());
  }
  {
    std::vector<uint8_t> m1(id.size()), m2(id.size());
    ops::nonzero_mask<Cpu>(m1.data(), id.data(), int64_t(id.size()));
    KOps::nonzero_mask(m2.data(), id.data(), int64_t(id.size()));
    EXPECT_EQ(m1, m2);
  }
  {  // embedding gather (scaled and not) and the scatter-add gradient, pads skipped or not
    const auto table = rnd<T>(size_t(N) * d, 4);
    std::vector<T> x(size_t(R) * d), y(x.size());
    for (double s : {1.0, 2.5}) {
      ops::gather_rows<Cpu>(x.data(), table.data(), id.data(), R, d, s);
      KOps::gather_rows<T>(y.data(), table.data(), id.data(), R, d, s);
      EXPECT_LT(rel_err(y, x), tight<T>());
    }
    for (bool skip : {false, true}) {
      std::vector<T> g1 = rnd<T>(size_t(N) * d, 5), g2 = g1;
      ops::scatter_add_rows<Cpu>(g1.data(), a.data(), id.data(), R, d, skip, 0.5);
      KOps::scatter_add_rows<T>(g2.data(), a.data(), id.data(), R, d, skip, 0.5);
      EXPECT_LT(rel_err(g2, g1), tight<T>());
    }
  }
  {  // positions, bias and their gradients
    const int Bn = 4, L = 5, n = 7, ld = 9;
    const auto pos = rnd<T>(size_t(L) * n, 6), g = rnd<T>(size_t(Bn) * L * n, 7);
    std::vector<T> x = rnd<T>(size_t(Bn) * L * n, 8), y = x;
    ops::add_position<Cpu>(x.data(), pos.data(), Bn, L, n);
    KOps::add_position<T>(y.data(), pos.data(), Bn, L, n);
    EXPECT_LT(rel_err(y, x), tight<T>());
    std::vector<T> p1 = rnd<T>(pos.size(), 9), p2 = p1;
    ops::position_grad<Cpu>(p1.data(), g.data(), Bn, L, n);
    KOps::position_grad<T>(p2.data(), g.data(), Bn, L, n);
    EXPECT_LT(rel_err(p2, p1), tight<T>());
    const auto bias = rnd<T>(size_t(n), 10);
    std::vector<T> s1 = rnd<T>(size_t(R) * ld, 11), s2 = s1;
    ops::add_bias<Cpu>(s1.data(), ld, bias.data(), R, n);
    KOps::add_bias<T>(s2.data(), ld, bias.data(), R, n);
    EXPECT_LT(rel_err(s2, s1), tight<T>());
    std::vector<T> db1 = rnd<T>(size_t(n), 12), db2 = db1;
    ops::bias_grad<Cpu>(db1.data(), s1.data(), ld, R, n);
    KOps::bias_grad<T>(db2.data(), s1.data(), ld, R, n);
    EXPECT_LT(rel_err(db2, db1), tight<T>());
  }
  {  // evaluation scores: the same multiply-adds in the same order (fused in the kernel, and in
     // the CPU's lanes only where the build has FMA: `tol`)
    const int n = 13, w = 29, dim = 19, ld = 31;
    const auto q = rnd<T>(size_t(n) * dim, 13), e = rnd<T>(size_t(w) * dim, 14);
    std::vector<T> s1(size_t(n) * ld, T(0)), s2 = s1;
    ops::score_rows<Cpu>(s1.data(), ld, q.data(), n, e.data(), w, dim);
    KOps::score_rows<T>(s2.data(), ld, q.data(), n, e.data(), w, dim);
    EXPECT_LT(rel_err(s2, s1), tol<T>());
#if defined(__FMA__)
    EXPECT_EQ(s2, s1) << "with FMA both sides fuse every multiply-add: equal bits";
#endif
  }
}

TYPED_TEST(CudaKernelsOnHost, LayerNormDropoutAdamEqualTheCpuBitForBit) {
  using T = TypeParam;
  const int R = 23, d = 17;
  const auto x = rnd<T>(size_t(R) * d, 20, -2, 3), gamma = rnd<T>(size_t(d), 21), beta = rnd<T>(size_t(d), 22);
  const auto g = rnd<T>(x.size(), 23);
  std::vector<T> y1(x.size()), y2(x.size()), h1(x.size()), h2(x.size()), r1(static_cast<size_t>(R)), r2(static_cast<size_t>(R));
  ops::layer_norm_forward<Cpu>(y1.data(), h1.data(), r1.data(), x.data(), gamma.data(), beta.data(), R, d, 1e-12);
  K::layer_norm_forward<T>(y2.data(), h2.data(), r2.data(), x.data(), gamma.data(), beta.data(), R, d, 1e-12);
  EXPECT_LT(rel_err(y2, y1), tight<T>());
  EXPECT_LT(rel_err(h2, h1), tight<T>());
  EXPECT_LT(rel_err(r2, r1), tight<T>());
  for (bool acc : {false, true}) {
    std::vector<T> dx1 = rnd<T>(x.size(), 24), dx2 = dx1, dg1 = rnd<T>(size_t(d), 25), dg2 = dg1,
                   db1 = rnd<T>(size_t(d), 26), db2 = db1;
    ops::layer_norm_backward<Cpu>(dx1.data(), dg1.data(), db1.data(), g.data(), h1.data(), r1.data(),
                                  gamma.data(), R, d, acc);
    K::layer_norm_backward<T>(dx2.data(), dg2.data(), db2.data(), g.data(), h1.data(), r1.data(),
                              gamma.data(), R, d, acc);
    EXPECT_LT(rel_err(dx2, dx1), tight<T>());
    EXPECT_LT(rel_err(dg2, dg1), tight<T>());
    EXPECT_LT(rel_err(db2, db1), tight<T>());
  }
  // Dropout: the same Philox draws, columns not a multiple of 4, rows offset, p = 0.
  const DropoutKey key{2020, 3, 17, 5};
  for (double p : {0.0, 0.3}) {
    std::vector<T> m1(x.size()), m2(x.size()), o1(x.size()), o2(x.size());
    ops::dropout_forward<Cpu>(o1.data(), m1.data(), x.data(), R, d, p, key, 7u, 40u);
    K::dropout_forward<T>(o2.data(), m2.data(), x.data(), R, d, p, key, 7u, 40u);
    EXPECT_LT(rel_err(o2, o1), tight<T>());
    EXPECT_EQ(m1, m2);
    if (p > 0) {
      EXPECT_GT(std::count(m1.begin(), m1.end(), T(0)), 0);
    }
    ops::dropout_backward<Cpu>(o1.data(), g.data(), m1.data(), int64_t(x.size()));
    K::dropout_backward<T>(o2.data(), g.data(), m1.data(), int64_t(x.size()));
    EXPECT_LT(rel_err(o2, o1), tight<T>());
  }
  for (bool decoupled : {false, true}) {
    AdamStep s;
    s.lr = 2e-3;
    s.weight_decay = 0.01;
    s.decoupled = decoupled;
    s.t = 7;
    std::vector<T> p1 = x, p2 = x, mm1 = rnd<T>(x.size(), 27), mm2 = mm1, v1 = rnd<T>(x.size(), 28, 0, 1), v2 = v1;
    ops::adam_step<Cpu>(p1.data(), g.data(), mm1.data(), v1.data(), int64_t(x.size()), s);
    K::adam_step<T>(p2.data(), g.data(), mm2.data(), v2.data(), int64_t(x.size()), s);
    EXPECT_LT(rel_err(p2, p1), tight<T>());
    EXPECT_LT(rel_err(mm2, mm1), tight<T>());
    EXPECT_LT(rel_err(v2, v1), tight<T>());
  }
}

TYPED_TEST(CudaKernelsOnHost, RowOpsAndReductionsMatchTheCpu) {
  using T = TypeParam;
  const int R = 19, n = 29;
  const auto s = rnd<T>(size_t(R) * n, 30, -4, 4), g = rnd<T>(s.size(), 31);
  std::vector<uint8_t> mask(s.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7 + i / n) % 3 != 0;
  std::fill(mask.begin() + 2 * n, mask.begin() + 3 * n, uint8_t(0));  // an all-masked row
  std::vector<T> p1(s.size()), p2(s.size());
  ops::masked_softmax_forward<Cpu>(p1.data(), s.data(), mask.data(), R, n);
  K::masked_softmax_forward<T>(p2.data(), s.data(), mask.data(), R, n);
  EXPECT_LT(rel_err(p2, p1), tight<T>());
  std::vector<T> d1(s.size()), d2(s.size());
  ops::masked_softmax_backward<Cpu>(d1.data(), g.data(), p1.data(), R, n);
  K::masked_softmax_backward<T>(d2.data(), g.data(), p1.data(), R, n);
  EXPECT_LT(rel_err(d2, d1), tight<T>());
  std::vector<T> y1(s.size()), y2(s.size()), n1(static_cast<size_t>(R)), n2(static_cast<size_t>(R));
  std::vector<T> x = s;
  std::fill(x.begin() + n, x.begin() + 2 * n, T(0));  // a zero row: the eps clamp
  ops::l2_normalise_forward<Cpu>(y1.data(), n1.data(), x.data(), R, n, 1e-8);
  K::l2_normalise_forward<T>(y2.data(), n2.data(), x.data(), R, n, 1e-8);
  EXPECT_LT(rel_err(y2, y1), tight<T>());
  EXPECT_LT(rel_err(n2, n1), tight<T>());
  ops::l2_normalise_backward<Cpu>(d1.data(), g.data(), y1.data(), n1.data(), R, n, 1e-8);
  K::l2_normalise_backward<T>(d2.data(), g.data(), y1.data(), n1.data(), R, n, 1e-8);
  EXPECT_LT(rel_err(d2, d1), tight<T>());
  std::vector<T> a1(s.size()), a2(s.size()), an1(static_cast<size_t>(R)), an2(an1.size());
  ops::l2_normalise_axis_forward<Cpu>(a1.data(), an1.data(), x.data(), R, n, 1, 1e-12);  // rows
  K::l2_normalise_axis_forward<T>(a2.data(), an2.data(), x.data(), R, n, 1, 1e-12);
  EXPECT_LT(rel_err(a2, a1), tol<T>());
  EXPECT_LT(rel_err(an2, an1), tol<T>());
  std::vector<T> cn1(static_cast<size_t>(n)), cn2(cn1.size());
  ops::l2_normalise_axis_forward<Cpu>(a1.data(), cn1.data(), x.data(), 1, R, n, 1e-12);  // columns
  K::l2_normalise_axis_forward<T>(a2.data(), cn2.data(), x.data(), 1, R, n, 1e-12);
  EXPECT_LT(rel_err(a2, a1), tol<T>());
  EXPECT_LT(rel_err(cn2, cn1), tol<T>());
  // GELU: the CPU's float path is Eigen's packet erf/exp; double is libm on both sides.
  const auto gx = rnd<T>(5000, 32, -6, 6);
  std::vector<T> ge1(gx.size()), ge2(gx.size());
  ops::gelu_forward<Cpu>(ge1.data(), gx.data(), int64_t(gx.size()));
  K::gelu_forward<T>(ge2.data(), gx.data(), int64_t(gx.size()));
  EXPECT_LT(rel_err(ge2, ge1), tol<T>());
  ops::gelu_backward<Cpu>(ge1.data(), gx.data(), gx.data(), int64_t(gx.size()));
  K::gelu_backward<T>(ge2.data(), gx.data(), gx.data(), int64_t(gx.size()));
  EXPECT_LT(rel_err(ge2, ge1), tol<T>());
  // Reductions over more elements than kPartials (strided partials, then in order).
  for (int64_t len : {int64_t(1), int64_t(1000), int64_t(10007)}) {
    const auto u = rnd<T>(size_t(len), 33), v = rnd<T>(size_t(len), 34);
    const double scale = double(len);
    EXPECT_NEAR(K::dot<T>(u.data(), v.data(), len), ops::dot<Cpu>(u.data(), v.data(), len), 1e-13 * scale);
    EXPECT_NEAR(K::sum<T>(u.data(), len), ops::sum<Cpu>(u.data(), len), 1e-13 * scale);
    EXPECT_NEAR(K::sum_squares<T>(u.data(), len), ops::sum_squares<Cpu>(u.data(), len), 1e-13 * scale);
  }
  EXPECT_EQ(K::sum<T>(s.data(), 0), 0.0);
}

TYPED_TEST(CudaKernelsOnHost, AttentionMatchesTheCpuForEveryMaskAndDropout) {
  using T = TypeParam;
  const AttentionShape sh{3, 6, 2, 4};  // B, L, H, dh
  const int d = sh.d(), ld = 3 * d, BL = sh.B * sh.L;
  const auto qkv = rnd<T>(size_t(BL) * ld, 40);  // packed Q | K | V, as layers/attention.hpp
  const auto dout = rnd<T>(size_t(BL) * d, 41);
  std::vector<int32_t> seq = {0, 0, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 9};
  const auto valid = valid_of(seq);
  const DropoutKey key{7, 1, 2, 3};
  for (AttentionMask m : {AttentionMask::additive_key_padding, AttentionMask::causal, AttentionMask::bidirectional})
    for (double p : {0.0, 0.25}) {
      SCOPED_TRACE(::testing::Message() << "mask " << int(m) << " p " << p);
      const size_t PS = size_t(sh.probs_size());
      std::vector<T> o[2], P[2], D[2], M[2], dq[2], dk[2], dv[2], sc[2];
      for (int k = 0; k < 2; ++k) {
        o[k].assign(size_t(BL) * d, T(0));
        P[k].assign(PS, T(0));
        D[k].assign(PS, T(0));
        M[k].assign(PS, T(0));
        dq[k].assign(size_t(BL) * ld, T(0));
        dk[k] = dq[k];
        dv[k] = dq[k];
        sc[k].assign(PS, T(0));
      }
      const T* q = qkv.data();
      ops::attention_forward<Cpu>(o[0].data(), P[0].data(), D[0].data(), M[0].data(), q, ld, q + d, ld,
                                  q + 2 * d, ld, valid.data(), sh, m, p, key, 3u);
      K::attention_forward<T>(o[1].data(), P[1].data(), D[1].data(), M[1].data(), q, ld, q + d, ld,
                              q + 2 * d, ld, valid.data(), sh, m, p, key, 3u);
      EXPECT_LT(rel_err(o[1], o[0]), tol<T>());
      EXPECT_LT(rel_err(P[1], P[0]), tol<T>());
      EXPECT_EQ(M[1], M[0]);  // the same dropout draws
      for (int k = 0; k < 2; ++k) {
        // Both backward passes from the CPU's saved probabilities, so only the backward differs.
        auto run = [&](auto ops_tag) {
          using Tag = decltype(ops_tag);
          if constexpr (std::is_same_v<Tag, Cpu>)
            ops::attention_backward<Cpu>(dq[k].data(), ld, dk[k].data(), ld, dv[k].data(), ld, sc[k].data(),
                                         dout.data(), P[0].data(), D[0].data(), M[0].data(), q, ld, q + d,
                                         ld, q + 2 * d, ld, sh, p);
          else
            K::attention_backward<T>(dq[k].data(), ld, dk[k].data(), ld, dv[k].data(), ld, sc[k].data(),
                                     dout.data(), P[0].data(), D[0].data(), M[0].data(), q, ld, q + d, ld,
                                     q + 2 * d, ld, sh, p);
        };
        if (k == 0) run(Cpu{});
        else run(K{});
      }
      EXPECT_LT(rel_err(dq[1], dq[0]), tol<T>());
      EXPECT_LT(rel_err(dk[1], dk[0]), tol<T>());
      EXPECT_LT(rel_err(dv[1], dv[0]), tol<T>());
    }
}

TYPED_TEST(CudaKernelsOnHost, CrossEntropyAndBprMatchTheCpu) {
  using T = TypeParam;
  const int R = 45, d = 8, N = 31;
  const auto h = rnd<T>(size_t(R) * d, 50), E = rnd<T>(size_t(N) * d, 51), bias = rnd<T>(size_t(N), 52);
  const auto tg = ids(size_t(R), N, 53), neg = ids(size_t(R), N, 54, 0.0);
  for (int chunk : {7, 64})
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "chunk " << chunk << " bias " << with_bias);
      CrossEntropyWorkspace<Cpu, T> ws;
      ws.reserve(R, chunk, d, N);
      std::vector<T> dh1(size_t(R) * d, T(9)), dh2 = dh1, dE1 = rnd<T>(E.size(), 55), dE2 = dE1,
                     db1 = rnd<T>(size_t(N), 56), db2 = db1, wh(size_t(chunk) * d), wz(size_t(chunk) * N),
                     wdh(size_t(chunk) * d);
      int64_t n1 = -1, n2 = -1;
      const double l1 = ops::softmax_cross_entropy<Cpu>(dh1.data(), dE1.data(), h.data(), E.data(), tg.data(), R,
                                                         d, N, ws, &n1, with_bias ? bias.data() : nullptr,
                                                         with_bias ? db1.data() : nullptr);
      const double l2 = K::softmax_cross_entropy<T>(dh2.data(), dE2.data(), h.data(), E.data(), tg.data(), R, d,
                                                    N, chunk, wh.data(), wz.data(), wdh.data(), &n2,
                                                    with_bias ? bias.data() : nullptr,
                                                    with_bias ? db2.data() : nullptr);
      EXPECT_EQ(n1, n2);
      EXPECT_GT(n1, 0);
      EXPECT_NEAR(l2, l1, tol<T>() * std::abs(l1));
      EXPECT_LT(rel_err(dh2, dh1), tol<T>());
      EXPECT_LT(rel_err(dE2, dE1), tol<T>());
      EXPECT_LT(rel_err(db2, db1), tol<T>());
    }
  {  // no target at all: loss 0, dh zeroed
    const std::vector<int32_t> none(size_t(R), 0);
    std::vector<T> dh(size_t(R) * d, T(3)), wh(size_t(8) * d), wz(size_t(8) * N), wdh(wh.size());
    int64_t n = -1;
    EXPECT_EQ(K::softmax_cross_entropy<T>(dh.data(), nullptr, h.data(), E.data(), none.data(), R, d, N, 8,
                                          wh.data(), wz.data(), wdh.data(), &n),
              0.0);
    EXPECT_EQ(n, 0);
    EXPECT_EQ(std::count(dh.begin(), dh.end(), T(0)), int64_t(dh.size()));
  }
  std::vector<T> dh1(size_t(R) * d, T(9)), dh2 = dh1, dE1 = rnd<T>(E.size(), 57), dE2 = dE1;
  int64_t n1 = -1, n2 = -1;
  const double l1 = ops::bpr_loss<Cpu>(dh1.data(), dE1.data(), h.data(), E.data(), tg.data(), neg.data(), R, d, &n1);
  const double l2 = K::bpr_loss<T>(dh2.data(), dE2.data(), h.data(), E.data(), tg.data(), neg.data(), R, d, &n2);
  EXPECT_EQ(n1, n2);
  EXPECT_NEAR(l2, l1, 1e-14 * std::abs(l1));
  EXPECT_LT(rel_err(dh2, dh1), tight<T>());
  EXPECT_LT(rel_err(dE2, dE1), tight<T>());
}

// STAMP's and FPMC's read-outs and their losses (in-batch BPR, RecBole's BPR).
TYPED_TEST(CudaKernelsOnHost, SessionOpsMatchTheCpu) {
  using T = TypeParam;
  const int Bn = 7, L = 5, d = 6, R = Bn * L;
  std::vector<int32_t> seq = ids(size_t(R), 9, 70, 0.0);
  for (int b = 0; b < Bn; ++b)  // left-aligned rows of length b % (L + 1), one empty
    for (int j = b % (L + 1); j < L; ++j) seq[size_t(b * L + j)] = 0;
  const auto valid = valid_of(seq);
  const auto x = rnd<T>(size_t(R) * d, 71, -3, 3), g = rnd<T>(size_t(R) * d, 72), gb = rnd<T>(size_t(Bn) * d, 73);
  std::vector<T> y1(x.size()), y2(x.size());
  ops::sigmoid_forward<Cpu>(y1.data(), x.data(), int64_t(x.size()));
  K::sigmoid_forward<T>(y2.data(), x.data(), int64_t(x.size()));
  EXPECT_LT(rel_err(y2, y1), tight<T>());
  ops::sigmoid_backward<Cpu>(y1.data(), g.data(), y2.data(), int64_t(x.size()));
  K::sigmoid_backward<T>(y2.data(), g.data(), y2.data(), int64_t(x.size()));
  EXPECT_LT(rel_err(y2, y1), tight<T>());
  ops::tanh_forward<Cpu>(y1.data(), x.data(), int64_t(x.size()));
  K::tanh_forward<T>(y2.data(), x.data(), int64_t(x.size()));
  EXPECT_LT(rel_err(y2, y1), tight<T>());
  ops::tanh_backward<Cpu>(y1.data(), g.data(), x.data(), int64_t(x.size()));
  K::tanh_backward<T>(y2.data(), g.data(), x.data(), int64_t(x.size()));
  EXPECT_LT(rel_err(y2, y1), tight<T>());
  std::vector<T> w1(static_cast<size_t>(R)), w2(static_cast<size_t>(R));
  ops::length_weights<Cpu>(w1.data(), valid.data(), Bn, L);
  K::length_weights<T>(w2.data(), valid.data(), Bn, L);
  EXPECT_EQ(w1, w2);
  std::vector<int32_t> i1(static_cast<size_t>(Bn)), i2(static_cast<size_t>(Bn));
  ops::last_slots<Cpu>(i1.data(), valid.data(), Bn, L);
  K::last_slots(i2.data(), valid.data(), Bn, L);
  EXPECT_EQ(i1, i2);
  std::vector<T> b1 = x, b2 = x;
  ops::broadcast_slots<Cpu>(b1.data(), gb.data(), Bn, L, d);
  K::broadcast_slots<T>(b2.data(), gb.data(), Bn, L, d);
  EXPECT_LT(rel_err(b2, b1), tight<T>());
  for (const T* w : {static_cast<const T*>(nullptr), static_cast<const T*>(w1.data())}) {
    std::vector<T> o1(size_t(Bn) * d), o2(o1.size());
    ops::slot_sum<Cpu>(o1.data(), x.data(), w, Bn, L, d);
    K::slot_sum<T>(o2.data(), x.data(), w, Bn, L, d);
    EXPECT_LT(rel_err(o2, o1), tight<T>());
    for (bool acc : {false, true}) {
      std::vector<T> dx1 = g, dx2 = g, dw1(static_cast<size_t>(R)), dw2(static_cast<size_t>(R));
      ops::slot_sum_backward<Cpu>(dx1.data(), dw1.data(), gb.data(), x.data(), w, Bn, L, d, acc);
      K::slot_sum_backward<T>(dx2.data(), dw2.data(), gb.data(), x.data(), w, Bn, L, d, acc);
      EXPECT_LT(rel_err(dx2, dx1), tight<T>());
      EXPECT_LT(rel_err(dw2, dw1), tight<T>());
    }
  }
  // FPMC's row pairs: (user, last item) ids into two tables, and the same table twice.
  const int N = 9;
  const auto ta = rnd<T>(size_t(N) * d, 74), tb = rnd<T>(size_t(N) * d, 75);
  const auto pair_ids = ids(size_t(2 * Bn), N, 76, 0.3);
  std::vector<T> p1(size_t(Bn) * 2 * d), p2(p1.size());
  ops::gather_row_pairs<Cpu>(p1.data(), ta.data(), tb.data(), pair_ids.data(), Bn, d);
  K::gather_row_pairs<T>(p2.data(), ta.data(), tb.data(), pair_ids.data(), Bn, d);
  EXPECT_EQ(p1, p2);
  for (bool same : {false, true}) {
    std::vector<T> da1 = ta, db1 = tb, da2 = ta, db2 = tb;
    ops::scatter_row_pairs<Cpu>(da1.data(), same ? da1.data() : db1.data(), p1.data(), pair_ids.data(), Bn, d, true, false);
    K::scatter_row_pairs<T>(da2.data(), same ? da2.data() : db2.data(), p1.data(), pair_ids.data(), Bn, d, true, false);
    EXPECT_LT(rel_err(da2, da1), tight<T>());
    EXPECT_LT(rel_err(db2, db1), tight<T>());
  }
  // RecBole's BPR (gamma 1e-10) and in-batch BPR over row slices (row0 > 0, C > R).
  const auto h = rnd<T>(size_t(R) * d, 77), E = rnd<T>(size_t(N) * d, 78);
  const auto tg = ids(size_t(R), N, 79, 0.3), ng = ids(size_t(R), N, 80, 0.0);
  std::vector<T> dh1(h.size(), T(5)), dh2 = dh1, dE1 = rnd<T>(E.size(), 81), dE2 = dE1;
  int64_t n1 = -1, n2 = -1;
  const double l1 = ops::bpr_gamma_loss<Cpu>(dh1.data(), dE1.data(), h.data(), E.data(), tg.data(), ng.data(), R, d,
                                             1e-10, &n1);
  const double l2 = K::bpr_gamma_loss<T>(dh2.data(), dE2.data(), h.data(), E.data(), tg.data(), ng.data(), R, d,
                                         1e-10, &n2);
  EXPECT_EQ(n1, n2);
  EXPECT_NEAR(l2, l1, 1e-13 * std::abs(l1));
  EXPECT_LT(rel_err(dh2, dh1), tight<T>());
  EXPECT_LT(rel_err(dE2, dE1), tight<T>());
  const int C = 11;
  const auto S = rnd<T>(size_t(Bn) * C, 82, -20, 20);  // large margins: both tails of the sigmoid
  for (int row0 : {0, 3}) {
    std::vector<T> dS1(S.size(), T(7)), dS2 = dS1;
    const double a1 = ops::inbatch_bpr_loss<Cpu>(dS1.data(), S.data(), Bn, C, row0, 1e-10);
    const double a2 = K::inbatch_bpr_loss<T>(dS2.data(), S.data(), Bn, C, row0, 1e-10);
    EXPECT_NEAR(a2, a1, tol<T>() * std::abs(a1));
    EXPECT_LT(rel_err(dS2, dS1), tol<T>());
  }
}

// Atten-Mixer's read-out, per-id dropout and axis normalisation; bce_multi; the weighted
// pairwise loss of active distillation.
TYPED_TEST(CudaKernelsOnHost, AttenMixerAndDistillationOpsMatchTheCpu) {
  using T = TypeParam;
  const int Bn = 4, L = 6, KI = 3, H = 2, dh = 3, d = H * dh;
  std::vector<int32_t> seq = {3, 5, 3, 0, 0, 0, 1, 2, 4, 6, 7, 2, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const auto valid = valid_of(seq);
  std::vector<int32_t> s1(size_t(Bn) * KI), s2(s1.size());
  ops::intent_slots<Cpu>(s1.data(), valid.data(), Bn, L, KI);
  K::intent_slots(s2.data(), valid.data(), Bn, L, KI);
  EXPECT_EQ(s1, s2);
  const DropoutKey key{11, 2, 3, 4};
  const auto x = rnd<T>(size_t(Bn) * L * d, 90);
  for (double p : {0.0, 0.4}) {
    std::vector<T> y1(x.size()), y2(x.size()), m1(x.size()), m2(x.size());
    ops::dropout_by_id_forward<Cpu>(y1.data(), m1.data(), x.data(), seq.data(), Bn, L, d, p, key, 9u);
    K::dropout_by_id_forward<T>(y2.data(), m2.data(), x.data(), seq.data(), Bn, L, d, p, key, 9u);
    EXPECT_EQ(m1, m2);
    EXPECT_LT(rel_err(y2, y1), tight<T>());
  }
  {  // axis normalisation backward, a zero vector included
    std::vector<T> xz = x;
    std::fill(xz.begin(), xz.begin() + d, T(0));
    std::vector<T> y(x.size()), nrm(size_t(Bn) * L), d1(x.size()), d2(x.size());
    ops::l2_normalise_axis_forward<Cpu>(y.data(), nrm.data(), xz.data(), Bn * L, d, 1, 1e-12);
    const auto g = rnd<T>(x.size(), 91);
    ops::l2_normalise_axis_backward<Cpu>(d1.data(), g.data(), y.data(), nrm.data(), Bn * L, d, 1, 1e-12);
    K::l2_normalise_axis_backward<T>(d2.data(), g.data(), y.data(), nrm.data(), Bn * L, d, 1, 1e-12);
    EXPECT_LT(rel_err(d2, d1), tight<T>());
  }
  const MixerAttentionShape sh{Bn, KI, L, H, dh};
  const auto q = rnd<T>(size_t(Bn) * KI * d, 92), kk = rnd<T>(size_t(Bn) * L * d, 93), v = rnd<T>(size_t(Bn) * L * d, 94);
  const auto go = rnd<T>(size_t(Bn) * d, 95);
  for (HeadSplit split : {HeadSplit::official_reshape, HeadSplit::standard})
    for (double lp : {1.0, 4.0}) {
      SCOPED_TRACE(::testing::Message() << "split " << int(split) << " lp " << lp);
      const size_t KLs = size_t(Bn) * H * KI * L, Ls = size_t(Bn) * H * L;
      std::vector<T> out[2], G[2], A1[2], A2[2], A3[2], D[2];
      for (int side = 0; side < 2; ++side) {
        out[side].assign(size_t(Bn) * d, T(0));
        G[side].assign(KLs, T(0));
        A1[side].assign(KLs, T(0));
        A2[side].assign(Ls, T(0));
        A3[side].assign(Ls, T(0));
        D[side].assign(Ls, T(0));
      }
      ops::mixer_attention_forward<Cpu>(out[0].data(), G[0].data(), A1[0].data(), A2[0].data(), A3[0].data(),
                                        D[0].data(), q.data(), kk.data(), v.data(), valid.data(), sh, split, lp, 0.3,
                                        key, 5u);
      K::mixer_attention_forward<T>(out[1].data(), G[1].data(), A1[1].data(), A2[1].data(), A3[1].data(), D[1].data(),
                                    q.data(), kk.data(), v.data(), valid.data(), sh, split, lp, 0.3, key, 5u);
      EXPECT_LT(rel_err(out[1], out[0]), tol<T>());
      EXPECT_LT(rel_err(A1[1], A1[0]), tol<T>());
      EXPECT_LT(rel_err(A3[1], A3[0]), tol<T>());
      EXPECT_EQ(D[1], D[0]);
      std::vector<T> dq[2], dk[2], dv[2], sc[2];
      for (int side = 0; side < 2; ++side) {
        dq[side].assign(q.size(), T(3));
        dk[side].assign(kk.size(), T(3));
        dv[side].assign(v.size(), T(3));
        sc[side].assign(KLs, T(0));
      }
      ops::mixer_attention_backward<Cpu>(dq[0].data(), dk[0].data(), dv[0].data(), sc[0].data(), go.data(), G[0].data(),
                                         A1[0].data(), A2[0].data(), A3[0].data(), D[0].data(), q.data(), kk.data(),
                                         v.data(), valid.data(), sh, split, lp);
      K::mixer_attention_backward<T>(dq[1].data(), dk[1].data(), dv[1].data(), sc[1].data(), go.data(), G[0].data(),
                                     A1[0].data(), A2[0].data(), A3[0].data(), D[0].data(), q.data(), kk.data(),
                                     v.data(), valid.data(), sh, split, lp);
      EXPECT_LT(rel_err(dq[1], dq[0]), tol<T>());
      EXPECT_LT(rel_err(dk[1], dk[0]), tol<T>());
      EXPECT_LT(rel_err(dv[1], dv[0]), tol<T>());
    }
  {  // bce_multi: 3 negatives per row
    const int R = 10, N = 13, nn = 3;
    const auto h = rnd<T>(size_t(R) * d, 96), E = rnd<T>(size_t(N) * d, 97);
    const auto tg = ids(size_t(R), N, 98, 0.0), ng = ids(size_t(R) * nn, N, 99, 0.0);
    std::vector<T> dh1(h.size(), T(4)), dh2 = dh1, dE1 = rnd<T>(E.size(), 100), dE2 = dE1;
    const double l1 = ops::bce_multi_loss<Cpu>(dh1.data(), dE1.data(), h.data(), E.data(), tg.data(), ng.data(), R, nn, d);
    const double l2 = K::bce_multi_loss<T>(dh2.data(), dE2.data(), h.data(), E.data(), tg.data(), ng.data(), R, nn, d);
    EXPECT_NEAR(l2, l1, 1e-13 * std::abs(l1));
    EXPECT_LT(rel_err(dh2, dh1), tight<T>());
    EXPECT_LT(rel_err(dE2, dE1), tight<T>());
  }
  // Weighted pairwise on small batches: row 0 has no negative (every other column shares its
  // item or its group), then no row has one (W = 0: loss 0, dS 0).
  for (const auto& ig : {std::pair<std::vector<int32_t>, std::vector<int32_t>>{{1, 1, 1, 2}, {0, 1, 2, 0}},
                         std::pair<std::vector<int32_t>, std::vector<int32_t>>{{1, 2, 3, 4}, {0, 0, 0, 0}}}) {
    const int C = 4;
    const auto w = rnd<T>(size_t(C), 103, 0.1, 2);
    const auto S = rnd<T>(size_t(C) * C, 104, -5, 5);
    std::vector<T> dS1(S.size(), T(8)), dS2 = dS1;
    double W1 = -1, W2 = -1;
    const double a1 = ops::weighted_pairwise_loss<Cpu>(dS1.data(), S.data(), ig.first.data(), ig.second.data(), w.data(),
                                                       C, C, 0, 1e-10, &W1);
    const double a2 = K::weighted_pairwise_loss<T>(dS2.data(), S.data(), ig.first.data(), ig.second.data(), w.data(), C,
                                                   C, 0, 1e-10, &W2);
    EXPECT_NEAR(W2, W1, 1e-14);
    EXPECT_NEAR(a2, a1, tol<T>() * std::max(1.0, std::abs(a1)));
    EXPECT_LT(rel_err(dS2, dS1), tol<T>());
    for (int j = 0; j < C; ++j) EXPECT_EQ(dS2[size_t(j)], T(0));  // row 0: no negative, no gradient
    if (ig.second[1] == 0) {
      EXPECT_EQ(W2, 0.0);
      EXPECT_EQ(a2, 0.0);
    }
  }
  {  // weighted pairwise: repeated items and groups (masked pairs), rows offset
    const int R = 5, C = 9;
    const std::vector<int32_t> items = {1, 2, 2, 3, 4, 5, 1, 6, 7}, groups = {0, 0, 1, 1, 2, 2, 3, 3, 4};
    const auto w = rnd<T>(size_t(C), 101, 0.1, 2);
    const auto S = rnd<T>(size_t(R) * C, 102, -10, 10);
    for (int row0 : {0, 4}) {
      std::vector<T> dS1(S.size(), T(8)), dS2 = dS1;
      double W1 = -1, W2 = -1;
      const double a1 = ops::weighted_pairwise_loss<Cpu>(dS1.data(), S.data(), items.data(), groups.data(), w.data(), R,
                                                         C, row0, 1e-10, &W1);
      const double a2 = K::weighted_pairwise_loss<T>(dS2.data(), S.data(), items.data(), groups.data(), w.data(), R, C,
                                                     row0, 1e-10, &W2);
      EXPECT_NEAR(W2, W1, 1e-14 * W1);
      EXPECT_NEAR(a2, a1, tol<T>() * std::abs(a1));
      EXPECT_LT(rel_err(dS2, dS1), tol<T>());
    }
  }
}

// Ranking: ranks and top-K lists equal the CPU's exactly, on score rows with many ties, for
// every exclusion rule and tie rule, K from 0 to beyond the CPU's small-list limit (64), on the
// one-GEMM path (rank_rows) and the chunked path (rank_targets, then rank_chunk per chunk).
TYPED_TEST(CudaKernelsOnHost, RankingEqualsTheCpuExactly) {
  using T = TypeParam;
  const int n = 9, N = 230, C = 64;
  std::mt19937_64 g(60);
  std::uniform_int_distribution<int> item(1, N - 1), level(0, 40);
  std::vector<T> F(size_t(n) * N);
  for (auto& v : F) v = T(level(g)) / T(8);  // coarse: many ties
  std::vector<std::vector<int32_t>> hist(n), seen(n);
  std::vector<eval::Case> cases(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 3 + i; ++k) hist[size_t(i)].push_back(item(g));
    for (int k = 0; k < i % 4; ++k) seen[size_t(i)].push_back(item(g));
    auto& c = cases[size_t(i)];
    c.history = hist[size_t(i)].data();
    c.length = hist[size_t(i)].size();
    c.target = i == 2 ? hist[2][0] : item(g);  // case 2: an excluded target under history/seen
    c.seen = seen[size_t(i)].data();
    c.n_seen = seen[size_t(i)].size();
  }
  for (eval::Exclude ex : {eval::Exclude::none, eval::Exclude::history, eval::Exclude::seen})
    for (eval::Ties ties : {eval::Ties::against_model, eval::Ties::index})
      for (int Kk : {0, 5, 70}) {
        SCOPED_TRACE(::testing::Message() << "exclude " << int(ex) << " ties " << int(ties) << " K " << Kk);
        std::vector<int64_t> ranks[2];
        std::vector<int32_t> items[2];
        std::vector<T> top[2];
        for (int side = 0; side < 2; ++side) {
          ranks[side].assign(size_t(n), -1);
          items[side].assign(size_t(n) * size_t(Kk), -1);
          top[side].assign(size_t(n) * size_t(Kk), T(-1));
        }
        auto block = [&](int side) {
          eval::RankBlock<T> b;
          b.cases = cases.data();
          b.o.exclude = ex;
          b.o.ties = ties;
          b.want_ranks = true;
          b.K = Kk;
          b.ranks = ranks[side].data();
          b.top_items = Kk ? items[side].data() : nullptr;
          b.top_scores = Kk ? top[side].data() : nullptr;
          return b;
        };
        for (int side = 0; side < 2; ++side) {  // the one-GEMM path
          auto b = block(side);
          std::vector<T> scores = F;
          if (side == 0) ops::rank_rows<Cpu>(b, scores.data(), N, size_t(n), N);
          else K::rank_rows<T>(b, scores.data(), N, size_t(n), N);
        }
        EXPECT_EQ(ranks[1], ranks[0]);
        EXPECT_EQ(items[1], items[0]);
        EXPECT_EQ(top[1], top[0]);
        if (ex != eval::Exclude::none) {
          EXPECT_EQ(ranks[0][2], eval::kMissRank);
        }
        const auto full_ranks = ranks[0];
        const auto full_items = items[0];
        // Chunks of C items; every score the ops must not read (off the targets' diagonal, past
        // the last chunk's w items) is +inf, which would count as better and be selected.
        const T never = std::numeric_limits<T>::infinity();
        for (int side = 0; side < 2; ++side) {
          auto b = block(side);
          std::vector<T> ts(size_t(n) * C, never);
          for (int i = 0; i < n; ++i) ts[size_t(i) * C + size_t(i)] = F[size_t(i) * N + size_t(cases[size_t(i)].target)];
          if (side == 0) ops::rank_targets<Cpu>(b, ts.data(), C, size_t(n));
          else K::rank_targets<T>(b, ts.data(), C, size_t(n));
          for (int c0 = 0; c0 < N; c0 += C) {
            const int w = std::min(C, N - c0);
            std::vector<T> chunk(size_t(n) * C, never);
            for (int i = 0; i < n; ++i)
              for (int t = 0; t < w; ++t) chunk[size_t(i) * C + size_t(t)] = F[size_t(i) * N + size_t(c0 + t)];
            if (side == 0) ops::rank_chunk<Cpu>(b, chunk.data(), C, size_t(n), c0, w, c0 + C >= N);
            else K::rank_chunk<T>(b, chunk.data(), C, size_t(n), c0, w, c0 + C >= N);
          }
        }
        EXPECT_EQ(ranks[1], ranks[0]);
        EXPECT_EQ(items[1], items[0]);
        EXPECT_EQ(top[1], top[0]);
        EXPECT_EQ(ranks[0], full_ranks);  // both paths agree (the CPU's own invariant)
        EXPECT_EQ(items[0], full_items);
      }
}

// ---- the whole model on the GPU's algorithms -----------------------------------------------

using Emu = cudahost::Backend;
static_assert(Backbone<SASRec<Emu>>);
static_assert(Objective<NextItemCE<SASRec<Emu>>, SASRec<Emu>>);

TEST(CudaKernelsOnHostModel, SASRecGradientCheck) {
  rdtest::sasrec_gradcheck<Emu, sasrec::RecBole, NextItemCE>(0.3, 1);
  rdtest::sasrec_gradcheck<Emu, sasrec::Pmixer, NextItemCE>(0.0, 0);
  rdtest::sasrec_gradcheck<Emu, sasrec::RecBole, SampledBPR>(0.0);
}

// The session models on the GPU's ops: STAMP (both variants) and FPMC with in-batch BPR and CE,
// FPMC `recbole` with RecBole's BPR, against central finite differences.
namespace {
template <class V, template <class> class O>
void stamp_emu_gradcheck() {
  STAMPConfig cfg;
  cfg.variant = V::id;
  cfg.n_items = 9;
  cfg.max_len = 5;
  cfg.hidden = 6;
  const STAMP<Emu, double, V> m(cfg);
  rdtest::model_gradcheck<STAMP<Emu, double, V>, O>(m, test::gradcheck_session_batch<Emu>(), 0.0, rdtest::kNoTap,
                                                     1e-6, "item_embedding");
}
}  // namespace

TEST(CudaKernelsOnHostModel, SessionModelsGradientCheck) {
  stamp_emu_gradcheck<stamp::RecBole, InBatchBPR>();
  stamp_emu_gradcheck<stamp::RecBole, NextItemCE>();
  stamp_emu_gradcheck<stamp::Alkdrec, InBatchBPR>();
  FPMCConfig cfg;
  cfg.n_items = 9;
  cfg.max_len = 5;
  cfg.hidden = 6;
  const FPMCSession<Emu, double> fs(cfg);
  rdtest::model_gradcheck<FPMCSession<Emu, double>, InBatchBPR>(fs, test::gradcheck_session_batch<Emu>(), 0.0,
                                                                rdtest::kNoTap, 1e-6, "item_embedding");
  FPMCConfig rc;
  rc.variant = FPMCVariant::recbole;
  rc.n_items = 9;
  rc.n_users = 5;
  rc.hidden = 6;
  rc.max_len = 1;
  rc.loss = FPMCLoss::bpr;
  const std::vector<int32_t> seq = {1, 3, 2, 5, 1, 7, 4, 3, 3, 8};
  const std::vector<int32_t> targets = {2, 3, 6, 2, 1};
  SeqBatch<Emu> batch(int(targets.size()), 2);
  batch.rows = int(targets.size());
  batch.targets_per_row = 1;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(targets.begin(), targets.end(), batch.target_host.begin());
  batch.upload();
  const FPMCRecBole<Emu, double> fr(rc);
  rdtest::model_gradcheck<FPMCRecBole<Emu, double>, RecBoleBPR>(fr, batch, 0.0, rdtest::kNoTap, 1e-6);
}

// Atten-Mixer (both head splits, LP pooling, dropout) with in-batch BPR and bce_multi, and the
// official variant's CE, on the GPU's ops, against central finite differences.
namespace {
AttenMixerConfig mixer_config(HeadSplit split, double dropout, double lp) {
  AttenMixerConfig cfg;
  cfg.variant = AttenMixerVariant::alkdrec;
  cfg.n_items = 9;
  cfg.max_len = 5;
  cfg.hidden = 6;
  cfg.heads = 2;
  cfg.intent_levels = 5;
  cfg.lp_exponent = lp;
  cfg.dropout = dropout;
  cfg.head_split = split;
  return cfg;
}
}  // namespace

TEST(CudaKernelsOnHostModel, AttenMixerGradientCheck) {
  using M = AttenMixer<Emu, double, attenmixer::Alkdrec>;
  const auto batch = [] { return test::gradcheck_session_batch<Emu>(); };
  const auto c1 = mixer_config(HeadSplit::official_reshape, 0.3, 1.0);
  rdtest::model_gradcheck<M, InBatchBPR>(M(c1), batch(), c1.dropout, rdtest::kNoTap, 1e-6);
  const auto c2 = mixer_config(HeadSplit::standard, 0.0, 4.0);
  rdtest::model_gradcheck<M, InBatchBPR>(M(c2), batch(), c2.dropout, rdtest::kNoTap, 1e-6);
  auto c3 = mixer_config(HeadSplit::official_reshape, 0.3, 1.0);
  c3.bce_negatives = 3;
  rdtest::model_gradcheck<M, SessionObjective>(M(c3), batch(), c3.dropout, rdtest::kNoTap, 1e-6);
  // The official variant: one table, per-item dropout, normalised rows, its scaled CE.
  using MO = AttenMixer<Emu, double, attenmixer::Official>;
  auto c4 = mixer_config(HeadSplit::official_reshape, 0.3, 4.0);
  c4.variant = AttenMixerVariant::official;
  c4.loss = SessionLoss::ce;
  rdtest::model_gradcheck<MO, AttenMixerOfficialCE>(MO(c4), batch(), c4.dropout, rdtest::kNoTap, 1e-6);
}

TEST(CudaKernelsOnHostModel, BERT4RecGradientCheck) {
  rdtest::bert4rec_gradcheck<Emu, bert4rec::RecBole>(0.3);
  rdtest::bert4rec_gradcheck<Emu, bert4rec::Hf>(0.3, 1);
}

// Three epochs of SASRec with dropout and clipping: the same dropout masks and sample order, so
// the weights stay within float rounding of the CPU's (exp and the softmax sums differ in the
// last bits), and so do the test metrics.
TEST(CudaKernelsOnHostModel, SASRecTrainsLikeTheCpuBackend) {
  const data::Split split = data::to_split(test::synthetic(80, 30, 12, 3));
  const auto [w_cpu, r_cpu] = cudahost::train_small_sasrec<Cpu>(split);
  const auto [w_emu, r_emu] = cudahost::train_small_sasrec<Emu>(split);
  EXPECT_LT(rel_err(w_emu, w_cpu), 1e-4);
  EXPECT_NEAR(r_emu.test.at("NDCG@10"), r_cpu.test.at("NDCG@10"), 1e-3);
  EXPECT_GT(r_cpu.test.at("HR@10"), 0.0);
}

// Profile distillation (SASRec, attention aggregation, cosine loss, beta, a fine-tuning phase)
// on the GPU's ops: its weights after 3 epochs stay within float rounding of the CPU's.
TEST(CudaKernelsOnHostModel, ProfileDistillationTrainsLikeTheCpuBackend) {
  const data::Split split = data::to_split(test::synthetic(60, 20, 12, 3));
  EXPECT_LT(rel_err(rdtest::distill_train<Emu>(split), rdtest::distill_train<Cpu>(split)), 1e-4);
}

}  // namespace RD_TEST_FILE
