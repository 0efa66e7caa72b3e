// apps/commands.hpp: the recdistill subcommands. Each is `int run(args)` returning the exit
// status; errors are thrown as recdistill::Error (exit 1) or boost::program_options errors
// (exit 2) and reported by main().
#pragma once
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "recdistill/data/dataset.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/train/result.hpp"

namespace recdistill::plugin {
class Registry;
}

namespace recdistill::app {

using Args = std::vector<std::string>;

int cmd_prepare(const Args& args);
int cmd_train(const Args& args);
int cmd_experiment(const Args& args);
int cmd_compare(const Args& args);
// --metrics of compare and experiment: "" = {} (io::variant_tests picks its defaults).
std::vector<std::string> tested_metrics_option(const std::string& text);
int cmd_evaluate(const Args& args);
int cmd_recommend(const Args& args);
int cmd_plugins(const Args& args);
int cmd_export(const Args& args);
int cmd_llm(const Args& args);
int cmd_profiles(const Args& args);
int cmd_alkd(const Args& args);

// Log level from --verbose / --debug: 0 normal, 1 verbose (full resolved config), 2 debug
// (adds per-step losses, gradient norms and timings).
enum class Verbosity { normal = 0, verbose = 1, debug = 2 };

// Where plugins are looked for (cmd_plugins.cpp): --plugin-dir folders first, then
// RECDISTILL_PLUGIN_PATH, then (unless no_default) the build tree's and the install's folders.
struct PluginArgs {
  std::vector<std::string> dirs;
  bool no_default = false;
};
std::vector<std::string> default_plugin_dirs();
// Loads every plugin of those folders (registry.hpp has the type; include it to use this).
plugin::Registry open_plugins(const PluginArgs& args);

// The dataset and split a config names (cmd_train.cpp); prints one line about the data.
struct PreparedData {
  data::Dataset data;
  data::Split split;
};
PreparedData prepare_data(const io::CommonConfig& cfg, std::ostream& out);
// "full ranking over N items, ties against the model" or the sampled protocol (cmd_train.cpp).
std::string ranking_text(const io::CommonConfig& cfg, int32_t n_items);

// --model-path of evaluate/recommend (cmd_evaluate.cpp): a run folder (its model.safetensors,
// and its config.yaml when `configs` is empty) or a weights file. Returns {weights, configs}.
std::pair<std::string, std::vector<std::string>> resolve_model_path(const std::string& model_path,
                                                                    std::vector<std::string> configs);

// A run's config as the app holds it: the YAML layers (what the model's plugin receives) and
// the app's own keys, bound. The model's keys are validated with them but bound by the model.
struct RunConfig {
  io::ConfigLayers layers;
  io::CommonConfig common;
  std::vector<keys::KeyDoc> model_keys;  // the keys the model's plugin declares
};
// Config from one or more YAML files (later files override earlier ones, key by key) and
// --set overrides (cmd_train.cpp), validated against the app's keys and those of the model
// model.model_name names (from `registry`); every other key is an error naming file and line.
// Without `require_model` (prepare), a model no plugin offers only narrows the check to the
// app's own keys.
// `extra_keys`: keys a command reads besides the app's and the model's (alkd's section).
RunConfig load_configs(const std::vector<std::string>& files, const std::vector<std::string>& sets,
                       const plugin::Registry& registry, bool require_model = true, bool warn = true,
                       const std::vector<keys::KeyDoc>& extra_keys = {});
// The config a run folder records: the app's keys, then the model's resolved config over them.
std::string run_config_text(const RunConfig& rc, const std::string& model_resolved);
// "SASRec from sasrec 0.1.0 (path/librecdistill_sasrec.so)": where the model's code came from.
std::string plugin_text(const plugin::Registry& registry, const std::string& model_name);

// One training run of a resolved config, as `train` does it; `experiment` calls it once per
// seed and variant. Prints progress to stdout unless `quiet`.
struct TrainRunOptions {
  std::string output;  // run folder parent ("" = training.model_dir/experiment_name)
  bool quiet = false;  // no per-epoch lines (the caller reports)
  PluginArgs plugins;  // where the model's plugin is looked for
  std::string resume;  // run folder or checkpoint to continue ("" = fresh run)
  bool skip_nonfinite = false;  // skip NaN/Inf steps instead of stopping
  Verbosity verbosity = Verbosity::normal;
  std::function<void(const EpochLog&)> on_epoch;  // also called after each epoch (the caller's own progress)
  // Changes the prepared data before training (active distillation trains on its own rows).
  std::function<void(PreparedData&)> adjust_data;
  dist::Comm* comm = nullptr;  // data-parallel ranks (apps/mpi_world.hpp); null = this process alone
};
struct TrainRunOutcome {
  std::filesystem::path run_dir;  // holds config.yaml, metrics.jsonl, results.json
  TrainResult result;
  std::string valid_metric;  // the model's selection metric as results name it
  std::string selection;     // training.selection as resolved: best | last ("" = the model has none)
};
TrainRunOutcome train_run(const RunConfig& cfg, const TrainRunOptions& opt);

struct Command {
  std::string name, summary;
  int (*run)(const Args&);
};

// In the order `recdistill --help` lists them.
inline const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"prepare", "import, filter and split the data into one verified file (--config FILE.yaml [--output FILE])", cmd_prepare},
      {"train", "train, validate and test a model (--config FILE.yaml [--set key=value ...])", cmd_train},
      {"experiment", "one config over seeds and variants: mean ± std table, CSV, plots (--seeds 1,2,3)", cmd_experiment},
      {"compare", "paired tests of two runs (RUN_A RUN_B), or of an experiment's variants against a control", cmd_compare},
      {"evaluate", "evaluate saved weights on validation and test (--model-path RUN --config FILE.yaml)", cmd_evaluate},
      {"recommend", "top-K items for users (--model-path RUN --users u1,u2 [--k 10])", cmd_recommend},
      {"export", "the selected weights of a run, for serving: safetensors + config (RUN_DIR [--output DIR])", cmd_export},
      {"llm", "check an LLM endpoint, send a batch of requests, import recorded answers (check|batch|import)", cmd_llm},
      {"profiles", "LLM-written user profiles from the training split, embedded (--config FILE.yaml [--output PREFIX])", cmd_profiles},
      {"alkd", "active LLM distillation of session models, by stages (--config FILE.yaml [--stages pretrain,predict])", cmd_alkd},
      {"plugins", "list the plugins found, their versions, models and strategies", cmd_plugins},
  };
  return list;
}

}  // namespace recdistill::app
