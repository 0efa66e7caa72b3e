// The generic trainer: parameter groups (a frozen group stays bit-identical), phases, the
// iterations schedule, validation every N steps, learning-rate schedules, starting from given
// weights, resume with per-tensor optimiser steps, and an end-to-end learning test of the BPR
// objective.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/train/trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using Model = SASRec<B>;

namespace {

SASRecConfig model_config(int n_items) {
  SASRecConfig mc;
  mc.n_items = n_items;
  mc.max_len = 10;
  mc.hidden = 16;
  mc.layers = 2;
  mc.heads = 2;
  mc.inner = 32;
  mc.hidden_dropout = mc.attn_dropout = 0.1;
  return mc;
}

TrainerConfig trainer_config(int epochs) {
  TrainerConfig tc;
  tc.batch_size = 16;
  tc.epochs = epochs;
  tc.patience = 100;
  tc.adam.lr = 3e-3;
  tc.valid_metric = "HR@10";
  return tc;
}

eval::Options eval_options() {
  eval::Options eo;
  eo.ks = {10};
  return eo;
}

// The host weights of one tensor.
std::vector<float> tensor(const Trainer<Model, NextItemCE>& t, const std::vector<float>& w, const std::string& name) {
  const auto& p = t.model().layout().find(name);
  return {w.begin() + long(p.offset), w.begin() + long(p.offset + p.size)};
}

const data::Split& split() {
  static const data::Split s = data::to_split(test::synthetic(120, 40, 14, 11));
  return s;
}

}  // namespace

TEST(Trainer, AFrozenGroupStaysBitIdentical) {
  auto tc = trainer_config(2);
  tc.adam.weight_decay = 0.1;  // decay must not touch a frozen tensor either
  tc.adam.decoupled = true;
  tc.clip_grad_norm = 0.5;
  tc.groups.push_back({"frozen", {"position_embedding", "layer0.attn.q.weight"}, 1.0, -1.0, true});
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  const auto before = t.host_params();
  t.fit();
  const auto after = t.host_params();
  EXPECT_EQ(tensor(t, before, "position_embedding"), tensor(t, after, "position_embedding"));
  EXPECT_EQ(tensor(t, before, "layer0.attn.q.weight"), tensor(t, after, "layer0.attn.q.weight"));
  EXPECT_NE(tensor(t, before, "layer0.attn.k.weight"), tensor(t, after, "layer0.attn.k.weight"));
  EXPECT_NE(tensor(t, before, "item_embedding"), tensor(t, after, "item_embedding"));
  // Per-tensor step counters: the frozen tensors took no step.
  const auto& infos = t.model().layout().infos();
  const auto& steps = t.optimizer().tensor_steps();
  for (size_t i = 0; i < infos.size(); ++i) {
    const bool frozen = infos[i].name == "position_embedding" || infos[i].name == "layer0.attn.q.weight";
    EXPECT_EQ(steps[i] == 0, frozen) << infos[i].name;
  }
  EXPECT_THROW(t.optimizer().set_groups({{"typo", {"no_such_tensor"}}}), Error);
}

TEST(Trainer, APhaseFreezesAGroupAndRestartsSelection) {
  auto tc = trainer_config(4);
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  std::vector<float> at_phase;
  int entered = 0;
  Trainer<Model, NextItemCE>::Phase p;
  p.start_epoch = 3;
  p.restart_selection = true;
  p.enter = [&](Trainer<Model, NextItemCE>& tr) {
    ++entered;
    at_phase = tr.host_params();
    tr.optimizer().set_groups({{"item table", {"item_embedding"}, 1.0, -1.0, true}});
  };
  t.add_phase(p);
  const TrainResult r = t.fit();
  EXPECT_EQ(entered, 1);
  ASSERT_FALSE(at_phase.empty());
  // Frozen from epoch 3 on: the item table is what it was when the phase began.
  EXPECT_EQ(tensor(t, at_phase, "item_embedding"), tensor(t, t.host_params(), "item_embedding"));
  // Selection counts from the phase on: the tested epoch is 3 or later.
  EXPECT_GE(r.best_epoch, 3);
}

TEST(Trainer, IterationsScheduleDrawsDistinctRowsAndHonoursTheCap) {
  auto tc = trainer_config(10);
  tc.schedule = TrainerConfig::Schedule::iterations;
  tc.steps_per_epoch = 4;
  tc.max_steps = 10;
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  const TrainResult r = t.fit();
  int steps = 0;
  for (const auto& e : r.epochs) steps += e.steps;
  EXPECT_EQ(steps, 10);  // 4 + 4 + 2: the cap ends the run mid-epoch
  ASSERT_EQ(r.epochs.size(), 3u);
  EXPECT_TRUE(r.epochs[2].evaluated);  // the run's last epoch is validated
  std::vector<uint32_t> ids;
  std::vector<uint8_t> mark;
  draw_distinct(ids, 16, 20, 7, 1, 2, mark);
  EXPECT_EQ(std::set<uint32_t>(ids.begin(), ids.end()).size(), 16u);
  std::vector<uint32_t> again;
  draw_distinct(again, 16, 20, 7, 1, 2, mark);
  EXPECT_EQ(ids, again);  // keyed by (seed, epoch, step)
}

TEST(Trainer, ValidatesAfterTheEpochsInWhichEveryNthStepFalls) {
  auto tc = trainer_config(5);
  tc.schedule = TrainerConfig::Schedule::iterations;
  tc.steps_per_epoch = 4;
  tc.eval_every_steps = 6;  // steps 6, 12, 18: epochs 2, 3 and 5; epochs 1 and 4 have none
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  const TrainResult r = t.fit();
  ASSERT_EQ(r.epochs.size(), 5u);
  std::vector<bool> evaluated;
  for (const auto& e : r.epochs) evaluated.push_back(e.evaluated);
  EXPECT_EQ(evaluated, (std::vector<bool>{false, true, true, false, true}));
}

// first_epoch_steps: ALKDRec validates after its first update, then every S updates (spec §2):
// epoch 1 is one step, the others S, so validation comes after steps 1, 1 + S, 1 + 2S.
TEST(Trainer, FirstEpochStepsPutsTheFirstValidationAfterThem) {
  auto tc = trainer_config(4);
  tc.schedule = TrainerConfig::Schedule::iterations;
  tc.steps_per_epoch = 5;
  tc.first_epoch_steps = 1;
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  const TrainResult r = t.fit();
  std::vector<int> steps;
  for (const auto& e : r.epochs) {
    steps.push_back(e.steps);
    EXPECT_TRUE(e.evaluated) << e.epoch;
  }
  EXPECT_EQ(steps, (std::vector<int>{1, 5, 5, 5}));
  tc.schedule = TrainerConfig::Schedule::epochs;  // an epoch is then a pass over the rows
  EXPECT_THROW((Trainer<Model, NextItemCE>(Model(model_config(split().n_items)), tc, eval_options(), split(), 3)),
               Error);
}

TEST(Trainer, LearningRateSchedules) {
  LRSchedule s;
  EXPECT_DOUBLE_EQ(s.at(0.1, 1), 0.1);
  s.kind = LRSchedule::Kind::warmup;
  s.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(s.at(0.1, 1), 0.025);
  EXPECT_DOUBLE_EQ(s.at(0.1, 4), 0.1);
  EXPECT_DOUBLE_EQ(s.at(0.1, 50), 0.1);
  // Step decay: steps 1..10 at the base rate, x 0.5 after every 10 steps.
  s.kind = LRSchedule::Kind::step;
  s.warmup_steps = 0;
  s.step_size = 10;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(s.at(1.0, 1), 1.0);
  EXPECT_DOUBLE_EQ(s.at(1.0, 10), 1.0);
  EXPECT_DOUBLE_EQ(s.at(1.0, 11), 0.5);
  EXPECT_DOUBLE_EQ(s.at(1.0, 21), 0.25);
  // After a warm-up of 4, the decay counts from step 5.
  s.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(s.at(1.0, 14), 1.0);
  EXPECT_DOUBLE_EQ(s.at(1.0, 15), 0.5);
  // Cosine: the base rate on the first step, half way after total/2 steps, min_lr after total.
  s.kind = LRSchedule::Kind::cosine;
  s.warmup_steps = 0;
  s.total_steps = 100;
  s.min_lr = 0.1;
  EXPECT_DOUBLE_EQ(s.at(1.0, 1), 1.0);
  EXPECT_NEAR(s.at(1.0, 51), 0.55, 1e-12);
  EXPECT_NEAR(s.at(1.0, 101), 0.1, 1e-12);
  EXPECT_NEAR(s.at(1.0, 500), 0.1, 1e-12);
  EXPECT_GT(s.at(1.0, 100), 0.1);
}

TEST(Trainer, AScheduleChangesTheRun) {
  auto tc = trainer_config(1);
  Trainer<Model, NextItemCE> a(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  tc.lr_schedule.kind = LRSchedule::Kind::warmup;
  tc.lr_schedule.warmup_steps = 1000;
  Trainer<Model, NextItemCE> b(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  const auto w0 = a.host_params();
  a.fit();
  b.fit();
  // A long warm-up takes much smaller steps than the constant rate.
  double da = 0, db = 0;
  const auto wa = a.host_params(), wb = b.host_params();
  for (size_t i = 0; i < w0.size(); ++i) da += std::abs(wa[i] - w0[i]), db += std::abs(wb[i] - w0[i]);
  EXPECT_LT(db, 0.2 * da);
}

TEST(Trainer, StartFromGivenWeightsWithAFreshOptimiser) {
  auto tc = trainer_config(1);
  Trainer<Model, NextItemCE> a(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  a.fit();
  ASSERT_GT(a.optimizer().steps(), 0);
  const auto trained = a.host_params();
  Trainer<Model, NextItemCE> b(Model(model_config(split().n_items)), tc, eval_options(), split(), 4);
  const auto b_init = b.host_params();
  a.start_from(b_init);  // the trained trainer takes other weights and forgets its moments
  EXPECT_EQ(a.host_params(), b_init);
  EXPECT_EQ(a.optimizer().steps(), 0);
  for (float m : a.optimizer().first_moment()) ASSERT_EQ(m, 0.0f);
  EXPECT_THROW(a.start_from(std::vector<float>(3)), Error);
  EXPECT_NE(trained, b_init);
}

TEST(Trainer, RefusesASecondFitAndAPhaseWithoutAStart) {
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), trainer_config(1), eval_options(), split(), 3);
  t.fit();
  EXPECT_THROW(t.fit(), Error);
  EXPECT_THROW(t.add_phase({}), Error);
}

TEST(Trainer, ResumeWithAFrozenGroupEqualsTheUninterruptedRun) {
  test::TempDir dir("rd_trainer_resume");
  auto tc = trainer_config(4);
  tc.groups.push_back({"frozen", {"layer1.ffn.w1.weight"}, 1.0, -1.0, true});
  tc.groups.push_back({"slow", {"item_embedding"}, 0.5, 0.0, false});
  const CheckpointMeta meta{"", {{"k", "v"}}};
  Trainer<Model, NextItemCE> straight(Model(model_config(split().n_items)), tc, eval_options(), split(), 3, meta);
  straight.fit();
  auto first_tc = tc;
  first_tc.epochs = 2;
  Trainer<Model, NextItemCE> first(Model(model_config(split().n_items)), first_tc, eval_options(), split(), 3, meta);
  FitOptions o;
  o.checkpoint_dir = dir.str();
  first.fit(o);
  Trainer<Model, NextItemCE> resumed(Model(model_config(split().n_items)), tc, eval_options(), split(), 3, meta);
  FitOptions r;
  r.resume_from = dir.str("latest.ckpt");
  resumed.fit(r);
  EXPECT_EQ(resumed.host_params(), straight.host_params());
  EXPECT_EQ(resumed.optimizer().tensor_steps(), straight.optimizer().tensor_steps());
  // Another seed or learning rate is another run: refused, naming the setting.
  {
    Trainer<Model, NextItemCE> other_seed(Model(model_config(split().n_items)), tc, eval_options(), split(), 4, meta);
    EXPECT_THROW(other_seed.fit(r), Error);
    auto lr_tc = tc;
    lr_tc.adam.lr *= 2;
    Trainer<Model, NextItemCE> other_lr(Model(model_config(split().n_items)), lr_tc, eval_options(), split(), 3, meta);
    try {
      other_lr.fit(r);
      FAIL() << "resumed with another learning rate";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("trainer.adam"), std::string::npos) << e.what();
    }
  }
  // Other caller settings: refused, naming the key.
  Trainer<Model, NextItemCE> other(Model(model_config(split().n_items)), tc, eval_options(), split(), 3,
                                   CheckpointMeta{"", {{"k", "w"}}});
  try {
    other.fit(r);
    FAIL() << "resumed under other settings";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("k: checkpoint v, config w"), std::string::npos) << e.what();
  }
}

// Tier 4 for the BPR objective: SASRec trained with sampled BPR learns the planted structure
// far better than popularity.
TEST(Trainer, BPRLearnsPlantedStructure) {
  const data::LeaveOneOut loo = test::synthetic(300, 40, 12, 5);
  const data::Split s = data::to_split(loo);
  auto tc = trainer_config(20);
  tc.batch_size = 32;
  tc.eval_every = 5;
  tc.patience = 3;
  SASRecConfig mc = model_config(s.n_items);
  mc.max_len = 20;
  mc.hidden = 32;
  mc.inner = 64;
  Trainer<Model, SampledBPR> t(Model(mc), tc, eval_options(), s, 7);
  const TrainResult r = t.fit();
  std::vector<double> count(size_t(loo.n_items), 0.0);
  for (const auto& seq : loo.train)
    for (int32_t i : seq) count[size_t(i)] += 1;
  std::vector<int64_t> ranks;
  for (size_t u = 1; u < loo.train.size(); ++u)
    if (loo.test[u]) ranks.push_back(eval::rank_of_target(count.data(), loo.n_items, loo.test[u], eval::Ties::against_model));
  const double pop = eval::metrics_from_ranks(ranks, {10}).at("HR@10");
  EXPECT_GT(r.test.at("HR@10"), 2.0 * pop + 0.1) << "popularity HR@10 " << pop;
}

// A phase that restarts selection, resumed after it began: the resumed run re-enters the phase
// (its callback runs again) but keeps the checkpoint's selection state, so it equals the
// uninterrupted run.
TEST(Trainer, ResumePastAPhaseEqualsTheUninterruptedRun) {
  test::TempDir dir("rd_trainer_phase_resume");
  auto make = [&](int epochs) {
    auto tc = trainer_config(epochs);
    auto t = std::make_unique<Trainer<Model, NextItemCE>>(Model(model_config(split().n_items)), tc, eval_options(),
                                                          split(), 3);
    Trainer<Model, NextItemCE>::Phase p;
    p.start_epoch = 2;
    p.restart_selection = true;
    p.enter = [](Trainer<Model, NextItemCE>& tr) {
      tr.optimizer().set_groups({{"pos", {"position_embedding"}, 1.0, -1.0, true}});
    };
    t->add_phase(p);
    return t;
  };
  auto straight = make(4);
  const TrainResult rs = straight->fit();
  auto first = make(3);
  FitOptions o;
  o.checkpoint_dir = dir.str();
  first->fit(o);
  auto resumed = make(4);
  FitOptions r;
  r.resume_from = dir.str("latest.ckpt");
  const TrainResult rr = resumed->fit(r);
  EXPECT_EQ(resumed->host_params(), straight->host_params());
  EXPECT_EQ(rr.best_epoch, rs.best_epoch);
  EXPECT_GE(rs.best_epoch, 2);
}

// A phase may switch the training rows: from its epoch on, the epochs cover the new rows only.
TEST(Trainer, APhaseSwitchesTheTrainingRows) {
  auto tc = trainer_config(3);
  Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  ASSERT_GT(t.rows(), 40u);
  Trainer<Model, NextItemCE>::Phase p;
  p.start_epoch = 2;
  p.enter = [](Trainer<Model, NextItemCE>& tr) {
    const auto& all = tr.training_rows();
    tr.set_rows({all.begin(), all.begin() + 20});  // 20 windows: 2 steps of 16
  };
  t.add_phase(p);
  const TrainResult r = t.fit();
  ASSERT_EQ(r.epochs.size(), 3u);
  EXPECT_GT(r.epochs[0].steps, 2);
  EXPECT_EQ(r.epochs[1].steps, 2);
  EXPECT_EQ(r.epochs[2].steps, 2);
  EXPECT_LT(r.epochs[1].targets, r.epochs[0].targets);
  EXPECT_EQ(t.rows(), 20u);
}

// A trainer built in one place and moved to another still trains every tensor (its optimiser
// keeps its own record of the model's tensors).
TEST(Trainer, AMovedTrainerTrains) {
  auto make = [&] {
    Trainer<Model, NextItemCE> t(Model(model_config(split().n_items)), trainer_config(1), eval_options(), split(), 3);
    return t;
  };
  auto moved = std::make_unique<Trainer<Model, NextItemCE>>(make());
  const auto before = moved->host_params();
  moved->fit();
  const auto after = moved->host_params();
  EXPECT_NE(tensor(*moved, before, "layer1.ffn.w2.weight"), tensor(*moved, after, "layer1.ffn.w2.weight"));
  for (int64_t s : moved->optimizer().tensor_steps()) EXPECT_GT(s, 0);
}

TEST(Trainer, WindowsPerUserKeepsEachUsersNewestWindows) {
  auto tc = trainer_config(1);
  tc.window_stride = 3;  // several overlapping windows per user (sequences of up to 14 items, L 10)
  Trainer<Model, NextItemCE> all(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  tc.windows_per_user = 1;
  Trainer<Model, NextItemCE> one(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  size_t users = 0;
  for (const auto& seq : split().train) users += seq.size() >= 2 ? 1 : 0;
  ASSERT_GT(all.rows(), users);  // the check below would be empty otherwise
  ASSERT_EQ(one.rows(), users);
  for (const auto& r : one.training_rows()) {
    // The newest window: its last pair predicts the user's last training item.
    EXPECT_EQ(size_t(r.begin + r.pairs), split().train[size_t(r.user)].size() - 1) << "user " << r.user;
    EXPECT_EQ(r.pairs, std::min<int32_t>(10, int32_t(split().train[size_t(r.user)].size()) - 1));
  }
  tc.windows_per_user = 2;
  Trainer<Model, NextItemCE> two(Model(model_config(split().n_items)), tc, eval_options(), split(), 3);
  EXPECT_GT(two.rows(), one.rows());
  EXPECT_LE(two.rows(), 2 * users);
}

}  // namespace RD_TEST_FILE
