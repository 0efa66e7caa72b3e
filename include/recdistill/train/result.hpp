// recdistill/train/result.hpp: what a training run reports, per epoch and in the end.
// Kept apart from the trainers so apps and plugin interfaces can use it without them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "recdistill/dist/comm.hpp"
#include "recdistill/eval/ranking.hpp"

namespace recdistill {

struct EpochLog {
  int epoch = 0;                 // 1-based
  double loss = 0;               // mean over the epoch's batches
  double train_seconds = 0;
  int64_t targets = 0;
  int steps = 0;
  int skipped_steps = 0;         // steps skipped for a NaN/Inf loss or gradient (FitOptions::skip_nonfinite)
  double grad_norm = 0;          // mean pre-clip global norm of the steps taken
  double gflop = 0;              // matrix-product work of the epoch (forward + backward)
  bool evaluated = false;
  eval::Metrics valid;
  double eval_seconds = 0;
  bool best = false;
};

// One optimiser step, for --debug logs and progress bars.
struct StepLog {
  int epoch = 0, step = 0, steps = 0;  // 1-based epoch and step; steps in this epoch
  double loss = 0, grad_norm = 0;      // grad_norm: pre-clip global norm (NaN when not computed)
  double seconds = 0;                  // wall time of this step
  bool skipped = false;                // NaN/Inf loss or gradient, step not applied
};

// How SequentialTrainer::fit runs (docs/checkpoints.md).
struct FitOptions {
  std::function<void(const EpochLog&)> on_epoch;  // after each epoch (and its checkpoint)
  std::function<void(const StepLog&)> on_step;    // after each step
  std::string checkpoint_dir;  // "" = none; else latest.ckpt after every epoch, best.ckpt on improvement
  std::string resume_from;     // "" = fresh; a checkpoint file to continue from
  bool skip_nonfinite = false; // skip a step whose loss or gradient is NaN/Inf (logged) instead of stopping
  uint64_t mapping_hash = 0;   // data::mapping_hash(dataset), stored and checked on resume; 0 = unknown
  // Polled after each epoch's checkpoint: non-zero (the signal that asked, core/interrupt.hpp)
  // ends the run there by throwing Interrupted, so a resume continues bit for bit.
  std::function<int()> stop_requested;
  // Data-parallel training over this communicator's ranks (dist/comm.hpp; null or one rank =
  // this process alone). Every rank calls fit with the same settings and data.
  dist::Comm* comm = nullptr;
  // With `comm`: a communicator of the same ranks whose allreduce_sum takes buffers in the
  // backend's memory (cuda::Backend: NCCL, backend/cuda/nccl.cuh), for the gradient all-reduce;
  // null = through host memory over `comm`. The backend's Ptr must be a plain pointer.
  dist::Comm* device_comm = nullptr;
};

struct TrainResult {
  size_t n_params = 0;
  size_t n_windows = 0;
  int best_epoch = 0;  // epoch whose weights were tested
  int epochs_run = 0;
  eval::Metrics best_valid, test;
  double train_seconds = 0, eval_seconds = 0;
  double train_seconds_to_best = 0;  // training time of epochs 1..best_epoch
  std::vector<EpochLog> epochs;
  int resumed_from_epoch = 0;  // epochs read from FitOptions::resume_from (0 = fresh run)
};

}  // namespace recdistill
