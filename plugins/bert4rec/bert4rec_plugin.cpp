// The BERT4Rec plugin: SequentialTrainer<cpu::Backend, float, BERT4RecFamily> behind the plugin
// edge (plugins/common/sequential_model.hpp). Offers the model "BERT4Rec" (config model.model_name).
#include "../common/sequential_model.hpp"

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;

plugin::PluginInfo describe() {
  plugin::PluginInfo info;
  info.name = "bert4rec";
  info.version = RECDISTILL_VERSION;
  info.models.push_back({"BERT4Rec",
                         "bidirectional transformer with a cloze objective (Sun et al. 2019), "
                         "variants recbole and hf, mask-last and masked-item CE, CPU",
                         io::describe<io::BERT4RecExperimentConfig>()});
  info.models.push_back({"BERT4RecLLM", "BERT4Rec with LLM profile distillation (Severin et al., ECIR 2026); variants recbole and hf (default), CPU", io::describe<io::BERT4RecExperimentConfig>()});
  return info;
}

// The app has checked every key against the union of its keys and ours; we bind ours (and the
// shared data/eval/runtime keys) from the same layers, quietly.
std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ConfigLayers& layers) {
  if (name != "BERT4Rec" && name != "BERT4RecLLM") return nullptr;
  const auto cfg = io::parse_config<io::BERT4RecExperimentConfig>(layers, {}, io::checked_by_the_app());
  if (cfg.runtime.backend != "cpu")
    plugin::decline(cat("runs on runtime.backend cpu only; the config asks for '", cfg.runtime.backend, "'"));
  if (name == "BERT4RecLLM") return std::make_unique<plugins::SequentialModel<BERT4RecLLMFamily>>(cfg);
  return std::make_unique<plugins::SequentialModel<BERT4RecFamily>>(cfg);
}

}  // namespace

RECDISTILL_PLUGIN(describe, create_model, recdistill::plugin::no_strategies)
