// The active-distillation plugin: the selection strategies of specs/active-llm-distillation.md
// §5 (methods/alkd_selection.hpp) behind the plugin edge, each a Strategy the `alkd` command's
// select stage asks for by name: alkdrec (the max-min policy), rad_bc, random, hardest,
// easiest, replay (a selection file) and teacher_only (TR: no selection). They read the alkd.*
// keys of the run's config (ratios, mu, sampling, legacy_maxmin_support).
#include "recdistill/io/config.hpp"
#include "recdistill/methods/alkd_config.hpp"
#include "recdistill/plugin/interface.hpp"

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;

struct Offered {
  const char* name;
  const char* description;
};
constexpr Offered kStrategies[] = {
    {"alkdrec", "ALKDRec's max-min policy over difficulty ranks (alkd.rho_*, alkd.mu; fixed or sequential sampling)"},
    {"rad_bc", "RAD-BC: the binary max-min policy with an assumed correct fraction (alkd.rad_bc_correct)"},
    {"random", "uniform sampling without replacement"},
    {"hardest", "the hardest sessions first"},
    {"easiest", "the easiest sessions first"},
    {"replay", "a selection file's sessions in order (the authors' released lists)"},
    {"teacher_only", "TR: no selection and no LLM (the distillation uses the teacher's lists)"},
};

class BundledStrategy final : public plugin::Strategy {
 public:
  BundledStrategy(std::string name, const alkd::AlkdConfig& ac) {
    cfg_.name = std::move(name);
    cfg_.rho_ef = ac.rho_ef;
    cfg_.rho_si = ac.rho_si;
    cfg_.rho_in = ac.rho_in;
    cfg_.mu = ac.mu;
    cfg_.rad_bc_correct = ac.rad_bc_correct;
    cfg_.sampling = ac.sampling;
    cfg_.legacy_maxmin_support = ac.legacy_maxmin_support;
  }
  std::string name() const override { return cfg_.name; }
  std::string summary() const override {
    for (const auto& s : kStrategies)
      if (cfg_.name == s.name) return s.description;
    return "";
  }
  alkd::Selection select(const plugin::SelectionRequest& r) override {
    alkd::StrategyConfig c = cfg_;
    c.replay_list = r.replay_list;
    return alkd::select(c, r.pool, r.budget, r.oracle, r.seed, &std::cerr);
  }

 private:
  alkd::StrategyConfig cfg_;
};

plugin::PluginInfo describe() {
  plugin::PluginInfo info;
  info.name = "alkd";
  info.version = RECDISTILL_VERSION;
  for (const auto& s : kStrategies) info.strategies.push_back({s.name, s.description, io::describe<alkd::AlkdConfig>()});
  return info;
}

// The app has checked the keys; the alkd section binds from the same layers, quietly.
std::unique_ptr<plugin::Strategy> create_strategy(const std::string& name, const io::ConfigLayers& layers) {
  for (const auto& s : kStrategies)
    if (name == s.name)
      return std::make_unique<BundledStrategy>(name, io::parse_config<alkd::AlkdConfig>(layers, {}, io::checked_by_the_app()));
  return nullptr;
}

std::unique_ptr<plugin::Model> no_models(const std::string&, const io::ConfigLayers&) { return nullptr; }

}  // namespace

RECDISTILL_PLUGIN(describe, no_models, create_strategy)
