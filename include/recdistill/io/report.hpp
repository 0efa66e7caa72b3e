// recdistill/io/report.hpp: the results of several runs (variants x seeds) as files people
// look at: a Markdown table and a CSV of mean ± sample std per variant and metric, a CSV with
// one row per run, and PNG plots drawn by gnuplot (training curves: loss and validation metric
// per epoch, one line per run; variant comparison: mean test metrics with std error bars).
//
// Every file is written whole or not at all (write_file_atomic; plots are drawn into a
// temporary file and renamed). Without gnuplot the tables are still written and
// ReportFiles::plot_message says the plots were skipped and why.
//
// sample std: s = sqrt(sum_i (x_i - mean)^2 / (n - 1)); undefined (blank) for n = 1.
#pragma once
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/eval/stats.hpp"
#include "recdistill/io/atomic_file.hpp"

extern char** environ;

namespace recdistill::io {

// One epoch of a run's training curve; `valid` is NaN where the epoch was not evaluated.
struct CurvePoint {
  int epoch = 0;
  double loss = NAN;
  double valid = NAN;
};

// One finished run of an experiment.
struct RunRecord {
  std::string variant;  // label, e.g. "base"
  uint64_t seed = 0;
  std::map<std::string, double> test, valid;  // test metrics; best validation metrics
  std::vector<CurvePoint> curve;
  int best_epoch = 0, epochs_run = 0;
  double train_seconds = NAN;
  std::string run_dir;
};

struct ReportOptions {
  std::string title = "experiment";
  std::string curve_metric = "NDCG@10";  // the validation metric in RunRecord::curve
  std::string gnuplot = "gnuplot";       // program name (searched on PATH) or path; "" = no plots
  std::string tested_weights = "the best validation epoch";  // which weights the test tables report
  int digits = 4;
  // Metric families (the name before '@') in the variant chart and ReportFiles::table; the
  // files have every metric. Empty = all. Precision@K and Recall@K repeat HR@K under
  // leave-one-out, so they are left out of the short views by default.
  std::vector<std::string> families = {"HR", "NDCG", "MRR"};
};

struct ReportFiles {
  std::filesystem::path markdown, csv, runs_csv;
  std::vector<std::filesystem::path> plots;  // written PNGs (empty when skipped)
  std::string plot_message;                  // why plots were skipped, or "" when drawn
  std::string table;                         // test table of ReportOptions::families (to print)
};

struct SummaryStat {
  int n = 0;
  double mean = NAN, std = NAN;  // std: sample std, NaN for n < 2
};

// eval::summarise for tables: mean and sample std, with std (and for n = 0 the mean) shown as
// NaN ("n/a") where it is undefined rather than as 0.
inline SummaryStat summarize(const std::vector<double>& xs) {
  const eval::Summary e = eval::summarise(xs);
  SummaryStat s;
  s.n = int(e.n);
  if (e.n >= 1) s.mean = e.mean;
  if (e.n >= 2) s.std = e.std;
  return s;
}

namespace report_detail {

// Table order: HR, NDCG, MRR, then other families alphabetically; K ascending within a family
// ("HR@5" before "HR@10", which plain string order would swap).
inline bool metric_less(const std::string& a, const std::string& b) {
  auto split = [](const std::string& m) {
    const auto at = m.find('@');
    const std::string fam = m.substr(0, at);
    long k = -1;
    if (at != std::string::npos) {
      char* end = nullptr;
      k = std::strtol(m.c_str() + at + 1, &end, 10);
    }
    const int rank = fam == "HR" ? 0 : fam == "NDCG" ? 1 : fam == "MRR" ? 2 : 3;
    return std::tuple(rank, fam, k, m);
  };
  return split(a) < split(b);
}

inline std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

inline std::string full(double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// CSV field: quoted when it holds a comma, quote or newline.
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// gnuplot single-quoted string: a quote is written twice.
inline std::string gp_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) {
    if (c == '\n' || c == '\r') continue;
    o += c == '\'' ? std::string("''") : std::string(1, c);
  }
  return o + "'";
}

inline std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '|' ? std::string("\\|") : std::string(1, c);
  return o;
}

}  // namespace report_detail

// Variant labels in order of first appearance.
inline std::vector<std::string> variants_of(const std::vector<RunRecord>& runs) {
  std::vector<std::string> v;
  for (const auto& r : runs)
    if (std::find(v.begin(), v.end(), r.variant) == v.end()) v.push_back(r.variant);
  return v;
}

// Every metric name found in the runs' `test` (or `valid`) maps, in table order; only those of
// `families` ("HR" for HR@5, HR@10, ...) unless it is empty.
inline std::vector<std::string> metrics_of(const std::vector<RunRecord>& runs, bool valid = false,
                                           const std::vector<std::string>& families = {}) {
  std::vector<std::string> m;
  for (const auto& r : runs)
    for (const auto& [k, v] : valid ? r.valid : r.test)
      if (std::find(m.begin(), m.end(), k) == m.end() &&
          (families.empty() ||
           std::find(families.begin(), families.end(), k.substr(0, k.find('@'))) != families.end()))
        m.push_back(k);
  std::sort(m.begin(), m.end(), report_detail::metric_less);
  return m;
}

// Statistic of one metric over the runs of one variant (runs lacking the metric are left out).
inline SummaryStat variant_stat(const std::vector<RunRecord>& runs, const std::string& variant,
                                const std::string& metric, bool valid = false) {
  std::vector<double> xs;
  for (const auto& r : runs) {
    if (r.variant != variant) continue;
    const auto& m = valid ? r.valid : r.test;
    const auto it = m.find(metric);
    if (it != m.end() && std::isfinite(it->second)) xs.push_back(it->second);
  }
  return summarize(xs);
}

namespace report_detail {

// Markdown with padded columns (reads well on a terminal too); the first `left` columns are
// left-aligned text, the others right-aligned numbers. rows[0] is the header.
inline std::string render_markdown(const std::vector<std::vector<std::string>>& rows, size_t left) {
  // Display width: "±" is two bytes in UTF-8 but one column.
  auto width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> w(rows.at(0).size(), 3);
  for (const auto& row : rows)
    for (size_t j = 0; j < row.size(); ++j) w[j] = std::max(w[j], width(row[j]));
  std::string out;
  for (size_t i = 0; i < rows.size(); ++i) {
    out += "|";
    for (size_t j = 0; j < rows[i].size(); ++j) {
      const std::string pad(w[j] - width(rows[i][j]), ' ');
      out += " " + (j < left ? rows[i][j] + pad : pad + rows[i][j]) + " |";
    }
    out += "\n";
    if (i == 0) {
      out += "|";
      for (size_t j = 0; j < w.size(); ++j)
        out += (j < left ? " " + std::string(w[j], '-') + " |" : " " + std::string(w[j] - 1, '-') + ": |");
      out += "\n";
    }
  }
  return out;
}

// "mean ± std", "mean" alone when std is undefined, "(n=k)" when some runs lack the metric.
inline std::string stat_cell(const SummaryStat& s, int runs_of_variant, int digits) {
  std::string cell = fixed(s.mean, digits);
  if (std::isfinite(s.std)) cell += " ± " + fixed(s.std, digits);
  if (s.n != runs_of_variant && s.n > 0) cell += " (n=" + std::to_string(s.n) + ")";
  return cell;
}

inline int runs_of(const std::vector<RunRecord>& runs, const std::string& variant, std::string* seeds = nullptr) {
  int n = 0;
  for (const auto& r : runs)
    if (r.variant == variant) {
      if (seeds) *seeds += (seeds->empty() ? "" : ",") + std::to_string(r.seed);
      ++n;
    }
  return n;
}

}  // namespace report_detail

// One row per variant, one column per metric:
// | variant | n | seeds | HR@5 | ... |   cells "mean ± std" ("mean" alone when n = 1).
inline std::string markdown_table(const std::vector<RunRecord>& runs, bool valid, int digits = 4,
                                  const std::vector<std::string>& families = {}) {
  using namespace report_detail;
  const auto metrics = metrics_of(runs, valid, families);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"variant", "n", "seeds"};
  for (const auto& m : metrics) head.push_back(m);
  rows.push_back(head);
  for (const auto& v : variants_of(runs)) {
    std::string seeds;
    const int n = runs_of(runs, v, &seeds);
    std::vector<std::string> row = {md_cell(v), std::to_string(n), seeds};
    for (const auto& m : metrics) row.push_back(stat_cell(variant_stat(runs, v, m, valid), n, digits));
    rows.push_back(row);
  }
  return render_markdown(rows, 3);
}

// The same numbers, narrow enough for an 80-column terminal: one row per variant and metric
// family, one column per cut-off K:
// | variant | n | metric | @5 | @10 | @20 |
inline std::string markdown_table_by_k(const std::vector<RunRecord>& runs, bool valid, int digits = 4,
                                       const std::vector<std::string>& families = {}) {
  using namespace report_detail;
  const auto metrics = metrics_of(runs, valid, families);
  std::vector<std::string> fams, ks;  // in table order
  for (const auto& m : metrics) {
    const auto at = m.find('@');
    const std::string f = m.substr(0, at), k = at == std::string::npos ? "" : m.substr(at);
    if (std::find(fams.begin(), fams.end(), f) == fams.end()) fams.push_back(f);
    if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
  }
  std::sort(ks.begin(), ks.end(), [](const std::string& a, const std::string& b) {
    return metric_less("X" + a, "X" + b);
  });
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"variant", "n", "metric"};
  for (const auto& k : ks) head.push_back(k);
  rows.push_back(head);
  for (const auto& v : variants_of(runs)) {
    const int n = runs_of(runs, v);
    for (const auto& f : fams) {
      std::vector<std::string> row = {md_cell(v), std::to_string(n), f};
      for (const auto& k : ks) {
        const std::string m = f + k;
        row.push_back(std::find(metrics.begin(), metrics.end(), m) == metrics.end()
                          ? ""
                          : stat_cell(variant_stat(runs, v, m, valid), n, digits));
      }
      rows.push_back(row);
    }
  }
  return render_markdown(rows, 3);
}

// Long format, one row per (variant, split, metric): variant,split,metric,n,mean,std.
inline std::string summary_csv(const std::vector<RunRecord>& runs) {
  using namespace report_detail;
  std::string out = "variant,split,metric,n,mean,std\n";
  for (const auto& v : variants_of(runs))
    for (bool valid : {false, true})
      for (const auto& m : metrics_of(runs, valid)) {
        const auto s = variant_stat(runs, v, m, valid);
        out += csv_field(v) + "," + (valid ? "valid" : "test") + "," + csv_field(m) + "," +
               std::to_string(s.n) + "," + full(s.mean) + "," + full(s.std) + "\n";
      }
  return out;
}

// One row per run: variant,seed,best_epoch,epochs_run,train_seconds,test_<m>...,valid_<m>...,run_dir
inline std::string runs_csv(const std::vector<RunRecord>& runs) {
  using namespace report_detail;
  const auto tm = metrics_of(runs, false), vm = metrics_of(runs, true);
  std::string out = "variant,seed,best_epoch,epochs_run,train_seconds";
  // Appending piece by piece (not "," + string) also keeps GCC 12's -Wrestrict quiet.
  auto field = [&out](const std::string& s) {
    out += ',';
    out += s;
  };
  for (const auto& m : tm) field(csv_field("test_" + m));
  for (const auto& m : vm) field(csv_field("valid_" + m));
  out += ",run_dir\n";
  for (const auto& r : runs) {
    out += csv_field(r.variant);
    field(std::to_string(r.seed));
    field(std::to_string(r.best_epoch));
    field(std::to_string(r.epochs_run));
    field(full(r.train_seconds));
    for (const auto& m : tm) field(r.test.count(m) ? full(r.test.at(m)) : std::string());
    for (const auto& m : vm) field(r.valid.count(m) ? full(r.valid.at(m)) : std::string());
    field(csv_field(r.run_dir));
    out += '\n';
  }
  return out;
}

// gnuplot script: two panels, training loss and validation metric per epoch, one line per
// run (colour = variant and dash pattern = seed; colour = seed when there is one variant).
inline std::string curves_script(const std::vector<RunRecord>& runs, const std::string& png,
                                 const ReportOptions& opt) {
  using namespace report_detail;
  const auto variants = variants_of(runs);
  std::ostringstream gp;
  gp << "set encoding utf8\nset terminal pngcairo size 1400,520 noenhanced font ',10'\n"
     << "set output " << gp_quote(png) << "\n";
  std::map<std::string, int> seed_index;
  for (size_t i = 0; i < runs.size(); ++i) {
    gp << "$loss" << i << " << EOD\n";
    for (const auto& p : runs[i].curve)
      if (std::isfinite(p.loss)) gp << p.epoch << " " << full(p.loss) << "\n";
    gp << "EOD\n$valid" << i << " << EOD\n";
    for (const auto& p : runs[i].curve)
      if (std::isfinite(p.valid)) gp << p.epoch << " " << full(p.valid) << "\n";
    gp << "EOD\n";
  }
  auto clauses = [&](const char* block) {
    std::string s;
    std::map<std::string, int> seen_per_variant;
    for (size_t i = 0; i < runs.size(); ++i) {
      // One variant: a colour per seed; several: a colour per variant, a dash pattern per seed.
      const int vi = int(std::find(variants.begin(), variants.end(), runs[i].variant) - variants.begin());
      const int lc = variants.size() > 1 ? vi + 1 : int(i) + 1;
      const int dt = variants.size() > 1 ? ++seen_per_variant[runs[i].variant] : 1;
      s += (i ? ", " : "") + std::string("$") + block + std::to_string(i) +
           " using 1:2 with linespoints lw 1.5 pt 7 ps 0.5 lc " + std::to_string(lc) + " dt " +
           std::to_string(dt) + " title " + gp_quote(runs[i].variant + " seed " + std::to_string(runs[i].seed));
    }
    return s;
  };
  int last_epoch = 0;
  for (const auto& r : runs)
    for (const auto& p : r.curve) last_epoch = std::max(last_epoch, p.epoch);
  if (last_epoch <= 20) gp << "set xtics 1\n";  // whole epochs, not 1.2, 1.4, ...
  gp << "set multiplot layout 1,2 title " << gp_quote(opt.title + ": training curves") << "\n"
     << "set grid\nset key outside right top\nset xlabel 'epoch'\n"
     << "set title 'training loss'\nset ylabel 'loss'\nplot " << clauses("loss") << "\n"
     << "set title " << gp_quote("validation " + opt.curve_metric) << "\nset ylabel "
     << gp_quote(opt.curve_metric) << "\nplot " << clauses("valid") << "\n"
     << "unset multiplot\nset output\n";
  return gp.str();
}

// gnuplot script: clustered bars of mean test metrics per variant with sample-std error bars.
inline std::string variants_script(const std::vector<RunRecord>& runs, const std::string& png,
                                   const ReportOptions& opt) {
  using namespace report_detail;
  const auto variants = variants_of(runs);
  const auto metrics = metrics_of(runs, false, opt.families);
  std::ostringstream gp;
  gp << "set encoding utf8\nset terminal pngcairo size 1200,560 noenhanced font ',10'\n"
     << "set output " << gp_quote(png) << "\n"
     << "set title " << gp_quote(opt.title + ": test metrics per variant (mean ± sample std over seeds)") << "\n"
     << "set style data histograms\nset style histogram errorbars gap 2 lw 1\n"
     << "set style fill solid 0.7 border -1\nset boxwidth 0.9\nset grid ytics\n"
     << "set yrange [0:*]\nset key outside right top\nset ylabel 'value'\n";
  gp << "$d << EOD\n";
  for (const auto& m : metrics) {
    gp << m;  // metric names have no spaces (HR@10)
    for (const auto& v : variants) {
      const auto s = variant_stat(runs, v, m, false);
      gp << " " << (std::isfinite(s.mean) ? full(s.mean) : "0") << " " << (std::isfinite(s.std) ? full(s.std) : "0");
    }
    gp << "\n";
  }
  gp << "EOD\nset xrange [-0.6:" << double(metrics.size()) - 0.4 << "]\nplot ";
  for (size_t j = 0; j < variants.size(); ++j) {
    int n = 0;
    for (const auto& r : runs) n += r.variant == variants[j];
    gp << (j ? ", " : "") << "$d using " << 2 + 2 * j << ":" << 3 + 2 * j
       << (j == 0 ? ":xtic(1)" : "") << " title " << gp_quote(variants[j] + " (n=" + std::to_string(n) + ")");
  }
  gp << "\nset output\n";
  return gp.str();
}

// The program's path: `name` itself when it contains '/', else the first executable on PATH;
// "" when there is none.
inline std::string find_program(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) dir = ".";
    const std::string p = dir + "/" + name;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Runs `gnuplot script` (no shell), its stdout and stderr into `log`. Returns "" on success,
// else a one-line reason.
inline std::string run_gnuplot(const std::string& program, const std::string& script, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv = {const_cast<char*>(program.c_str()), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return cat("cannot start ", program, ": ", std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return cat("waitpid on ", program, " failed: ", std::strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  std::ifstream in(log);
  std::string first, line;
  while (std::getline(in, line))
    if (!line.empty() && first.size() < 300) first += (first.empty() ? "" : " / ") + line;
  return cat(program, " failed (", WIFEXITED(status) ? "exit status " : "signal ",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), ")", first.empty() ? "" : ": ", first);
}

// Writes into `dir` (created if needed): summary.md, summary.csv, runs.csv, and, when gnuplot
// is found, curves.png and variants.png with their scripts (curves.gp, variants.gp) kept next
// to them for restyling. Existing files of those names are replaced atomically.
inline ReportFiles write_report(const std::filesystem::path& dir, const std::vector<RunRecord>& runs,
                                const ReportOptions& opt = {}) {
  namespace fs = std::filesystem;
  RD_REQUIRE(!runs.empty(), "write_report needs at least one run");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir.string(), ": cannot create report folder: ", ec.message());
  ReportFiles f;
  f.markdown = dir / "summary.md";
  f.csv = dir / "summary.csv";
  f.runs_csv = dir / "runs.csv";

  std::string seeds;
  std::set<uint64_t> listed;
  for (const auto& r : runs)
    if (listed.insert(r.seed).second) seeds += (seeds.empty() ? "" : ", ") + std::to_string(r.seed);
  const std::string head = "test metrics (weights of " + opt.tested_weights + "), mean ± sample std over seeds:\n\n";
  f.table = head + markdown_table_by_k(runs, false, opt.digits, opt.families);
  write_file_atomic(f.markdown.string(),
                    "# " + opt.title + "\n\n" + std::to_string(runs.size()) + " runs; seeds " + seeds + ".\n\n" +
                        head + markdown_table(runs, false, opt.digits) +
                        "\nvalidation metrics of the tested weights, mean ± sample std over seeds:\n\n" +
                        markdown_table(runs, true, opt.digits));
  write_file_atomic(f.csv.string(), summary_csv(runs));
  write_file_atomic(f.runs_csv.string(), runs_csv(runs));

  const std::string gnuplot = find_program(opt.gnuplot);
  if (gnuplot.empty()) {
    f.plot_message = opt.gnuplot.empty()
                         ? "plots skipped (turned off)"
                         : "plots skipped: '" + opt.gnuplot +
                               "' not found (install gnuplot-nox, e.g. with tools/install_deps.sh); "
                               "the tables were written";
    return f;
  }
  const std::string tag = ".tmp." + std::to_string(::getpid());
  for (const char* name : {"curves", "variants"}) {
    const fs::path png = fs::absolute(dir / (std::string(name) + ".png"));
    const fs::path gp = dir / (std::string(name) + ".gp");
    const std::string tmp_png = png.string() + tag;
    // The kept script draws to the final name; the one run here draws to the temporary.
    const std::string script = name == std::string("curves") ? curves_script(runs, tmp_png, opt)
                                                             : variants_script(runs, tmp_png, opt);
    const std::string kept = name == std::string("curves") ? curves_script(runs, png.string(), opt)
                                                           : variants_script(runs, png.string(), opt);
    const std::string tmp_gp = gp.string() + tag;
    write_file_atomic(tmp_gp, script);
    const std::string log = (dir / (std::string(name) + ".gnuplot.log")).string() + tag;
    const std::string why = run_gnuplot(gnuplot, tmp_gp, log);
    ::unlink(tmp_gp.c_str());
    ::unlink(log.c_str());
    if (!why.empty() || !fs::exists(tmp_png)) {
      ::unlink(tmp_png.c_str());
      f.plot_message = "plots skipped: " + (why.empty() ? "gnuplot wrote no " + png.filename().string() : why) +
                       "; the tables were written";
      break;
    }
    if (std::rename(tmp_png.c_str(), png.c_str()) != 0) {
      const int e = errno;
      ::unlink(tmp_png.c_str());
      fail(png.string(), ": rename from ", tmp_png, " failed: ", std::strerror(e));
    }
    write_file_atomic(gp.string(), kept);
    f.plots.push_back(png);
  }
  return f;
}

}  // namespace recdistill::io
