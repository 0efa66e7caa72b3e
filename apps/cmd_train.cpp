// recdistill train: train, validate and test one configured model.
//
//   recdistill train --config FILE.yaml [--set section.key=value ...] [--output DIR]
//
// Trains the configured model, validating every training.eval_every epochs, prints one line
// per epoch and a final test table, and writes into a fresh run folder: the resolved config
// (config.yaml), one JSON line per event (metrics.jsonl) and the final results
// (results.json). Existing files are never overwritten.
#include <yaml-cpp/yaml.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/data/atomic.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

int cmd_train(const std::vector<std::string>& args) {
  po::options_description opts("recdistill train options");
  std::string config, output;
  std::vector<std::string> sets;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&config)->required(), "YAML experiment config")(
      "set", po::value(&sets)->composing(), "override a key: --set training.epochs=5 (repeatable)")(
      "output,o", po::value(&output), "run folder parent (default: training.model_dir/experiment_name)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill train --config FILE.yaml [--set key=value ...]\n" << opts;
    return 0;
  }
  po::notify(vm);
  train_run(io::load_config(config, sets), {output, false});
  return 0;
}

TrainRunOutcome train_run(const io::ExperimentConfig& cfg, const TrainRunOptions& opt) {
  std::ostringstream sink;
  std::ostream& out = opt.quiet ? static_cast<std::ostream&>(sink) : std::cout;
  const std::string& output = opt.output;
  cpu::Backend::set_threads(cfg.runtime.threads);
  const auto t_load = std::chrono::steady_clock::now();
  const auto inter = data::read_atomic_inter(
      cfg.data.path, {cfg.data.user_field, cfg.data.item_field, cfg.data.time_field});
  const auto split = data::to_split(data::split_leave_one_out(data::to_sequences(inter)));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  out << "data: " << cfg.data.path << ": " << inter.size() << " interactions, "
            << inter.users.size() - 1 << " users, " << inter.items.size() - 1 << " items ("
            << std::fixed << std::setprecision(2) << load_s << " s)\n"
            << std::defaultfloat << std::setprecision(6);

  SequentialTrainer<cpu::Backend, float> trainer(cfg, split);
  const auto& mc = trainer.model().config();
  out << "model: SASRec variant=" << (mc.variant == SASRecVariant::recbole ? "recbole" : "pmixer")
            << " d=" << mc.hidden << " layers=" << mc.layers << " heads=" << mc.heads
            << " inner=" << mc.inner << " L=" << mc.max_len << " dropout=" << mc.hidden_dropout
            << "/" << mc.attn_dropout << ", " << trainer.model().num_params() << " parameters\n"
            << "training: " << trainer.windows() << " windows, batch " << cfg.training.batch_size
            << ", lr " << cfg.training.learning_rate << " (" << cfg.training.optimizer << ")"
            << ", up to " << cfg.training.epochs << " epochs, early stop on "
            << cfg.training.valid_metric << " (patience " << cfg.training.patience << ")"
            << ", threads " << cfg.runtime.threads << ", seed " << cfg.seed << "\n";

  const fs::path run = fresh_run_dir(cfg, output);
  {
    YAML::Emitter em;
    em << cfg.resolved;
    io::write_file_atomic((run / "config.yaml").string(), std::string(em.c_str()) + "\n");
  }
  std::ofstream jsonl(run / "metrics.jsonl");
  out << "run folder: " << run.string() << "\n";

  const auto res = trainer.fit([&](const EpochLog& e) {
    out << "epoch " << std::setw(3) << e.epoch << "  loss " << std::fixed << std::setprecision(4)
              << e.loss << "  " << std::setprecision(2) << e.train_seconds << " s  "
              << std::setprecision(0) << double(e.targets) / e.train_seconds << " targets/s  "
              << std::setprecision(1) << e.gflop / e.train_seconds << " GFLOP/s";
    if (e.evaluated)
      out << "  valid " << cfg.training.valid_metric << " " << std::setprecision(4)
                << e.valid.at(cfg.training.valid_metric) << (e.best ? " *" : "");
    out << std::endl;
    jsonl << std::setprecision(10) << "{\"event\": \"epoch\", \"epoch\": " << e.epoch
          << ", \"loss\": " << e.loss << ", \"train_seconds\": " << e.train_seconds
          << ", \"targets\": " << e.targets << ", \"steps\": " << e.steps
          << ", \"grad_norm\": " << e.grad_norm << ", \"gflop\": " << e.gflop;
    if (e.evaluated) jsonl << ", \"valid\": " << json_metrics(e.valid) << ", \"best\": " << (e.best ? "true" : "false");
    jsonl << "}" << std::endl;
  });
  jsonl << "{\"event\": \"test\", \"best_epoch\": " << res.best_epoch
        << ", \"test\": " << json_metrics(res.test) << "}" << std::endl;

  out << "\ntest results (weights of epoch " << res.best_epoch << ", valid "
            << cfg.training.valid_metric << " " << std::setprecision(4)
            << (res.best_valid.count(cfg.training.valid_metric) ? res.best_valid.at(cfg.training.valid_metric) : 0.0)
            << "; full ranking over " << split.n_items - 1 << " items, ties against the model)\n";
  print_table(res.test, cfg.eval.ks, out);
  out << "training time " << std::setprecision(1) << res.train_seconds << " s ("
            << res.train_seconds_to_best << " s to the selected epoch), evaluation "
            << res.eval_seconds << " s\n";

  std::ostringstream js;
  js << std::setprecision(10) << "{\n  \"experiment_name\": " << json_str(cfg.experiment_name)
     << ",\n  \"seed\": " << cfg.seed << ",\n  \"n_params\": " << res.n_params
     << ",\n  \"windows\": " << res.n_windows << ",\n  \"epochs_run\": " << res.epochs_run
     << ",\n  \"best_epoch\": " << res.best_epoch
     << ",\n  \"train_seconds\": " << res.train_seconds
     << ",\n  \"train_seconds_to_best\": " << res.train_seconds_to_best
     << ",\n  \"eval_seconds\": " << res.eval_seconds
     << ",\n  \"valid\": " << json_metrics(res.best_valid) << ",\n  \"test\": " << json_metrics(res.test)
     << "\n}\n";
  io::write_file_atomic((run / "results.json").string(), js.str());
  out << "results: " << (run / "results.json").string() << "\n";
  return {run, res};
}

}  // namespace recdistill::app
