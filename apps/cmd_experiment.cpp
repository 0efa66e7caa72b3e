// recdistill experiment: the same config over several seeds and variants, then a result table
// of mean ± sample std per variant, a CSV and plots.
//
//   recdistill experiment --config FILE.yaml [--set key=value ...] [--seeds 2020,2021,2022]
//                         [--variant LABEL[:key=value,key=value...] ...] [--output DIR]
//                         [--plan PLAN.yaml] [--no-plots] [--show-runs]
//   recdistill experiment --resume DIR/experiment-<stamp>
//
// A variant is a label plus --set overrides applied after the common ones; without --variant
// there is one variant, "base". Every (variant, seed) run is a normal `train` run (its own run
// folder with config.yaml, metrics.jsonl, results.json) under
//   DIR/experiment-<UTC stamp>/runs/<variant>/
// and the experiment folder gets summary.md, summary.csv, runs.csv, curves.png, variants.png
// (gnuplot), experiment.yaml (what was run) and experiment.jsonl (events, docs/experiments.md).
// All configs are resolved before the first run starts, so a bad key in the last variant is
// reported at once.
//
// SIGINT or SIGTERM: the current run stops after its epoch's checkpoint, the summary of the
// finished runs is written, and the command exits 128 + the signal saying how to resume.
// `--resume DIR` reads DIR/experiment.yaml, reuses every run experiment.jsonl records as
// finished, continues an interrupted run from its checkpoint (in a new run folder, as `train
// --resume` does) and runs what is missing; the tables are those of an uninterrupted experiment.
#include <yaml-cpp/yaml.h>

#include <boost/program_options.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "mpi_world.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/interrupt.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/experiment_events.hpp"
#include "recdistill/plugin/registry.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/io/progress.hpp"
#include "recdistill/io/report.hpp"
#include "recdistill/io/variant_tests.hpp"
#include "recdistill/train/checkpoint_files.hpp"

namespace recdistill::app {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct Variant {
  std::string label;
  std::vector<std::string> sets;
};

struct Plan {
  std::string config;
  std::vector<std::string> sets;
  std::vector<uint64_t> seeds;
  std::vector<Variant> variants;
  std::string control;  // "" = no paired tests
};

void check_label(const std::string& label, const std::string& where) {
  bool ok = !label.empty() && label != "." && label != "..";
  for (char c : label)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '+');
  if (!ok)
    fail(where, ": variant label '", label, "': expected letters, digits and _ - . + (it names a folder)");
}

// "2020,2021,2022"
std::vector<uint64_t> parse_seeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    unsigned long long v = 0;
    bool ok = !item.empty() && item.find_first_not_of("0123456789") == std::string::npos;
    if (ok) {
      try {
        v = std::stoull(item, &used);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok) fail("--seeds: expected comma-separated non-negative integers, found '", item, "' in '", text, "'");
    seeds.push_back(v);
  }
  if (seeds.empty()) fail("--seeds: expected at least one seed, found '", text, "'");
  return seeds;
}

// "wide:model.hidden_units=128,training.learning_rate=0.001" -> {wide, [..]}. A piece without
// '=' continues the previous value, so "eval.ks=[5,10]" survives the comma split.
Variant parse_variant(const std::string& text) {
  Variant v;
  const auto colon = text.find(':');
  v.label = text.substr(0, colon);
  check_label(v.label, "--variant '" + text + "'");
  if (colon == std::string::npos) return v;
  std::stringstream ss(text.substr(colon + 1));
  std::string piece;
  while (std::getline(ss, piece, ',')) {
    if (piece.find('=') == std::string::npos) {
      if (v.sets.empty()) fail("--variant '", text, "': expected key=value after the label, found '", piece, "'");
      v.sets.back() += "," + piece;
    } else {
      v.sets.push_back(piece);
    }
  }
  return v;
}

// A plan file (all keys optional; the command line adds to or replaces them):
//   config: sasrec_ml100k.yaml        # relative to the plan's folder
//   set: [training.epochs=20]
//   seeds: [2020, 2021, 2022]
//   variants:
//     base: []
//     small: [model.hidden_units=32]
//   control: base                     # paired tests of the others against it (tests.md)
Plan load_plan(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    fail(file, ": cannot open plan file");
  } catch (const YAML::ParserException& e) {
    fail(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  }
  auto where = [&](const YAML::Node& n) { return cat(file, ":", n.Mark().line + 1); };
  auto strings = [&](const YAML::Node& n, const std::string& key) {
    std::vector<std::string> out;
    if (!n.IsSequence()) fail(where(n), ": key '", key, "': expected a list of key=value strings");
    for (const auto& x : n) {
      if (!x.IsScalar()) fail(where(x), ": key '", key, "': expected a key=value string");
      out.push_back(x.as<std::string>());
    }
    return out;
  };
  Plan p;
  if (!root || root.IsNull()) return p;
  if (!root.IsMap()) fail(file, ": expected a mapping with config, set, seeds, variants, control");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& n = kv.second;
    if (key == "config") {
      if (!n.IsScalar()) fail(where(n), ": key 'config': expected a file name");
      fs::path c = n.as<std::string>();
      if (c.is_relative()) c = fs::path(file).parent_path() / c;
      p.config = c.string();
    } else if (key == "set") {
      p.sets = strings(n, key);
    } else if (key == "seeds") {
      if (!n.IsSequence()) fail(where(n), ": key 'seeds': expected a list of non-negative integers");
      for (const auto& x : n) {
        long long v = -1;
        try {
          v = x.as<long long>();
        } catch (const YAML::Exception&) {
        }
        if (v < 0) fail(where(x), ": key 'seeds': expected a non-negative integer, found '", x.Scalar(), "'");
        p.seeds.push_back(uint64_t(v));
      }
    } else if (key == "variants") {
      if (!n.IsMap()) fail(where(n), ": key 'variants': expected a mapping of label: [key=value, ...]");
      for (const auto& v : n) {
        Variant var{v.first.as<std::string>(), {}};
        check_label(var.label, where(v.first));
        if (!v.second.IsNull()) var.sets = strings(v.second, "variants." + var.label);
        p.variants.push_back(var);
      }
    } else if (key == "control") {
      if (!n.IsScalar()) fail(where(n), ": key 'control': expected a variant label");
      p.control = n.as<std::string>();
    } else {
      fail(where(kv.first), ": unknown key '", key, "' (expected config, set, seeds, variants, control)");
    }
  }
  return p;
}

fs::path fresh_experiment_dir(const fs::path& base) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  std::error_code ec;
  fs::create_directories(base, ec);
  if (ec) fail(base.string(), ": cannot create folder: ", ec.message());
  for (int i = 0;; ++i) {
    const fs::path p = base / (std::string("experiment-") + stamp + (i ? "." + std::to_string(i) : ""));
    if (fs::create_directory(p, ec)) return p;
    if (ec) fail(p.string(), ": cannot create experiment folder: ", ec.message());
  }
}

std::string fixed4(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(4) << v;
  return os.str();
}

}  // namespace

int cmd_experiment(const Args& args) {
  po::options_description opts("recdistill experiment options");
  std::string config, seeds_text, output, plan_file, control, tested, resume;
  std::vector<std::string> sets, variant_texts;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&config), "YAML experiment config (or `config:` in --plan)")(
      "set", po::value(&sets)->composing(), "override a key for every run: --set training.epochs=5 (repeatable)")(
      "seeds", po::value(&seeds_text), "comma-separated seeds, one run per seed and variant (default: the config's seed)")(
      "variant", po::value(&variant_texts)->composing(),
      "LABEL[:key=value,key=value...]: a variant and its overrides (repeatable; default: one variant 'base')")(
      "output,o", po::value(&output),
      "parent of the experiment folder (default: training.model_dir/experiment_name)")(
      "plan", po::value(&plan_file), "YAML file with config, set, seeds and variants (the command line adds to it)")(
      "control", po::value(&control), "a variant to test every other against (paired tests: tests.md)")(
      "resume", po::value(&resume), "an experiment folder: run only what it is missing (its experiment.yaml is the plan)")(
      "metrics", po::value(&tested), "with --control: comma-separated metrics (default: HR@10,HR@20,NDCG@10,NDCG@20, those the runs have)")(
      "no-plots", "write the tables only (no gnuplot)")(
      "show-runs", "print each run's own output (data, epochs, test table) as `train` does");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill experiment --config FILE.yaml [--set key=value ...] --seeds 2020,2021,2022\n"
                 "                             [--variant LABEL:key=value,key=value ...] [--output DIR]\n"
              << opts;
    return 0;
  }
  po::notify(vm);

  // The plan: file first, then the command line (config and seeds replace, sets append,
  // --variant replaces the file's variants). --resume: the folder's experiment.yaml, as it was.
  if (!resume.empty()) {
    for (const char* o : {"config", "plan", "set", "seeds", "variant", "control", "output"})
      if (vm.count(o)) fail("--resume ", resume, ": --", o, " cannot be given (the folder's experiment.yaml is the plan)");
    plan_file = (fs::path(resume) / "experiment.yaml").string();
    if (!fs::exists(plan_file)) fail(plan_file, ": not found (--resume takes an experiment folder)");
  }
  Plan plan = plan_file.empty() ? Plan{} : load_plan(plan_file);
  if (!config.empty()) plan.config = config;
  if (plan.config.empty()) fail("no config given (--config FILE.yaml, or `config:` in --plan)");
  plan.sets.insert(plan.sets.end(), sets.begin(), sets.end());
  if (!seeds_text.empty()) plan.seeds = parse_seeds(seeds_text);
  if (!variant_texts.empty()) {
    plan.variants.clear();
    for (const auto& t : variant_texts) plan.variants.push_back(parse_variant(t));
  }
  if (plan.variants.empty()) plan.variants.push_back({"base", {}});
  if (!control.empty()) plan.control = control;
  const std::vector<std::string> tested_metrics = tested_metrics_option(tested);
  if (!plan.control.empty()) {
    bool known = false;
    for (const auto& v : plan.variants) known = known || v.label == plan.control;
    if (!known) fail("--control '", plan.control, "': not one of the variants");
    if (plan.variants.size() < 2) fail("--control '", plan.control, "': there is no other variant to test against it");
  }
  for (size_t i = 0; i < plan.variants.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (plan.variants[i].label == plan.variants[j].label)
        fail("variant '", plan.variants[i].label, "' is given twice");

  const plugin::Registry registry = open_plugins(PluginArgs{});
  const io::CommonConfig base = load_configs({plan.config}, plan.sets, registry).common;
  if (plan.seeds.empty()) plan.seeds = {base.seed};
  for (size_t i = 0; i < plan.seeds.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (plan.seeds[i] == plan.seeds[j]) fail("--seeds: seed ", plan.seeds[i], " is given twice");

  // Every run's config, resolved up front: errors name the variant before anything trains.
  struct Job {
    const Variant* variant;
    uint64_t seed;
    RunConfig cfg;
  };
  std::vector<Job> jobs;
  for (const auto& v : plan.variants)
    for (uint64_t s : plan.seeds) {
      std::vector<std::string> all = plan.sets;
      all.insert(all.end(), v.sets.begin(), v.sets.end());
      all.push_back("seed=" + std::to_string(s));
      try {
        jobs.push_back({&v, s, load_configs({plan.config}, all, registry, true, false)});  // warned once above
      } catch (const Error& e) {
        fail("variant '", v.label, "': ", e.what());
      }
    }

  // Under mpirun the runs are spread over the ranks (run i on rank i % N), each trained by one
  // process; rank 0 makes the folder, prints, and writes the tables from the records every rank
  // appends to experiment.jsonl (docs/distributed.md). The other ranks print nothing.
  dist::Comm* world = mpi_world();
  const bool spread = dist::parallel(world);
  const bool lead = !spread || world->rank() == 0;
  if (!lead) std::cout.setstate(std::ios::failbit);
  if (spread) mpi_set_timeout(base.runtime.dist_timeout_s);
  const fs::path parent = output.empty() ? fs::path(base.model_dir) / base.experiment_name : fs::path(output);
  fs::path dir = lead ? (resume.empty() ? fresh_experiment_dir(parent) : fs::path(resume)) : fs::path();
  if (spread) dir = world->broadcast(dir.string(), "the experiment folder's name");
  // The other ranks read what a resumed folder holds once rank 0 has written its first record.
  io::ExperimentEvents earlier;
  if (!resume.empty() && lead) earlier = io::read_experiment_events(dir / "experiment.jsonl");
  if (resume.empty() && lead) {
    YAML::Node rec;
    rec["config"] = fs::absolute(plan.config).lexically_normal().string();  // what --resume reads back
    rec["set"] = plan.sets;
    rec["seeds"] = plan.seeds;
    for (const auto& v : plan.variants) rec["variants"][v.label] = v.sets;
    if (!plan.control.empty()) rec["control"] = plan.control;
    YAML::Emitter em;
    em << rec;
    io::write_file_atomic((dir / "experiment.yaml").string(), std::string(em.c_str()) + "\n");
  }
  // Rank 0 opens experiment.jsonl and writes its first record before the others append.
  io::JsonlWriter events;
  if (lead) events.open((dir / "experiment.jsonl").string());
  if (lead) {
    std::string labels;
    for (const auto& v : plan.variants) labels += (labels.empty() ? "" : ",") + v.label;
    std::string seeds;
    for (uint64_t s : plan.seeds) seeds += (seeds.empty() ? "" : ",") + std::to_string(s);
    events.write(resume.empty() ? "experiment_start" : "experiment_resume", io::JsonFields()
                                         .add("config", plan.config)
                                         .add("variants", labels)
                                         .add("seeds", seeds)
                                         .add("runs", jobs.size())
                                         .add("folder", dir.string()));
    std::cout << "experiment " << base.experiment_name << ": " << plan.variants.size() << " variant(s) x "
              << plan.seeds.size() << " seed(s) = " << jobs.size() << " runs of " << plan.config << "\n";
    if (!resume.empty())
      std::cout << "  resuming: " << earlier.finished.size() << " run(s) finished, "
                << earlier.interrupted.size() << " interrupted\n";
    for (const auto& v : plan.variants) {
      std::cout << "  variant " << v.label << ":";
      for (const auto& s : v.sets) std::cout << " " << s;
      std::cout << (v.sets.empty() ? " (the config as given)\n" : "\n");
    }
    std::cout << "  seeds " << seeds << "\nexperiment folder: " << dir.string() << "\n" << std::flush;
  }

  if (spread) {
    world->allgather({}, "the experiment folder's plan");
    if (!lead) {
      if (!resume.empty()) earlier = io::read_experiment_events(dir / "experiment.jsonl");
      events.open((dir / "experiment.jsonl").string());
    }
  }
  // Under mpirun: the runs still to make, spread over the ranks in turn.
  std::vector<char> mine(jobs.size(), 1);
  if (spread) {
    size_t turn = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const bool done = earlier.finished.count(io::experiment_job_key(jobs[i].variant->label, jobs[i].seed)) > 0;
      mine[i] = !done && int(turn++ % size_t(world->size())) == world->rank();
    }
  }

  io::ReportOptions ropt;
  ropt.title = base.experiment_name;
  const char* gp = std::getenv("RECDISTILL_GNUPLOT");
  ropt.gnuplot = vm.count("no-plots") ? "" : (gp && *gp ? gp : "gnuplot");

  const bool show_runs = vm.count("show-runs") > 0;
  io::ProgressOptions popt;
  popt.unit = "runs";
  if (show_runs) popt.mode = io::ProgressMode::plain;  // the runs' own output owns the terminal
  popt.bar_width = 12;
  io::Progress progress(std::cout, popt);
  progress.begin("experiment", int64_t(jobs.size()));
  std::vector<io::RunRecord> records;
  const auto t0 = std::chrono::steady_clock::now();
  install_interrupt_handlers();
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!mine[i]) continue;  // another rank's run (or, under mpirun, one finished before)
    const Job& job = jobs[i];
    const std::string what = job.variant->label + " seed " + std::to_string(job.seed);
    const std::string key = io::experiment_job_key(job.variant->label, job.seed);
    if (const auto done = earlier.finished.find(key); done != earlier.finished.end()) {  // --resume
      records.push_back(done->second);
      if (i == 0) ropt.curve_metric = earlier.valid_metric.at(key);
      const std::string w = earlier.selection.at(key) == "last" ? "the last epoch" : "the best validation epoch";
      ropt.tested_weights = i == 0 || ropt.tested_weights == w ? w : "each run's training.selection";
      progress.line("[" + std::to_string(i + 1) + "/" + std::to_string(jobs.size()) + "] " + what +
                    ": finished before  " + done->second.run_dir);
      progress.update(int64_t(i + 1));
      continue;
    }
    // Short status (variant/seed, epoch): the whole line must fit an 80-column terminal.
    const std::string tag = job.variant->label + "/" + std::to_string(job.seed);
    progress.update(int64_t(i), tag);
    if (show_runs) std::cout << "\n== run " << i + 1 << "/" << jobs.size() << ": " << what << " ==\n" << std::flush;
    events.write("run_start", io::JsonFields().add("variant", job.variant->label).add("seed", job.seed));
    TrainRunOutcome out;
    try {
      TrainRunOptions o;
      o.output = (dir / "runs" / job.variant->label).string();
      o.quiet = !show_runs;
      if (const auto it = earlier.interrupted.find(key); it != earlier.interrupted.end() &&
                                                          fs::exists(fs::path(it->second) / kLatestCheckpoint))
        o.resume = it->second;  // continues from its checkpoint, in a new run folder
      // Keep the bar moving inside a run: its status names the epoch reached.
      o.on_epoch = [&](const EpochLog& e) {
        progress.update(int64_t(i), tag + " epoch " + std::to_string(e.epoch));
      };
      throw_if_interrupted("between runs");
      out = train_run(job.cfg, o);
    } catch (const Interrupted& e) {
      events.write("run_interrupted", io::JsonFields()
                                          .add("variant", job.variant->label)
                                          .add("seed", job.seed)
                                          .add("epoch", e.epoch)
                                          .add("run_dir", e.run_dir));
      std::string summary = "no run has finished yet";
      if (!records.empty() && lead) {
        const auto f = io::write_report(dir, records, ropt);
        summary = cat("the summary of the ", records.size(), " finished run(s): ", f.markdown.string());
      }
      progress.line("interrupted");
      // Under mpirun the ranks stop independently: this one ends the job, naming itself. Its run
      // continues from its checkpoint on --resume; the other ranks' runs in progress start again.
      if (spread)
        mpi_abort(cat("interrupted by ", signal_name(e.signal), " during run ", i + 1, "/", jobs.size(), " (", what,
                      ", after epoch ", e.epoch, "): ending every rank\nresume with: mpirun -np ", world->size(),
                      " recdistill experiment --resume ", dir.string()),
                  128 + e.signal);
      throw Interrupted(e.signal, e.epoch,
                        cat("interrupted by ", signal_name(e.signal), " during run ", i + 1, "/", jobs.size(), " (",
                            what, ", after epoch ", e.epoch, "); ", summary,
                            "\nresume with: recdistill experiment --resume ", dir.string()),
                        dir.string());
    } catch (const std::exception& e) {
      events.write("run_failed", io::JsonFields()
                                     .add("variant", job.variant->label)
                                     .add("seed", job.seed)
                                     .add("error", std::string(e.what())));
      // What finished so far is still worth a table.
      if (!records.empty() && lead) {
        const auto f = io::write_report(dir, records, ropt);
        progress.line("partial results of " + std::to_string(records.size()) + " runs: " + f.markdown.string());
      }
      fail("run ", i + 1, "/", jobs.size(), " (", what, "): ", e.what());
    }
    const TrainResult& r = out.result;
    io::RunRecord rec;
    rec.variant = job.variant->label;
    rec.seed = job.seed;
    rec.test = r.test;
    rec.valid = r.best_valid;
    rec.best_epoch = r.best_epoch;
    rec.epochs_run = r.epochs_run;
    rec.train_seconds = r.train_seconds;
    rec.run_dir = out.run_dir.string();
    for (const EpochLog& e : r.epochs) {
      io::CurvePoint p;
      p.epoch = e.epoch;
      p.loss = e.loss;
      const auto it = e.valid.find(out.valid_metric);
      if (e.evaluated && it != e.valid.end()) p.valid = it->second;
      rec.curve.push_back(p);
    }
    records.push_back(rec);
    events.write("run_end", io::run_end_fields(rec, out.valid_metric, out.selection));
    const std::string& m = out.valid_metric;
    if (i == 0) ropt.curve_metric = m;  // the model's, known once it ran
    // Which weights the tables report: the runs' training.selection (variants may differ).
    const std::string w = out.selection == "last" ? "the last epoch" : "the best validation epoch";
    ropt.tested_weights = i == 0 || ropt.tested_weights == w ? w : "each run's training.selection";
    std::ostringstream line;
    line << "[" << i + 1 << "/" << jobs.size() << "] " << what << ": test " << m << " "
         << (r.test.count(m) ? fixed4(r.test.at(m)) : "-") << ", valid "
         << (r.best_valid.count(m) ? fixed4(r.best_valid.at(m)) : "-") << " (best epoch " << r.best_epoch << " of "
         << r.epochs_run << ", " << std::fixed << std::setprecision(1) << r.train_seconds << " s)  "
         << out.run_dir.string();
    progress.line(line.str());
    progress.update(int64_t(i + 1));
  }
  if (spread) {
    // The others may still be training: wait without the step-sized timeout (a rank that dies
    // still ends the job through mpirun).
    mpi_set_timeout(365.0 * 86400);
    events.close();  // every record of this rank is in the file before rank 0 reads it
    world->allgather({int64_t(records.size())}, "the end of every rank's runs");
    if (!lead) return 0;
    events.open((dir / "experiment.jsonl").string());
    // Every rank's records, in the plan's order, from experiment.jsonl.
    const io::ExperimentEvents all = io::read_experiment_events(dir / "experiment.jsonl");
    records.clear();
    for (size_t i = 0; i < jobs.size(); ++i) {
      const std::string key = io::experiment_job_key(jobs[i].variant->label, jobs[i].seed);
      const auto it = all.finished.find(key);
      if (it == all.finished.end()) fail((dir / "experiment.jsonl").string(), ": no finished record of run ", i + 1, " (", key, ")");
      records.push_back(it->second);
      const std::string w = all.selection.at(key) == "last" ? "the last epoch" : "the best validation epoch";
      if (i == 0) ropt.curve_metric = all.valid_metric.at(key);
      ropt.tested_weights = i == 0 || ropt.tested_weights == w ? w : "each run's training.selection";
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream done;
  done << "experiment done: " << jobs.size() << " runs in " << std::fixed << std::setprecision(1) << secs << " s";
  progress.finish(done.str());

  const io::ReportFiles f = io::write_report(dir, records, ropt);
  std::cout << "\n" << f.table << "\nfiles (all metrics, validation table, per-run rows):\n  " << f.markdown.string()
            << "\n  " << f.csv.string() << "\n  " << f.runs_csv.string() << "\n";
  for (const auto& p : f.plots) std::cout << "  " << p.string() << "\n";
  if (!f.plot_message.empty()) std::cout << f.plot_message << "\n";
  events.write("experiment_end", io::JsonFields()
                                     .add("runs", records.size())
                                     .add("seconds", secs)
                                     .add("summary", f.markdown.string())
                                     .add("plots", f.plots.empty() ? f.plot_message : std::string("drawn")));
  if (!plan.control.empty())
    std::cout << "\n" << io::write_variant_tests(dir, records, plan.control, tested_metrics) << "\n  "
              << (dir / "tests.md").string() << "\n  " << (dir / "tests.csv").string() << "\n";
  return 0;
}

}  // namespace recdistill::app
