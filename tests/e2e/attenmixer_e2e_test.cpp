// Tier 4 for Atten-Mixer `alkdrec` (and `official`, at the end): trained through the generic Trainer (train/trainer.hpp) with
// the session objective (in-batch BPR) and with bce_multi, it learns planted session structure
// (each item's successor follows it 90% of the time) in the ALKDRec protocol (one instance per
// session, the last item the target, iterations of distinct instances, dropout 0.1 on); training
// is deterministic for a seed, and evaluation does not depend on how cases are batched.
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "../common/test_util.hpp"
#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/session_objective.hpp"
#include "recdistill/losses/attenmixer_official_ce.hpp"
#include "recdistill/losses/session_objective.hpp"
#include "../common/sessions.hpp"
#include "recdistill/train/trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using M = AttenMixer<B, float, attenmixer::Alkdrec>;

namespace {

using test::planted_sessions;

// ALKDRec's settings (L = K = 10, H 2, p 1, dropout 0.1, one row per session) at d = 16.
AttenMixerConfig model_config(int n_items, HeadSplit split = HeadSplit::official_reshape) {
  AttenMixerConfig c;
  c.variant = AttenMixerVariant::alkdrec;
  c.resolve_defaults([](const char*) { return false; });
  c.n_items = n_items;
  c.hidden = 16;
  c.head_split = split;
  return c;
}

TrainerConfig trainer_config() {
  TrainerConfig tc;
  tc.schedule = TrainerConfig::Schedule::iterations;
  tc.batch_size = 64;
  tc.steps_per_epoch = 10;
  tc.epochs = 40;
  tc.adam.lr = 1e-2;
  tc.patience = 5;
  tc.valid_metric = "HR@10";
  return tc;
}

eval::Options eval_options() {
  eval::Options eo;
  eo.ks = {10};
  return eo;
}

template <template <class> class O>
double learned_hr10(const AttenMixerConfig& mc, const data::Split& split, const char* what) {
  Trainer<M, O> t(M(mc), trainer_config(), eval_options(), split, 5);
  const TrainResult r = t.fit();
  const double hr = r.test.at("HR@10");
  std::cout << what << ": HR@10 " << hr << ", MRR@10 " << r.test.at("MRR@10") << " (epoch " << r.best_epoch << ", "
            << r.n_params << " parameters, " << r.n_windows << " rows)\n";
  return hr;
}

}  // namespace

TEST(AttenMixerConfig, AlkdrecDefaults) {
  const auto c = model_config(41);
  EXPECT_EQ(c.max_len, 10);
  EXPECT_EQ(c.intent_levels, 10);
  EXPECT_EQ(c.heads, 2);
  EXPECT_EQ(c.lp_exponent, 1.0);
  EXPECT_EQ(c.dropout, 0.1);
  EXPECT_EQ(c.rows, SessionRows::last);
  EXPECT_EQ(c.loss, SessionLoss::inbatch_bpr);
  EXPECT_EQ(c.head_split, HeadSplit::official_reshape);
  EXPECT_EQ(c.bce_negatives, 0);
  AttenMixerConfig o;
  o.resolve_defaults([](const char*) { return false; });
  EXPECT_EQ(o.hidden, 256);
  EXPECT_EQ(o.heads, 8);
  EXPECT_EQ(o.intent_levels, 7);
  EXPECT_EQ(o.lp_exponent, 4.0);
  EXPECT_EQ(o.loss, SessionLoss::ce);
  o.n_items = 41;
  EXPECT_EQ(attenmixer::with_variant(o.variant, []<class V>() { return V::id; }), AttenMixerVariant::official);
  EXPECT_THROW(M{o}, Error);  // the alkdrec type refuses an official config
}

TEST(AttenMixerLearns, InBatchBPRThroughTheSessionObjective) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  const double hr = learned_hr10<SessionObjective>(model_config(split.n_items), split, "Atten-Mixer alkdrec, in-batch BPR");
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);  // the successor of the last item is the target ~90% of the time
}

TEST(AttenMixerLearns, BceMultiWithTenNegatives) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  auto mc = model_config(split.n_items);
  mc.bce_negatives = 10;
  const double hr = learned_hr10<SessionObjective>(mc, split, "Atten-Mixer alkdrec, bce_multi (10 negatives)");
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

TEST(AttenMixerLearns, StandardHeadSplit) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  const double hr = learned_hr10<SessionObjective>(model_config(split.n_items, HeadSplit::standard), split,
                                                   "Atten-Mixer alkdrec, standard head split");
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

TEST(AttenMixerTraining, IsDeterministicForAFixedSeed) {
  const auto split = planted_sessions(300, 50, 3);
  auto tc = trainer_config();
  tc.epochs = 2;
  const auto mc = model_config(split.n_items);
  Trainer<M, SessionObjective> a(M(mc), tc, eval_options(), split, 5), b(M(mc), tc, eval_options(), split, 5),
      c(M(mc), tc, eval_options(), split, 6);
  a.fit();
  b.fit();
  c.fit();
  EXPECT_EQ(a.host_params(), b.host_params());
  EXPECT_NE(a.host_params(), c.host_params());
}

TEST(AttenMixerEvaluation, RanksDoNotDependOnBatching) {
  const auto split = planted_sessions(300, 400, 5);
  auto tc = trainer_config();
  tc.epochs = 1;
  Trainer<M, SessionObjective> t(M(model_config(split.n_items)), tc, eval_options(), split, 5);
  t.fit();
  const auto cases = eval_cases(split.test);
  ASSERT_GT(cases.size(), size_t(eval::kEvalBlock) + 10);
  auto acts = t.model().make_activations(eval::kEvalBlock);
  const auto all = eval::rank_cases<B>(t.model(), t.params().data(), acts, cases);
  const std::vector<eval::Case> slice(cases.begin() + 37, cases.end());
  const auto part = eval::rank_cases<B>(t.model(), t.params().data(), acts, slice);
  for (size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << i;
}

// ---- official (spec §6.1): its scaled CE over normalised, dropped-out rows ----------------------

namespace {

using MO = AttenMixer<B, float, attenmixer::Official>;

// The official settings (K 7, p 4, dropout 0.1 everywhere, CE) at d = 16, H 2, L 10, one row per
// session (the planted sessions' protocol).
AttenMixerConfig official_config(int n_items) {
  AttenMixerConfig c;
  c.variant = AttenMixerVariant::official;
  c.resolve_defaults([](const char*) { return false; });
  c.n_items = n_items;
  c.hidden = 16;
  c.heads = 2;
  c.max_len = 10;
  c.rows = SessionRows::last;
  return c;
}

}  // namespace

TEST(AttenMixerConfig, OfficialDefaults) {
  AttenMixerConfig c;
  c.resolve_defaults([](const char*) { return false; });
  EXPECT_EQ(c.variant, AttenMixerVariant::official);
  EXPECT_EQ(c.hidden, 256);
  EXPECT_EQ(c.heads, 8);
  EXPECT_EQ(c.intent_levels, 7);
  EXPECT_EQ(c.lp_exponent, 4.0);
  EXPECT_EQ(c.dropout, 0.1);
  EXPECT_EQ(c.loss, SessionLoss::ce);
  c.n_items = 41;
  const MO m(c);
  EXPECT_EQ(m.layout().infos()[0].name, "embedding.weight");
  EXPECT_EQ(m.layout().infos().size(), 1u + 6u + 2u + 2u * 7u + 2u);  // E, W0-2, LN, linear_q, W_T: no second table
}

TEST(AttenMixerLearns, OfficialScaledCE) {
  const auto split = planted_sessions(1500, 200, 11);
  const double pop = test::target_popularity_hr10(split);
  auto tc = trainer_config();
  tc.adam.lr = 1e-2;
  Trainer<MO, AttenMixerOfficialCE> t(MO(official_config(split.n_items)), tc, eval_options(), split, 5);
  const TrainResult r = t.fit();
  const double hr = r.test.at("HR@10");
  std::cout << "Atten-Mixer official, scaled CE: HR@10 " << hr << ", MRR@10 " << r.test.at("MRR@10") << " (epoch "
            << r.best_epoch << ", " << r.n_params << " parameters)\n";
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

TEST(AttenMixerEvaluation, OfficialRanksDoNotDependOnBatching) {
  const auto split = planted_sessions(300, 400, 5);
  auto tc = trainer_config();
  tc.epochs = 1;
  Trainer<MO, AttenMixerOfficialCE> t(MO(official_config(split.n_items)), tc, eval_options(), split, 5);
  t.fit();
  const auto cases = eval_cases(split.test);
  ASSERT_GT(cases.size(), size_t(eval::kEvalBlock) + 10);
  auto acts = t.model().make_activations(eval::kEvalBlock);
  const auto all = eval::rank_cases<B>(t.model(), t.params().data(), acts, cases);
  const std::vector<eval::Case> slice(cases.begin() + 37, cases.end());
  const auto part = eval::rank_cases<B>(t.model(), t.params().data(), acts, slice);
  for (size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << i;
  std::vector<eval::Case> one(cases.begin() + 5, cases.begin() + 6);
  EXPECT_EQ(eval::rank_cases<B>(t.model(), t.params().data(), acts, one)[0], all[5]);
}

}  // namespace RD_TEST_FILE
