// recdistill alkd: active LLM distillation of a session model (specs/active-llm-distillation.md;
// docs/alkd.md), by stages, in one run folder.
//
//   recdistill alkd --config FILE.yaml [--set key=value ...] [--stages STAGE,...]
//                   [--output DIR] [--resume FOLDER] [--plugin-dir DIR ...]
//
// The config names one session model (model.model_name: STAMP, FPMC, ...) trained twice, as
// the teacher and the student, which differ only by the `alkd` section's hidden sizes and
// patiences (methods/alkd_config.hpp). Stages, in this order (default: all):
//   pretrain  trains the teacher, then the student, each a normal `train` run (checkpoints,
//             metrics.jsonl, results.json, model.safetensors) under FOLDER/teacher/ and
//             FOLDER/student/; FOLDER/teacher.done and student.done name the finished runs
//   predict   FOLDER/predictions.jsonl (methods/alkd_predictions.hpp): every training session's
//             teacher and student top-K, target ranks, difficulties and prompt candidates,
//             ranked with the window's items excluded and ties to the lower index
//   oracle    imports the recorded answers (alkd.answers) into the run's answer cache
//             (FOLDER/llm_cache.jsonl unless llm.cache is set) and writes FOLDER/oracle.json
//             (counts, defects, hit rates; the shipped facts checked with
//             alkd.check_shipped_answers). It comes before the selection because a strategy
//             skips the sessions the oracle cannot answer (§5.1). With alkd.hints:
//             llm_summarised, every later stage first takes the live prompts' hints from one
//             cached LLM call (§4.1) and writes them to FOLDER/<compat>/hints.txt for review
//   select    for each alkd.selection_sources x alkd.strategies (but teacher_only), the answered
//             set B: FOLDER/selections/<source>-<strategy>.json (sessions in order, the
//             SelectionReport, the LLM's hit rates on B). With llm.base_url set, the sessions
//             drawn without an answer are asked for, and drawing goes on for those that stay
//             unanswered.
//   distill   for each selection (and teacher_only), the pre-trained student fine-tuned on the
//             distillation rows (methods/alkd_distill.hpp) with a fresh optimiser: a `train` run
//             under FOLDER/distill/<name>/, FOLDER/distill/<name>.done naming it
//   report    FOLDER/report.json and report.md: test metrics and hit counts of the teacher, the
//             student and every distilled student, with each selection's report
// The folder is FOLDER = (--output or training.model_dir/experiment_name)/alkd-<UTC>-seed<S>,
// or the --resume one: a finished stage (or strategy) is skipped, an interrupted training
// resumes from its latest checkpoint, and a config whose keys differ from the folder's
// alkd_config.yaml is refused (keys the folder's file lacks, added by a later version, are not
// compared).
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
#include <unordered_map>
#include <unordered_set>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/core/interrupt.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/methods/alkd_answers.hpp"
#include "recdistill/methods/alkd_config.hpp"
#include "recdistill/methods/alkd_distill.hpp"
#include "recdistill/methods/alkd_oracle.hpp"
#include "recdistill/methods/alkd_predictions.hpp"
#include "recdistill/plugin/registry.hpp"
#include "recdistill/train/checkpoint.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

namespace {

const std::vector<std::string> kStages = {"pretrain", "predict", "oracle", "select", "distill", "report"};
constexpr const char* kStageList = "pretrain, predict, oracle, select, distill, report";

std::vector<std::string> parse_stages(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string s;
  while (std::getline(ss, s, ',')) {
    if (std::find(kStages.begin(), kStages.end(), s) == kStages.end())
      fail("--stages: unknown stage '", s, "' (expected a comma-separated list of ", kStageList, ")");
    out.push_back(s);
  }
  if (out.empty()) fail("--stages: empty (expected a comma-separated list of ", kStageList, ")");
  return out;
}

// The keys of a saved config that the current one sets differently ("" = none). Keys only one
// side has are not compared: a folder made by an earlier version lacks the keys added since.
void config_differences(const YAML::Node& saved, const YAML::Node& now, const std::string& path, std::string& out) {
  if (saved.IsMap() && now.IsMap()) {
    for (auto it = saved.begin(); it != saved.end(); ++it) {
      const std::string k = it->first.as<std::string>();
      if (now[k]) config_differences(it->second, now[k], path.empty() ? k : path + "." + k, out);
    }
    return;
  }
  if (YAML::Dump(saved) != YAML::Dump(now))
    out += cat("\n  ", path, ": folder ", io::flow_text(saved), ", now ", io::flow_text(now));
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


// ---- the stages after the prediction step ------------------------------------------------

// Item titles by item index (the third column of an items.tsv: item_index, raw id, title),
// for live prompts only; "" = no file (titles stay empty).
std::vector<std::string> read_titles(const fs::path& items_tsv) {
  std::vector<std::string> titles;
  std::ifstream f(items_tsv);
  if (!f) return titles;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    const auto a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
    titles.push_back(b == std::string::npos ? std::string() : line.substr(b + 1));
  }
  return titles;
}

// What the pre-training and the prediction step depend on: the config without `compat` (its
// effect on the model is in the resolved model keys) and without the later stages' alkd keys,
// which FOLDER/<compat>/stages_config.yaml records instead.
YAML::Node pretrain_part(YAML::Node n) {
  YAML::Node out = YAML::Clone(n);
  if (out.IsMap()) {
    out.remove("compat");
    // Folders made before the section was flattened saved it as alkd: {alkd: {...}}.
    if (out["alkd"] && out["alkd"].IsMap() && out["alkd"]["alkd"] && out["alkd"]["alkd"].IsMap())
      out["alkd"] = YAML::Clone(out["alkd"]["alkd"]);
    if (out["alkd"] && out["alkd"].IsMap()) {
      std::vector<std::string> later;
      for (auto it = out["alkd"].begin(); it != out["alkd"].end(); ++it)
        if (alkd::is_later_stage_key(it->first.as<std::string>())) later.push_back(it->first.as<std::string>());
      for (const auto& k : later) out["alkd"].remove(k);
    }
  }
  return out;
}

// The name of a distillation: teacher_only has no selection; the others "<source>-<strategy>".
std::string distill_name(const std::string& source, const std::string& strategy) {
  return strategy == "teacher_only" ? strategy : source + "-" + strategy;
}

double metric_of(const YAML::Node& m, const std::string& key, const fs::path& file) {
  if (!m || !m[key]) fail(file.string(), ": no test ", key, " (the report needs eval.ks to hold 5 and 10)");
  return m[key].as<double>();
}

void later_stages(const fs::path& folder, const io::CommonConfig& cfg, const alkd::AlkdConfig& ac,
                  const io::ConfigLayers& layers, const std::vector<std::string>& configs, const std::vector<std::string>& sets,
                  const plugin::Registry& registry, const PluginArgs& plugins,
                  const std::vector<keys::KeyDoc>& alkd_keys, const std::function<bool(const char*)>& wants,
                  const std::vector<std::string>& student_sets) {
  const fs::path pred_path = folder / "predictions.jsonl";
  if (!fs::exists(pred_path)) fail(folder.string(), ": the prediction step has not run (run the predict stage first)");
  const alkd::Predictions pred = alkd::parse_predictions(read_text(pred_path), pred_path.string());
  // The later stages' outputs, one folder per preset (FOLDER/reference, FOLDER/upstream_compat),
  // made with the settings its stages_config.yaml records; the answer cache is shared.
  const fs::path stage_dir = folder / cfg.compat;
  {
    fs::create_directories(stage_dir);
    const fs::path saved = stage_dir / "stages_config.yaml";
    YAML::Node now;
    now["compat"] = cfg.compat;
    const YAML::Node a = YAML::Load(io::effective_config_text(ac))["alkd"];
    for (auto it = a.begin(); it != a.end(); ++it)
      if (alkd::is_later_stage_key(it->first.as<std::string>())) now["alkd"][it->first.as<std::string>()] = it->second;
    const std::string text = io::yaml_text(now);
    if (fs::exists(saved)) {
      std::string diffs;
      config_differences(YAML::Load(read_text(saved)), now, "", diffs);
      if (!diffs.empty())
        fail(stage_dir.string(), ": the later stages' settings differ from those this folder's outputs were made with (",
             saved.string(), "):", diffs, "\nrun with the same settings, or resume under another compat preset");
    } else {
      io::write_file_atomic(saved.string(), text);
    }
  }

  const int64_t n_items = pred.header.items;
  std::unordered_map<std::string, const alkd::Prediction*> by_session;
  std::unordered_set<std::string> train_ids;
  for (const auto& r : pred.records) {
    by_session[r.session_id] = &r;
    train_ids.insert(r.session_id);
  }

  // The oracle: the run's answer cache (llm.cache when set, else FOLDER/llm_cache.jsonl).
  llm::LlmConfig lc = cfg.llm;
  if (lc.cache == llm::LlmConfig{}.cache) lc.cache = (folder / "llm_cache.jsonl").string();
  alkd::OracleOptions oo = alkd::oracle_options(ac, cfg.seed, n_items);
  if (oo.prompt.teacher_rank_order && lc.live())
    std::cout << "note: alkd.candidate_order: teacher_rank lists the candidates in the teacher's order, so a target "
                 "forced into them sits last (spec §4.2)\n";
  // Titles are part of every prompt and so of its cache key: read them with or without an
  // endpoint, so that a run without one renders the same prompts and finds their cached replies.
  std::vector<std::string> titles = read_titles(fs::path(cfg.data.path).parent_path() / "items.tsv");
  if (ac.hints == "llm_summarised") {
    // §4.1: one cached call before any live query. Without an endpoint only a cached reply can
    // give the hints; recorded answers need none, so then only rendering a prompt is refused.
    std::vector<alkd::HintCase> cases;
    for (size_t i : alkd::draw_hint_instances(pred.records.size(), cfg.seed)) cases.push_back(alkd::hint_case(pred.records[i]));
    const std::string prompt = alkd::render_hint_prompt(cases, titles);
    llm::AnswerCache cache(lc.cache);  // closed before the oracle opens it
    if (lc.live() || cache.find(alkd::hint_request(lc, prompt).key)) {
      const auto h = alkd::llm_summarised_hints(lc, cache, prompt);
      oo.prompt.hints = h.hints;
      std::string text;
      for (const auto& x : h.hints) text += x + "\n";
      io::write_file_atomic((stage_dir / "hints.txt").string(), text);
      std::cout << "\nhints: " << h.hints.size() << " summarised by " << lc.model << " from " << cases.size()
                << " training sessions (" << (h.sent ? "asked now: " + h.batch.summary() : "cached") << "), "
                << (stage_dir / "hints.txt").string() << " for review\n";
    } else {
      oo.no_prompts = cat("alkd.hints: llm_summarised needs the LLM's hints, but no endpoint is configured "
                          "(llm.base_url is empty) and ", lc.cache, " holds no reply to this run's hint prompt "
                          "(set llm.base_url, or use alkd.hints: static)");
    }
  }
  alkd::AlkdOracle oracle(lc, oo, std::move(titles));
  {
    std::vector<alkd::PromptInput> inputs;
    // The prompt's candidates: the teacher's list with the target forced in (§3), or as it is.
    for (const auto& r : pred.records)
      inputs.push_back({r.session_id, r.window, ac.force_target_in_candidates ? r.candidates : r.teacher_top, r.target});
    oracle.add_sessions(inputs);
  }

  if (wants("oracle")) {
    const fs::path out = stage_dir / "oracle.json";
    if (fs::exists(out)) {
      std::cout << "\noracle: done (" << out.string() << ")\n";
    } else {
      std::cout << "\noracle: the recorded answers " << ac.answers << " into " << lc.cache << "\n";
      const alkd::RecordedAnswers answers = alkd::read_answer_file(ac.answers);
      io::JsonFields f;
      f.add("answers", ac.answers).add("cache", lc.cache).add("records", (long long)answers.records.size())
          .add("duplicate_records", (long long)answers.duplicates);
      if (ac.check_shipped_answers) {
        const auto facts = alkd::check_ml_answer_facts(answers, train_ids, n_items);
        alkd::require_ml_answer_facts(facts, ac.answers);
        std::cout << facts.report() << (facts.report().empty() || facts.report().back() == '\n' ? "" : "\n");
        // ... and of the released selection files: their first 500 ids (§1.1).
        std::unordered_set<std::string> answered;
        for (const auto& r : answers.records) answered.insert(r.session_id);
        for (const char* name : {"alkdrec", "rad_bc", "random", "easiest", "hardest"}) {
          const std::string file = (fs::path(ac.selections_dir) / (std::string(name) + ".txt")).string();
          alkd::check_shipped_selection(alkd::read_selection_file(file), 500, file, train_ids, answered);
        }
        std::cout << "the released selection files in " << ac.selections_dir
                  << ": the first 500 ids of each are distinct, training sessions and answered\n";
        f.add("shipped_facts", "checked");
      }
      size_t not_train = 0;
      std::vector<int> positions;
      alkd::ValidationCounts counts;
      for (const auto& r : answers.records) {
        not_train += !train_ids.count(r.session_id);
        const auto it = by_session.find(r.session_id);
        const auto v = alkd::validate_answer(r.ranked_items, n_items, it == by_session.end() ? -1 : it->second->target);
        counts += v.counts;
        positions.push_back(v.target_position);
      }
      const auto hits = alkd::llm_hit_rates(positions);
      const size_t added = oracle.import_recorded(answers);
      // The cache may be shared (another preset, llm.cache): it must hold this file's answers.
      for (const auto& r : answers.records) {
        const auto a = oracle.lookup(r.session_id);
        if (a.source == alkd::AnswerSource::recorded && a.raw_items != r.ranked_items)
          fail(lc.cache, ": session ", r.session_id, "'s recorded answer differs from ", ac.answers, ":", r.line,
               " (the cache was filled from another answer file; use another llm.cache)");
      }
      f.add("imported", (long long)added).add("not_train_sessions", (long long)not_train)
          .add("unusable", (long long)counts.unusable).add("out_of_range", (long long)counts.out_of_range)
          .add("repeats", (long long)counts.repeats).add("truncated", (long long)counts.truncated)
          .add("hit_at_5", hits.at5).add("hit_at_10", hits.at10).add("hit_at_25", hits.at25);
      io::write_file_atomic(out.string(), "{" + f.body().substr(f.body().empty() ? 0 : 2) + "}\n");
      std::cout << answers.records.size() << " answers (" << added << " new in the cache), " << counts.unusable
                << " unusable, " << counts.repeats << " repeated ids, " << counts.out_of_range
                << " out-of-range ids; the LLM's hit rates @5/@10/@25 " << hits.at5 << " / " << hits.at10 << " / "
                << hits.at25 << "\n";
    }
  }

  // Each selection's file: its sessions in order and its report.
  const fs::path sel_dir = stage_dir / "selections";
  struct Sel {
    std::string name, source, strategy;
  };
  std::vector<Sel> sels;
  for (const auto& source : ac.selection_sources)
    for (const auto& strategy : ac.strategies)
      if (strategy != "teacher_only") sels.push_back({distill_name(source, strategy), source, strategy});

  auto state_of = [&](const std::string& id) { return oracle.lookup(id).state; };
  if (wants("select")) {
    if (!fs::exists(stage_dir / "oracle.json")) fail(stage_dir.string(), ": the oracle stage has not run (run it first)");
    fs::create_directories(sel_dir);
    std::vector<alkd::PoolEntry> pool;
    for (const auto& r : pred.records) {
      const auto& d = r.difficulty;
      pool.push_back({r.session_id, ac.difficulty == "student_consistency" ? d.student_consistency
                                    : ac.difficulty == "rank_agreement"    ? d.rank_agreement
                                                                           : d.teacher_consistency});
    }
    pool = alkd::order_hardest_first(std::move(pool));
    for (const Sel& s : sels) {
      const fs::path out = sel_dir / (s.name + ".json");
      if (fs::exists(out)) {
        std::cout << "\nselect " << s.name << ": done\n";
        continue;
      }
      // The strategy from its plugin (plugins/alkd), configured by the run's alkd.* keys.
      const auto strategy = registry.create_strategy(s.source == "replay" ? "replay" : s.strategy, layers);
      plugin::SelectionRequest req;
      req.pool = pool;
      req.budget = size_t(ac.budget);
      req.seed = cfg.seed;
      if (s.source == "replay") {
        const std::string file = (fs::path(ac.selections_dir) / (s.strategy + ".txt")).string();
        req.replay_list = alkd::read_selection_file(file);
        alkd::check_distinct_prefix(req.replay_list, std::min(req.replay_list.size(), size_t(ac.budget)), file);
      }
      // With a live LLM, a drawn session without an answer is asked for, and the selection is
      // drawn again (the same draws: it depends on the seed alone) until every drawn session
      // has an answer or stays unanswered.
      std::unordered_set<std::string> asked;
      alkd::Selection sel;
      for (int round = 0;; ++round) {
        req.oracle = [&](const std::string& id) {
          const auto st = state_of(id);
          return st == alkd::AnswerState::missing && oracle.live() && !asked.count(id) && oracle.input_of(id)
                     ? alkd::AnswerState::usable
                     : st;
        };
        sel = strategy->select(req);
        std::vector<std::string> ask;
        for (const auto& id : sel.sessions)
          if (state_of(id) == alkd::AnswerState::missing) ask.push_back(id);
        if (ask.empty()) break;
        if (round >= 20) {  // still drawing sessions nobody could answer: settle on the real states
          req.oracle = state_of;
          sel = strategy->select(req);
          break;
        }
        asked.insert(ask.begin(), ask.end());
        std::cout << "select " << s.name << ": asking the LLM about " << ask.size() << " sessions\n";
        const auto q = oracle.query(ask);
        std::cout << q.summary() << "\n";
        if (!q.stop.empty()) std::cout << "the LLM batch stopped: " << q.stop << "\n";
      }
      std::vector<alkd::OracleAnswer> answers;
      for (const auto& id : sel.sessions) answers.push_back(oracle.lookup(id));
      const auto hits = alkd::llm_hit_rates(answers);
      // §4.4's rules counted over this selection's answers (§8.4: per strategy).
      alkd::ValidationCounts vc;
      for (const auto& a : answers) vc += a.validated.counts;
      std::string text = "{\n\"name\": " + io::json_quote(s.name) + ",\n\"source\": " + io::json_quote(s.source) +
                         ",\n\"strategy\": " + io::json_quote(s.strategy) + ",\n\"sessions\": [";
      for (size_t i = 0; i < sel.sessions.size(); ++i) text += (i ? ", " : "") + io::json_quote(sel.sessions[i]);
      // Fidelity (§3.1): how many of B the released lists' first tau sessions share.
      std::string overlap;
      for (const char* released : {"alkdrec", "rad_bc", "random", "easiest", "hardest"}) {
        const fs::path file = fs::path(ac.selections_dir) / (std::string(released) + ".txt");
        if (!fs::exists(file)) continue;
        auto list = alkd::read_selection_file(file.string());
        list.resize(std::min(list.size(), size_t(ac.budget)));
        const std::unordered_set<std::string> in(list.begin(), list.end());
        size_t n = 0;
        for (const auto& id : sel.sessions) n += in.count(id);
        overlap += (overlap.empty() ? "" : ", ") + io::json_quote(released) + ": " + std::to_string(n);
      }
      text += "],\n\"released_overlap\": {" + overlap + "}";
      text += ",\n\"llm_hits\": {\"sessions\": " + std::to_string(hits.sessions) + ", \"at5\": " +
              io::json_number(hits.at5) + ", \"at10\": " + io::json_number(hits.at10) + ", \"at25\": " +
              io::json_number(hits.at25) + "},\n\"validation\": {\"unusable\": " + std::to_string(vc.unusable) +
              ", \"out_of_range\": " + std::to_string(vc.out_of_range) + ", \"repeats\": " +
              std::to_string(vc.repeats) + ", \"truncated\": " + std::to_string(vc.truncated) +
              ", \"non_candidates\": " + std::to_string(vc.non_candidates) + "},\n\"report\": " +
              alkd::selection_report_json(sel.report) + "}\n";
      io::write_file_atomic(out.string(), text);
      const auto& r = sel.report;
      std::cout << "\nselect " << s.name << ": " << sel.sessions.size() << " answered of " << r.drawn << " drawn ("
                << r.unusable << " unusable, " << r.skipped << " skipped, shortfall " << r.shortfall
                << "); the LLM's hit rates @5/@10/@25 " << hits.at5 << " / " << hits.at10 << " / " << hits.at25
                << "; its answers hold " << vc.out_of_range << " out-of-range, " << vc.repeats << " repeated and "
                << vc.truncated << " truncated ids";
      if (r.has_policy) std::cout << "; k* " << r.k_star << " of " << r.pool_size;
      std::cout << "\n";
    }
  }

  // A session's number in the predictions (1-based): the group of its rows (§6.2's mask).
  std::unordered_map<std::string, int32_t> session_number;
  for (size_t i = 0; i < pred.records.size(); ++i) session_number[pred.records[i].session_id] = int32_t(i + 1);
  auto internal_session = [&](const std::string& id) { return session_number.at(id); };
  // The distillation rows of one selection (or of teacher_only).
  auto rows_of = [&](const std::string& strategy, const std::string& name) {
    std::vector<alkd::DistillRow> rows;
    if (strategy == "teacher_only") {
      for (const auto& r : pred.records) alkd::add_teacher_rows(rows, internal_session(r.session_id), r.window, r.teacher_top);
      return rows;
    }
    const fs::path sel_path = sel_dir / (name + ".json");
    if (!fs::exists(sel_path)) fail(folder.string(), ": no selection ", name, " (run the select stage first)");
    const YAML::Node sel = YAML::LoadFile(sel_path.string());
    for (const auto& node : sel["sessions"]) {
      const std::string id = node.as<std::string>();
      const auto it = by_session.find(id);
      if (it == by_session.end()) fail(sel_path.string(), ": session ", id, " is not a training session of the predictions");
      const auto a = oracle.lookup(id);
      if (a.state == alkd::AnswerState::missing) fail(sel_path.string(), ": session ", id, " has no answer in ", lc.cache);
      alkd::add_answer_rows(rows, internal_session(id), it->second->window, a.validated, a.raw_items, n_items,
                            ac.legacy_row_duplication);
    }
    return rows;
  };

  std::vector<std::pair<std::string, std::string>> distills;  // (name, strategy)
  for (const auto& strategy : ac.strategies)
    if (strategy == "teacher_only") distills.push_back({"teacher_only", strategy});
  for (const Sel& s : sels) distills.push_back({s.name, s.strategy});

  if (wants("distill")) {
    const fs::path marker = folder / "student.done";
    if (!fs::exists(marker)) fail(folder.string(), ": the student is not trained yet (run the pretrain stage first)");
    const std::string student_weights = (folder / read_text(marker) / "model.safetensors").string();
    fs::create_directories(stage_dir / "distill");
    const int distill_k = eval::parse_metric_name(ac.distill_valid_metric).k;
    // The fine-tunings' eval.ks: the config's, the report's cutoffs 5 and 10, and the selection
    // metric's (upstream validates FPMC on HR@50).
    const std::string distill_ks = [&] {
      std::vector<int> ks = cfg.eval.ks;
      for (int k : {5, 10, distill_k})
        if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
      std::sort(ks.begin(), ks.end());
      std::string text = "eval.ks=[";
      for (size_t i = 0; i < ks.size(); ++i) text += (i ? "," : "") + std::to_string(ks[i]);
      return text + "]";
    }();
    // The pre-trained student on the fine-tuning's selection metric: logged, never a candidate (§6.3).
    if (const fs::path init = stage_dir / "distill" / "initial_student.json"; !fs::exists(init)) {
      std::ostringstream sink;
      const RunConfig src = load_configs(configs, student_sets, registry, true, false, alkd_keys);
      const PreparedData prep = prepare_data(src.common, sink);
      const auto m = registry.create_model(cfg.model_name, src.layers);
      m->load(student_weights, prep.data);
      const auto metrics = eval::metrics_from_ranks(m->rank(prep.split, prep.split.valid), {distill_k});
      io::JsonFields f;
      f.add("valid", metrics);
      io::write_file_atomic(init.string(), "{" + f.body().substr(2) + "}\n");
      std::cout << "\nthe pre-trained student on validation:";
      for (const auto& [key, v] : metrics) std::cout << " " << key << " " << v;
      std::cout << "\n";
    }
    for (const auto& [name, strategy] : distills) {
      const fs::path done = stage_dir / "distill" / (name + ".done");
      if (fs::exists(done)) {
        std::cout << "\ndistill " << name << ": done (" << read_text(done) << ")\n";
        continue;
      }
      const auto rows = rows_of(strategy, name);
      const auto st = alkd::row_stats(rows);
      io::write_file_atomic((stage_dir / "distill" / (name + ".rows.json")).string(),
                            cat("{\"rows\": ", st.rows, ", \"sessions\": ", st.sessions, ", \"weight_units\": ",
                                io::json_number(st.weight_units), "}\n"));
      std::cout << "\ndistill " << name << ": " << st.rows << " rows from " << st.sessions << " sessions, "
                << st.weight_units << " weight units\n";
      std::vector<std::string> s = student_sets;
      const bool bce = ac.distill_bce_negatives > 0;
      if (bce && !ac.legacy_row_duplication)
        fail("alkd.distill_bce_negatives: bce_multi ignores row weights and sessions, so it fine-tunes on upstream's "
             "duplicated rows only (alkd.legacy_row_duplication: true, as under compat: upstream_compat)");
      if (ac.legacy_row_duplication && ac.mask_same_session_negatives)
        std::cout << "note: alkd.legacy_row_duplication trains with upstream's unmasked in-batch loss; "
                     "alkd.mask_same_session_negatives does not apply\n";
      s.push_back("training.init_weights=" + student_weights);
      s.push_back(cat("training.patience=", ac.distill_patience));
      s.push_back(cat("training.learning_rate=", ac.distill_learning_rate));
      s.push_back("training.valid_metric=" + ac.distill_valid_metric);
      s.push_back(distill_ks);
      // bce_multi only when asked for (the student's own bce_negatives, if any, is overridden).
      if (bce || ac.student_bce_negatives > 0) s.push_back(cat("training.bce_negatives=", ac.distill_bce_negatives));
      if (!bce) s.push_back(std::string("training.loss=") + (ac.legacy_row_duplication ? "inbatch_bpr" : "weighted_pairwise"));
      const bool mask = ac.mask_same_session_negatives && !ac.legacy_row_duplication;
      TrainRunOptions o;
      o.output = (stage_dir / "distill" / name).string();
      o.plugins = plugins;
      o.resume = resumable_run(stage_dir / "distill" / name);
      if (!o.resume.empty()) std::cout << "resuming " << o.resume << "\n";
      o.adjust_data = [&](PreparedData& p) { p.split = alkd::distill_split(p.split, rows, mask); };
      const auto outcome = train_run(load_configs(configs, s, registry, true, false, alkd_keys), o);
      io::write_file_atomic(done.string(), fs::relative(outcome.run_dir, stage_dir).string());
    }
  }

  if (wants("report")) {
    // One row per model: the teacher, the student, each distilled student.
    struct Row {
      std::string name, run;
    };
    std::vector<Row> runs;
    for (const char* r : {"teacher", "student"})
      if (fs::exists(folder / (std::string(r) + ".done"))) runs.push_back({r, read_text(folder / (std::string(r) + ".done"))});
    for (const auto& [name, strategy] : distills)
      if (const fs::path d = stage_dir / "distill" / (name + ".done"); fs::exists(d))
        runs.push_back({name, fs::relative(stage_dir / read_text(d), folder).string()});
    if (runs.empty()) fail(folder.string(), ": nothing to report (no finished training)");
    // Test cases of a run: the lines of its per-session dump (hit counts = HR x cases).
    auto test_cases = [&](const std::string& run) {
      std::ifstream f(folder / run / "per_user_test.csv");
      if (!f) fail((folder / run / "per_user_test.csv").string(), ": cannot read (the report counts hits from it)");
      size_t n = 0;
      for (std::string line; std::getline(f, line);) n += !line.empty();
      return n > 0 ? n - 1 : 0;
    };
    std::string json = "{\n\"seed\": " + std::to_string(cfg.seed) + ",\n\"model\": " + io::json_quote(cfg.model_name) +
                       ",\n\"rows\": [\n";
    std::ostringstream md;
    md << "# alkd report: " << cfg.model_name << ", seed " << cfg.seed << "\n\n"
       << "| model | HR@5 (hits) | HR@10 (hits) | NDCG@5 | NDCG@10 | best epoch | selected | LLM hit@10 |\n"
       << "|---|---|---|---|---|---|---|---|\n";
    for (size_t i = 0; i < runs.size(); ++i) {
      const fs::path res_path = folder / runs[i].run / "results.json";
      const YAML::Node res = YAML::LoadFile(res_path.string());
      const YAML::Node t = res["test"];
      std::string selected = "", hit10 = "";
      std::string sel_json = "null";
      if (const fs::path sp = sel_dir / (runs[i].name + ".json"); fs::exists(sp)) {
        const YAML::Node sn = YAML::LoadFile(sp.string());
        selected = std::to_string(sn["sessions"].size());
        hit10 = io::json_number(sn["llm_hits"]["at10"].as<double>());
        sel_json = io::json_quote(fs::relative(sp, folder).string());
      }
      json += std::string(i ? ",\n" : "") + "{\"name\": " + io::json_quote(runs[i].name) + ", \"run\": " +
              io::json_quote(runs[i].run) + ", \"selection\": " + sel_json + ", \"test\": {";
      const char* ms[] = {"HR@5", "HR@10", "NDCG@5", "NDCG@10"};
      for (size_t k = 0; k < 4; ++k)
        json += std::string(k ? ", " : "") + io::json_quote(ms[k]) + ": " + io::json_number(metric_of(t, ms[k], res_path));
      const double cases = double(test_cases(runs[i].run));
      const long long h5 = std::llround(metric_of(t, "HR@5", res_path) * cases), h10 = std::llround(metric_of(t, "HR@10", res_path) * cases);
      std::string rows_json = "null";
      if (const fs::path rp = stage_dir / "distill" / (runs[i].name + ".rows.json"); fs::exists(rp)) {
        rows_json = read_text(rp);
        while (!rows_json.empty() && rows_json.back() == '\n') rows_json.pop_back();
      }
      json += "}, \"distillation_rows\": " + rows_json;
      json += ", \"test_cases\": " + std::to_string((long long)cases) + ", \"hits@5\": " + std::to_string(h5) +
              ", \"hits@10\": " + std::to_string(h10) + ", \"best_epoch\": " +
              std::to_string(res["best_epoch"].as<long long>()) + "}";
      md << "| " << runs[i].name << " | " << metric_of(t, "HR@5", res_path) << " (" << h5 << ") | " << metric_of(t, "HR@10", res_path) << " (" << h10 << ") | "
         << metric_of(t, "NDCG@5", res_path) << " | " << metric_of(t, "NDCG@10", res_path) << " | " << res["best_epoch"].as<long long>()
         << " | " << selected << " | " << hit10 << " |\n";
    }
    json += "\n]\n}\n";
    io::write_file_atomic((stage_dir / "report.json").string(), json);
    io::write_file_atomic((stage_dir / "report.md").string(), md.str());
    std::cout << "\n" << md.str() << "report: " << (stage_dir / "report.json").string() << "\n";
  }
}

}  // namespace

namespace {
// The alkd run folder, once known, for the message of an interrupted run.
fs::path g_alkd_folder;
int alkd_main(const Args& args);
}  // namespace

// SIGINT/SIGTERM: the training in progress stops after its epoch's checkpoint; --resume FOLDER
// skips the finished stages and continues it.
int cmd_alkd(const Args& args) {
  install_interrupt_handlers();
  try {
    return alkd_main(args);
  } catch (const Interrupted& e) {
    const std::string again = command_again("alkd", args, {"--resume", "-o", "--output"});
    if (g_alkd_folder.empty()) throw;
    throw Interrupted(e.signal, e.epoch, cat(e.what(), "\nresume with: ", again, " --resume ", g_alkd_folder.string()),
                      g_alkd_folder.string());
  }
}

namespace {
int alkd_main(const Args& args) {
  po::options_description opts("recdistill alkd options");
  std::vector<std::string> configs, sets;
  std::string stages_text = "pretrain,predict,oracle,select,distill,report", output, resume;
  PluginArgs plugins;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&configs)->required()->composing(), "YAML config (repeatable: later files override earlier ones)")(
      "set", po::value(&sets)->composing(), "override a key: --set alkd.student_hidden_units=10 (repeatable)")(
      "stages", po::value(&stages_text), "comma-separated stages to run, in order: pretrain, predict, oracle, select, distill, report")(
      "output,o", po::value(&output), "parent of the run folder (default: training.model_dir/experiment_name)")(
      "resume", po::value(&resume), "an alkd run folder: skip its finished stages, resume an interrupted training");
  add_plugin_options(opts, plugins);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill alkd --config FILE.yaml [--stages pretrain,...,report] [--resume FOLDER]\n" << opts;
    return 0;
  }
  po::notify(vm);
  const auto stages = parse_stages(stages_text);
  auto wants = [&](const char* s) { return std::find(stages.begin(), stages.end(), s) != stages.end(); };

  const plugin::Registry registry = open_plugins(plugins);
  // The alkd section, and the keys the loaded plugins' strategies declare (plugins/alkd's are the
  // alkd section's; another plugin's strategy may read keys of its own).
  auto alkd_keys = io::describe<alkd::AlkdConfig>();
  for (const auto& p : registry.plugins())
    for (const auto& c : p.info.strategies) alkd_keys.insert(alkd_keys.end(), c.keys.begin(), c.keys.end());
  const RunConfig rc = load_configs(configs, sets, registry, true, true, alkd_keys);
  const auto ac = io::parse_config<alkd::AlkdConfig>(rc.layers, rc.model_keys, io::checked_by_the_app());
  ac.validate();
  // Each strategy but teacher_only (no selection) comes from a plugin: plugins/alkd's, or
  // another's found with --plugin-dir or RECDISTILL_PLUGIN_PATH.
  for (const auto& s : ac.strategies)
    if (s != "teacher_only" && !registry.strategy_keys(s)) {
      std::string offered;
      for (const auto& p : registry.plugins())
        for (const auto& c : p.info.strategies)
          if (c.name != "replay" && c.name != "teacher_only") offered += cat(", ", c.name);
      fail("alkd.strategies: no loaded plugin offers the strategy '", s, "' (offered: teacher_only", offered,
           "; folders searched:\n", registry.folders_text(),
           "a plugin's folder is added with --plugin-dir DIR)");
    }
  const io::CommonConfig& cfg = rc.common;
  if (cfg.llm.live() && cfg.llm.model.empty())
    fail("llm.model is not set: with llm.base_url ", cfg.llm.base_url, " the oracle asks a chat model, so name it "
         "(the paper's: gpt-4-turbo-2024-04-09)");
  if (cfg.data.format != "sessions")
    fail("data.format: alkd works on session data (data.format: sessions, docs/data.md), found '", cfg.data.format, "'");
  if (cfg.data.split != "session")
    fail("data.split: alkd trains on the shipped split of the sessions (data.split: session), found '", cfg.data.split, "'");
  // The fine-tuning split's training sequences are distillation rows, not the sessions: an
  // evaluation that reads the training sequences would read the wrong ones there.
  if (cfg.eval.exclude == eval::Exclude::seen)
    fail("eval.exclude: alkd evaluates with `window` or `history` (the distillation rows replace the training "
         "sequences that `seen` reads), found 'seen'");
  if (cfg.eval.sampled_negatives > 0 && cfg.eval.sampling == eval::Sampling::popularity)
    fail("eval.sampling: alkd cannot sample negatives by training popularity (the distillation rows replace the "
         "training sequences); use full ranking or uniform sampling");
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
    root["alkd"] = YAML::Load(io::effective_config_text(ac))["alkd"];
    return io::yaml_text(root);
  }();
  fs::path folder;
  if (!resume.empty()) {
    folder = resume;
    const fs::path saved = folder / "alkd_config.yaml";
    if (!fs::exists(saved)) fail(resume, ": not an alkd run folder (no alkd_config.yaml)");
    std::string diffs;
    config_differences(pretrain_part(YAML::Load(read_text(saved))), pretrain_part(YAML::Load(config_text)), "", diffs);
    if (!diffs.empty())
      fail(resume, ": the config differs from the one this folder was made with (", saved.string(), "):", diffs,
           "\nresume with the same config and --set values, or start a new run");
  } else {
    folder = fresh_alkd_dir(cfg, output);
    io::write_file_atomic((folder / "alkd_config.yaml").string(), config_text);
  }
  std::cout << "alkd run folder: " << folder.string() << "\n";
  g_alkd_folder = folder;

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

  throw_if_interrupted("before the predict stage");
  if (wants("predict")) {
    const fs::path out_path = folder / "predictions.jsonl";
    if (fs::exists(out_path)) {
      std::cout << "\npredict: done (" << out_path.string() << ")\n";
    } else {
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
      auto make = [&] {
        return registry.create_model(cfg.model_name, load_configs(configs, s, registry, true, false, alkd_keys).layers);
      };
      std::shared_ptr<plugin::Model> m = make();
      // Q5: ALKDRec's Atten-Mixer ranks with its train-mode forward scores (the model's switch).
      if (ac.attmix_prediction_forward_scores) {
        const YAML::Node mk = YAML::Load(m->resolved_config())["model"];
        if (mk && mk["train_mode_queries"] && mk["variant"] && mk["variant"].as<std::string>() == "alkdrec") {
          s.push_back("model.train_mode_queries=true");
          m = make();
        }
      }
      m->load((fs::path(done_run(r)) / "model.safetensors").string(), prep.data);
      return m;
    };
    auto teacher = model_for(roles[0]), student = model_for(roles[1]);
    const YAML::Node resolved = YAML::Load(teacher->resolved_config());
    if (!resolved["model"] || !resolved["model"]["maxlen"])
      fail(cfg.model_name, ": its resolved config has no model.maxlen (alkd needs a session model)");
    const int L = resolved["model"]["maxlen"].as<int>();
    // Upstream's stored windows lack item 0, its pad id (Q3; the ranks above never exclude it).
    const bool legacy_pad_zero = resolved["model"]["legacy_pad_zero"] && resolved["model"]["legacy_pad_zero"].as<bool>();

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
      for (int32_t it : windows[i])
        if (!(legacy_pad_zero && idx(it) == 0)) rec.window.push_back(idx(it));
      if (rec.window.empty())
        fail("predict: session ", rec.session_id, ": its window holds item 0 alone, which model.legacy_pad_zero drops "
             "from stored windows (as upstream); nothing written");
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
  }
  if (wants("oracle") || wants("select") || wants("distill") || wants("report")) {
    throw_if_interrupted("before the oracle, select, distill and report stages");
    later_stages(folder, cfg, ac, rc.layers, configs, sets, registry, plugins, alkd_keys, wants, role_sets(roles[1]));
  }
  return 0;
}

}  // namespace

}  // namespace recdistill::app
