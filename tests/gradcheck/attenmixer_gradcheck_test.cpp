// Tier 1 for Atten-Mixer (`alkdrec`, and `official` with its scaled CE over normalised, dropped-out
// rows: see the end of this file) and `bce_multi`: every parameter's gradient against central
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
#include "recdistill/losses/session_objective.hpp"
#include "recdistill/losses/attenmixer_official_ce.hpp"
#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "../common/sessions.hpp"
#include "sasrec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

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
  check<SessionObjective>(cfg);
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

// ---- official (spec §6.1): one table E, per-item slot dropout, 16 z . dropout(n(E))^T, CE ---------

namespace {

using MO = AttenMixer<B, double, attenmixer::Official>;

AttenMixerConfig official_config(HeadSplit split, double dropout, int K = kL, int H = 2, double lp = 4) {
  AttenMixerConfig cfg = config(split, dropout, K, H, lp);
  cfg.variant = AttenMixerVariant::official;
  cfg.loss = SessionLoss::ce;
  return cfg;
}

void check_official(const AttenMixerConfig& cfg) {
  const MO m(cfg);
  rdtest::model_gradcheck<MO, AttenMixerOfficialCE>(m, session_batch(), cfg.dropout, rdtest::kNoTap, 1e-6);
}

}  // namespace

// Every tensor (E through the lookups, the per-item dropout, both normalisations and the scorer's
// normalised rows; the read-out; W_T) through the loss, dropout off and on (fixed keys).
TEST(AttenMixerOfficialGrad, OfficialReshapeCE) { check_official(official_config(HeadSplit::official_reshape, 0.0)); }
TEST(AttenMixerOfficialGrad, StandardCE) { check_official(official_config(HeadSplit::standard, 0.0)); }
TEST(AttenMixerOfficialGrad, OfficialDefaultsShapeK7H1) {
  check_official(official_config(HeadSplit::official_reshape, 0.0, 7, 1, 4.0));
}
TEST(AttenMixerOfficialGrad, WithDropout) { check_official(official_config(HeadSplit::official_reshape, 0.3)); }

// The loss against a direct evaluation of spec §6.1 step 8 at dropout 0: s_j = 16 z . n(E_j) over
// j = 1..N-1 (column 0 left out), mean CE over the rows; the pad row of E gets no gradient.
TEST(AttenMixerOfficial, LossValueIsScaledCEOverNormalisedRowsWithoutThePad) {
  const MO m(official_config(HeadSplit::official_reshape, 0.0));
  auto batch = session_batch();
  std::vector<double> params(m.num_params()), grads(m.num_params(), 0.0), d_out(size_t(batch.rows) * kD);
  m.init(params.data(), 3);
  ASSERT_EQ(m.layout().infos()[0].name, "embedding.weight");
  const Scorer s = m.scorer();
  EXPECT_TRUE(s.normalise_rows);
  EXPECT_EQ(s.table, m.layout().find("embedding.weight").offset);
  auto a = m.make_activations(batch.rows);
  m.forward(params.data(), a, batch.seq.data(), batch.rows, false);
  AttenMixerOfficialCE<MO> o(m, batch.rows);
  const LossValue lv = o.loss(m, params.data(), grads.data(), a, batch, {}, d_out.data());
  double want = 0;
  for (int r = 0; r < batch.rows; ++r) {
    std::vector<double> z(m.output(a) + r * kD, m.output(a) + (r + 1) * kD), logit(kN, 0.0);
    double mx = -1e300;
    for (int j = 1; j < kN; ++j) {
      double nn = 0, dot = 0;
      for (int c = 0; c < kD; ++c) nn += params[s.table + size_t(j * kD + c)] * params[s.table + size_t(j * kD + c)];
      for (int c = 0; c < kD; ++c) dot += z[size_t(c)] * params[s.table + size_t(j * kD + c)];
      logit[size_t(j)] = 16 * dot / (std::sqrt(nn) + 1e-12);
      mx = std::max(mx, logit[size_t(j)]);
    }
    double se = 0;
    for (int j = 1; j < kN; ++j) se += std::exp(logit[size_t(j)] - mx);
    want += mx + std::log(se) - logit[size_t(batch.target_host[size_t(r)])];
  }
  EXPECT_NEAR(lv.loss, want / batch.rows, 1e-12);
  m.backward(params.data(), grads.data(), a, d_out.data());
  for (int c = 0; c < kD; ++c) EXPECT_EQ(grads[s.table + size_t(c)], 0.0);  // pad row
}

// Spec §6.1 step 1: one dropout mask per unique node of a session. The row {6, 7, 6} holds item 6
// twice: both slots get the same mask and so the same S row; item 7 and item 6 in another row get
// their own. (alkdrec draws per slot: there the two slots of item 6 differ.)
TEST(AttenMixerOfficial, DropoutMaskIsSharedByRepeatedItems) {
  auto batch = session_batch();
  batch.seq_host[0] = 6;  // row 0: {6, 2, 3, 4, 5}: item 6 again, in another row
  batch.upload();
  auto masks = [&](const auto& m) {
    std::vector<double> params(m.num_params());
    m.init(params.data(), 3);
    auto a = m.make_activations(batch.rows);
    m.forward(params.data(), a, batch.seq.data(), batch.rows, true, DropoutKey{7, 1, 2});
    std::vector<double> mask(a.Sdrop.data(), a.Sdrop.data() + size_t(batch.rows) * kL * kD),
        S(a.Spad.data() + kD, a.Spad.data() + kD + size_t(batch.rows) * kL * kD);
    return std::pair{mask, S};
  };
  auto slot = [](const std::vector<double>& v, int b, int j) {
    return std::vector<double>(v.begin() + (b * kL + j) * kD, v.begin() + (b * kL + j + 1) * kD);
  };
  const auto [mask, S] = masks(MO(official_config(HeadSplit::official_reshape, 0.5)));
  // Row 1 = {6, 7, 6}: slots 0 and 2 hold item 6.
  EXPECT_EQ(slot(mask, 1, 0), slot(mask, 1, 2));
  EXPECT_EQ(slot(S, 1, 0), slot(S, 1, 2));
  EXPECT_NE(slot(mask, 1, 0), slot(mask, 1, 1));  // item 7
  EXPECT_NE(slot(mask, 1, 0), slot(mask, 0, 0));  // item 6 in row 0
  int zeros = 0;
  for (double v : mask) {
    EXPECT_TRUE(v == 0.0 || v == 2.0) << v;
    zeros += v == 0.0;
  }
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, int(mask.size()));
  // The re-normalised rows are unit vectors; pads stay exactly 0.
  for (int b = 0; b < batch.rows; ++b)
    for (int j = 0; j < kL; ++j) {
      double nn = 0;
      for (double v : slot(S, b, j)) nn += v * v;
      if (batch.seq_host[size_t(b * kL + j)] == 0) EXPECT_EQ(nn, 0.0) << b << " " << j;
      else EXPECT_NEAR(nn, 1.0, 1e-9) << b << " " << j;
    }
  const auto [amask, aS] = masks(M(config(HeadSplit::official_reshape, 0.5)));
  EXPECT_NE(slot(amask, 1, 0), slot(amask, 1, 2));
}

// Official's objective refuses the losses that are not its own.
TEST(AttenMixerOfficial, RefusesOtherLosses) {
  auto cfg = official_config(HeadSplit::official_reshape, 0.0);
  cfg.bce_negatives = 2;
  EXPECT_THROW((AttenMixerOfficialCE<MO>(MO(cfg), 4)), Error);
  cfg.bce_negatives = 0;
  cfg.loss = SessionLoss::inbatch_bpr;
  EXPECT_THROW((AttenMixerOfficialCE<MO>(MO(cfg), 4)), Error);
  // Objectives that read the raw table refuse its normalised-rows scorer.
  cfg.loss = SessionLoss::ce;
  EXPECT_THROW((NextItemCE<MO>(MO(cfg), 4)), Error);
  EXPECT_THROW((InBatchBPR<MO>(MO(cfg), 4)), Error);
}

}  // namespace RD_TEST_FILE
