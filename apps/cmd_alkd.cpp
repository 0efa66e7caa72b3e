// recdistill alkd: active LLM distillation of a session model (specs/active-llm-distillation.md;
// docs/alkd.md), by stages, in one run folder.
//
//   recdistill alkd --config FILE.yaml [--set key=value ...] [--stages pretrain,predict]
//                   [--output DIR] [--resume FOLDER] [--plugin-dir DIR ...]
//
// The config names one session model (model.model_name: STAMP, FPMC, ...) trained twice, as
// the teacher and the student, which differ only by the `alkd` section's hidden sizes and
// patiences (methods/alkd_config.hpp). Stages:
//   pretrain  trains the teacher, then the student, each a normal `train` run (checkpoints,
//             metrics.jsonl, results.json, model.safetensors) under FOLDER/teacher/ and
//             FOLDER/student/; FOLDER/teacher.done and student.done name the finished runs
//   predict   FOLDER/predictions.jsonl (methods/alkd_predictions.hpp): every training session's
//             teacher and student top-K, target ranks, difficulties and prompt candidates,
//             ranked with the window's items excluded and ties to the lower index
// The folder is FOLDER = (--output or training.model_dir/experiment_name)/alkd-<UTC>-seed<S>,
// or the --resume one: a finished stage is skipped, an interrupted training resumes from its
// latest checkpoint, and a config that differs from the folder's alkd_config.yaml is refused.
#include <yaml-cpp/yaml.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/methods/alkd_config.hpp"
#include "recdistill/methods/alkd_predictions.hpp"
#include "recdistill/plugin/registry.hpp"
#include "recdistill/train/checkpoint.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

namespace {

const std::vector<std::string> kStages = {"pretrain", "predict"};

std::vector<std::string> parse_stages(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string s;
  while (std::getline(ss, s, ',')) {
    if (std::find(kStages.begin(), kStages.end(), s) == kStages.end())
      fail("--stages: unknown stage '", s, "' (expected a comma-separated list of pretrain, predict)");
    out.push_back(s);
  }
  if (out.empty()) fail("--stages: empty (expected a comma-separated list of pretrain, predict)");
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p.string(), ": cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

fs::path fresh_alkd_dir(const io::CommonConfig& c, const std::string& output) {
  const fs::path base = output.empty() ? fs::path(c.model_dir) / c.experiment_name : fs::path(output);
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  const std::string name = std::string("alkd-") + stamp + "-seed" + std::to_string(c.seed);
  fs::create_directories(base);
  for (int i = 0;; ++i) {
    fs::path p = base / (i == 0 ? name : name + "." + std::to_string(i));
    std::error_code ec;
    if (fs::create_directory(p, ec)) return p;
    if (ec) fail(p.string(), ": cannot create the run folder: ", ec.message());
  }
}

// The newest run folder under `dir` that holds a latest checkpoint ("" if none).
std::string resumable_run(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  std::string best;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::exists(e.path() / kLatestCheckpoint) && e.path().string() > best) best = e.path().string();
  return best;
}

struct Role {
  const char* name;
  int hidden, patience, bce_negatives;
};

}  // namespace

int cmd_alkd(const Args& args) {
  po::options_description opts("recdistill alkd options");
  std::vector<std::string> configs, sets;
  std::string stages_text = "pretrain,predict", output, resume;
  PluginArgs plugins;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&configs)->required()->composing(), "YAML config (repeatable: later files override earlier ones)")(
      "set", po::value(&sets)->composing(), "override a key: --set alkd.student_hidden_units=10 (repeatable)")(
      "stages", po::value(&stages_text), "comma-separated stages to run, in order: pretrain, predict")(
      "output,o", po::value(&output), "parent of the run folder (default: training.model_dir/experiment_name)")(
      "resume", po::value(&resume), "an alkd run folder: skip its finished stages, resume an interrupted training");
  add_plugin_options(opts, plugins);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill alkd --config FILE.yaml [--stages pretrain,predict] [--resume FOLDER]\n" << opts;
    return 0;
  }
  po::notify(vm);
  const auto stages = parse_stages(stages_text);
  auto wants = [&](const char* s) { return std::find(stages.begin(), stages.end(), s) != stages.end(); };

  const plugin::Registry registry = open_plugins(plugins);
  const auto alkd_keys = io::describe<alkd::AlkdConfig>();
  const RunConfig rc = load_configs(configs, sets, registry, true, true, alkd_keys);
  const auto ac = io::parse_config<alkd::AlkdConfig>(rc.layers, rc.model_keys, io::checked_by_the_app());
  const io::CommonConfig& cfg = rc.common;
  if (cfg.data.format != "sessions")
    fail("data.format: alkd works on session data (data.format: sessions, docs/data.md), found '", cfg.data.format, "'");
  if (cfg.data.split != "session")
    fail("data.split: alkd trains on the shipped split of the sessions (data.split: session), found '", cfg.data.split, "'");
  if (resume.empty() && !wants("pretrain"))
    fail("--stages ", stages_text, ": a new run folder starts with the pretrain stage (or give --resume FOLDER)");

  // The run folder and its config: a resumed folder must have been made by the same config.
  const std::string config_text = [&] {
    const auto model = registry.create_model(cfg.model_name, rc.layers);
    // ALKDRec's instances: one row per session, its last item the target (spec §1.2).
    const YAML::Node m = YAML::Load(model->resolved_config());
    const YAML::Node rows = m["training"] ? m["training"]["session_rows"] : YAML::Node();
    if (!rows || rows.as<std::string>() != "last" || !m["model"] || !m["model"]["maxlen"])
      fail(cfg.model_name, ": alkd needs a session model trained on one row per session (training.session_rows: last)",
           rows ? cat(", found '", rows.as<std::string>(), "'") : std::string(" (the model has no such key)"));
    YAML::Node root = YAML::Load(run_config_text(rc, model->resolved_config()));
    root["alkd"] = YAML::Load(io::effective_config_text(ac));
    return io::yaml_text(root);
  }();
  fs::path folder;
  if (!resume.empty()) {
    folder = resume;
    const fs::path saved = folder / "alkd_config.yaml";
    if (!fs::exists(saved)) fail(resume, ": not an alkd run folder (no alkd_config.yaml)");
    if (read_text(saved) != config_text)
      fail(resume, ": the config differs from the one this folder was made with (", saved.string(),
           "); resume with the same config and --set values, or start a new run");
  } else {
    folder = fresh_alkd_dir(cfg, output);
    io::write_file_atomic((folder / "alkd_config.yaml").string(), config_text);
  }
  std::cout << "alkd run folder: " << folder.string() << "\n";

  const Role roles[] = {{"teacher", ac.teacher_hidden, ac.teacher_patience, ac.teacher_bce_negatives},
                        {"student", ac.student_hidden, ac.student_patience, ac.student_bce_negatives}};
  auto role_sets = [&](const Role& r) {
    std::vector<std::string> s = sets;
    s.push_back(cat("model.hidden_units=", r.hidden));
    s.push_back(cat("training.patience=", r.patience));
    if (r.bce_negatives > 0) s.push_back(cat("training.bce_negatives=", r.bce_negatives));
    return s;
  };
  auto done_run = [&](const Role& r) -> std::string {
    const fs::path marker = folder / (std::string(r.name) + ".done");
    return fs::exists(marker) ? (folder / read_text(marker)).string() : "";
  };

  if (wants("pretrain")) {
    for (const Role& r : roles) {
      if (const auto run = done_run(r); !run.empty()) {
        std::cout << "\n" << r.name << ": done (" << run << ")\n";
        continue;
      }
      std::cout << "\n" << r.name << ": " << cfg.model_name << " with hidden_units " << r.hidden << ", patience "
                << r.patience << "\n";
      TrainRunOptions o;
      o.output = (folder / r.name).string();
      o.plugins = plugins;
      o.resume = resumable_run(folder / r.name);
      if (!o.resume.empty()) std::cout << "resuming " << o.resume << "\n";
      const auto outcome = train_run(load_configs(configs, role_sets(r), registry, true, false, alkd_keys), o);
      io::write_file_atomic((folder / (std::string(r.name) + ".done")).string(),
                            fs::relative(outcome.run_dir, folder).string());
    }
  }

  if (wants("predict")) {
    const fs::path out_path = folder / "predictions.jsonl";
    if (fs::exists(out_path)) {
      std::cout << "\npredict: done (" << out_path.string() << ")\n";
      return 0;
    }
    for (const Role& r : roles)
      if (done_run(r).empty()) fail(folder.string(), ": the ", r.name, " is not trained yet (run the pretrain stage first)");
    std::cout << "\npredict: every training session through the teacher and the student\n";
    const PreparedData prep = prepare_data(cfg, std::cout);
    const auto& split = prep.split;
    // The model's window: the app reads no model key but this one, from the resolved config.
    const auto model_for = [&](const Role& r) {
      auto s = role_sets(r);
      s.push_back("eval.exclude=window");  // the prediction step's ranking (§3)
      s.push_back("eval.ties=index");
      s.push_back("eval.sampled_negatives=0");  // full ranking
      const RunConfig role_rc = load_configs(configs, s, registry, true, false, alkd_keys);
      std::shared_ptr<plugin::Model> m = registry.create_model(cfg.model_name, role_rc.layers);
      m->load((fs::path(done_run(r)) / "model.safetensors").string(), prep.data);
      return m;
    };
    auto teacher = model_for(roles[0]), student = model_for(roles[1]);
    const YAML::Node resolved = YAML::Load(teacher->resolved_config());
    if (!resolved["model"] || !resolved["model"]["maxlen"])
      fail(cfg.model_name, ": its resolved config has no model.maxlen (alkd needs a session model)");
    const int L = resolved["model"]["maxlen"].as<int>();

    // One case per training session: its items but the last, and the last as the target.
    std::vector<data::SplitCase> cases;
    std::vector<std::vector<int32_t>> windows;
    for (size_t u = 1; u < split.train.size(); ++u) {
      const auto& seq = split.train[u];
      if (seq.size() < 2) continue;
      cases.push_back({int32_t(u), std::vector<int32_t>(seq.begin(), seq.end() - 1), seq.back()});
      const size_t n = seq.size() - 1, w = std::min(n, size_t(L));
      windows.emplace_back(seq.begin() + long(n - w), seq.end() - 1);
    }
    const int N = split.n_items;
    const int K = std::min(ac.top_k, N - 1);
    const auto t0 = std::chrono::steady_clock::now();
    const auto tp = teacher->predict_cases(split, cases, K, windows);
    const auto sp = student->predict_cases(split, cases, K, windows);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    alkd::Predictions p;
    // The runs, relative to the folder (as the .done markers name them).
    p.header = {int64_t(cases.size()), int64_t(N - 1), int64_t(K), int64_t(L), read_text(folder / "teacher.done"),
                read_text(folder / "student.done")};
    const int64_t n_items = N - 1;
    auto idx = [](int32_t id) { return id - 1; };  // internal id -> item_index (data/sessions.hpp)
    auto rank0 = [&](int64_t r) { return r == eval::kMissRank ? n_items : r - 1; };
    auto ids = [&](const std::vector<plugin::Recommendation>& top) {
      std::vector<int32_t> v;
      for (const auto& x : top) v.push_back(idx(x.item));
      return v;
    };
    size_t t_hits = 0, s_hits = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      alkd::Prediction rec;
      rec.session_id = prep.data.users.token(cases[i].user);
      rec.target = idx(cases[i].target);
      for (int32_t it : windows[i]) rec.window.push_back(idx(it));
      rec.teacher_rank = rank0(tp.ranks[i]);
      rec.student_rank = rank0(sp.ranks[i]);
      rec.teacher_top = ids(tp.top[i]);
      rec.student_top = ids(sp.top[i]);
      rec.candidates = alkd::prompt_candidates(rec.teacher_top, rec.target);
      rec.difficulty.teacher_consistency = -alkd::consistency(tp.item_scores[i]);
      rec.difficulty.student_consistency = -alkd::consistency(sp.item_scores[i]);
      rec.difficulty.rank_agreement = alkd::rank_agreement_difficulty(rec.teacher_top, rec.student_top);
      for (double d : {rec.difficulty.teacher_consistency, rec.difficulty.student_consistency})
        if (!std::isfinite(d))
          fail("predict: session ", rec.session_id, ": a model's scores are not finite (diverged weights?); nothing written");
      t_hits += rec.teacher_rank < K;
      s_hits += rec.student_rank < K;
      p.records.push_back(std::move(rec));
    }
    io::write_file_atomic(out_path.string(), alkd::predictions_text(p));
    if (cases.empty()) fail("predict: the split has no training session with a target");
    std::cout << std::fixed << std::setprecision(3) << cases.size() << " training sessions in " << seconds
              << " s: target in the top " << K << " for the teacher " << double(t_hits) / double(cases.size())
              << ", the student " << double(s_hits) / double(cases.size()) << "\npredictions: " << out_path.string()
              << "\n" << std::defaultfloat;
  }
  return 0;
}

}  // namespace recdistill::app
