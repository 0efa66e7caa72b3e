// Tier 1 for the backbone: the whole SASRec (both variants, two heads, padded rows, dropout on
// with fixed keys) against central finite differences, with each objective (next-item CE on all
// positions, sampled BPR) and with a tap: a test-only penalty on the mean of block k's output,
// whose gradient enters backward() at block k.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "recdistill/backend/cpu/backend.hpp"
#include "sasrec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

// model.seed_window (ECIR's sample): pmixer with maxlen M sees M - 1 slots and is, forward and
// backward, the model of maxlen M - 1; the extra position row is never read and gets no gradient.
TEST(SASRecSeedWindow, IsTheModelOfOneSlotLess) {
  SASRecConfig c;
  c.variant = SASRecVariant::pmixer;
  c.n_items = 9;
  c.hidden = 8;
  c.heads = 2;
  c.layers = 2;
  c.hidden_dropout = c.attn_dropout = 0.0;
  c.ln_eps = 1e-8;
  SASRecConfig cw = c;
  cw.max_len = 5;
  cw.seed_window = true;
  c.max_len = 4;
  const SASRec<B, double, sasrec::Pmixer> wide(cw), plain(c);
  ASSERT_EQ(wide.max_len(), 4);
  ASSERT_EQ(wide.layout().find("position_embedding").shape, (std::vector<int>{5, 8}));
  ASSERT_EQ(wide.num_params(), plain.num_params() + 8);
  std::vector<double> pw(wide.num_params()), pp(plain.num_params());
  wide.init(pw.data(), 3);
  for (const auto& t : plain.layout().infos()) {  // the same tensors, the last position row dropped
    const auto& tw = wide.layout().find(t.name);
    std::copy(pw.begin() + long(tw.offset), pw.begin() + long(tw.offset + t.size), pp.begin() + long(t.offset));
  }
  const int rows = 3, L = 4;
  const std::vector<int32_t> seq = {0, 0, 3, 5, 1, 2, 3, 4, 0, 0, 0, 8};
  auto aw = wide.make_activations(rows);
  auto ap = plain.make_activations(rows);
  wide.forward(pw.data(), aw, seq.data(), rows, false);
  plain.forward(pp.data(), ap, seq.data(), rows, false);
  const std::vector<double> ow(wide.output(aw), wide.output(aw) + rows * L * 8);
  const std::vector<double> op(plain.output(ap), plain.output(ap) + rows * L * 8);
  EXPECT_EQ(ow, op);
  std::vector<double> d_out(size_t(rows) * L * 8), gw(pw.size(), 0.0), gp(pp.size(), 0.0);
  for (size_t i = 0; i < d_out.size(); ++i) d_out[i] = std::sin(0.7 * double(i));
  wide.backward(pw.data(), gw.data(), aw, d_out.data());
  plain.backward(pp.data(), gp.data(), ap, d_out.data());
  for (const auto& t : plain.layout().infos()) {
    const auto& tw = wide.layout().find(t.name);
    EXPECT_EQ(std::vector<double>(gw.begin() + long(tw.offset), gw.begin() + long(tw.offset + t.size)),
              std::vector<double>(gp.begin() + long(t.offset), gp.begin() + long(t.offset + t.size)))
        << t.name;
  }
  const auto& pos = wide.layout().find("position_embedding");
  for (size_t j = 4 * 8; j < 5 * 8; ++j) EXPECT_EQ(gw[pos.offset + j], 0.0);
  // The window policy and evaluation see the same L.
  EXPECT_EQ(wide.batching(0).length(), 4);
  // Refused where it means nothing.
  SASRecConfig r = cw;
  r.variant = SASRecVariant::recbole;
  EXPECT_THROW((SASRec<B, double, sasrec::RecBole>(r)), Error);
  cw.max_len = 1;
  EXPECT_THROW((SASRec<B, double, sasrec::Pmixer>(cw)), Error);
}

TEST(SASRecGrad, RecboleCE) { rdtest::sasrec_gradcheck<B, sasrec::RecBole, NextItemCE>(0.0); }
TEST(SASRecGrad, RecboleCEDropout) { rdtest::sasrec_gradcheck<B, sasrec::RecBole, NextItemCE>(0.3); }
TEST(SASRecGrad, PmixerCE) { rdtest::sasrec_gradcheck<B, sasrec::Pmixer, NextItemCE>(0.0); }
TEST(SASRecGrad, PmixerCEDropout) { rdtest::sasrec_gradcheck<B, sasrec::Pmixer, NextItemCE>(0.3); }
TEST(SASRecGrad, RecboleBPR) { rdtest::sasrec_gradcheck<B, sasrec::RecBole, SampledBPR>(0.0); }
TEST(SASRecGrad, PmixerBPRDropout) { rdtest::sasrec_gradcheck<B, sasrec::Pmixer, SampledBPR>(0.3); }

// Taps: block 0 and the last block (-1 is not a tap point: blocks are 0-based), both variants.
TEST(SASRecGrad, RecboleTapBlock0) { rdtest::sasrec_gradcheck<B, sasrec::RecBole, NextItemCE>(0.0, 0); }
TEST(SASRecGrad, RecboleTapBlock1Dropout) {
  rdtest::sasrec_gradcheck<B, sasrec::RecBole, NextItemCE>(0.3, 1);
}
TEST(SASRecGrad, PmixerTapBlock0) { rdtest::sasrec_gradcheck<B, sasrec::Pmixer, SampledBPR>(0.0, 0); }
TEST(SASRecGrad, PmixerTapBlock1) { rdtest::sasrec_gradcheck<B, sasrec::Pmixer, NextItemCE>(0.0, 1); }
TEST(SASRecGrad, PmixerTapEmbeddingOutput) {
  rdtest::sasrec_gradcheck<B, sasrec::Pmixer, NextItemCE>(0.3, TapPoint::embedding);
}
TEST(SASRecGrad, RecboleTapEmbeddingOutput) {
  rdtest::sasrec_gradcheck<B, sasrec::RecBole, NextItemCE>(0.0, TapPoint::embedding);
}
TEST(SASRecGrad, PmixerTapFinalOutput) {
  rdtest::sasrec_gradcheck<B, sasrec::Pmixer, NextItemCE>(0.0, TapPoint::final_output);
}

// The tap changes the gradient: without it in backward() the check must fail (the test can fail).
TEST(SASRecGrad, AMissingTapIsCaught) {
  using M = SASRec<B, double, sasrec::RecBole>;
  SASRecConfig cfg;
  cfg.n_items = 9, cfg.max_len = 4, cfg.hidden = 4, cfg.heads = 2, cfg.layers = 2, cfg.inner = 8;
  cfg.hidden_dropout = cfg.attn_dropout = 0;
  const M m(cfg);
  std::vector<double> p(m.num_params()), g1(m.num_params(), 0.0), g2(m.num_params(), 0.0);
  m.init(p.data(), 3);
  auto a = m.make_activations(1);
  const int32_t seq[4] = {1, 2, 3, 0};
  m.forward(p.data(), a, seq, 1, false);
  std::vector<double> tap(4 * 4, 0.25);
  Taps<B, double> taps;
  taps.at.push_back({0, tap.data()});
  m.backward(p.data(), g1.data(), a, nullptr, taps);
  m.backward(p.data(), g2.data(), a, nullptr, {});
  double diff = 0;
  for (size_t i = 0; i < g1.size(); ++i) diff += std::abs(g1[i] - g2[i]);
  EXPECT_GT(diff, 1e-3);
  for (double v : g2) EXPECT_EQ(v, 0.0);  // no loss, no tap: no gradient
}

}  // namespace RD_TEST_FILE
