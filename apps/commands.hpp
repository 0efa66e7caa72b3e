// apps/commands.hpp: the recdistill subcommands. Each is `int run(args)` returning the exit
// status; errors are thrown as recdistill::Error (exit 1) or boost::program_options errors
// (exit 2) and reported by main().
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "recdistill/io/config.hpp"
#include "recdistill/train/result.hpp"

namespace recdistill::app {

using Args = std::vector<std::string>;

int cmd_train(const Args& args);

// One training run of a resolved config, as `train` does it; `experiment` calls it once per
// seed and variant. Prints progress to stdout unless `quiet`.
struct TrainRunOptions {
  std::string output;  // run folder parent ("" = training.model_dir/experiment_name)
  bool quiet = false;  // no per-epoch lines (the caller reports)
};
struct TrainRunOutcome {
  std::filesystem::path run_dir;  // holds config.yaml, metrics.jsonl, results.json
  TrainResult result;
};
TrainRunOutcome train_run(const io::ExperimentConfig& cfg, const TrainRunOptions& opt);

struct Command {
  std::string name, summary;
  int (*run)(const Args&);
};

// In the order `recdistill --help` lists them.
inline const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"train", "train, validate and test a model (--config FILE.yaml [--set key=value ...])", cmd_train},
  };
  return list;
}

}  // namespace recdistill::app
