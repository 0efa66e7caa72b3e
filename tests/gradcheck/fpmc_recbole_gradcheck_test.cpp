// Tier 1 for FPMC's `recbole` variant (backbones/fpmc.hpp) and RecBole's BPR
// (losses/recbole_bpr.hpp): every gradient against central finite differences in double, on a
// batch of [user, last item] rows with a repeated user, a repeated last item and a repeated
// target (scatter-adds into one row), through RecBoleBPR and through FPMCObjective's dispatch;
// and RecBole's BPR on the `session` variant.
#include <gtest/gtest.h>

#include <vector>

#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/fpmc_objective.hpp"
#include "recdistill/losses/recbole_bpr.hpp"
#include "sasrec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

constexpr int kN = 9, kU = 5, kD = 6;

FPMCConfig recbole_config() {
  FPMCConfig c;
  c.variant = FPMCVariant::recbole;
  c.n_items = kN;
  c.n_users = kU;
  c.hidden = kD;
  c.max_len = 1;
  c.loss = FPMCLoss::bpr;
  return c;
}

// [user, last item] rows: user 1 twice, last item 3 twice, target 2 twice.
SeqBatch<B> user_last_batch() {
  const std::vector<int32_t> seq = {1, 3, 2, 5, 1, 7, 4, 3, 3, 8};
  const std::vector<int32_t> targets = {2, 3, 6, 2, 1};
  SeqBatch<B> batch(int(targets.size()), 2);
  batch.rows = int(targets.size());
  batch.targets_per_row = 1;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(targets.begin(), targets.end(), batch.target_host.begin());
  batch.upload();
  return batch;
}

}  // namespace

TEST(FpmcRecboleGrad, RecBoleBPR) {
  const FPMCRecBole<B, double> m(recbole_config());
  rdtest::model_gradcheck<FPMCRecBole<B, double>, RecBoleBPR>(m, user_last_batch(), 0.0, rdtest::kNoTap, 1e-6);
}

TEST(FpmcRecboleGrad, ThroughTheFpmcObjective) {
  const FPMCRecBole<B, double> m(recbole_config());
  rdtest::model_gradcheck<FPMCRecBole<B, double>, FPMCObjective>(m, user_last_batch(), 0.0, rdtest::kNoTap, 1e-6);
}

// RecBole's BPR on the session variant (u = mean of the window against item_output).
TEST(FpmcRecboleGrad, RecBoleBPROnTheSessionVariant) {
  FPMCConfig cfg;
  cfg.n_items = kN;
  cfg.max_len = 4;
  cfg.hidden = kD;
  cfg.loss = FPMCLoss::bpr;
  const FPMCSession<B, double> m(cfg);
  const std::vector<std::vector<int>> rows = {{1, 2, 3, 4}, {6, 7, 6}, {3, 8}, {2}};
  const std::vector<int> targets = {6, 1, 6, 2};
  SeqBatch<B> batch(4, 4);
  batch.rows = 4;
  batch.targets_per_row = 1;
  for (size_t b = 0; b < rows.size(); ++b) {
    for (int j = 0; j < 4; ++j) batch.seq_host[b * 4 + size_t(j)] = j < int(rows[b].size()) ? rows[b][size_t(j)] : 0;
    batch.target_host[b] = targets[b];
  }
  batch.upload();
  rdtest::model_gradcheck<FPMCSession<B, double>, FPMCObjective>(m, batch, 0.0, rdtest::kNoTap, 1e-6, "item_embedding");
}

}  // namespace RD_TEST_FILE
