// The SASRec plugin: SequentialTrainer<cpu::Backend, float, SASRecFamily> behind the plugin edge
// (plugins/common/sequential_model.hpp). Offers the model "SASRec" (config model.model_name).
#include "../common/sequential_model.hpp"

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;

plugin::PluginInfo describe() {
  plugin::PluginInfo info;
  info.name = "sasrec";
  info.version = RECDISTILL_VERSION;
  info.models.push_back({"SASRec",
                         "self-attentive sequential recommender (Kang & McAuley 2018), "
                         "variants recbole and pmixer, next-item CE on all positions, CPU",
                         io::describe<io::ExperimentConfig>()});
  info.models.push_back({"SASRecLLM", "SASRec with LLM profile distillation (Severin et al., ECIR 2026): an aggregate of a tapped layer regresses each user's profile embedding; variants recbole and pmixer (default), CPU", io::describe<io::ExperimentConfig>()});
  return info;
}

// The app has checked every key against the union of its keys and ours; we bind ours (and the
// shared data/eval/runtime keys) from the same layers, quietly.
std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ConfigLayers& layers) {
  if (name != "SASRec" && name != "SASRecLLM") return nullptr;
  const auto cfg = io::parse_config<io::ExperimentConfig>(layers, {}, io::checked_by_the_app());
  if (cfg.runtime.backend != "cpu")
    plugin::decline(cat("runs on runtime.backend cpu only; the config asks for '", cfg.runtime.backend, "'"));
  if (name == "SASRecLLM") return std::make_unique<plugins::SequentialModel<SASRecLLMFamily>>(cfg);
  return std::make_unique<plugins::SequentialModel<SASRecFamily>>(cfg);
}

}  // namespace

RECDISTILL_PLUGIN(describe, create_model, recdistill::plugin::no_strategies)
