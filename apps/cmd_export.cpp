// recdistill export: the selected weights of a run, for serving.
//
//   recdistill export RUN_DIR [--output DIR] [--plugin-dir DIR ...] [--no-default-plugins]
//
// Loads RUN_DIR's model.safetensors under its config.yaml (checked against the data, as
// `evaluate` does), then writes DIR (default RUN_DIR/export) with the model's serving weights
// (Model::export_model: the plain backbone, without training-only parameters such as a
// method's distillation heads), the config that loads them and provenance.json. `evaluate`
// and `recommend` take DIR as --model-path; PyTorch loads the weights with safetensors
// (docs/weights.md). Existing files are never overwritten.
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/provenance.hpp"
#include "recdistill/io/safetensors.hpp"
#include "recdistill/plugin/registry.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

int cmd_export(const Args& args) {
  po::options_description opts("recdistill export options");
  std::string run_dir, output;
  PluginArgs pa;
  opts.add_options()("help,h", "show this help")("run", po::value(&run_dir)->required(), "run folder of `train`")(
      "output,o", po::value(&output), "folder to write (default: RUN_DIR/export)");
  add_plugin_options(opts, pa);
  po::positional_options_description pos;
  pos.add("run", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill export RUN_DIR [--output DIR]\n" << opts;
    return 0;
  }
  po::notify(vm);
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) fail(run_dir, ": not a run folder (expected the folder `train` wrote)");
  const auto [weights, files] = resolve_model_path(run_dir, {});
  const fs::path out_dir = output.empty() ? fs::path(run_dir) / "export" : fs::path(output);
  for (const char* f : {"model.safetensors", "config.yaml", "provenance.json"})
    if (fs::exists(out_dir / f, ec)) fail((out_dir / f).string(), ": exists; give another --output (nothing is overwritten)");

  const plugin::Registry registry = open_plugins(pa);
  const RunConfig rc = load_configs(files, {}, registry);
  auto model = registry.create_model(rc.common.model_name, rc.layers);
  const PreparedData prep = prepare_data(rc.common, std::cout);
  model->load(weights, prep.data);
  fs::create_directories(out_dir);
  model->export_model((out_dir / "model.safetensors").string());
  // The exported model is the one its weights name: a distilled run (SASRecLLM) exports its
  // plain backbone (SASRec), and the config says so, so the backbone's plugin serves it.
  YAML::Node cfg_out = YAML::Load(run_config_text(rc, model->resolved_config()));
  const io::SafeTensors exported = io::read_safetensors((out_dir / "model.safetensors").string());
  std::string exported_model = rc.common.model_name;
  if (const auto it = exported.metadata.find("model"); it != exported.metadata.end()) exported_model = it->second;
  cfg_out["model"]["model_name"] = exported_model;
  io::write_file_atomic((out_dir / "config.yaml").string(), io::yaml_text(cfg_out));
  io::write_file_atomic((out_dir / "provenance.json").string(), io::provenance_json(rc.common.runtime.threads, plugin_text(registry, rc.common.model_name)));
  std::cout << "model: " << model->summary() << "\nexported " << weights << " to " << out_dir.string()
            << " (model.safetensors, config.yaml" << (exported_model != rc.common.model_name ? cat("; as the plain ", exported_model, " model, without the training-only tensors") : std::string())
            << "); use it as --model-path of evaluate and recommend\n";
  return 0;
}

}  // namespace recdistill::app
