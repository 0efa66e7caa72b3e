// Tier 1 for the backbone: the whole SASRec (both variants, two heads, padded rows, dropout on
// with fixed keys) against central finite differences, with each objective (next-item CE on all
// positions, sampled BPR) and with a tap: a test-only penalty on the mean of block k's output,
// whose gradient enters backward() at block k.
#include <gtest/gtest.h>

#include <cmath>

#include "recdistill/backend/cpu/backend.hpp"
#include "sasrec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

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
