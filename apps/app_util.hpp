// apps/app_util.hpp: small helpers shared by the recdistill subcommands.
#pragma once
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config.hpp"

namespace recdistill::app {
namespace fs = std::filesystem;

inline std::string json_metrics(const eval::Metrics& m) {
  std::ostringstream os;
  os << std::setprecision(10) << "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    os << (first ? "" : ", ") << "\"" << k << "\": " << v;
    first = false;
  }
  os << "}";
  return os.str();
}

inline std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 32) { o += ' '; continue; }
    o += c;
  }
  return o + "\"";
}

inline fs::path fresh_run_dir(const io::ExperimentConfig& c, const std::string& output) {
  fs::path base = output.empty() ? fs::path(c.training.model_dir) / c.experiment_name : fs::path(output);
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

}  // namespace recdistill::app
