// Active distillation's loss (losses/weighted_pairwise.hpp, spec §6.2): its value against a
// direct evaluation of the formula, and the whole gradient (STAMP alkdrec_simplified and FPMC
// session through it) against central finite differences, on a batch with a repeated item
// (masked as a negative), two rows of one session (masked with the same-session mask) and
// unequal weights.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/weighted_pairwise.hpp"
#include "sasrec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

// (No anonymous namespace: RD_TEST_FILE is this file's own, and a type of an anonymous namespace
// in a template's lambda warns under unity builds, -Wsubobject-linkage.)
constexpr int kN = 9, kL = 5, kD = 6;

// Rows 0 and 2 share item 6; rows 0 and 1 share a session (group 7), rows 2 and 4 another (8).
// Row i is training sequence i + 1 of the split.
const std::vector<float> kWeight = {0, 3, 2, 1, 3, 2};
const std::vector<int32_t> kGroup = {0, 7, 7, 8, 9, 8};

SeqBatch<B> annotated_batch() {
  const std::vector<std::vector<int>> rows = {{1, 2, 3, 4, 5}, {6, 7, 6}, {3, 8}, {2}, {4, 4, 5}};
  const std::vector<int> targets = {6, 1, 6, 2, 3};
  SeqBatch<B> batch(int(rows.size()), kL);
  batch.rows = int(rows.size());
  batch.targets_per_row = 1;
  for (size_t b = 0; b < rows.size(); ++b) {
    for (int j = 0; j < kL; ++j) batch.seq_host[b * kL + size_t(j)] = j < int(rows[b].size()) ? rows[b][size_t(j)] : 0;
    batch.target_host[b] = targets[b];
    batch.row_host[b] = int32_t(b + 1);
  }
  batch.upload();
  return batch;
}

// The objective with the annotations above set, as the trainer would.
template <class M>
struct Annotated : WeightedPairwise<M> {
  Annotated(const M& m, int capacity) : WeightedPairwise<M>(m, capacity) { this->set_row_annotations(kWeight, kGroup); }
};

TEST(WeightedPairwise, ValueIsTheSelfNormalisedWeightedMeanOverUnmaskedNegatives) {
  const int Bn = 5;
  std::vector<double> S(Bn * Bn);
  for (int i = 0; i < Bn * Bn; ++i) S[size_t(i)] = std::sin(1.3 * i) * 2.0;
  const std::vector<int32_t> items = {6, 1, 6, 2, 3}, groups = {7, 7, 8, 9, 8};
  const std::vector<double> w = {3, 2, 1, 3, 2};
  std::vector<double> dS(Bn * Bn, 99.0);
  const double got = ops::weighted_pairwise_loss<B>(dS.data(), S.data(), items.data(), groups.data(), w.data(), Bn, Bn, 0, 1e-10, nullptr);
  // Direct: row 0's negatives are rows 3, 4 (row 1: same session, row 2: same item), and so on.
  double num = 0, den = 0;
  for (int b = 0; b < Bn; ++b) {
    double sum = 0;
    int n = 0;
    for (int j = 0; j < Bn; ++j) {
      if (items[size_t(j)] == items[size_t(b)] || groups[size_t(j)] == groups[size_t(b)]) continue;
      const double x = S[size_t(b * Bn + b)] - S[size_t(b * Bn + j)];
      sum += -std::log(1e-10 + 1.0 / (1.0 + std::exp(-x)));
      ++n;
    }
    if (n == 0) continue;
    num += w[size_t(b)] * sum / n;
    den += w[size_t(b)];
  }
  EXPECT_NEAR(got, num / den, 1e-12);
  // Masked pairs get no gradient; the diagonal balances each row.
  EXPECT_EQ(dS[0 * Bn + 1], 0.0);  // same session
  EXPECT_EQ(dS[0 * Bn + 2], 0.0);  // same item
  EXPECT_NE(dS[0 * Bn + 3], 0.0);
  for (int b = 0; b < Bn; ++b) {
    double row = 0;
    for (int j = 0; j < Bn; ++j) row += dS[size_t(b * Bn + j)];
    EXPECT_NEAR(row, 0.0, 1e-12);
  }
}

TEST(WeightedPairwise, RowsWithoutNegativesAreLeftOut) {
  // Two rows of one session: neither has a negative; the loss is 0 and so is every gradient.
  const std::vector<double> S = {1, 2, 3, 4};
  const std::vector<int32_t> items = {1, 2}, groups = {5, 5};
  const std::vector<double> w = {1, 1};
  std::vector<double> dS(4, 7.0);
  EXPECT_EQ(ops::weighted_pairwise_loss<B>(dS.data(), S.data(), items.data(), groups.data(), w.data(), 2, 2, 0, 1e-10, nullptr), 0.0);
  for (double g : dS) EXPECT_EQ(g, 0.0);
}

// A data-parallel rank scores its rows b = row0.. against all C columns (losses/in_batch_bpr.hpp):
// the two slices' losses, combined by weight (W_r for weighted_pairwise, R_r for in-batch BPR),
// equal the whole batch's, and their dS rows are the whole batch's rows scaled by W / W_r.
TEST(InBatchLosses, RowSlicesCombineToTheWholeBatch) {
  const int C = 5;
  std::vector<double> S(C * C);
  for (int i = 0; i < C * C; ++i) S[size_t(i)] = std::sin(0.7 * i + 0.3) * 1.5;
  const std::vector<int32_t> items = {6, 1, 6, 2, 3}, groups = {7, 7, 8, 9, 8};
  const std::vector<double> w = {3, 2, 1, 3, 2};
  for (const int split : {1, 2, 3}) {
    SCOPED_TRACE(split);
    std::vector<double> dS(C * C), dA(split * C), dB((C - split) * C);
    double W = 0, WA = 0, WB = 0;
    const double whole = ops::weighted_pairwise_loss<B>(dS.data(), S.data(), items.data(), groups.data(), w.data(), C,
                                                        C, 0, 1e-10, &W);
    const double a = ops::weighted_pairwise_loss<B>(dA.data(), S.data(), items.data(), groups.data(), w.data(), split,
                                                    C, 0, 1e-10, &WA);
    const double bl = ops::weighted_pairwise_loss<B>(dB.data(), S.data() + split * C, items.data(), groups.data(),
                                                     w.data(), C - split, C, split, 1e-10, &WB);
    EXPECT_NEAR(WA + WB, W, 1e-12);
    EXPECT_NEAR((a * WA + bl * WB) / W, whole, 1e-12);
    for (int i = 0; i < C * C; ++i) {
      const bool first = i < split * C;
      const double part = first ? dA[size_t(i)] * WA / W : dB[size_t(i - split * C)] * WB / W;
      EXPECT_NEAR(part, dS[size_t(i)], 1e-12) << i;
    }
    // In-batch BPR: means over R_r C terms, combined by R_r.
    const double bw = ops::inbatch_bpr_loss<B>(dS.data(), S.data(), C, C, 0, 1e-10);
    const double ba = ops::inbatch_bpr_loss<B>(dA.data(), S.data(), split, C, 0, 1e-10);
    const double bb = ops::inbatch_bpr_loss<B>(dB.data(), S.data() + split * C, C - split, C, split, 1e-10);
    EXPECT_NEAR((ba * split + bb * (C - split)) / C, bw, 1e-12);
    for (int i = 0; i < C * C; ++i) {
      const bool first = i < split * C;
      const double part = first ? dA[size_t(i)] * split / C : dB[size_t(i - split * C)] * (C - split) / C;
      EXPECT_NEAR(part, dS[size_t(i)], 1e-12) << i;
    }
  }
}

TEST(WeightedPairwiseGrad, StampAlkdrec) {
  STAMPConfig cfg;
  cfg.variant = STAMPVariant::alkdrec_simplified;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  using M = STAMP<B, double, stamp::Alkdrec>;
  rdtest::model_gradcheck<M, Annotated>(M(cfg), annotated_batch(), 0.0, rdtest::kNoTap, 1e-6, "item_embedding");
}

TEST(WeightedPairwiseGrad, FpmcSession) {
  FPMCConfig cfg;
  cfg.variant = FPMCVariant::session;
  cfg.n_items = kN;
  cfg.max_len = kL;
  cfg.hidden = kD;
  using M = FPMCSession<B, double>;
  rdtest::model_gradcheck<M, Annotated>(M(cfg), annotated_batch(), 0.0, rdtest::kNoTap, 1e-6, "item_embedding");
}

}  // namespace RD_TEST_FILE
