// Tier 1 for Atten-Mixer (`alkdrec`) and `bce_multi`: every parameter's gradient against central
// finite differences in double precision, for both head splits, with dropout off and on (a
// fixed key: the slot and read-out masks are the same in every evaluation), with in-batch BPR,
// full-softmax CE and bce_multi, on a batch of left-aligned windows holding a full row, short
// rows (the intent queries reach before slot 0), a repeated item, a repeated target and a target
// that is also an input. The pad row of LI is read at pad slots but masked away, so its
// derivative is exactly 0 and it is compared like every other row.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/attenmixer_objective.hpp"
#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "../common/sessions.hpp"
#include "sasrec_gradcheck.hpp"

using namespace recdistill;
using B = cpu::Backend;
using M = AttenMixer<B, double, attenmixer::Alkdrec>;

namespace {

constexpr int kN = 9, kL = 5, kD = 6;

SeqBatch<B> session_batch() { return test::gradcheck_session_batch<B>(); }

AttenMixerConfig config(HeadSplit split, double dropout, int K = kL, int H = 2, double lp = 1) {
  AttenMixerConfig cfg;
  cfg.variant = AttenMixerVariant::alkdrec;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  cfg.heads = H;
  cfg.intent_levels = K;
  cfg.lp_exponent = lp;
  cfg.dropout = dropout;
  cfg.head_split = split;
  return cfg;
}

template <template <class> class O>
void check(const AttenMixerConfig& cfg) {
  const M m(cfg);
  rdtest::model_gradcheck<M, O>(m, session_batch(), cfg.dropout, rdtest::kNoTap, 1e-6);
}

// bce_multi with 3 negatives per row through the Atten-Mixer objective.
template <class Model>
using Bce3 = BceMulti<Model>;

}  // namespace

TEST(AttenMixerGrad, OfficialReshapeInBatchBPR) { check<InBatchBPR>(config(HeadSplit::official_reshape, 0.0)); }
TEST(AttenMixerGrad, StandardInBatchBPR) { check<InBatchBPR>(config(HeadSplit::standard, 0.0)); }
TEST(AttenMixerGrad, OfficialReshapeWithDropout) { check<InBatchBPR>(config(HeadSplit::official_reshape, 0.3)); }
TEST(AttenMixerGrad, StandardWithDropout) { check<InBatchBPR>(config(HeadSplit::standard, 0.3)); }
TEST(AttenMixerGrad, OfficialReshapeCE) { check<NextItemCE>(config(HeadSplit::official_reshape, 0.0)); }
TEST(AttenMixerGrad, StandardCEWithDropout) { check<NextItemCE>(config(HeadSplit::standard, 0.3)); }
// The official flavour's LP exponent (p = 4) and more levels than slots (K = 7 > L = 5).
TEST(AttenMixerGrad, LpPoolingP4) { check<InBatchBPR>(config(HeadSplit::official_reshape, 0.0, kL, 2, 4.0)); }
TEST(AttenMixerGrad, MoreLevelsThanSlots) { check<InBatchBPR>(config(HeadSplit::standard, 0.2, 7, 3, 1.0)); }
TEST(AttenMixerGrad, OneHead) { check<InBatchBPR>(config(HeadSplit::official_reshape, 0.0, 3, 1, 1.0)); }

TEST(AttenMixerGrad, BceMultiThroughTheObjective) {
  auto cfg = config(HeadSplit::official_reshape, 0.3);
  cfg.bce_negatives = 3;
  check<AttenMixerObjective>(cfg);
}

// bce_multi on its own, on the simplest session model (FPMC: u = mean of the window), with 1 and
// 4 negatives.
TEST(BceMultiGrad, FiniteDifferencesOnFpmc) {
  FPMCConfig cfg;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  const FPMCSession<B, double> m(cfg);
  rdtest::model_gradcheck<FPMCSession<B, double>, BceMulti>(m, session_batch(), 0.0, rdtest::kNoTap, 1e-6,
                                                            "item_embedding");
}

// The loss value against a direct evaluation of spec §1 on the drawn negatives, which are
// uniform over 1..N-1 (never the pad), keyed by the step and independent of the batch size.
TEST(BceMulti, ValueAndNegatives) {
  const M m(config(HeadSplit::official_reshape, 0.0));
  auto batch = session_batch();
  std::vector<double> params(m.num_params()), grads(m.num_params(), 0.0), d_out(size_t(batch.rows) * kD);
  m.init(params.data(), 3);
  auto a = m.make_activations(batch.rows);
  m.forward(params.data(), a, batch.seq.data(), batch.rows, false);
  const int n = 5;
  BceMulti<M> o(m, batch.rows, n);
  const StepContext ctx{77, 2, 9};
  const LossValue lv = o.loss(m, params.data(), grads.data(), a, batch, ctx, d_out.data());
  EXPECT_EQ(lv.targets, batch.rows);
  const auto& table = m.layout().find("item_emb.weight");
  auto score = [&](int r, int item) {
    double s = 0;
    for (int c = 0; c < kD; ++c) s += m.output(a)[r * kD + c] * params[table.offset + size_t(item) * kD + size_t(c)];
    return s;
  };
  auto softplus = [](double x) { return std::log1p(std::exp(x)); };
  double pos = 0, neg = 0;
  std::set<int> drawn;
  for (int r = 0; r < batch.rows; ++r) {
    pos += softplus(-score(r, batch.target_host[size_t(r)]));
    for (int k = 0; k < n; ++k) {
      const int j = BceMulti<M>::negative(ctx, uint32_t(r), uint32_t(k), kN);
      ASSERT_GE(j, 1);
      ASSERT_LT(j, kN);
      drawn.insert(j);
      neg += softplus(score(r, j));
    }
  }
  EXPECT_NEAR(lv.loss, pos / batch.rows + neg / (batch.rows * n), 1e-12);
  EXPECT_GT(drawn.size(), 3u);
  // Every id of 1..N-1 turns up over many draws, 0 never.
  std::vector<int> count(kN, 0);
  for (uint32_t r = 0; r < 2000; ++r) ++count[size_t(BceMulti<M>::negative(ctx, r, 0, kN))];
  EXPECT_EQ(count[0], 0);
  for (int j = 1; j < kN; ++j) EXPECT_GT(count[size_t(j)], 150) << j;
}

// The pad row of LI never gets a gradient (it is masked before anything reads it), nor do the
// rows of items absent from the batch.
TEST(AttenMixerGrad, PadRowAndUnusedRowsOfLIGetNoGradient) {
  const M m(config(HeadSplit::official_reshape, 0.3));
  auto batch = session_batch();
  std::vector<double> params(m.num_params()), grads(m.num_params(), 0.0), d_out(size_t(batch.rows) * kD);
  m.init(params.data(), 3);
  auto a = m.make_activations(batch.rows);
  InBatchBPR<M> o(m, batch.rows);
  m.forward(params.data(), a, batch.seq.data(), batch.rows, true, DropoutKey{1, 2, 3});
  o.loss(m, params.data(), grads.data(), a, batch, {}, d_out.data());
  m.backward(params.data(), grads.data(), a, d_out.data());
  const auto& li = m.layout().find("LI.weight");
  for (int c = 0; c < kD; ++c) EXPECT_EQ(grads[li.offset + size_t(c)], 0.0);  // pad row 0
  for (int row = 1; row < kN; ++row) {
    double s = 0;
    for (int c = 0; c < kD; ++c) s += std::abs(grads[li.offset + size_t(row * kD + c)]);
    const bool in_batch = row <= 8;  // items 1..8 are inputs
    EXPECT_EQ(s > 0, in_batch) << row;
  }
}

// The read-out op splits rows between threads; each row's sums run in a fixed order, so its
// outputs and gradients are bit-identical for 1 and 2 threads (dropout on, both head splits).
TEST(AttenMixerOps, ReadoutDoesNotDependOnTheThreadCount) {
  const MixerAttentionShape s{7, 4, 5, 2, 3};
  const int d = s.d();
  std::vector<double> q(size_t(s.B) * s.K * d), k(size_t(s.B) * s.L * d), v(k.size()), g(size_t(s.B) * d);
  std::vector<uint8_t> valid(size_t(s.B) * s.L);
  uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return double(x >> 11) / double(1ull << 53) - 0.5;
  };
  for (auto* vec : {&q, &k, &v, &g})
    for (auto& e : *vec) e = 2 * next();
  for (int b = 0; b < s.B; ++b)
    for (int l = 0; l < s.L; ++l) valid[size_t(b * s.L + l)] = l <= b % s.L;
  for (HeadSplit split : {HeadSplit::official_reshape, HeadSplit::standard}) {
    std::vector<std::vector<double>> runs;
    for (int threads : {1, 2}) {
      B::set_threads(threads);
      const size_t HKL = size_t(s.B) * s.H * s.K * s.L, HL = size_t(s.B) * s.H * s.L;
      std::vector<double> out(g.size()), G(HKL), A1(HKL), P(HKL), A2(HL), A3(HL), D(HL), dq(q.size()), dk(k.size()),
          dv(v.size());
      ops::mixer_attention_forward<B>(out.data(), G.data(), A1.data(), A2.data(), A3.data(), D.data(), q.data(),
                                      k.data(), v.data(), valid.data(), s, split, 2.0, 0.3, DropoutKey{9, 1, 2}, 1u);
      ops::mixer_attention_backward<B>(dq.data(), dk.data(), dv.data(), P.data(), g.data(), G.data(), A1.data(),
                                       A2.data(), A3.data(), D.data(), q.data(), k.data(), v.data(), valid.data(), s,
                                       split, 2.0);
      std::vector<double> all = out;
      for (auto* vec : {&dq, &dk, &dv, &D}) all.insert(all.end(), vec->begin(), vec->end());
      runs.push_back(std::move(all));
    }
    B::set_threads(1);
    EXPECT_EQ(runs[0], runs[1]);
  }
}
