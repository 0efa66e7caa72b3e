// Tier 4 for the session models: STAMP (both variants) and FPMC `session` learn planted session
// structure (each item's successor follows it 90% of the time) with their objectives, in the
// ALKDRec protocol (one instance per session, the last item the target, iterations of distinct
// instances) and RecBole's (every prefix a row); training is deterministic for a seed, and
// evaluation does not depend on how cases are batched.
#include <gtest/gtest.h>

#include "../common/resume.hpp"
#include "../common/sessions.hpp"
#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

using test::planted_sessions;

template <class C>
void small_training(C& c) {
  c.seed = 5;
  c.session.hidden = 16;
  c.training.batch_size = 64;
  c.training.schedule = "iterations";
  c.training.steps_per_epoch = 10;
  c.training.epochs = 40;
  c.training.learning_rate = 1e-2;
  c.training.patience = 5;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
}

io::STAMPExperimentConfig stamp_config(STAMPVariant v) {
  io::STAMPExperimentConfig c;
  c.session.variant = v;
  const bool alkd = v == STAMPVariant::alkdrec_simplified;
  c.session.max_len = 10;
  c.session.rows = alkd ? SessionRows::last : SessionRows::prefixes;
  c.session.loss = alkd ? SessionLoss::inbatch_bpr : SessionLoss::ce;
  small_training(c);
  return c;
}

io::FPMCExperimentConfig fpmc_config() {
  io::FPMCExperimentConfig c;
  c.session.max_len = 10;
  small_training(c);
  return c;
}

template <class Family, class Config>
double learned_hr10(const Config& cfg, const data::Split& split, const char* what) {
  SequentialTrainer<B, float, Family> t(cfg, split);
  const auto res = t.fit();
  const double hr = res.test.at("HR@10");
  std::cout << what << ": HR@10 " << hr << ", MRR@10 " << res.test.at("MRR@10") << " (epoch " << res.best_epoch << ", "
            << t.num_params() << " parameters, " << t.windows() << " rows)\n";
  return hr;
}

}  // namespace

TEST(SessionModelsLearn, StampAlkdrecWithInBatchBPR) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  const double hr = learned_hr10<STAMPFamily>(stamp_config(STAMPVariant::alkdrec_simplified), split, "STAMP alkdrec");
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);  // the successor of the last item is the target ~90% of the time
}

// training.bce_negatives routes any session model to bce_multi (here bce: one negative).
TEST(SessionModelsLearn, StampAlkdrecWithBce) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  auto c = stamp_config(STAMPVariant::alkdrec_simplified);
  c.session.bce_negatives = 1;
  const double hr = learned_hr10<STAMPFamily>(c, split, "STAMP alkdrec, bce");
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

TEST(SessionModelsLearn, StampRecboleWithCEOnPrefixes) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  const double hr = learned_hr10<STAMPFamily>(stamp_config(STAMPVariant::recbole), split, "STAMP recbole");
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

TEST(SessionModelsLearn, FpmcSessionWithInBatchBPR) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  const double hr = learned_hr10<FPMCFamily>(fpmc_config(), split, "FPMC session");
  // The mean of the window does not single out its last item, but the target follows a window
  // item, and the window's other successors are few, so it still lands in the top 10.
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

TEST(SessionTraining, IsDeterministicForAFixedSeed) {
  const auto split = planted_sessions(300, 50, 3);
  auto cfg = stamp_config(STAMPVariant::alkdrec_simplified);
  cfg.training.epochs = 2;
  SequentialTrainer<B, float, STAMPFamily> a(cfg, split), b(cfg, split);
  a.fit();
  b.fit();
  EXPECT_EQ(a.params(), b.params());
  cfg.seed = 6;
  SequentialTrainer<B, float, STAMPFamily> c(cfg, split);
  c.fit();
  EXPECT_NE(a.params(), c.params());
}

TEST(SessionEvaluation, RanksDoNotDependOnBatching) {
  const auto split = planted_sessions(300, 400, 5);
  auto cfg = stamp_config(STAMPVariant::recbole);
  cfg.training.epochs = 1;
  SequentialTrainer<B, float, STAMPFamily> t(cfg, split);
  t.fit();
  const auto cases = eval_cases(split.test);
  ASSERT_GT(cases.size(), size_t(eval::kEvalBlock) + 10);
  t.visit([&](auto& tr) {
    auto acts = tr.model().make_activations(eval::kEvalBlock);
    const auto all = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, cases);
    const std::vector<eval::Case> slice(cases.begin() + 37, cases.end());
    const auto part = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, slice);
    for (size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << i;
  });
}

// An interrupted run resumed from latest.ckpt ends with the same weights, bit for bit, as an
// uninterrupted one: for each session family (Atten-Mixer with dropout and bce_multi negatives,
// whose draws depend on the step).
template <class Family, class Config>
void resume_is_bit_for_bit(Config cfg, const data::Split& split) {
  B::set_threads(1);
  cfg.training.epochs = 5;
  cfg.training.eval_every = 2;
  cfg.training.patience = 100;
  test::expect_resume_bit_for_bit([&] { return SequentialTrainer<B, float, Family>(cfg, split); }, 3);
}

TEST(SessionResume, StampAlkdrecBitForBit) {
  resume_is_bit_for_bit<STAMPFamily>(stamp_config(STAMPVariant::alkdrec_simplified), planted_sessions(300, 50, 4));
}
TEST(SessionResume, StampRecboleBitForBit) {
  resume_is_bit_for_bit<STAMPFamily>(stamp_config(STAMPVariant::recbole), planted_sessions(300, 50, 4));
}
TEST(SessionResume, FpmcBitForBit) { resume_is_bit_for_bit<FPMCFamily>(fpmc_config(), planted_sessions(300, 50, 4)); }
TEST(SessionResume, AttenMixerWithDropoutAndBceMultiBitForBit) {
  io::AttenMixerExperimentConfig c;
  c.session.variant = AttenMixerVariant::alkdrec;
  c.session.max_len = 10;
  c.session.intent_levels = 10;
  c.session.heads = 2;
  c.session.lp_exponent = 1;
  c.session.dropout = 0.1;
  c.session.bce_negatives = 3;
  small_training(c);
  resume_is_bit_for_bit<AttenMixerFamily>(c, planted_sessions(300, 50, 4));
}
// Official Atten-Mixer: per-item dropout on the slots, dropout on the read-out and on the
// normalised item rows (its objective), a step learning-rate schedule and weight decay.
TEST(SessionResume, AttenMixerOfficialWithDropoutBitForBit) {
  io::AttenMixerExperimentConfig c;
  c.session.variant = AttenMixerVariant::official;
  c.session.max_len = 10;
  c.session.intent_levels = 7;
  c.session.heads = 2;
  c.session.lp_exponent = 4;
  c.session.dropout = 0.1;
  c.session.loss = SessionLoss::ce;
  small_training(c);
  c.training.weight_decay = 1e-5;
  c.training.lr_schedule = "step";
  c.training.lr_step_size = 15;
  c.training.lr_gamma = 0.1;
  resume_is_bit_for_bit<AttenMixerFamily>(c, planted_sessions(300, 50, 4));
}

// ---- the session batching policy --------------------------------------------------------

TEST(SessionBatching, LastRowsAreOnePerSessionWithItsLastItemTheTarget) {
  std::vector<std::vector<int32_t>> train = {{}, {1, 2, 3, 4, 5, 6}, {7}, {8, 9}};
  const SessionBatching last(4, SessionRows::last);
  const auto rows = last.rows(train);
  ASSERT_EQ(rows.size(), 2u);  // the one-item sequence has no target
  std::vector<int32_t> seq(4);
  EXPECT_EQ(last.layout(seq.data(), train[1], rows[0]), 6);
  EXPECT_EQ(seq, (std::vector<int32_t>{2, 3, 4, 5}));  // the last L inputs, oldest first
  EXPECT_EQ(last.layout(seq.data(), train[3], rows[1]), 9);
  EXPECT_EQ(seq, (std::vector<int32_t>{8, 0, 0, 0}));  // left-aligned, pads after
}

TEST(SessionBatching, PrefixRowsAreOnePerTarget) {
  std::vector<std::vector<int32_t>> train = {{}, {1, 2, 3, 4, 5, 6}};
  const SessionBatching pre(4, SessionRows::prefixes);
  const auto rows = pre.rows(train);
  ASSERT_EQ(rows.size(), 5u);
  std::vector<int32_t> seq(4);
  std::vector<int32_t> targets;
  for (const auto& r : rows) targets.push_back(pre.layout(seq.data(), train[1], r));
  EXPECT_EQ(targets, (std::vector<int32_t>{6, 5, 4, 3, 2}));
  pre.layout(seq.data(), train[1], rows[4]);
  EXPECT_EQ(seq, (std::vector<int32_t>{1, 0, 0, 0}));
}

}  // namespace RD_TEST_FILE
