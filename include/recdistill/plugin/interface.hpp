// recdistill/plugin/interface.hpp: the run-time edge between the apps and the plugins.
//
// Templates stay inside a plugin (it instantiates, say, SequentialTrainer<cpu::Backend, float>);
// what crosses the edge is this small virtual interface: a Model that trains, evaluates,
// saves, loads and recommends, and a Strategy (a selection strategy of active distillation,
// specs/active-llm-distillation.md §5). docs/plugins.md shows how to write a plugin out of tree.
//
// A plugin is a shared library exporting seven C functions (RECDISTILL_PLUGIN below writes them):
//   uint32_t recdistill_plugin_abi_version()   checked FIRST, before any other symbol is used
//   uint64_t recdistill_plugin_layout()        sizes of the structs that cross the edge
//   void     recdistill_plugin_describe(PluginInfo*)
//   Model*   recdistill_plugin_create_model(const char* name, const io::ConfigLayers*, std::string* error)
//   void     recdistill_plugin_destroy_model(Model*)
//   Strategy* recdistill_plugin_create_strategy(...) / void recdistill_plugin_destroy_strategy(Strategy*)
//
// ABI rule: kPluginAbiVersion changes whenever a class or struct used here changes in a way
// that breaks a compiled plugin (a virtual function added, removed or reordered; a member of
// RunOptions, RunPlan, PluginInfo, ComponentInfo, KeyDoc, ConfigLayers, Dataset, Split, TrainResult, EpochLog,
// StepLog, SelectionRequest, alkd::Selection, SelectionReport or PoolEntry changed). The
// host refuses a plugin whose version differs, and also one whose layout signature (sizes of
// those structs) differs, so a forgotten bump is still caught in most cases. Plugins must be
// built with the same compiler family and standard library as the app (C++ types cross the edge).
//
// Config rule: what crosses the edge is the config's YAML layers (io/config_schema.hpp
// ConfigLayers: each --config file's path and text, then the --set overrides), never a C++
// config struct, so a new key is not an ABI change. Each model lists the keys it reads in its
// ComponentInfo (io::describe<ItsConfig>()); the app validates the layers against its own keys
// plus the model's, rejecting every other key with the file and line, and the model binds the
// same layers to its own structs.
//
// Lifetime rule: an object made by a plugin must not outlive the library that holds its
// code. The registry (registry.hpp) returns shared_ptrs whose deleter holds the library
// handle and calls the library's own destroy function; nothing else made by a plugin (a
// lambda, a std::function) may be stored beyond the object's life.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config_schema.hpp"
#include "recdistill/methods/alkd_selection.hpp"
#include "recdistill/train/result.hpp"

namespace recdistill::plugin {

// 2: Model::evaluate became Model::rank. 3: config layers instead of ExperimentConfig, the
// components' keys in ComponentInfo, Model::resolved_config and Model::export_model, weights
// in safetensors. 4: KeyDoc::refused (keys never accepted, such as llm.api_key). 5:
// Model::predict_cases (active distillation's prediction step). 6: Strategy::select takes the
// spec's §5.1 contract (SelectionRequest, alkd::Selection); data::Split's training annotations.
// 7: RunOptions::stop_requested (a graceful stop on SIGINT/SIGTERM, core/interrupt.hpp).
// 8: RunOptions::comm (data-parallel training, dist/comm.hpp).
constexpr uint32_t kPluginAbiVersion = 8;

// What a training run will do, as the model tells the app before its first step (from its own
// resolved config: the app reads no model key by name).
struct RunPlan {
  int epochs = 0;            // epochs planned (0 = unknown)
  std::string valid_metric;  // the selection metric as the results name it ("" = none)
};

// How a training run is driven: callbacks into the app, and the checkpoint settings.
// Every callback may be empty.
struct RunOptions {
  std::function<void(const RunPlan&)> on_start;     // once, before training
  std::function<void(const std::string&)> log;      // informational lines (model size, data use)
  std::function<void(const EpochLog&)> on_epoch;    // after each epoch (and its validation)
  std::function<void(const StepLog&)> on_step;      // after each optimiser step (debug output)
  std::string checkpoint_dir;  // where checkpoints go ("" = none)
  std::string resume_from;     // a run folder or checkpoint file to continue ("" = fresh run)
  bool skip_nonfinite = false; // skip a step whose loss or gradient is NaN/Inf instead of stopping
  std::function<int()> stop_requested;  // FitOptions::stop_requested (the app's signal flag)
  dist::Comm* comm = nullptr;           // FitOptions::comm (the app's MPI ranks under mpirun)
};

// One recommended item: internal item id (1-based) and its score.
struct Recommendation {
  int32_t item = 0;
  float score = 0;
};

// What Model::predict_cases returns, one entry per case.
struct CasePredictions {
  std::vector<int64_t> ranks;                      // as Model::rank
  std::vector<std::vector<Recommendation>> top;    // best first
  std::vector<std::vector<float>> item_scores;     // item_scores[i][j]: the score of items[i][j]
};

// A trainable, evaluable model behind the plugin edge. Created by a plugin from a config; sized
// from the data by train() or from a weights file by load().
class Model {
 public:
  virtual ~Model() = default;
  virtual std::string name() const = 0;
  // One line: architecture, sizes, number of parameters once known.
  virtual std::string summary() const = 0;

  // Trains on `split` (made from `data`), validating on split.valid and testing the selected
  // weights on split.test; afterwards the model holds the selected weights.
  virtual TrainResult train(const data::Dataset& data, const data::Split& split,
                            const RunOptions& opt) = 0;
  // The rank of each case's target (1 = top; eval::kMissRank for a miss), one per case and in
  // the order given, ranked as training validates (the config's eval.*: ties, exclusions,
  // sampling); `split` gives what that needs besides the cases (training sequences: seen
  // items, popularity). Every case must have a target and a non-empty history. The host turns
  // ranks into metrics (eval::metrics_from_ranks) and per-user dumps.
  virtual std::vector<int64_t> rank(const data::Split& split, const std::vector<data::SplitCase>& cases) = 0;

  // Every key the model read, with the value it resolved to (YAML text: defaults, presets and
  // derived values filled in); the app saves it as the run's config.yaml.
  virtual std::string resolved_config() const = 0;

  // The trained weights as a safetensors file (docs/weights.md), written atomically, with the
  // resolved model settings and the item-mapping hash in its metadata. load() refuses a file
  // whose model settings differ from the config or whose item mapping differs from `data`'s.
  virtual void save(const std::string& path) const = 0;
  virtual void load(const std::string& path, const data::Dataset& data) = 0;
  // The weights for serving: the plain model without training-only parameters (a method's
  // distillation heads), loadable by load() under the config resolved_config() prints.
  virtual void export_model(const std::string& path) const = 0;
  virtual int32_t num_items() const = 0;  // N, including the pad; 0 before train()/load()

  // Top-k items for each history (oldest first), never recommending the pad nor the items in
  // exclude[i] (exclude may be empty = exclude nothing). Best first.
  virtual std::vector<std::vector<Recommendation>> recommend(
      const std::vector<std::vector<int32_t>>& histories, int k,
      const std::vector<std::vector<int32_t>>& exclude) = 0;

  // In one pass over `cases` (active distillation's prediction step, specs/active-llm-
  // distillation.md §3): each target's rank as rank() gives it (full ranking), the k best items
  // under the same exclusions and ties, and the scores of items[i] (ids 1..N-1) for case i.
  virtual CasePredictions predict_cases(const data::Split& split, const std::vector<data::SplitCase>& cases, int k,
                                        const std::vector<std::vector<int32_t>>& items) = 0;
};

// What a selection strategy of active distillation is given (specs/active-llm-distillation.md
// §5.1): the pool of training sessions ordered hardest first, the budget tau of answered
// sessions, the oracle (whether a session has, or can get, an answer), the run's seed (the
// strategy keys its random stream by it and its own name), and, for replay, the list to replay.
struct SelectionRequest {
  std::vector<alkd::PoolEntry> pool;
  size_t budget = 0;
  alkd::OracleView oracle;
  uint64_t seed = 0;
  std::vector<std::string> replay_list;
};

// A selection strategy: the answered set B in order and its SelectionReport. A session the
// oracle cannot answer is skipped (counted, never drawn again) and drawing goes on until
// |B| = budget or nothing is left (the bundled ones run methods/alkd_selection.hpp's select()).
class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  virtual alkd::Selection select(const SelectionRequest& request) = 0;
};

// What a plugin offers, read by the host after the ABI check.
struct ComponentInfo {
  std::string name, description;
  std::vector<keys::KeyDoc> keys;  // the config keys it reads (io::describe<Config>())
};
struct PluginInfo {
  std::string name, version;
  std::vector<ComponentInfo> models, strategies;
};

// Sizes of everything that crosses the edge, folded into one number; a plugin built against
// headers with different structs reports a different value and is refused.
constexpr uint64_t layout_signature() {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the sizes
  for (uint64_t v : {uint64_t(sizeof(RunOptions)), uint64_t(sizeof(RunPlan)), uint64_t(sizeof(PluginInfo)),
                     uint64_t(sizeof(ComponentInfo)), uint64_t(sizeof(Recommendation)),
                     uint64_t(sizeof(io::ConfigLayers)), uint64_t(sizeof(keys::KeyDoc)), uint64_t(sizeof(data::Dataset)),
                     uint64_t(sizeof(data::Split)), uint64_t(sizeof(data::SplitCase)),
                     uint64_t(sizeof(TrainResult)), uint64_t(sizeof(EpochLog)), uint64_t(sizeof(StepLog)),
                     uint64_t(sizeof(eval::Metrics)), uint64_t(sizeof(std::string)),
                     uint64_t(sizeof(SelectionRequest)), uint64_t(sizeof(alkd::Selection)),
                     uint64_t(sizeof(alkd::SelectionReport)), uint64_t(sizeof(alkd::PoolEntry))}) {
    h = (h ^ v) * 1099511628211ull;
  }
  return h;
}

// A model a plugin offers but cannot run with this configuration (another runtime.backend):
// its create_model calls decline(why), and the registry asks the next plugin offering the
// name; when none accepts, the error lists every plugin's reason. The reason crosses the edge
// as the error text behind this prefix, so declining is no ABI change.
inline constexpr std::string_view kDeclinedPrefix = "recdistill-declined: ";
[[noreturn]] inline void decline(const std::string& why) {
  throw Error(std::string(kDeclinedPrefix) + why);
}

// For plugins without strategies (the third argument of RECDISTILL_PLUGIN).
inline std::unique_ptr<Strategy> no_strategies(const std::string&, const io::ConfigLayers&) {
  return nullptr;
}

namespace detail {
// Runs a factory, turning exceptions into a message so none crosses the C boundary.
template <class Base, class F>
Base* create_guarded(F&& factory, const char* name, const io::ConfigLayers* cfg,
                     std::string* error) {
  try {
    auto p = factory(std::string(name), *cfg);
    return p.release();  // nullptr = not offered here
  } catch (const std::exception& e) {
    if (error) *error = e.what();
  } catch (...) {
    if (error) *error = "unknown exception";
  }
  return nullptr;
}
}  // namespace detail

}  // namespace recdistill::plugin

#if defined(_WIN32)
#define RECDISTILL_PLUGIN_EXPORT __declspec(dllexport)
#else
#define RECDISTILL_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

// Exports a plugin's entry points. In exactly one source file of the plugin:
//   RECDISTILL_PLUGIN(describe, create_model, create_strategy)
// with
//   recdistill::plugin::PluginInfo describe();
//   std::unique_ptr<recdistill::plugin::Model> create_model(const std::string& name,
//                                                           const recdistill::io::ConfigLayers&);
//   std::unique_ptr<recdistill::plugin::Strategy> create_strategy(...);  // or plugin::no_strategies
// A factory returns nullptr for a name it does not offer and throws recdistill::Error for a
// config it cannot use; the message reaches the user.
#define RECDISTILL_PLUGIN(DESCRIBE, CREATE_MODEL, CREATE_STRATEGY)                                 \
  extern "C" RECDISTILL_PLUGIN_EXPORT uint32_t recdistill_plugin_abi_version() {                   \
    return ::recdistill::plugin::kPluginAbiVersion;                                                \
  }                                                                                                \
  extern "C" RECDISTILL_PLUGIN_EXPORT uint64_t recdistill_plugin_layout() {                        \
    return ::recdistill::plugin::layout_signature();                                               \
  }                                                                                                \
  extern "C" RECDISTILL_PLUGIN_EXPORT void recdistill_plugin_describe(                             \
      ::recdistill::plugin::PluginInfo* out) {                                                     \
    *out = DESCRIBE();                                                                             \
  }                                                                                                \
  extern "C" RECDISTILL_PLUGIN_EXPORT ::recdistill::plugin::Model* recdistill_plugin_create_model( \
      const char* name, const ::recdistill::io::ConfigLayers* cfg, std::string* error) {          \
    return ::recdistill::plugin::detail::create_guarded<::recdistill::plugin::Model>(             \
        CREATE_MODEL, name, cfg, error);                                                           \
  }                                                                                                \
  extern "C" RECDISTILL_PLUGIN_EXPORT void recdistill_plugin_destroy_model(                        \
      ::recdistill::plugin::Model* m) {                                                            \
    delete m;                                                                                      \
  }                                                                                                \
  extern "C" RECDISTILL_PLUGIN_EXPORT ::recdistill::plugin::Strategy*                              \
  recdistill_plugin_create_strategy(const char* name, const ::recdistill::io::ConfigLayers* cfg,   \
                                    std::string* error) {                                          \
    return ::recdistill::plugin::detail::create_guarded<::recdistill::plugin::Strategy>(          \
        CREATE_STRATEGY, name, cfg, error);                                                        \
  }                                                                                                \
  extern "C" RECDISTILL_PLUGIN_EXPORT void recdistill_plugin_destroy_strategy(                     \
      ::recdistill::plugin::Strategy* s) {                                                         \
    delete s;                                                                                      \
  }
