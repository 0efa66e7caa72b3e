// recdistill train: train, validate and test one configured model.
//
//   recdistill train --config FILE.yaml [--config MORE.yaml ...] [--set section.key=value ...]
//                    [--output DIR] [--plugin-dir DIR ...] [--no-default-plugins]
//                    [--resume RUN_OR_CHECKPOINT] [--skip-nonfinite] [--verbose | --debug]
//
// The model (config model.model_name) comes from a plugin (docs/plugins.md); this app knows
// no model. Trains with validation every training.eval_every epochs, prints one line per
// epoch and a final test table, and writes into a fresh run folder: the resolved config
// (config.yaml), one JSON line per event (metrics.jsonl), the final results (results.json),
// the selected weights (model.safetensors, for `evaluate` and `recommend`), what built and ran
// it (provenance.json) and the checkpoints the model's trainer keeps. Existing files are
// never overwritten.
#include <yaml-cpp/yaml.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app_util.hpp"
#include "commands.hpp"
#include "mpi_world.hpp"
#include "recdistill/core/interrupt.hpp"
#include "recdistill/data/prepared.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/io/progress.hpp"
#include "recdistill/io/provenance.hpp"
#include "recdistill/methods/alkd_config.hpp"
#include "recdistill/plugin/registry.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

std::string ranking_text(const io::CommonConfig& cfg, int32_t n_items) {
  std::string s = cfg.eval.sampled_negatives > 0
                      ? cat(eval::protocol_label(cfg.eval), " negatives per case")
                      : cat("full ranking over ", n_items - 1, " items");
  s += cfg.eval.ties == eval::Ties::index ? ", ties by index" : ", ties against the model";
  if (cfg.eval.exclude != eval::Exclude::none) s += cat(", excluding ", eval::name_of(cfg.eval.exclude), " items");
  return s;
}

RunConfig load_configs(const std::vector<std::string>& files, const std::vector<std::string>& sets,
                       const plugin::Registry& registry, bool require_model, bool warn,
                       const std::vector<keys::KeyDoc>& extra_keys) {
  if (files.empty()) fail("no config file given (--config FILE.yaml)");
  RunConfig rc;
  rc.layers = io::config_layers(files, sets);
  const io::RawConfig raw = io::read_layers(rc.layers);
  // The model's name first (the app's keys alone, quietly), to know whose keys count.
  const auto app_schema = io::schema_of<io::CommonConfig>();
  const auto first = io::bind_config<io::CommonConfig>(io::resolve(app_schema, raw, io::checked_by_the_app()));
  io::Schema schema = app_schema;
  schema.add(extra_keys);
  // An active-distillation config also trains with `train` (one model); its `alkd` section is
  // then accepted and left to `recdistill alkd`.
  schema.add(io::describe<alkd::AlkdConfig>());
  if (warn && extra_keys.empty())
    for (const auto& [path, e] : raw.entries)
      if (path.rfind("alkd.", 0) == 0) {
        std::cerr << "note: the `alkd` section is read by `recdistill alkd` only; this command ignores it\n";
        break;
      }
  io::ResolveOptions opt;
  opt.warn = warn;
  if (const auto* mk = registry.model_keys(first.model_name)) {
    rc.model_keys = *mk;
    schema.add(rc.model_keys);
  } else if (require_model) {
    registry.create_model(first.model_name, rc.layers);  // fails: names the folders searched
  } else {
    // No plugin offers the model (prepare): the app's own sections stay strict; the others
    // belong to the model, whose keys cannot be checked here.
    for (const auto& [path, e] : raw.entries)
      if (const auto dot = path.find('.'); dot != std::string::npos) {
        const std::string sec = path.substr(0, dot);
        if (sec != "data" && sec != "eval" && sec != "runtime" && sec != "llm") opt.open_sections.insert(sec);
      }
    if (warn)
      std::cerr << "note: no plugin offers the model '" << first.model_name
                << "': its keys are not checked (--plugin-dir DIR to check them)\n";
  }
  rc.common = io::bind_config<io::CommonConfig>(io::resolve(schema, raw, opt));
  return rc;
}

std::string run_config_text(const RunConfig& rc, const std::string& model_resolved) {
  YAML::Node root = io::effective_config(rc.common);
  const YAML::Node m = YAML::Load(model_resolved);
  if (m && m.IsMap())
    for (auto it = m.begin(); it != m.end(); ++it) {
      const std::string k = it->first.as<std::string>();
      if (it->second.IsMap())
        for (auto kt = it->second.begin(); kt != it->second.end(); ++kt) root[k][kt->first.as<std::string>()] = kt->second;
      else
        root[k] = it->second;
    }
  return io::yaml_text(root);
}

std::string plugin_text(const plugin::Registry& registry, const std::string& model_name) {
  const auto* p = registry.model_provider(model_name);
  return p ? cat(model_name, " from ", p->info.name, " ", p->info.version, " (", p->file.string(), ")") : model_name;
}

// The data as training sees it: read back from data.prepared when set (verified against the
// config), imported, filtered and split otherwise.
PreparedData prepare_data(const io::CommonConfig& cfg, std::ostream& out) {
  data::LoadedData l = data::load_prepared_or_import(cfg);
  PreparedData p;
  p.data = std::move(l.dataset);
  p.split = std::move(l.split);
  size_t train_users = 0;
  for (const auto& seq : p.split.train) train_users += seq.empty() ? 0 : 1;
  out << "data: " << l.source << (l.from_prepared ? " (prepared)" : "") << ": " << p.data.size()
      << " interactions, " << p.data.users.size() - 1 << " users, " << p.data.items.size() - 1
      << " items (" << std::fixed << std::setprecision(2) << l.seconds << " s); split "
      << p.split.protocol << ": " << train_users << " training sequences, " << p.split.valid.size()
      << " validation and " << p.split.test.size() << " test cases\n"
      << std::defaultfloat << std::setprecision(6);
  check_profiles(cfg, p.data, p.split, out);
  return p;
}

int cmd_train(const std::vector<std::string>& args) {
  po::options_description opts("recdistill train options");
  std::vector<std::string> configs, sets;
  TrainRunOptions run;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&configs)->required()->composing(),
      "YAML experiment config (repeatable: later files override earlier ones)")(
      "set", po::value(&sets)->composing(), "override a key: --set training.epochs=5 (repeatable)")(
      "output,o", po::value(&run.output), "run folder parent (default: training.model_dir/experiment_name)")(
      "resume", po::value(&run.resume), "continue a run: its run folder or a checkpoint file")(
      "skip-nonfinite", po::bool_switch(&run.skip_nonfinite),
      "skip a step whose loss or gradient is NaN/Inf instead of stopping")(
      "verbose,v", "print the full resolved config")(
      "debug", "also print every step's loss, gradient norm and time");
  add_plugin_options(opts, run.plugins);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill train --config FILE.yaml [--set key=value ...]\n" << opts;
    return 0;
  }
  po::notify(vm);
  run.verbosity = vm.count("debug") ? Verbosity::debug : vm.count("verbose") ? Verbosity::verbose
                                                                             : Verbosity::normal;
  install_interrupt_handlers();
  try {
    const RunConfig rc = load_configs(configs, sets, open_plugins(run.plugins));
    // Under mpirun: data-parallel over the ranks (docs/distributed.md).
    run.comm = mpi_world();
    mpi_set_timeout(rc.common.runtime.dist_timeout_s);
    train_run(rc, run);
  } catch (const Interrupted& e) {
    // How to continue: the same command, resuming from the run folder it made.
    std::string again = command_again("train", args, {"--resume"});
    if (dist::parallel(run.comm)) again = cat("mpirun -np ", run.comm->size(), " ", again);  // the same ranks
    throw Interrupted(e.signal, e.epoch,
                      cat(e.what(), e.epoch > 0 ? cat("\nresume with: ", again, " --resume ", e.run_dir)
                                                : std::string("\nstart it again to train")),
                      e.run_dir);
  }
  return 0;
}

TrainRunOutcome train_run(const RunConfig& rc, const TrainRunOptions& opt) {
  const io::CommonConfig& cfg = rc.common;
  // Data-parallel ranks train together; rank 0 alone prints and writes.
  const bool writer = !dist::parallel(opt.comm) || opt.comm->rank() == 0;
  std::ostringstream sink;
  std::ostream discard(nullptr);  // the other ranks' output: nothing kept
  std::ostream& out = !writer ? discard : opt.quiet ? static_cast<std::ostream&>(sink) : std::cout;
  out << "config: " << cfg.source << ": experiment " << cfg.experiment_name << ", model "
      << cfg.model_name << ", data " << cfg.data.path << ", seed " << cfg.seed << "\n";

  // The plugin before the data: a missing model or a config it refuses is reported at once.
  const plugin::Registry registry = open_plugins(opt.plugins);
  std::shared_ptr<plugin::Model> model = registry.create_model(cfg.model_name, rc.layers);
  if (const auto* p = registry.model_provider(cfg.model_name))
    out << "plugin: " << cfg.model_name << " from " << p->info.name << " " << p->info.version << " ("
        << p->file.string() << ")\n";
  // The resolved config (defaults < presets < file(s) < --set; every key the app and the model
  // read), one flow-style line per section; --verbose prints it as block YAML instead.
  const std::string config_text = run_config_text(rc, model->resolved_config());
  if (opt.verbosity >= Verbosity::verbose) {
    out << "resolved config:\n" << config_text;
  } else {
    const YAML::Node effective = YAML::Load(config_text);
    for (auto it = effective.begin(); it != effective.end(); ++it)
      out << "  " << it->first.as<std::string>() << ": " << io::flow_text(it->second) << "\n";
  }
  PreparedData prep = prepare_data(cfg, out);
  if (opt.adjust_data) opt.adjust_data(prep);

  if (dist::parallel(opt.comm))
    out << "data-parallel: " << opt.comm->size() << " ranks, each running its slice of every batch; rank 0 writes\n";
  const fs::path run = writer ? fresh_run_dir(cfg, opt.output) : fs::path();
  io::JsonlWriter jsonl;  // one schema: docs/experiments.md; writes nothing unless opened
  if (writer) {
    io::write_file_atomic((run / "config.yaml").string(), config_text);
    io::write_file_atomic((run / "provenance.json").string(), io::provenance_json(cfg.runtime.threads, plugin_text(registry, cfg.model_name)));
    jsonl.open((run / "metrics.jsonl").string());
  }
  jsonl.write("run_start", io::JsonFields()
                               .add("experiment_name", cfg.experiment_name)
                               .add("model", cfg.model_name)
                               .add("seed", (unsigned long long)cfg.seed)
                               .add("resume", opt.resume));

  // A bar redrawn in place on a terminal; plain epoch lines otherwise (and for quiet runs).
  io::ProgressOptions popt;
  popt.bar_width = 12;  // room for the loss on an 80-column terminal
  if (opt.quiet) popt.mode = io::ProgressMode::plain;
  io::TrainProgress bar(out, 0, popt);

  plugin::RunOptions ro;
  std::string valid_metric;  // the model says which, before its first step
  ro.on_start = [&](const plugin::RunPlan& p) {
    bar.set_epochs(p.epochs);
    valid_metric = p.valid_metric;
  };
  ro.log = [&](const std::string& line) { bar.line(line); };
  ro.checkpoint_dir = writer ? run.string() : "";  // checkpoints sit next to config.yaml
  ro.comm = opt.comm;
  ro.resume_from = opt.resume;
  ro.skip_nonfinite = opt.skip_nonfinite;
  ro.stop_requested = [] { return interrupt_requested(); };
  ro.on_epoch = [&](const EpochLog& e) {
    std::ostringstream line;
    line << "epoch " << std::setw(3) << e.epoch << "  loss " << std::fixed << std::setprecision(4)
         << e.loss << "  " << std::setprecision(2) << e.train_seconds << " s  "
         << std::setprecision(0) << double(e.targets) / e.train_seconds << " targets/s  "
         << std::setprecision(1) << e.gflop / e.train_seconds << " GFLOP/s";
    if (e.skipped_steps > 0) line << "  " << e.skipped_steps << " steps skipped (non-finite)";
    if (e.evaluated && e.valid.count(valid_metric))
      line << "  valid " << valid_metric << " " << std::setprecision(4) << e.valid.at(valid_metric)
           << (e.best ? " *" : "");
    bar.epoch_line(line.str());
    io::JsonFields f;
    f.add("epoch", e.epoch).add("loss", e.loss).add("train_seconds", e.train_seconds)
        .add("targets", (long long)e.targets).add("steps", e.steps).add("skipped_steps", e.skipped_steps)
        .add("grad_norm", e.grad_norm).add("gflop", e.gflop);
    if (e.evaluated) f.add("valid", e.valid).add("best", e.best);
    jsonl.write("epoch", f);
    if (opt.on_epoch) opt.on_epoch(e);
  };
  ro.on_step = [&](const StepLog& s) {
    bar.on_step(s);
    if (opt.verbosity >= Verbosity::debug) {
      std::ostringstream line;
      line << "  step " << s.epoch << ":" << s.step << "/" << s.steps << "  loss " << std::setprecision(6)
           << s.loss << "  grad_norm " << s.grad_norm << "  " << std::fixed << std::setprecision(3)
           << s.seconds * 1e3 << " ms" << (s.skipped ? "  (skipped: non-finite)" : "");
      bar.line(line.str());
      jsonl.write("step", io::JsonFields()
                              .add("epoch", s.epoch).add("step", s.step).add("steps", s.steps)
                              .add("loss", s.loss).add("grad_norm", s.grad_norm)
                              .add("seconds", s.seconds).add("skipped", s.skipped));
    }
  };
  out << "run folder: " << run.string() << "\n";

  TrainResult res;
  try {
    // Data-parallel ranks decide a stop together, after an epoch (train/trainer.hpp).
    if (!dist::parallel(opt.comm)) throw_if_interrupted("before training");
    res = model->train(prep.data, prep.split, ro);
  } catch (const Interrupted& e) {
    bar.line("interrupted");
    throw Interrupted(e.signal, e.epoch,
                      cat("interrupted by ", signal_name(e.signal), " after epoch ", e.epoch, ": ", run.string(),
                          e.epoch > 0 ? " holds that epoch's checkpoints (latest.ckpt, best.ckpt)" : " has no checkpoint yet"),
                      run.string());
  }
  if (!writer) return {run, res, valid_metric, ""};
  model->save((run / "model.safetensors").string());
  // Per-user test ranks of the selected weights, for paired tests between runs (`compare`).
  write_per_user((run / "per_user_test.csv").string(), rank_split_cases(*model, prep.split, prep.split.test),
                 cfg, prep.data);
  jsonl.write("test", io::JsonFields().add("best_epoch", res.best_epoch).add("test", res.test));

  out << "\ntest results (weights of epoch " << res.best_epoch << ", valid "
      << valid_metric << " " << std::setprecision(4)
      << (res.best_valid.count(valid_metric) ? res.best_valid.at(valid_metric) : 0.0)
      << "; " << ranking_text(cfg, prep.split.n_items) << ")\n";
  print_table(res.test, cfg.eval.ks, out, eval::metric_suffix(cfg.eval));
  out << "training time " << std::fixed << std::setprecision(1) << res.train_seconds << " s ("
      << res.train_seconds_to_best << " s to the selected epoch), evaluation "
      << res.eval_seconds << " s\n" << std::defaultfloat << std::setprecision(6);

  std::ostringstream js;
  js << std::setprecision(10) << "{\n  \"experiment_name\": " << json_str(cfg.experiment_name)
     << ",\n  \"model\": " << json_str(cfg.model_name)
     << ",\n  \"seed\": " << cfg.seed << ",\n  \"n_params\": " << res.n_params
     << ",\n  \"windows\": " << res.n_windows << ",\n  \"epochs_run\": " << res.epochs_run
     << ",\n  \"best_epoch\": " << res.best_epoch
     << ",\n  \"train_seconds\": " << res.train_seconds
     << ",\n  \"train_seconds_to_best\": " << res.train_seconds_to_best
     << ",\n  \"eval_seconds\": " << res.eval_seconds
     << ",\n  \"valid\": " << json_metrics(res.best_valid) << ",\n  \"test\": " << json_metrics(res.test)
     << "\n}\n";
  io::write_file_atomic((run / "results.json").string(), js.str());
  out << "weights: " << (run / "model.safetensors").string() << "\n"
      << "results: " << (run / "results.json").string() << "\n"
      << "per-user test metrics: " << (run / "per_user_test.csv").string() << "\n";
  std::string selection;
  if (const YAML::Node t = YAML::Load(config_text)["training"]; t && t["selection"]) selection = t["selection"].as<std::string>();
  return {run, res, valid_metric, selection};
}

}  // namespace recdistill::app
