// Tier 1 for the session models: STAMP (`recbole`, `alkdrec_simplified`) and FPMC `session`
// against central finite differences, with in-batch BPR, full-softmax CE and bce / bce_multi, on a batch of
// left-aligned windows holding a full row, short rows, a repeated item (lookup scatter-add), a
// repeated target across rows and a target that is also an input.
#include <gtest/gtest.h>

#include <vector>

#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/bce_multi.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "../common/sessions.hpp"
#include "sasrec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

constexpr int kN = 9, kL = 5, kD = 6;

SeqBatch<B> session_batch() { return test::gradcheck_session_batch<B>(); }

template <class V, template <class> class O>
void stamp_gradcheck() {
  STAMPConfig cfg;
  cfg.variant = V::id;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  const STAMP<B, double, V> m(cfg);
  rdtest::model_gradcheck<STAMP<B, double, V>, O>(m, session_batch(), 0.0, rdtest::kNoTap, 1e-6, "item_embedding");
}

}  // namespace

TEST(SessionGrad, StampRecboleInBatchBPR) { stamp_gradcheck<stamp::RecBole, InBatchBPR>(); }
TEST(SessionGrad, StampRecboleCE) { stamp_gradcheck<stamp::RecBole, NextItemCE>(); }
TEST(SessionGrad, StampAlkdrecInBatchBPR) { stamp_gradcheck<stamp::Alkdrec, InBatchBPR>(); }
TEST(SessionGrad, StampAlkdrecCE) { stamp_gradcheck<stamp::Alkdrec, NextItemCE>(); }

// bce (bce_multi with one uniform negative per row) through the session models too.
TEST(SessionGrad, StampAlkdrecBce) { stamp_gradcheck<stamp::Alkdrec, BceMulti>(); }
TEST(SessionGrad, StampRecboleBce) { stamp_gradcheck<stamp::RecBole, BceMulti>(); }

TEST(SessionGrad, FpmcSessionBceMulti) {
  FPMCConfig cfg;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  cfg.bce_negatives = 3;
  const FPMCSession<B, double> m(cfg);
  rdtest::model_gradcheck<FPMCSession<B, double>, BceMulti>(m, session_batch(), 0.0, rdtest::kNoTap, 1e-6, "item_embedding");
}

TEST(SessionGrad, FpmcSessionInBatchBPR) {
  FPMCConfig cfg;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  const FPMCSession<B, double> m(cfg);
  rdtest::model_gradcheck<FPMCSession<B, double>, InBatchBPR>(m, session_batch(), 0.0, rdtest::kNoTap, 1e-6, "item_embedding");
}

// The pad row of an input table is read (STAMP keeps it random) but never trained through the
// lookup: its gradient is exactly zero when the output table is separate.
TEST(SessionGrad, PadRowOfTheInputTableGetsNoGradient) {
  STAMPConfig cfg;
  cfg.variant = STAMPVariant::alkdrec_simplified;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  using M = STAMP<B, double, stamp::Alkdrec>;
  const M m(cfg);
  auto batch = session_batch();
  std::vector<double> params(m.num_params()), grads(m.num_params(), 0.0), d_out(size_t(batch.rows) * kD);
  m.init(params.data(), 3);
  auto a = m.make_activations(batch.rows);
  InBatchBPR<M> o(m, batch.rows);
  m.forward(params.data(), a, batch.seq.data(), batch.rows, true);
  o.loss(m, params.data(), grads.data(), a, batch, {}, d_out.data());
  m.backward(params.data(), grads.data(), a, d_out.data());
  const auto& item = m.layout().find("item_embedding");
  for (int c = 0; c < kD; ++c) EXPECT_EQ(grads[item.offset + size_t(c)], 0.0);
  double row1 = 0;
  for (int c = 0; c < kD; ++c) row1 += std::abs(grads[item.offset + size_t(kD + c)]);
  EXPECT_GT(row1, 0.0);
}

}  // namespace RD_TEST_FILE
