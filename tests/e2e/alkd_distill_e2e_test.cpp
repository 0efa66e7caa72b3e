// Tier 4 for active distillation's fine-tuning: a student trained only on distillation rows
// (methods/alkd_distill.hpp, losses/weighted_pairwise.hpp) learns what the "LLM" ranked high. On
// planted sessions, an LLM whose answers put each session's true next item first (weight 3),
// followed by random items, teaches STAMP the chain; answers of random items alone (the
// control) teach it nothing beyond chance. The rows go through the real answer validation and
// row construction, and the split's annotations through the trainer to the loss.
#include <gtest/gtest.h>

#include "../common/sessions.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

double hr10_after_distillation(const data::Split& split) {
  io::STAMPExperimentConfig c;
  c.session.variant = STAMPVariant::alkdrec_simplified;
  c.session.max_len = 10;
  c.session.rows = SessionRows::last;
  c.session.loss = SessionLoss::weighted_pairwise;
  c.seed = 5;
  c.session.hidden = 16;
  c.training.batch_size = 128;
  c.training.schedule = "iterations";
  c.training.steps_per_epoch = 10;
  c.training.epochs = 30;
  c.training.learning_rate = 1e-2;
  c.training.patience = 5;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
  SequentialTrainer<B, float, STAMPFamily> t(c, split);
  return t.fit().test.at("HR@10");
}

}  // namespace

TEST(AlkdDistillLearns, StudentLearnsTheItemsTheLlmRanksFirst) {
  const auto base = test::planted_sessions(1000, 200, 13);
  const double pop = test::target_popularity_hr10(base);
  const double taught = hr10_after_distillation(test::distilled_sessions(base, true, 3));
  const double control = hr10_after_distillation(test::distilled_sessions(base, false, 3));
  std::cout << "HR@10: taught " << taught << ", random answers " << control << ", popularity " << pop << "\n";
  EXPECT_GT(taught, 0.6);                 // the successor is the target ~90% of the time
  EXPECT_GT(taught, control + 0.3);
  EXPECT_LT(control, 2.0 * pop + 0.1);    // random answers carry no signal
}

// The trainer hands the split's row weights and sessions to the loss: the first epoch's loss
// changes with either (same rows, same draws, same initialisation).
TEST(AlkdDistillLearns, TheTrainerPassesRowWeightsAndSessionsToTheLoss) {
  const auto base = test::planted_sessions(300, 50, 17);
  const auto plain = test::distilled_sessions(base, true, 3);
  auto reweighted = plain, regrouped = plain;
  for (size_t i = 1; i < reweighted.train_weight.size(); ++i) reweighted.train_weight[i] = float(1 + i % 5);
  for (size_t i = 1; i < regrouped.train_group.size(); ++i) regrouped.train_group[i] = int32_t(i);
  auto first_loss = [](const data::Split& split) {
    io::STAMPExperimentConfig c;
    c.session.variant = STAMPVariant::alkdrec_simplified;
    c.session.max_len = 10;
    c.session.loss = SessionLoss::weighted_pairwise;
    c.session.hidden = 8;
    c.training.batch_size = 64;
    c.training.schedule = "iterations";
    c.training.steps_per_epoch = 3;
    c.eval.ks = {10};
    c.training.valid_metric = "HR@10";
    SequentialTrainer<B, float, STAMPFamily> t(c, split);
    double loss = 0;
    t.visit([&](auto& tr) { loss = tr.train_epoch(1).loss; });
    return loss;
  };
  const double l = first_loss(plain);
  EXPECT_EQ(first_loss(plain), l);
  EXPECT_NE(first_loss(reweighted), l);
  EXPECT_NE(first_loss(regrouped), l);
}

}  // namespace RD_TEST_FILE
