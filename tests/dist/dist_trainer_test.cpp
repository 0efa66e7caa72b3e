// Data-parallel training (train/trainer.hpp, docs/distributed.md), run by ctest under
// `mpirun -np 2` (tests/CMakeLists.txt; the idle-rank case also under `-np 3`). Every rank runs every test; each rank also trains the
// one-process reference itself (no communicator) and compares.
//  - The first steps of N ranks equal one process with the same global batch: per-step loss and
//    gradient norm within 1e-12 relative, weights within 1e-11 (double; only sums are reordered),
//    with dropout on and an odd batch (uneven slices), for SASRec (ce) and BERT4Rec (cloze_ce),
//    SASRec's sampled BPR, and for the session models with every objective they train with:
//    in-batch BPR and active distillation's weighted pairwise loss (negatives from the whole
//    global batch, gathered; row weights and same-session groups), bce_multi and RecBole's BPR
//    (sampled negatives keyed by global rows), CE, Atten-Mixer's dropout (slot, per-item and
//    read-out masks) and its official CE; with a last step whose one row leaves rank 1 idle.
//    Profile distillation with MSE, RMSE and cosine, null-profile modes drop and upstream_copy.
//  - Two data-parallel runs give the same bits, and every rank holds the same weights.
//  - The sharded validation and test metrics equal one process's on the same weights.
//  - A resume with the same ranks equals an uninterrupted run bit for bit; a checkpoint of 2
//    ranks is refused by one process, naming both counts.
//  - An objective that does not declare itself data-parallel is refused, naming it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "../../apps/mpi_world.hpp"
#include "../common/sessions.hpp"
#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/train/sequential_trainer.hpp"

using namespace recdistill;
using B = cpu::Backend;
namespace fs = std::filesystem;

namespace {

dist::Comm& world() {
  dist::Comm* w = app::mpi_world();
  if (!w) {
    std::fprintf(stderr, "these tests run under mpirun (ctest: dist_mpirun_np2)\n");
    std::exit(1);
  }
  return *w;
}

data::Split synthetic(int n_users, int n_items, int length, unsigned seed) {
  return data::to_split(test::synthetic(n_users, n_items, length, seed));
}

io::ExperimentConfig sasrec_config() {
  io::ExperimentConfig c;
  c.seed = 11;
  c.sasrec.max_len = 10;
  c.sasrec.hidden = 16;
  c.sasrec.layers = 2;
  c.sasrec.heads = 2;
  c.sasrec.inner = 32;
  c.sasrec.hidden_dropout = c.sasrec.attn_dropout = 0.3;
  c.training.batch_size = 13;  // odd: the two slices differ in size
  c.training.epochs = 3;
  c.training.learning_rate = 3e-3;
  c.training.eval_every = 1;
  c.training.patience = 5;
  c.training.clip_grad_norm = 5.0;
  c.eval.ks = {10};
  c.training.valid_metric = "NDCG@10";
  return c;
}

io::BERT4RecExperimentConfig bert4rec_config() {
  io::BERT4RecExperimentConfig c;
  c.seed = 12;
  c.bert4rec.max_len = 10;
  c.bert4rec.hidden = 16;
  c.bert4rec.layers = 1;
  c.bert4rec.heads = 2;
  c.bert4rec.inner = 32;
  c.bert4rec.hidden_dropout = c.bert4rec.attn_dropout = 0.2;
  c.training.batch_size = 9;
  c.training.epochs = 2;
  c.training.learning_rate = 3e-3;
  c.training.eval_every = 1;
  c.training.patience = 5;
  c.eval.ks = {10};
  c.training.valid_metric = "NDCG@10";
  return c;
}

struct RunOut {
  TrainResult res;
  std::vector<StepLog> steps;
  std::vector<double> params;
};

template <class Family, class Config>
RunOut fit(const Config& cfg, const data::Split& split, dist::Comm* comm, const std::string& ckpt_dir = "",
        const std::string& resume = "", dist::Comm* device_comm = nullptr) {
  SequentialTrainer<B, double, Family> t(cfg, split);
  FitOptions o;
  o.comm = comm;
  o.device_comm = device_comm;
  o.checkpoint_dir = ckpt_dir;
  o.resume_from = resume;
  RunOut r;
  o.on_step = [&](const StepLog& s) { r.steps.push_back(s); };
  r.res = t.fit(o);
  const auto& p = t.params();
  r.params.assign(p.data(), p.data() + p.size());
  return r;
}

// Forwards to the world, counting the gathers (the sharded evaluations) and the double sums
// (as a device communicator in cpu::Backend's memory, the host's: the trainer's path for NCCL,
// backend/cuda/nccl.cuh).
struct CountingComm final : dist::Comm {
  int gathers = 0, double_sums = 0;
  size_t last_n = 0;  // the length of the last double sum
  int rank() const override { return world().rank(); }
  int size() const override { return world().size(); }
  void allreduce_sum(double* x, size_t n, const std::string& w) override {
    ++double_sums;
    last_n = n;
    world().allreduce_sum(x, n, w);
  }
  void allreduce_sum(float* x, size_t n, const std::string& w) override { world().allreduce_sum(x, n, w); }
  std::vector<int64_t> allgather(const std::vector<int64_t>& x, const std::string& w) override {
    ++gathers;
    return world().allgather(x, w);
  }
  std::string broadcast(const std::string& t, const std::string& w) override { return world().broadcast(t, w); }
  [[noreturn]] void abort(const std::string& m) override {
    world().abort(m);
    std::abort();  // not reached (the attribute of the interface is not the override's)
  }
};

double rel(double a, double b) { return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300}); }

// Per-step loss and gradient norm of a data-parallel run against one process's, within 1e-12.
void expect_same_steps(const std::vector<StepLog>& one, const std::vector<StepLog>& dp, size_t min_steps) {
  ASSERT_EQ(one.size(), dp.size());
  ASSERT_GE(one.size(), min_steps);
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_LT(rel(one[i].loss, dp[i].loss), 1e-12) << "step " << i;
    EXPECT_LT(rel(one[i].grad_norm, dp[i].grad_norm), 1e-12) << "step " << i;
  }
}

template <class Family, class Config>
void expect_one_process_steps(const Config& cfg, const data::Split& split, size_t min_steps = 11) {
  const RunOut one = fit<Family>(cfg, split, nullptr);
  const RunOut dp = fit<Family>(cfg, split, &world());
  expect_same_steps(one.steps, dp.steps, min_steps);
  ASSERT_EQ(one.params.size(), dp.params.size());
  double worst = 0;
  for (size_t i = 0; i < one.params.size(); ++i) worst = std::max(worst, std::abs(one.params[i] - dp.params[i]));
  EXPECT_LT(worst, 1e-11);
  EXPECT_GT(worst, 0.0) << "the data-parallel run took the one-process path (no sum was reordered)";
  // The data-parallel run's own metrics: its sharded evaluations against this process's.
  EXPECT_EQ(one.res.epochs_run, dp.res.epochs_run);
}

uint64_t hash_of(const std::vector<double>& v) { return io::fnv1a64_bytes(v.data(), v.size() * sizeof(double)); }

// A folder every rank knows: named after rank 0's pid.
fs::path shared_dir(const std::string& name) {
  const auto pids = world().allgather({int64_t(::getpid())}, "the test folder's name");
  return fs::temp_directory_path() / ("rd_dist_" + std::to_string(pids[0]) + "_" + name);
}

}  // namespace

TEST(DataParallel, RunsOnTwoRanks) { EXPECT_EQ(world().size(), 2); }  // (not in the 3-rank run)

TEST(DataParallel, SASRecStepsEqualOneProcess) {
  B::set_threads(1);
  expect_one_process_steps<SASRecFamily>(sasrec_config(), synthetic(60, 30, 14, 3));
}

TEST(DataParallel, BERT4RecStepsEqualOneProcess) {
  B::set_threads(1);
  expect_one_process_steps<BERT4RecFamily>(bert4rec_config(), synthetic(50, 25, 12, 4));
}

// K = 1 profile of D values per user, random; users 0 and 3 have none.
std::shared_ptr<const ProfileTargets> random_profiles(int users, int D, unsigned seed) {
  auto p = std::make_shared<ProfileTargets>();
  p->K = 1;
  p->D = D;
  std::mt19937 g(seed);
  std::normal_distribution<double> nd;
  p->values.resize(size_t(users + 1) * D);
  for (auto& v : p->values) v = float(nd(g));
  p->available.assign(size_t(users + 1), 1);
  p->available[0] = 0;
  p->available[3] = 0;
  return p;
}

io::ExperimentConfig distilled_config() {
  auto c = sasrec_config();
  c.model_name = "SASRecLLM";
  c.distill.reconstruction_layer = 1;
  c.distill.weighting_scheme = "exponential";
  c.distill.weight_scale = 0.5;
  c.distill.alpha = 0.3;
  c.distill.scale_guide_loss = true;  // beta from the global means
  c.distill.fine_tune_epoch = 3;      // the fine-tuning phase in the run's last epoch
  return c;
}

TEST(DataParallel, ProfileDistillationStepsEqualOneProcess) {
  B::set_threads(1);
  const auto split = synthetic(60, 30, 14, 3);
  auto cfg = distilled_config();
  const auto profiles = random_profiles(60, cfg.sasrec.hidden, 9);
  // Users 1..50 without a profile: many slices hold none (u = 0 here, U > 0 overall).
  auto sparse = std::make_shared<ProfileTargets>(*profiles);
  for (int u = 1; u <= 50; ++u) sparse->available[size_t(u)] = 0;
  struct Case {
    const char* loss;
    int batch;
    std::shared_ptr<const ProfileTargets> profiles;
    const char* null_mode = "drop";
    bool beta = true;  // scale_guide_loss; without it upstream_copy's factor does not cancel
  };
  // A batch of all windows but one: each epoch's last step has one row, so rank 1's slice is
  // empty (idle_loss) while rank 0 distils. RMSE's square root and upstream_copy's denominator
  // (all rows) are of the global batch's sums.
  const int W = int(SequentialTrainer<B, double, SASRecLLMFamily>(cfg, split, profiles).windows());
  for (const Case& c : {Case{"MSE", 13, profiles}, Case{"CosSim", 13, profiles}, Case{"RMSE", 13, profiles},
                        Case{"MSE", W - 1, profiles}, Case{"RMSE", W - 1, profiles}, Case{"MSE", 7, sparse},
                        Case{"RMSE", 7, sparse}, Case{"MSE", 13, sparse, "upstream_copy"},
                        Case{"CosSim", 7, sparse, "upstream_copy"}, Case{"RMSE", 13, sparse, "upstream_copy"},
                        Case{"MSE", 13, sparse, "upstream_copy", false}, Case{"CosSim", 7, sparse, "upstream_copy", false},
                        Case{"RMSE", 7, sparse, "upstream_copy", false}, Case{"RMSE", 13, profiles, "drop", false}}) {
    SCOPED_TRACE(cat(c.loss, ", batch ", c.batch, c.profiles == sparse ? ", sparse profiles, " : ", ", c.null_mode,
                     c.beta ? ", beta" : ", no beta"));
    cfg.distill.scale_guide_loss = c.beta;
    cfg.distill.reconstruct_loss = c.loss;
    cfg.distill.null_profile_mode = c.null_mode;
    cfg.training.batch_size = c.batch;
    auto run = [&](dist::Comm* comm) {
      SequentialTrainer<B, double, SASRecLLMFamily> t(cfg, split, c.profiles);
      FitOptions o;
      o.comm = comm;
      RunOut r;
      o.on_step = [&](const StepLog& s) { r.steps.push_back(s); };
      r.res = t.fit(o);
      const auto& p = t.params();
      r.params.assign(p.data(), p.data() + p.size());
      return r;
    };
    const RunOut one = run(nullptr), dp = run(&world());
    expect_same_steps(one.steps, dp.steps, 6);
    double worst = 0;
    for (size_t i = 0; i < one.params.size(); ++i) worst = std::max(worst, std::abs(one.params[i] - dp.params[i]));
    EXPECT_LT(worst, 1e-11);
    EXPECT_GT(worst, 0.0);
  }
  // The distillation term is live: without profiles (alpha 0.3, so the step losses scale) the
  // same run's first loss differs.
  cfg.training.batch_size = 13;
  cfg.distill.reconstruct_loss = "MSE";
  cfg.distill.null_profile_mode = "drop";
  cfg.distill.scale_guide_loss = true;
  {
    auto none = std::make_shared<ProfileTargets>(*profiles);
    std::fill(none->available.begin(), none->available.end(), uint8_t(0));
    auto losses = [&](std::shared_ptr<const ProfileTargets> p) {
      SequentialTrainer<B, double, SASRecLLMFamily> t(cfg, split, std::move(p));
      FitOptions o;
      o.comm = &world();
      std::vector<double> l;
      o.on_step = [&](const StepLog& st) { l.push_back(st.loss); };
      t.fit(o);
      return l;
    };
    const std::vector<double> with = losses(profiles), without = losses(none);
    ASSERT_FALSE(with.empty());
    EXPECT_GT(std::abs(with[0] - without[0]), 1e-6) << "the profiles did not change the loss";
  }
}

TEST(DataParallel, SameRanksGiveTheSameBitsOnEveryRank) {
  B::set_threads(1);
  const auto split = synthetic(60, 30, 14, 3);
  const RunOut a = fit<SASRecFamily>(sasrec_config(), split, &world());
  const RunOut b = fit<SASRecFamily>(sasrec_config(), split, &world());
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.res.test, b.res.test);
  const auto hashes = world().allgather({int64_t(hash_of(a.params))}, "the weights' hashes");
  ASSERT_EQ(hashes.size(), 2u);
  EXPECT_EQ(hashes[0], hashes[1]) << "the ranks hold different weights";
}

TEST(DataParallel, GradientsGoThroughTheDeviceCommunicatorWhereThereIsOne) {
  B::set_threads(1);
  const auto split = synthetic(60, 30, 14, 3);
  const RunOut host = fit<SASRecFamily>(sasrec_config(), split, &world());
  CountingComm dev;
  const RunOut on_device = fit<SASRecFamily>(sasrec_config(), split, &world(), "", "", &dev);
  EXPECT_EQ(dev.double_sums, int(on_device.steps.size())) << "one gradient all-reduce per step, on the device communicator";
  EXPECT_EQ(dev.last_n, on_device.params.size());
  EXPECT_EQ(host.params, on_device.params);  // the same sums in the same order: the same bits
}

TEST(DataParallel, ShardedMetricsEqualOneProcessOnTheSameWeights) {
  B::set_threads(1);
  const auto split = synthetic(61, 30, 14, 5);  // an odd number of cases
  for (const int sampled : {0, 10}) {  // full ranking, then 10 sampled negatives per case
    SCOPED_TRACE(cat("sampled_negatives ", sampled));
    auto cfg = sasrec_config();
    cfg.eval.sampled_negatives = sampled;
    SequentialTrainer<B, double, SASRecFamily> t(cfg, split);
    FitOptions o;
    CountingComm counting;
    o.comm = &counting;
    int evaluations = 0;
    o.on_epoch = [&](const EpochLog& e) { evaluations += e.evaluated; };
    const TrainResult r = t.fit(o);
    // After fit the trainer evaluates in this process alone, on the selected weights.
    EXPECT_EQ(r.test, t.evaluate_test());
    EXPECT_FALSE(r.test.empty());
    EXPECT_EQ(counting.gathers, evaluations + 1) << "every validation and the test were sharded";
  }
}

TEST(DataParallel, ResumeWithTheSameRanksEqualsAnUninterruptedRun) {
  B::set_threads(1);
  const auto split = synthetic(60, 30, 14, 3);
  auto cfg = sasrec_config();
  cfg.training.epochs = 4;
  const fs::path d = shared_dir("resume");
  if (world().rank() == 0) fs::remove_all(d);
  world().allgather({}, "the resume test's clean folder");
  const RunOut straight = fit<SASRecFamily>(cfg, split, &world(), (d / "straight").string());
  auto first = cfg;
  first.training.epochs = 2;
  fit<SASRecFamily>(first, split, &world(), (d / "first").string());
  // rank 0 wrote the checkpoints; the test evaluation's gather after them orders the reads.
  const std::string latest = (d / "first" / "latest.ckpt").string();
  ASSERT_TRUE(fs::exists(latest));
  const RunOut resumed = fit<SASRecFamily>(cfg, split, &world(), (d / "resumed").string(), latest);
  EXPECT_EQ(straight.params, resumed.params);
  EXPECT_EQ(straight.res.test, resumed.res.test);
  EXPECT_EQ(resumed.res.resumed_from_epoch, 2);
  // One process may not continue it: its sums would differ.
  const std::string e = test::error_of([&] { fit<SASRecFamily>(cfg, split, nullptr, "", latest); });
  EXPECT_NE(e.find("trained by 2 data-parallel rank(s), this run has 1"), std::string::npos) << e;
  world().allgather({}, "the end of the resume test");
  if (world().rank() == 0) fs::remove_all(d);
}

// ---- session models ----------------------------------------------------------------------

template <class C>
void session_training(C& c, int batch) {
  c.seed = 21;
  c.session.max_len = 8;
  c.session.hidden = 12;
  c.training.batch_size = batch;
  c.training.epochs = 2;
  c.training.learning_rate = 5e-3;
  c.training.eval_every = 1;
  c.training.patience = 5;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
}

io::STAMPExperimentConfig stamp_config(SessionLoss loss, int batch) {
  io::STAMPExperimentConfig c;
  c.session.variant = STAMPVariant::alkdrec_simplified;
  c.session.rows = SessionRows::last;
  c.session.loss = loss;
  session_training(c, batch);
  return c;
}

// In-batch BPR: every other target of the global batch is a negative of each row.
TEST(DataParallel, StampInBatchBPRStepsEqualOneProcess) {
  B::set_threads(1);
  const auto split = test::planted_sessions(150, 30, 7);
  expect_one_process_steps<STAMPFamily>(stamp_config(SessionLoss::inbatch_bpr, 13), split);
  // The iterations schedule (distinct rows drawn per step), and a batch of all rows but one:
  // each epoch's last step has one row, and rank 1 joins its gather with none.
  auto it = stamp_config(SessionLoss::inbatch_bpr, 13);
  it.training.schedule = "iterations";
  it.training.steps_per_epoch = 6;
  expect_one_process_steps<STAMPFamily>(it, split);
  const int W = int(SequentialTrainer<B, double, STAMPFamily>(it, split).windows());
  expect_one_process_steps<STAMPFamily>(stamp_config(SessionLoss::inbatch_bpr, W - 1), split, 4);
}

// The in-batch losses when a rank's slice is empty beside real work: a batch of all rows but
// two leaves each epoch a last step of 2 rows, which on 3 ranks (ctest dist_mpirun_np3) puts
// one row on each of ranks 0 and 1 and none on rank 2, so both losses combine a real 2-column
// step across ranks while rank 2 joins the gather empty-handed. (On 2 ranks it runs too,
// without an idle rank.)
TEST(DataParallel, InBatchLossesWithAnIdleRankEqualOneProcess) {
  B::set_threads(1);
  const auto base = test::planted_sessions(60, 20, 12);
  auto split = test::distilled_sessions(base, true, 3);
  for (size_t i = 1; i < split.train_weight.size(); ++i) split.train_weight[i] = float(1 + i % 4);
  for (const SessionLoss loss : {SessionLoss::inbatch_bpr, SessionLoss::weighted_pairwise}) {
    auto cfg = stamp_config(loss, 13);
    const int W = int(SequentialTrainer<B, double, STAMPFamily>(cfg, split).windows());
    cfg.training.batch_size = W - 2;
    SCOPED_TRACE(cat(loss == SessionLoss::inbatch_bpr ? "inbatch_bpr" : "weighted_pairwise", ", ", world().size(),
                     " ranks, batch ", W - 2));
    expect_one_process_steps<STAMPFamily>(cfg, split, 4);
  }
}

// Active distillation's loss on distillation rows: weights, same-session groups and same-item
// masks over the global batch.
TEST(DataParallel, WeightedPairwiseStepsEqualOneProcess) {
  B::set_threads(1);
  const auto base = test::planted_sessions(120, 30, 8);
  auto split = test::distilled_sessions(base, true, 3);
  for (size_t i = 1; i < split.train_weight.size(); ++i) split.train_weight[i] = float(1 + i % 4);
  expect_one_process_steps<STAMPFamily>(stamp_config(SessionLoss::weighted_pairwise, 15), split);
  io::FPMCExperimentConfig f;
  f.session.variant = FPMCVariant::session;
  f.session.loss = FPMCLoss::weighted_pairwise;
  session_training(f, 11);
  expect_one_process_steps<FPMCFamily>(f, split);
}

// FPMC (session variant) with in-batch BPR, full-softmax CE and bce_multi; STAMP with CE.
TEST(DataParallel, FpmcAndStampObjectivesStepsEqualOneProcess) {
  B::set_threads(1);
  const auto split = test::planted_sessions(150, 30, 11);
  io::FPMCExperimentConfig f;
  f.session.variant = FPMCVariant::session;
  session_training(f, 13);
  for (const FPMCLoss loss : {FPMCLoss::inbatch_bpr, FPMCLoss::ce}) {
    f.session.loss = loss;
    expect_one_process_steps<FPMCFamily>(f, split);
  }
  f.session.bce_negatives = 2;
  expect_one_process_steps<FPMCFamily>(f, split);
  expect_one_process_steps<STAMPFamily>(stamp_config(SessionLoss::ce, 13), split);
}

// Sampled negatives keyed by the global row: RecBole's BPR (FPMC), bce_multi, and SASRec's
// sampled BPR (one negative per slot: L targets per row).
TEST(DataParallel, SampledNegativesStepsEqualOneProcess) {
  B::set_threads(1);
  {
    const auto split = synthetic(60, 30, 14, 3);
    const auto cfg = sasrec_config();
    SASRecConfig mc = cfg.sasrec;
    mc.n_items = split.n_items;
    using M = SASRec<B, double, sasrec::RecBole>;
    auto run = [&](dist::Comm* comm) {
      Trainer<M, SampledBPR> t(M(mc), trainer_config(cfg), cfg.eval, split, cfg.seed);
      FitOptions o;
      o.comm = comm;
      std::vector<StepLog> steps;
      o.on_step = [&](const StepLog& s) { steps.push_back(s); };
      t.fit(o);
      return steps;
    };
    const auto one = run(nullptr), dp = run(&world());
    expect_same_steps(one, dp, 11);
  }
  const auto split = test::planted_sessions(150, 30, 9);
  io::FPMCExperimentConfig f;
  session_training(f, 13);
  f.session.variant = FPMCVariant::recbole;
  f.session.n_users = split.n_users;
  f.session.max_len = 1;
  f.session.rows = SessionRows::prefixes;
  f.session.loss = FPMCLoss::bpr;
  expect_one_process_steps<FPMCFamily>(f, split);
  auto bce = stamp_config(SessionLoss::inbatch_bpr, 13);
  bce.session.bce_negatives = 3;
  expect_one_process_steps<STAMPFamily>(bce, split);
}

// Atten-Mixer's dropout masks are keyed by global rows: alkdrec (slots, read-out) with
// bce_multi and in-batch BPR, official (per-item slots, read-out, item rows) with its CE.
TEST(DataParallel, AttenMixerWithDropoutStepsEqualOneProcess) {
  B::set_threads(1);
  const auto split = test::planted_sessions(150, 30, 10);
  io::AttenMixerExperimentConfig c;
  c.session.variant = AttenMixerVariant::alkdrec;
  c.session.intent_levels = 4;
  c.session.heads = 2;
  c.session.lp_exponent = 2;
  c.session.dropout = 0.2;
  session_training(c, 13);
  c.session.max_len = 8;
  c.session.bce_negatives = 2;
  expect_one_process_steps<AttenMixerFamily>(c, split);
  c.session.bce_negatives = 0;
  c.session.loss = SessionLoss::inbatch_bpr;
  expect_one_process_steps<AttenMixerFamily>(c, split);
  c.session.variant = AttenMixerVariant::official;
  c.session.loss = SessionLoss::ce;
  expect_one_process_steps<AttenMixerFamily>(c, split);
}

// An objective that does not declare itself data-parallel (losses/objective.hpp).
template <class M>
struct NotDeclared : NextItemCE<M> {
  using NextItemCE<M>::NextItemCE;
  static constexpr const char* name = "not_declared";
  static constexpr bool data_parallel = false;
};

TEST(DataParallel, RefusesAnObjectiveThatDoesNotDeclareItself) {
  B::set_threads(1);
  const auto split = synthetic(30, 20, 10, 3);
  const auto cfg = sasrec_config();
  SASRecConfig mc = cfg.sasrec;
  mc.n_items = split.n_items;
  using M = SASRec<B, double, sasrec::RecBole>;
  Trainer<M, NotDeclared> t(M(mc), trainer_config(cfg), cfg.eval, split, cfg.seed);
  FitOptions o;
  o.comm = &world();
  const std::string e = test::error_of([&] { t.fit(o); });
  EXPECT_NE(e.find("the objective 'not_declared' does not support it"), std::string::npos) << e;
}

int main(int argc, char** argv) {
  app::mpi_start(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  app::mpi_set_timeout(60);  // a rank stuck in a failed test ends the job, naming it
  const int rc = RUN_ALL_TESTS();
  // Every rank's verdict: rank 0 exits non-zero when any rank failed.
  const auto all = world().allgather({int64_t(rc)}, "the test verdicts");
  app::mpi_finish();
  for (const int64_t r : all)
    if (r != 0) return 1;
  return 0;
}
