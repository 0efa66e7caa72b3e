// Resume checks shared by the end-to-end tests: a run interrupted after some epoch and resumed
// from its latest.ckpt against one that never stopped, compared bit for bit (weights, epoch logs,
// the final checkpoint's training state).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "test_util.hpp"
#include "recdistill/train/checkpoint.hpp"
#include "recdistill/train/result.hpp"

namespace recdistill::test {

// Thrown from on_epoch: the "crash" that interrupts a run.
struct Crash {};

// The logs of two runs agree in every number training computed (not in the timings).
inline void expect_same_logs(const TrainResult& a, const TrainResult& b) {
  ASSERT_EQ(a.epochs.size(), b.epochs.size());
  for (size_t i = 0; i < a.epochs.size(); ++i) {
    EXPECT_EQ(a.epochs[i].epoch, b.epochs[i].epoch);
    EXPECT_EQ(a.epochs[i].steps, b.epochs[i].steps) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].targets, b.epochs[i].targets) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].loss, b.epochs[i].loss) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].grad_norm, b.epochs[i].grad_norm) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].valid, b.epochs[i].valid) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].best, b.epochs[i].best) << "epoch " << i + 1;
  }
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  EXPECT_EQ(a.epochs_run, b.epochs_run);
  EXPECT_EQ(a.best_valid, b.best_valid);
  EXPECT_EQ(a.test, b.test);
}

// Two checkpoint files hold the same training state: weights, Adam moments, step counts (global
// and per tensor), the selected weights and early stopping.
inline void expect_same_checkpoints(const std::string& path_a, const std::string& path_b) {
  const auto a = load_checkpoint<float>(path_a);
  const auto b = load_checkpoint<float>(path_b);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.adam_m, b.adam_m);
  EXPECT_EQ(a.adam_v, b.adam_v);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.tensor_steps, b.tensor_steps);
  EXPECT_EQ(a.best_params, b.best_params);
  EXPECT_EQ(a.best_score, b.best_score);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  EXPECT_EQ(a.bad_evals, b.bad_evals);
}

// make() gives a fresh trainer of one run (SequentialTrainer or Trainer: fit(FitOptions) and
// params()). One trains straight; a second stops after `crash_epoch`; a third resumes from the
// second's latest.ckpt and must end where the first did, bit for bit: the selected weights, the
// epoch logs and test metrics, and the final checkpoint.
template <class Make>
void expect_resume_bit_for_bit(const Make& make, int crash_epoch) {
  TempDir d("rd_resume");
  auto straight = make();
  FitOptions so;
  so.checkpoint_dir = d.str("straight");
  const TrainResult want = straight.fit(so);
  ASSERT_GT(want.epochs_run, crash_epoch) << "the run must go on past the interruption";
  {
    auto first = make();
    FitOptions o;
    o.checkpoint_dir = d.str("run");
    o.on_epoch = [crash_epoch](const EpochLog& e) {
      if (e.epoch == crash_epoch) throw Crash{};
    };
    EXPECT_THROW(first.fit(o), Crash);
  }
  auto resumed = make();
  FitOptions o;
  o.checkpoint_dir = d.str("run");
  o.resume_from = d.str("run/latest.ckpt");
  const TrainResult got = resumed.fit(o);
  EXPECT_EQ(got.resumed_from_epoch, crash_epoch);
  EXPECT_EQ(resumed.params(), straight.params());
  expect_same_logs(want, got);
  expect_same_checkpoints(d.str("straight/latest.ckpt"), d.str("run/latest.ckpt"));
}

}  // namespace recdistill::test
