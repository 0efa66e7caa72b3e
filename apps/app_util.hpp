// apps/app_util.hpp: small helpers shared by the recdistill subcommands.
#pragma once
#include <boost/program_options.hpp>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "recdistill/data/profiles.hpp"
#include "recdistill/data/split.hpp"
#include "recdistill/eval/per_case.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/plugin/interface.hpp"

namespace recdistill::app {
namespace fs = std::filesystem;

// JSON text for results files, on the log writer's rules (io/log.hpp): NaN/Inf become null,
// control characters are escaped.
inline std::string json_metrics(const eval::Metrics& m) {
  std::string o = "{";
  for (const auto& [k, v] : m) o += (o.size() > 1 ? ", " : "") + io::json_quote(k) + ": " + io::json_number(v);
  return o + "}";
}

inline std::string json_str(const std::string& s) { return io::json_quote(s); }

inline fs::path fresh_run_dir(const io::CommonConfig& c, const std::string& output) {
  fs::path base = output.empty() ? fs::path(c.model_dir) / c.experiment_name : fs::path(output);
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  const std::string name = std::string("run-") + stamp + "-seed" + std::to_string(c.seed);
  fs::create_directories(base);
  for (int i = 0;; ++i) {
    fs::path p = base / (i == 0 ? name : name + "." + std::to_string(i));
    std::error_code ec;
    if (fs::create_directory(p, ec)) return p;
    if (ec) fail(p.string(), ": cannot create run folder: ", ec.message());
  }
}

// `suffix`: eval::metric_suffix of the run (non-empty for sampled evaluation).
inline void print_table(const eval::Metrics& m, const std::vector<int>& ks, std::ostream& os,
                        const std::string& suffix = "") {
  os << std::left << std::setw(10) << "metric";
  for (int k : ks) os << std::right << std::setw(10) << ("@" + std::to_string(k));
  os << "\n";
  for (const char* name : {"HR", "Recall", "NDCG", "MRR", "Precision"}) {
    const std::string first = std::string(name) + "@" + std::to_string(ks.front()) + suffix;
    if (!m.count(first)) continue;  // older result files have fewer metric families
    os << std::left << std::setw(10) << name;
    for (int k : ks)
      os << std::right << std::setw(10) << std::fixed << std::setprecision(4)
         << m.at(std::string(name) + "@" + std::to_string(k) + suffix);
    os << "\n";
  }
  os << std::defaultfloat << std::setprecision(6);
}

// Loads and validates the profile files of data.user_profile_embeddings_files against the
// dataset's users (dimension, finite values, duplicates, unknown and missing users; errors
// name the file and place) and prints what was found: the share of the split's training users
// with a profile, the kind of profile each file's sidecar records (spec §16), and whether the
// model uses them (the distilling models, SASRecLLM and BERT4RecLLM, load them again in their
// plugin).
inline void check_profiles(const io::CommonConfig& cfg, const data::Dataset& d, const data::Split& split,
                           std::ostream& out) {
  const auto& files = cfg.data.user_profile_embeddings_files;
  if (files.empty()) return;
  data::ProfileOptions po = data::profile_options(cfg.data.profile_unknown_users, cfg.data.on_nonfinite,
                                                  cfg.data.profile_key_normalize);
  po.log = &out;
  po.training_users.assign(size_t(d.users.size()), 0);
  for (size_t u = 1; u < split.train.size() && u < po.training_users.size(); ++u)
    po.training_users[u] = !split.train[u].empty();
  const data::ProfileTable t = data::load_profiles(files, d.users, po);
  const auto& s = t.summary;
  out << "profiles: " << files.size() << " file(s), D = " << t.dim << ": " << s.users_with_profile << " of "
      << s.dataset_users << " users have a profile (" << s.users_without_profile << " without, "
      << s.users_partial << " partial), " << s.unknown_keys << " ids not in the dataset"
      << (s.normalized_keys ? cat(", ", s.normalized_keys, " read as integers (data.profile_key_normalize)") : "")
      << "; "
      << (cfg.model_name.ends_with("LLM") ? cat("distilled by ", cfg.model_name)
                                          : cat("checked only: ", cfg.model_name,
                                                " does not use them (SASRecLLM and BERT4RecLLM distil profiles)"))
      << "\n";
  const int32_t with = s.training_users - s.training_users_without_profile;
  out << "profiles: " << with << " of " << s.training_users << " training users have one (" << std::fixed
      << std::setprecision(1) << (s.training_users ? 100.0 * double(with) / s.training_users : 0.0) << "%)\n"
      << std::defaultfloat << std::setprecision(6);
  for (const auto& f : files) {
    const std::string meta = data::profile_meta_path(f);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(meta, ec)) {
      out << "profiles: " << f << ": no sidecar " << meta
          << ", so the kind of profile (llm or metadata) is not recorded\n";
      continue;
    }
    std::string why, kind;
    try {
      kind = data::profile_kind_from_json(data::detail::read_text_file(meta, "the sidecar"), why);
    } catch (const Error& e) {
      why = e.what();
    }
    if (kind.empty())
      out << "warning: " << meta << ": " << why << ", so the kind of profile is unknown\n";
    else
      out << "profiles: " << f << ": profile_kind " << data::detail::profile_token(kind)
          << (kind == "metadata" ? " (text summaries of the training history, not LLM profiles; spec §16)" : "")
          << " (" << meta << ")\n";
  }
}

// --plugin-dir and --no-default-plugins, the same for every command that loads plugins.
inline void add_plugin_options(boost::program_options::options_description& opts, PluginArgs& pa) {
  namespace po = boost::program_options;
  opts.add_options()("plugin-dir", po::value(&pa.dirs)->composing(), "also look for plugins here (repeatable)")(
      "no-default-plugins", po::bool_switch(&pa.no_default), "search only --plugin-dir and RECDISTILL_PLUGIN_PATH");
}

// The cases of `all` that can be ranked (a target and a non-empty history) and their ranks.
struct RankedCases {
  std::vector<data::SplitCase> cases;
  std::vector<int64_t> ranks;
};

inline RankedCases rank_split_cases(plugin::Model& model, const data::Split& split,
                                    const std::vector<data::SplitCase>& all) {
  RankedCases r;
  for (const auto& c : all)
    if (c.target != 0 && !c.history.empty()) r.cases.push_back(c);
  r.ranks = model.rank(split, r.cases);
  if (r.ranks.size() != r.cases.size())
    fail("model ", model.name(), " returned ", r.ranks.size(), " ranks for ", r.cases.size(), " cases");
  return r;
}

// Per-user ranks and metrics as CSV or JSON lines (by the file name; eval/per_case.hpp), with
// raw user and item ids; the input of `recdistill compare`.
inline void write_per_user(const std::string& path, const RankedCases& r, const io::CommonConfig& cfg,
                           const data::Dataset& d) {
  std::vector<eval::Case> cases;
  cases.reserve(r.cases.size());
  for (const auto& c : r.cases) cases.push_back({c.history.data(), c.history.size(), c.target, c.user});
  eval::write_per_case(path, cases, r.ranks, cfg.eval, &d.users, &d.items);
}

// `recdistill COMMAND ARGS...` as a shell would read it back, without the options named in `drop`
// (and their values, as "--x v" or "--x=v"): the command an interrupted run prints to resume.
inline std::string command_again(const std::string& command, const std::vector<std::string>& args,
                                 const std::vector<std::string>& drop) {
  auto quoted = [](const std::string& a) {
    if (!a.empty() && a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") ==
                          std::string::npos)
      return a;
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string out = "recdistill " + command;
  for (size_t i = 0; i < args.size(); ++i) {
    bool skip = false;
    for (const auto& d : drop) {
      if (args[i] == d || args[i].rfind(d + "=", 0) == 0) {
        if (args[i] == d) ++i;  // and its value
        skip = true;
        break;
      }
    }
    if (!skip) out += " " + quoted(args[i]);
  }
  return out;
}

}  // namespace recdistill::app
