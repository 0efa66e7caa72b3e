// The session-models plugin: SequentialTrainer<cpu::Backend, float, Family> for STAMPFamily,
// FPMCFamily and AttenMixerFamily behind the plugin edge (plugins/common/sequential_model.hpp). Offers the models
// "STAMP" (variants recbole, alkdrec_simplified), "FPMC" (variants recbole, session) and "AttenMixer"
// (variants official, alkdrec).
#include "../common/sequential_model.hpp"

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;

plugin::PluginInfo describe() {
  plugin::PluginInfo info;
  info.name = "session";
  info.version = RECDISTILL_VERSION;
  info.models.push_back({"STAMP",
                         "short-term attention/memory priority session model (Liu et al. 2018), variants recbole "
                         "(RecBole's, CE) and alkdrec_simplified (ALKDRec's, in-batch BPR), CPU",
                         io::describe<io::STAMPExperimentConfig>()});
  info.models.push_back({"FPMC",
                         "factorised personalised Markov chain (Rendle et al. 2010), variants recbole (RecBole's: user "
                         "factor plus last-item term, BPR; needs model.n_users) and session (ALKDRec's: mean of the "
                         "window's embeddings, in-batch BPR), CPU",
                         io::describe<io::FPMCExperimentConfig>()});
  info.models.push_back({"AttenMixer",
                         "multi-level intent attention read-out (Zhang et al., WSDM 2023), variants official (the "
                         "authors': one table, scores 16 z . n(E), full-softmax CE) and alkdrec (ALKDRec's: in-batch "
                         "BPR, or bce_multi with training.bce_negatives), CPU",
                         io::describe<io::AttenMixerExperimentConfig>()});
  return info;
}

// The app has checked every key against the union of its keys and ours; we bind ours (and the
// shared data/eval/runtime keys) from the same layers, quietly.
template <class Family>
std::unique_ptr<plugin::Model> make(const io::ConfigLayers& layers) {
  const auto cfg = io::parse_config<typename Family::Config>(layers, {}, io::checked_by_the_app());
  if (cfg.runtime.backend != "cpu")
    plugin::decline(cat("runs on runtime.backend cpu only; the config asks for '", cfg.runtime.backend, "'"));
  return std::make_unique<plugins::SequentialModel<Family>>(cfg);
}

std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ConfigLayers& layers) {
  if (name == "STAMP") return make<STAMPFamily>(layers);
  if (name == "FPMC") return make<FPMCFamily>(layers);
  if (name == "AttenMixer") return make<AttenMixerFamily>(layers);
  return nullptr;
}

}  // namespace

RECDISTILL_PLUGIN(describe, create_model, recdistill::plugin::no_strategies)
