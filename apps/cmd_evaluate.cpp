// recdistill evaluate: evaluate saved weights on the validation and test cases.
//
//   recdistill evaluate --model-path RUN_DIR_OR_WEIGHTS [--config FILE.yaml ...] [--set k=v ...]
//                       [--output DIR] [--plugin-dir DIR ...] [--no-default-plugins] [--verbose]
//
// RUN_DIR is a folder written by `train` (its model.safetensors is used, and its config.yaml when
// no --config is given); a file is taken as the weights themselves. The data named by the
// config is read and split as for training, and the weights must match it (same item mapping)
// and the config's model settings; otherwise the plugin refuses them with the reason.
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/plugin/registry.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

// Weights file and config files of --model-path (shared with recommend).
std::pair<std::string, std::vector<std::string>> resolve_model_path(const std::string& model_path,
                                                                    std::vector<std::string> configs) {
  fs::path weights(model_path);
  std::error_code ec;
  if (fs::is_directory(weights, ec)) {
    const fs::path dir = weights;
    weights = dir / "model.safetensors";
    if (!fs::exists(weights, ec) && fs::exists(dir / "model.weights", ec))
      fail((dir / "model.weights").string(), ": weights in the old recdistill format (before safetensors), which "
           "this build does not read; train the run again (its results.json and per-user files stay valid)");
    if (configs.empty()) {
      if (!fs::exists(dir / "config.yaml", ec))
        fail(model_path, ": no config.yaml in this folder; give --config FILE.yaml");
      configs.push_back((dir / "config.yaml").string());
    }
  } else if (!fs::exists(weights, ec)) {
    fail(model_path, ": no such weights file or run folder");
  }
  if (!fs::exists(weights, ec)) fail(weights.string(), ": no weights in this run folder (was the run finished?)");
  if (configs.empty()) fail(model_path, ": a weights file needs --config FILE.yaml");
  return {weights.string(), configs};
}

int cmd_evaluate(const Args& args) {
  po::options_description opts("recdistill evaluate options");
  std::string model_path, output, per_user;
  std::vector<std::string> configs, sets;
  PluginArgs pa;
  opts.add_options()("help,h", "show this help")(
      "model-path,m", po::value(&model_path)->required(), "run folder of `train`, or a weights file")(
      "config,c", po::value(&configs)->composing(),
      "YAML config (repeatable; default: the run folder's config.yaml)")(
      "set", po::value(&sets)->composing(), "override a key: --set eval.ks=[1,10] (repeatable)")(
      "output,o", po::value(&output), "also write evaluation.json and the resolved config.yaml here")(
      "per-user", po::value(&per_user),
      "write the test cases' ranks and metrics per user to this .csv or .jsonl file (see `recdistill compare`)")(
      "verbose,v", "print the full resolved config");
  add_plugin_options(opts, pa);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill evaluate --model-path RUN_DIR [--config FILE.yaml]\n" << opts;
    return 0;
  }
  po::notify(vm);
  const auto [weights, files] = resolve_model_path(model_path, configs);
  const plugin::Registry registry = open_plugins(pa);
  const RunConfig rc = load_configs(files, sets, registry);
  const io::CommonConfig& cfg = rc.common;
  std::ostream& out = std::cout;
  out << "config: " << cfg.source << ": model " << cfg.model_name << ", data " << cfg.data.path << "\n";
  auto model = registry.create_model(cfg.model_name, rc.layers);
  const std::string config_text = run_config_text(rc, model->resolved_config());
  if (vm.count("verbose")) out << "resolved config:\n" << config_text;
  const PreparedData prep = prepare_data(cfg, out);
  model->load(weights, prep.data);
  out << "model: " << model->summary() << "\nweights: " << weights << "\n";
  std::ostringstream js;
  js << "{\n  \"weights\": " << json_str(weights) << ",\n  \"model\": " << json_str(cfg.model_name)
     << ",\n  \"protocol\": " << json_str(ranking_text(cfg, prep.split.n_items));
  for (const auto& [name, cases] : {std::pair{"valid", &prep.split.valid}, std::pair{"test", &prep.split.test}}) {
    const RankedCases ranked = rank_split_cases(*model, prep.split, *cases);
    const eval::Metrics m = eval::metrics_from_ranks(ranked.ranks, cfg.eval);
    if (std::string(name) == "test" && !per_user.empty()) {
      write_per_user(per_user, ranked, cfg, prep.data);
      out << "per-user test metrics: " << per_user << "\n";
    }
    js << ",\n  \"" << name << "\": " << json_metrics(m);
    out << "\n" << (std::string(name) == "valid" ? "validation" : name) << " (" << cases->size() << " cases; " << ranking_text(cfg, prep.split.n_items) << ")\n";
    print_table(m, cfg.eval.ks, out, eval::metric_suffix(cfg.eval));
    out << "json: " << json_metrics(m) << "\n";
  }
  if (!output.empty()) {
    // The results and the config they came from, side by side.
    fs::create_directories(output);
    io::write_file_atomic((fs::path(output) / "evaluation.json").string(), js.str() + "\n}\n");
    io::write_file_atomic((fs::path(output) / "config.yaml").string(), config_text);
    out << "\nwrote " << (fs::path(output) / "evaluation.json").string() << " and config.yaml\n";
  }
  return 0;
}

}  // namespace recdistill::app
