// Tier 4: checkpoints. A run that is interrupted and resumed from latest.ckpt gives the same
// bits as one that never stopped (CPU, one thread); a kill at any phase of a checkpoint commit
// leaves the previous pair, which agrees and resumes; damaged checkpoints and checkpoints of other data or settings
// are refused with a message naming what is wrong.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "../common/resume.hpp"
#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
namespace fs = std::filesystem;

namespace {

data::Split synthetic(int n_users, int n_items, int length, unsigned seed) {
  return data::to_split(test::synthetic(n_users, n_items, length, seed));
}

io::ExperimentConfig small_config() {
  io::ExperimentConfig c;
  c.seed = 5;
  c.sasrec.max_len = 10;
  c.sasrec.hidden = 16;
  c.sasrec.layers = 1;
  c.sasrec.heads = 2;
  c.sasrec.inner = 32;
  c.sasrec.hidden_dropout = c.sasrec.attn_dropout = 0.2;
  c.training.batch_size = 16;
  c.training.epochs = 6;
  c.training.learning_rate = 3e-3;
  c.training.eval_every = 2;
  c.training.patience = 5;
  c.eval.ks = {10};
  c.training.valid_metric = "NDCG@10";
  return c;
}

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("rd_ckpt") {}
};

using test::Crash;
using test::expect_same_logs;

using test::error_of;

}  // namespace

TEST(Resume, EqualsAnUninterruptedRunBitForBit) {
  B::set_threads(1);
  const auto split = synthetic(80, 40, 14, 3);
  const auto cfg = small_config();
  TempDir d;

  SequentialTrainer<B, float> straight(cfg, split);
  FitOptions so;
  so.checkpoint_dir = d.str("straight");
  const auto want = straight.fit(so);
  ASSERT_EQ(want.epochs_run, 6);

  // The same run "crashes" after epoch 3 (an odd epoch: no evaluation, between two
  // checkpoints of evaluated epochs), then a fresh trainer resumes from latest.ckpt.
  {
    SequentialTrainer<B, float> first(cfg, split);
    FitOptions o;
    o.checkpoint_dir = d.str("run");
    o.on_epoch = [](const EpochLog& e) {
      if (e.epoch == 3) throw Crash{};
    };
    EXPECT_THROW(first.fit(o), Crash);
  }
  const auto latest = d.str("run/latest.ckpt");
  ASSERT_TRUE(fs::exists(latest));
  EXPECT_EQ(load_checkpoint<float>(latest).epoch, 3);
  SequentialTrainer<B, float> resumed(cfg, split);
  FitOptions o;
  o.checkpoint_dir = d.str("run");
  o.resume_from = latest;
  int epochs_seen = 0;
  o.on_epoch = [&](const EpochLog& e) {
    EXPECT_GT(e.epoch, 3);
    ++epochs_seen;
  };
  const auto got = resumed.fit(o);
  EXPECT_EQ(epochs_seen, 3);
  EXPECT_EQ(got.resumed_from_epoch, 3);
  EXPECT_EQ(resumed.params(), straight.params());  // the selected weights, bit for bit
  expect_same_logs(want, got);
  // The final checkpoints are identical too (weights, moments, step count, early stopping).
  test::expect_same_checkpoints(d.str("straight/latest.ckpt"), latest);
  // best.ckpt holds the selected epoch's weights.
  const auto best = load_checkpoint<float>(d.str("run/best.ckpt"));
  EXPECT_EQ(best.epoch, got.best_epoch);
  EXPECT_EQ(best.params, resumed.params());
}

TEST(Resume, ScheduleMayChangeOtherSettingsMayNot) {
  B::set_threads(1);
  const auto split = synthetic(60, 30, 12, 4);
  auto cfg = small_config();
  cfg.training.epochs = 2;
  TempDir d;
  {
    SequentialTrainer<B, float> t(cfg, split);
    FitOptions o;
    o.checkpoint_dir = d.str();
    o.mapping_hash = 0x1234;
    t.fit(o);
  }
  const auto latest = d.str("latest.ckpt");
  // More epochs and another patience: accepted, and training continues at epoch 3.
  {
    auto more = cfg;
    more.training.epochs = 3;
    more.training.patience = 9;
    SequentialTrainer<B, float> t(more, split);
    FitOptions o;
    o.resume_from = latest;
    o.mapping_hash = 0x1234;
    const auto r = t.fit(o);
    EXPECT_EQ(r.epochs_run, 3);
    EXPECT_EQ(r.epochs.size(), 3u);
  }
  // Another learning rate and hidden size: refused, naming both keys and both values.
  {
    auto other = cfg;
    other.training.learning_rate = 1e-2;
    other.sasrec.hidden_dropout = 0.3;
    SequentialTrainer<B, float> t(other, split);
    FitOptions o;
    o.resume_from = latest;
    const auto e = error_of([&] { t.fit(o); });
    EXPECT_NE(e.find(latest + ": the checkpoint's model/data/training settings differ"), std::string::npos) << e;
    EXPECT_NE(e.find("training.learning_rate: checkpoint 0.003, config 0.01"), std::string::npos) << e;
    EXPECT_NE(e.find("model.dropout_rate: checkpoint 0.2, config 0.3"),
              std::string::npos) << e;
  }
  // Another thread count: refused, naming both counts (a count repeats bit for bit, another
  // can differ in the last bits).
  {
    auto other = cfg;
    other.runtime.threads = 2;
    SequentialTrainer<B, float> t(other, split);
    FitOptions o;
    o.resume_from = latest;
    const auto e = error_of([&] { t.fit(o); });
    EXPECT_NE(e.find("runtime.threads: checkpoint 1, config 2"), std::string::npos) << e;
  }
  // Another dataset id mapping: refused before anything else.
  {
    SequentialTrainer<B, float> t(cfg, split);
    FitOptions o;
    o.resume_from = latest;
    o.mapping_hash = 0x9999;
    const auto e = error_of([&] { t.fit(o); });
    EXPECT_NE(e.find("another id mapping (mapping hash 0000000000001234, this dataset's is 0000000000009999)"),
              std::string::npos) << e;
  }
  // Same settings, different data (another split): refused.
  {
    SequentialTrainer<B, float> t(cfg, synthetic(60, 30, 12, 5));
    FitOptions o;
    o.resume_from = latest;
    const auto e = error_of([&] { t.fit(o); });
    EXPECT_NE(e.find("trained on another split of the data"), std::string::npos) << e;
  }
}

TEST(Resume, MappingHashSeesEveryToken) {
  data::Dataset a, b;
  for (const char* u : {"u1", "u2"}) a.users.intern(u), b.users.intern(u);
  for (const char* i : {"i1", "i2", "i3"}) a.items.intern(i);
  for (const char* i : {"i1", "i3", "i2"}) b.items.intern(i);
  EXPECT_NE(data::mapping_hash(a), data::mapping_hash(b));
  data::Dataset c = a;
  EXPECT_EQ(data::mapping_hash(a), data::mapping_hash(c));
  // Token boundaries count: ("ab", "c") is not ("a", "bc").
  data::Dataset x, y;
  x.items.intern("ab"), x.items.intern("c");
  y.items.intern("a"), y.items.intern("bc");
  EXPECT_NE(data::mapping_hash(x), data::mapping_hash(y));
}

TEST(Checkpoint, DamagedFilesAreRefused) {
  B::set_threads(1);
  const auto split = synthetic(40, 20, 10, 6);
  auto cfg = small_config();
  cfg.training.epochs = 1;
  TempDir d;
  SequentialTrainer<B, float> t(cfg, split);
  FitOptions o;
  o.checkpoint_dir = d.str();
  t.fit(o);
  const auto f = d.str("latest.ckpt");
  const std::string good = io::read_file_bytes(f);
  ASSERT_NO_THROW(load_checkpoint<float>(f));
  auto refused = [&](const std::string& bytes, const std::string& what) {
    std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes;
    SequentialTrainer<B, float> r(cfg, split);
    FitOptions ro;
    ro.resume_from = f;
    const auto e = error_of([&] { r.fit(ro); });
    EXPECT_NE(e.find(f), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  std::string flipped = good;
  flipped[good.size() / 2] = char(flipped[good.size() / 2] ^ 1);
  refused(flipped, "checkpoint is corrupted: payload checksum");
  refused(good.substr(0, good.size() - 100), "truncated checkpoint");
  refused("", "the file is empty");
  // A checkpoint of double weights is not read as floats.
  {
    Checkpoint<double> c;
    save_checkpoint(f, c);
    const auto e = error_of([&] { load_checkpoint<float>(f); });
    EXPECT_NE(e.find("holds 64-bit weights, this trainer uses 32-bit ones"), std::string::npos) << e;
  }
}

// A write killed half-way: the child process writes a large checkpoint over latest.ckpt and
// is SIGKILLed while the temporary file is being written or synced. The previous
// latest.ckpt must still load unchanged, and the stale temporary file is never read.
TEST(Checkpoint, AWriteKilledMidwayLeavesThePreviousOneIntact) {
  TempDir d;
  const auto f = d.str("latest.ckpt");
  Checkpoint<float> old;
  old.seed = 1;
  old.params.assign(1000, 0.5f);
  old.best_params = old.adam_m = old.adam_v = old.params;
  save_checkpoint(f, old);
  const std::string old_bytes = io::read_file_bytes(f);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Checkpoint<float> big;
    big.seed = 2;
    big.params.assign(size_t(6) << 20, 1.0f);  // 4 x 24 MiB of weights and moments
    big.best_params = big.adam_m = big.adam_v = std::vector<float>(big.params.size(), 2.0f);
    try {
      save_checkpoint(f, big);
    } catch (...) {
    }
    ::_exit(0);
  }
  // Kill the child as soon as its temporary file exists and has bytes in it.
  const std::string tmp = f + ".tmp." + std::to_string(child);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool seen = false;
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    if (fs::exists(tmp, ec) && fs::file_size(tmp, ec) > 0) {
      seen = true;
      break;
    }
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) break;  // finished before we looked
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (fs::exists(tmp)) {
    // Killed mid-write: latest.ckpt is the old one, bit for bit, and loads.
    EXPECT_EQ(io::read_file_bytes(f), old_bytes);
    EXPECT_EQ(load_checkpoint<float>(f).seed, 1u);
    // The partial temporary file is detected as such if anyone tries to read it.
    const auto e = error_of([&] { load_checkpoint<float>(tmp); });
    EXPECT_TRUE(e.find("truncated") != std::string::npos || e.find("the file is empty") != std::string::npos ||
                e.find("corrupted") != std::string::npos) << e;
    std::cout << "killed mid-write: " << fs::file_size(tmp) << " bytes of the temporary file were written\n";
  } else {
    // The rename happened before the kill: the file is then the whole new checkpoint.
    std::cout << "the child finished renaming before the kill (seen=" << seen << ")\n";
    EXPECT_EQ(load_checkpoint<float>(f).seed, 2u);
  }
  // Either way a trainer-style reload succeeds and a leftover temporary file is harmless:
  // writing again replaces latest.ckpt.
  save_checkpoint(f, old);
  EXPECT_EQ(io::read_file_bytes(f), old_bytes);

  // The same damage, simulated deterministically: a stale temporary file beside a good
  // checkpoint, and a truncated copy of the checkpoint in its place.
  {
    std::ofstream(f + ".tmp.999999", std::ios::binary) << old_bytes.substr(0, old_bytes.size() / 2);
    EXPECT_EQ(load_checkpoint<float>(f).seed, 1u);
    std::ofstream(f, std::ios::binary | std::ios::trunc) << old_bytes.substr(0, old_bytes.size() / 2);
    const auto e = error_of([&] { load_checkpoint<float>(f); });
    EXPECT_NE(e.find("truncated checkpoint"), std::string::npos) << e;
  }
}

// The run folder's pair (train/checkpoint_files.hpp): the best epoch latest.ckpt records is
// best.ckpt's epoch.
static void expect_pair_agrees(const std::string& run) {
  const auto latest = load_checkpoint<float>(run + "/latest.ckpt");
  const auto best = load_checkpoint<float>(run + "/best.ckpt");
  EXPECT_EQ(best.epoch, latest.best_epoch) << run;
  EXPECT_EQ(best.params, latest.best_params) << run;
}

// Every generation folder (ckpt.<n>) of a run folder.
static std::vector<std::string> generations(const std::string& run) {
  std::vector<std::string> g;
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().filename().string().rfind("ckpt.", 0) == 0) g.push_back(e.path().filename().string());
  std::sort(g.begin(), g.end());
  return g;
}

// A training process killed at each phase of a checkpoint commit (the test-only fault point
// RECDISTILL_FAULT_CHECKPOINT=<phase>:<epoch>, on an epoch whose validation improved, so both
// files are due): the test proves where the kill landed (the child's last words, the unfinished
// generation's files), that the committed pair still agrees and is the previous epoch's, and
// that resuming from it gives the uninterrupted run bit for bit with both files in the folder.
class KilledCommit : public ::testing::TestWithParam<std::string> {};

TEST_P(KilledCommit, LeavesTheLastPairAndResumesBitForBit) {
  const std::string phase = GetParam();
  B::set_threads(1);
  const auto split = synthetic(60, 400, 12, 9);
  auto cfg = small_config();
  cfg.training.eval_every = 1;
  SequentialTrainer<B, float> straight(cfg, split);
  const auto want = straight.fit();
  int epoch = 0;  // an improving epoch after the first: a committed pair exists before it
  for (const auto& e : want.epochs)
    if (e.best && e.epoch >= 2 && epoch == 0) epoch = e.epoch;
  ASSERT_GT(epoch, 1) << "the planted run must improve after epoch 1";

  TempDir d;
  const std::string run = d.str("run"), err = d.str("child.err");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::setenv("RECDISTILL_FAULT_CHECKPOINT", (phase + ":" + std::to_string(epoch)).c_str(), 1);
    try {
      SequentialTrainer<B, float> t(cfg, split);
      FitOptions o;
      o.checkpoint_dir = run;
      t.fit(o);
    } catch (...) {
    }
    ::_exit(0);  // not reached when the fault point fires
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child was not killed: status " << status;
  std::ifstream in(err);
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(said.find("fault injection: " + phase + " at epoch " + std::to_string(epoch)), std::string::npos) << said;

  // Where it landed: the committed generation is the previous epoch's; the next one is unfinished.
  const auto gens = generations(run);
  ASSERT_EQ(gens.size(), 2u) << "the committed generation and the unfinished one";
  const std::string committed = fs::read_symlink(run + "/checkpoints").string();
  const std::string unfinished = gens[0] == committed ? gens[1] : gens[0];
  const std::string u = run + "/" + unfinished;
  if (phase == "mid_latest") {
    EXPECT_GT(fs::file_size(u + "/latest.ckpt"), 0u);
    EXPECT_THROW(load_checkpoint<float>(u + "/latest.ckpt"), Error);  // half written
    EXPECT_FALSE(fs::exists(u + "/best.ckpt"));
  } else {
    EXPECT_EQ(load_checkpoint<float>(u + "/latest.ckpt").epoch, epoch);  // written whole
    if (phase == "between") {
      EXPECT_FALSE(fs::exists(u + "/best.ckpt"));
    } else {
      EXPECT_GT(fs::file_size(u + "/best.ckpt"), 0u);
      EXPECT_THROW(load_checkpoint<float>(u + "/best.ckpt"), Error);
    }
  }
  EXPECT_EQ(load_checkpoint<float>(run + "/latest.ckpt").epoch, epoch - 1);
  expect_pair_agrees(run);

  SequentialTrainer<B, float> resumed(cfg, split);
  FitOptions o;
  o.checkpoint_dir = run;
  o.resume_from = run + "/latest.ckpt";
  const auto got = resumed.fit(o);
  EXPECT_EQ(resumed.params(), straight.params());
  expect_same_logs(want, got);
  // Both files, the resumed run's best included; the unfinished generation is gone.
  EXPECT_EQ(load_checkpoint<float>(run + "/latest.ckpt").epoch, want.epochs_run);
  EXPECT_EQ(load_checkpoint<float>(run + "/best.ckpt").epoch, want.best_epoch);
  expect_pair_agrees(run);
  EXPECT_EQ(generations(run).size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Checkpoint, KilledCommit, ::testing::Values("mid_latest", "between", "mid_best"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// A stop asked for during an epoch (the app's SIGINT/SIGTERM flag, FitOptions::stop_requested)
// ends the run after that epoch's checkpoint with Interrupted; resuming from the folder gives
// the uninterrupted run bit for bit.
TEST(Resume, AfterAStopRequestEqualsAnUninterruptedRun) {
  B::set_threads(1);
  const auto split = synthetic(60, 40, 12, 4);
  const auto cfg = small_config();
  SequentialTrainer<B, float> straight(cfg, split);
  const auto want = straight.fit();
  TempDir d;
  int epochs_done = 0;
  {
    SequentialTrainer<B, float> first(cfg, split);
    FitOptions o;
    o.checkpoint_dir = d.str("run");
    o.on_epoch = [&](const EpochLog& e) { epochs_done = e.epoch; };
    o.stop_requested = [&] { return epochs_done >= 3 ? SIGTERM : 0; };  // "arrives" during epoch 3
    try {
      first.fit(o);
      ADD_FAILURE() << "the run did not stop";
    } catch (const Interrupted& e) {
      EXPECT_EQ(e.signal, SIGTERM);
      EXPECT_EQ(e.epoch, 3);
      EXPECT_NE(std::string(e.what()).find("interrupted by SIGTERM after epoch 3"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(load_checkpoint<float>(d.str("run/latest.ckpt")).epoch, 3);
  expect_pair_agrees(d.str("run"));
  SequentialTrainer<B, float> resumed(cfg, split);
  FitOptions o;
  o.checkpoint_dir = d.str("run");
  o.resume_from = d.str("run/latest.ckpt");
  const auto got = resumed.fit(o);
  EXPECT_EQ(resumed.params(), straight.params());
  expect_same_logs(want, got);
}

// A run resumed into a new folder (as `recdistill train --resume` does) starts it with the pair
// it resumed from, so the folder has best.ckpt even when the resumed epochs never improve.
TEST(Resume, IntoANewFolderKeepsThePair) {
  B::set_threads(1);
  const auto split = synthetic(60, 40, 12, 4);
  auto cfg = small_config();
  TempDir d;
  {
    SequentialTrainer<B, float> first(cfg, split);
    FitOptions o;
    o.checkpoint_dir = d.str("a");
    o.on_epoch = [](const EpochLog& e) {
      if (e.epoch == 4) throw Crash{};
    };
    EXPECT_THROW(first.fit(o), Crash);
  }
  expect_pair_agrees(d.str("a"));
  const auto best_a = load_checkpoint<float>(d.str("a/best.ckpt"));
  SequentialTrainer<B, float> resumed(cfg, split);
  FitOptions o;
  o.checkpoint_dir = d.str("b");
  o.resume_from = d.str("a/latest.ckpt");
  int last_best = 0;
  o.on_epoch = [&](const EpochLog& e) {
    if (e.best) last_best = e.epoch;
  };
  const auto got = resumed.fit(o);
  expect_pair_agrees(d.str("b"));
  const auto best_b = load_checkpoint<float>(d.str("b/best.ckpt"));
  EXPECT_EQ(best_b.epoch, got.best_epoch);
  if (last_best == 0) {
    EXPECT_EQ(best_b.params, best_a.params);  // carried over from folder a
  }
}

// A folder written by an older build (plain latest.ckpt and best.ckpt files) is taken over
// without changing what either name reads.
TEST(Checkpoint, PlainFilesOfAnOlderBuildAreTakenOver) {
  TempDir d;
  const std::string run = d.str("run");
  fs::create_directories(run);
  io::write_file_atomic(run + "/latest.ckpt", "latest bytes");
  io::write_file_atomic(run + "/best.ckpt", "best bytes");
  CheckpointFiles files(run);
  EXPECT_TRUE(files.has_committed());
  EXPECT_TRUE(fs::is_symlink(run + "/latest.ckpt"));
  EXPECT_EQ(io::read_file_bytes(run + "/latest.ckpt"), "latest bytes");
  EXPECT_EQ(io::read_file_bytes(run + "/best.ckpt"), "best bytes");
  fs::create_directories(run + "/ckpt.1.keep");  // not a generation: cleanup leaves it
  files.commit(7, "new latest", nullptr);  // no improvement: best stays
  EXPECT_EQ(io::read_file_bytes(run + "/latest.ckpt"), "new latest");
  EXPECT_EQ(io::read_file_bytes(run + "/best.ckpt"), "best bytes");
  const std::string newer = "newer";
  files.commit(8, newer, &newer);
  EXPECT_EQ(io::read_file_bytes(run + "/best.ckpt"), "newer");
  EXPECT_EQ(generations(run), (std::vector<std::string>{"ckpt.1.keep", "ckpt.2"}));
}

// Before the first validated epoch the pair agrees too: best.ckpt is the start (epoch 0).
TEST(Checkpoint, ThePairAgreesBeforeTheFirstValidation) {
  B::set_threads(1);
  const auto split = synthetic(40, 20, 10, 7);
  auto cfg = small_config();  // eval_every 2: epoch 1 is not validated
  TempDir d;
  SequentialTrainer<B, float> t(cfg, split);
  FitOptions o;
  o.checkpoint_dir = d.str("run");
  o.on_epoch = [](const EpochLog& e) {
    if (e.epoch == 1) throw Crash{};
  };
  EXPECT_THROW(t.fit(o), Crash);
  EXPECT_EQ(load_checkpoint<float>(d.str("run/latest.ckpt")).best_epoch, 0);
  EXPECT_EQ(load_checkpoint<float>(d.str("run/best.ckpt")).epoch, 0);
  expect_pair_agrees(d.str("run"));
}

// NaN/Inf: training stops naming the epoch and step, and the checkpoints written before stay
// valid; with skip_nonfinite the steps are skipped and counted instead.
TEST(Checkpoint, DivergenceStopsWithoutDamagingCheckpoints) {
  B::set_threads(1);
  const auto split = synthetic(40, 20, 10, 7);
  auto cfg = small_config();
  cfg.training.epochs = 4;
  TempDir d;
  SequentialTrainer<B, float> t(cfg, split);
  FitOptions o;
  o.checkpoint_dir = d.str();
  // Poison the weights after epoch 2 has been checkpointed.
  o.on_epoch = [&](const EpochLog& e) {
    if (e.epoch == 2) std::fill(t.params().begin(), t.params().end(), std::numeric_limits<float>::quiet_NaN());
  };
  const auto e = error_of([&] { t.fit(o); });
  EXPECT_NE(e.find("training diverged: the loss is nan at epoch 3, step 1"), std::string::npos) << e;
  const auto ck = load_checkpoint<float>(d.str("latest.ckpt"));
  EXPECT_EQ(ck.epoch, 2);
  for (float p : ck.params) ASSERT_TRUE(std::isfinite(p));

  // Resuming from that checkpoint with skip_nonfinite and weights poisoned after epoch 3:
  // every step of epoch 4 is skipped and counted, and the run finishes.
  SequentialTrainer<B, float> s(cfg, split);
  FitOptions so;
  so.resume_from = d.str("latest.ckpt");
  so.skip_nonfinite = true;
  int skipped_steps_seen = 0;
  so.on_step = [&](const StepLog& l) { skipped_steps_seen += l.skipped; };
  so.on_epoch = [&](const EpochLog& l) {
    if (l.epoch == 3) std::fill(s.params().begin(), s.params().end(), std::numeric_limits<float>::infinity());
  };
  const auto r = s.fit(so);
  EXPECT_EQ(r.epochs_run, 4);
  EXPECT_EQ(r.epochs[2].skipped_steps, 0);
  EXPECT_EQ(r.epochs[3].skipped_steps, r.epochs[3].steps);
  EXPECT_EQ(skipped_steps_seen, r.epochs[3].steps);
}

}  // namespace RD_TEST_FILE
