// recdistill/io/variant_tests.hpp: paired tests of every variant of an experiment against a
// control variant (docs/experiments.md, "Paired tests against a control").
//
// For each variant V != control and each metric m, over the seeds both ran:
//   seeds   a paired t-test over the runs' test means (pairs = seeds, df = seeds - 1);
//   users   each test case's per-user value averaged over those seeds (per_user_test.csv of
//           every run), then a paired t-test and a Wilcoxon signed-rank test over the cases.
// Averaging over seeds first keeps the cases independent of seed noise in the pairing; the
// seed-level test is the one that speaks to "would another seed agree". The number of
// comparisons is (variants - 1) x metrics x 3 tests; the report states it and marks p-values
// below the Bonferroni threshold 0.05 / comparisons.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/csv.hpp"
#include "recdistill/eval/per_case.hpp"
#include "recdistill/eval/stats.hpp"
#include "recdistill/io/report.hpp"

namespace recdistill::io {

struct VariantTestRow {
  std::string variant, metric;
  std::vector<uint64_t> seeds;           // seeds both variants ran
  double control_mean = NAN, mean = NAN;  // mean over those seeds of the runs' test values
  bool seed_test = false;                 // at least 2 seeds
  eval::PairedTTest over_seeds;
  size_t cases = 0;
  eval::PairedTTest over_users;  // on per-case values averaged over the seeds
  eval::WilcoxonTest wilcoxon;
};

struct VariantTests {
  std::string control;
  std::vector<std::string> metrics;
  std::vector<VariantTestRow> rows;
  size_t comparisons = 0;  // (variants - 1) x metrics x 3
  double threshold() const { return comparisons ? 0.05 / double(comparisons) : 0.05; }
};

namespace variant_tests_detail {

// A run's per-user dump: `run_dir` as recorded, or, when the experiment folder moved, the same
// run under `experiment_dir`/runs/<variant>/.
inline std::string per_user_path(const RunRecord& r, const std::filesystem::path& experiment_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::path(r.run_dir) / "per_user_test.csv";
  if (fs::exists(p, ec)) return p.string();
  const fs::path moved = experiment_dir / "runs" / r.variant / fs::path(r.run_dir).filename() / "per_user_test.csv";
  if (!experiment_dir.empty() && fs::exists(moved, ec)) return moved.string();
  fail("run ", r.variant, " seed ", r.seed, ": no per-user test metrics at ", p.string(),
       experiment_dir.empty() ? std::string() : " nor " + moved.string(),
       " (paired tests over users need each run's per_user_test.csv, written by `train`)");
}

struct CaseMeans {
  std::vector<std::string> keys;
  std::vector<double> values;
  std::string protocol, exclude, file;  // how the cases were evaluated, and the first file read
};

// Per-case values of `metric` averaged over `runs` (one variant, the chosen seeds); every run
// must hold the same cases, evaluated the same way.
inline CaseMeans case_means(const std::vector<const RunRecord*>& runs, const std::string& metric,
                            const std::filesystem::path& dir) {
  CaseMeans out;
  std::vector<std::string> keys;
  std::vector<double> sum;
  std::unordered_map<std::string, size_t> index;
  std::string first;
  for (const RunRecord* r : runs) {
    const std::string path = per_user_path(*r, dir);
    const eval::PerCaseColumn c = eval::read_per_case_csv(path, metric);
    if (keys.empty()) {
      first = path;
      out.protocol = c.protocol;
      out.exclude = c.exclude;
      keys = c.keys;
      sum = c.values;
      for (size_t i = 0; i < keys.size(); ++i) index.emplace(keys[i], i);
      continue;
    }
    if (c.protocol != out.protocol || c.exclude != out.exclude)
      fail(path, ": evaluated with protocol '", c.protocol, "', exclude '", c.exclude, "', but ", first, " with '",
           out.protocol, "', '", out.exclude, "'");
    if (c.keys.size() != keys.size())
      fail(path, ": ", c.keys.size(), " test cases, but ", first, " has ", keys.size(),
           " (the runs of one experiment must share data and split)");
    for (size_t i = 0; i < c.keys.size(); ++i) {
      const auto it = index.find(c.keys[i]);
      if (it == index.end()) fail(path, ": a test case that ", first, " lacks (user/target ", c.keys[i], ")");
      sum[it->second] += c.values[i];
    }
  }
  for (double& v : sum) v /= double(runs.size());
  out.keys = std::move(keys);
  out.values = std::move(sum);
  out.file = first;
  return out;
}

// A difference of seed means, rounded to 1e-12: 0.6 - 0.4 and 0.4 - 0.2 are the same
// difference to the Wilcoxon test (its ties and zeros compare exactly), not two.
inline double rounded_difference(double a, double b) { return std::round((a - b) * 1e12) / 1e12; }

inline std::string p_text(double p, double threshold) {
  std::ostringstream o;
  if (p < 1e-4)
    o << std::scientific << std::setprecision(1) << p;
  else
    o << std::fixed << std::setprecision(4) << p;
  if (p < threshold) o << " *";
  return o.str();
}

}  // namespace variant_tests_detail

// The metrics tested unless told otherwise: HR and NDCG at 10 and 20, those the runs have.
inline std::vector<std::string> default_tested_metrics() { return {"HR@10", "HR@20", "NDCG@10", "NDCG@20"}; }

// Tests every variant of `runs` against `control` on `metrics` (e.g. HR@10, NDCG@10, ...;
// empty = the defaults the control's runs report). `experiment_dir` locates moved run folders
// ("" = use run_dir as recorded).
inline VariantTests variant_tests(const std::vector<RunRecord>& runs, const std::string& control,
                                  std::vector<std::string> metrics,
                                  const std::filesystem::path& experiment_dir = {}) {
  using namespace variant_tests_detail;
  VariantTests out;
  out.control = control;
  std::vector<std::string> variants;
  std::map<std::string, std::map<uint64_t, const RunRecord*>> by;
  for (const RunRecord& r : runs) {
    if (!by.count(r.variant)) variants.push_back(r.variant);
    if (!by[r.variant].emplace(r.seed, &r).second)
      fail("variant '", r.variant, "' has two runs with seed ", r.seed, " (expected one run per variant and seed)");
  }
  if (!by.count(control)) {
    std::string known;
    for (const auto& v : variants) known += (known.empty() ? "" : ", ") + v;
    fail("control variant '", control, "' is not in the experiment (its variants: ", known, ")");
  }
  if (metrics.empty()) {
    const RunRecord& first = *by[control].begin()->second;
    for (const auto& m : default_tested_metrics())
      if (first.test.count(m)) metrics.push_back(m);
    if (metrics.empty()) fail("paired tests: the runs report none of HR@10, HR@20, NDCG@10, NDCG@20; name --metrics");
  }
  out.metrics = metrics;
  out.comparisons = (variants.size() - 1) * metrics.size() * 3;
  for (const std::string& v : variants) {
    if (v == control) continue;
    std::vector<uint64_t> seeds;
    for (const auto& [s, r] : by[v])
      if (by[control].count(s)) seeds.push_back(s);
    if (seeds.empty()) fail("variant '", v, "' shares no seed with the control '", control, "'");
    std::vector<const RunRecord*> rv, rc;
    for (uint64_t s : seeds) {
      rv.push_back(by[v][s]);
      rc.push_back(by[control][s]);
    }
    for (const std::string& m : metrics) {
      VariantTestRow row;
      row.variant = v;
      row.metric = m;
      row.seeds = seeds;
      std::vector<double> a, b;
      for (size_t i = 0; i < seeds.size(); ++i) {
        if (!rv[i]->test.count(m) || !rc[i]->test.count(m))
          fail("metric '", m, "' is missing from the test results of seed ", seeds[i], " (variant '", v, "' or '",
               control, "')");
        a.push_back(rv[i]->test.at(m));
        b.push_back(rc[i]->test.at(m));
      }
      row.mean = eval::summarise(a).mean;
      row.control_mean = eval::summarise(b).mean;
      if (seeds.size() >= 2) {
        row.seed_test = true;
        row.over_seeds = eval::paired_t_test(a, b);
      }
      const CaseMeans cv = case_means(rv, m, experiment_dir), cc = case_means(rc, m, experiment_dir);
      if (cv.protocol != cc.protocol || cv.exclude != cc.exclude)
        fail("variant '", v, "' was evaluated with protocol '", cv.protocol, "', exclude '", cv.exclude,
             "' (", cv.file, "), the control '", control, "' with '", cc.protocol, "', '", cc.exclude, "' (",
             cc.file, "): paired tests need the same evaluation");
      const std::vector<std::string>& kv = cv.keys, &kc = cc.keys;
      const std::vector<double>& va = cv.values, &vc = cc.values;
      std::unordered_map<std::string, size_t> ic;
      for (size_t i = 0; i < kc.size(); ++i) ic.emplace(kc[i], i);
      std::vector<double> pa, pb, diff;
      for (size_t i = 0; i < kv.size(); ++i) {
        const auto it = ic.find(kv[i]);
        if (it == ic.end() || kv.size() != kc.size())
          fail("variant '", v, "' and the control '", control, "' were tested on different cases (",
               kv.size(), " and ", kc.size(), "); compare runs on the same data and split");
        pa.push_back(va[i]);
        pb.push_back(vc[it->second]);
        diff.push_back(rounded_difference(va[i], vc[it->second]));
      }
      row.cases = pa.size();
      row.over_users = eval::paired_t_test(pa, pb);
      row.wilcoxon = eval::wilcoxon_signed_rank(diff, std::vector<double>(diff.size(), 0.0));
      out.rows.push_back(std::move(row));
    }
  }
  return out;
}

inline std::string variant_tests_markdown(const VariantTests& t) {
  using variant_tests_detail::p_text;
  std::ostringstream o;
  o << "Paired tests against the control `" << t.control << "`: " << t.comparisons
    << " comparisons (variants x metrics x 3 tests); * marks p < 0.05 / " << t.comparisons << " = "
    << std::setprecision(2) << std::scientific << t.threshold() << std::fixed
    << " (Bonferroni). Seeds: t-test over the runs' test means, paired by seed. Users: per-user "
       "values averaged over the seeds, then a paired t-test and a Wilcoxon signed-rank test.\n\n";
  o << "| variant | metric | seeds | control | variant | diff | rel. | p (seeds, t) | cases | p (users, t) | p (users, Wilcoxon) |\n"
    << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : t.rows) {
    const double diff = r.mean - r.control_mean;
    o << "| " << r.variant << " | " << r.metric << " | " << r.seeds.size() << " | " << std::setprecision(4)
      << r.control_mean << " | " << r.mean << " | " << std::showpos << diff << " | " << std::setprecision(1)
      << (r.control_mean != 0 ? 100.0 * diff / r.control_mean : NAN) << "%" << std::noshowpos << " | "
      << (r.seed_test ? p_text(r.over_seeds.p_value, t.threshold()) : std::string("n/a (1 seed)")) << " | "
      << r.cases << " | " << p_text(r.over_users.p_value, t.threshold()) << " | "
      << p_text(r.wilcoxon.p_value, t.threshold()) << " |\n";
  }
  return o.str();
}

inline std::string variant_tests_csv(const VariantTests& t) {
  std::ostringstream o;
  o << std::setprecision(10);
  o << "control,variant,metric,seeds,control_mean,mean,diff,p_seeds_t,cases,p_users_t,p_users_wilcoxon,comparisons\n";
  for (const auto& r : t.rows) {
    o << t.control << "," << r.variant << "," << r.metric << "," << r.seeds.size() << "," << r.control_mean << ","
      << r.mean << "," << r.mean - r.control_mean << ",";
    if (r.seed_test) o << r.over_seeds.p_value;
    o << "," << r.cases << "," << r.over_users.p_value << "," << r.wilcoxon.p_value << "," << t.comparisons << "\n";
  }
  return o.str();
}

// The runs of an experiment folder's runs.csv (variant, seed, test_<metric> columns, run_dir):
// what `variant_tests` needs, for testing a finished experiment again.
inline std::vector<RunRecord> read_runs_csv(const std::string& path) {
  namespace dd = data::detail;
  const std::string text = dd::read_whole_file(path);
  dd::CsvReader r(text, path);
  const auto names = dd::csv_header(r, path, {"variant", "seed", "run_dir"});
  const int cv = dd::csv_column(names, "variant"), cs = dd::csv_column(names, "seed"),
            cd = dd::csv_column(names, "run_dir");
  std::vector<RunRecord> runs;
  std::vector<std::string_view> f;
  while (r.next(f)) {
    dd::check_field_count(r, path, names.size(), f.size(), f[0]);
    RunRecord rec;
    rec.variant = std::string(f[size_t(cv)]);
    const std::string seed(f[size_t(cs)]);
    if (seed.empty() || seed.size() > 19 || seed.find_first_not_of("0123456789") != std::string::npos)
      fail(path, ":", r.lineno(), ": column 'seed': expected a non-negative integer, found ",
           dd::printable(f[size_t(cs)]));
    rec.seed = std::stoull(seed);
    rec.run_dir = std::string(f[size_t(cd)]);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i].rfind("test_", 0) != 0 || f[i].empty()) continue;
      double v = 0;
      if (!dd::parse_number(f[i], v))
        fail(path, ":", r.lineno(), ": column '", names[i], "': expected a number, found ", dd::printable(f[i]));
      rec.test[names[i].substr(5)] = v;
    }
    runs.push_back(std::move(rec));
  }
  if (runs.empty()) fail(path, ": no runs (expected one row per run after the header)");
  return runs;
}

// Runs the tests and writes `dir`/tests.md and `dir`/tests.csv (atomically); returns the table.
inline std::string write_variant_tests(const std::filesystem::path& dir, const std::vector<RunRecord>& runs,
                                       const std::string& control, const std::vector<std::string>& metrics) {
  const VariantTests t = variant_tests(runs, control, metrics, dir);
  const std::string md = variant_tests_markdown(t);
  write_file_atomic((dir / "tests.md").string(), md);
  write_file_atomic((dir / "tests.csv").string(), variant_tests_csv(t));
  return md;
}

}  // namespace recdistill::io
