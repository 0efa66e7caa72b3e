// recdistill/train/result.hpp: what a training run reports, per epoch and in the end.
// Kept apart from the trainers so apps and plugin interfaces can use it without them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "recdistill/eval/ranking.hpp"

namespace recdistill {

struct EpochLog {
  int epoch = 0;                 // 1-based
  double loss = 0;               // mean over the epoch's batches
  double train_seconds = 0;
  int64_t targets = 0;
  int steps = 0;
  double grad_norm = 0;          // mean pre-clip global norm
  double gflop = 0;              // matrix-product work of the epoch (forward + backward)
  bool evaluated = false;
  eval::Metrics valid;
  double eval_seconds = 0;
  bool best = false;
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
};

}  // namespace recdistill
