// recdistill compare: a paired comparison of two runs over the same test cases, or of every
// variant of an experiment against its control.
//
//   recdistill compare RUN_A RUN_B [--metric NDCG@10]
//   recdistill compare --experiment DIR --control LABEL [--metrics HR@10,NDCG@10,...]
//
// RUN_A and RUN_B are run folders of `train` (their per_user_test.csv) or per-user CSV files
// written by `evaluate --per-user`. Cases are paired by (user, target); both files must hold
// the same cases, evaluated with the same protocol and exclusions. Prints the two means, the
// mean difference, a paired t-test and a Wilcoxon signed-rank test (eval/stats.hpp,
// docs/metrics.md). With --experiment, the tests of io/variant_tests.hpp over an experiment
// folder's runs.csv and its runs' per-user dumps, written to DIR/tests.md and DIR/tests.csv
// (docs/experiments.md).
#include <boost/program_options.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <unordered_map>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/eval/per_case.hpp"
#include "recdistill/eval/stats.hpp"
#include "recdistill/io/variant_tests.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

namespace {

std::string per_user_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path f = fs::path(path) / "per_user_test.csv";
    if (!fs::exists(f, ec)) fail(path, ": a run folder without per_user_test.csv (made by `recdistill train`)");
    return f.string();
  }
  return path;
}

// "HR@10,NDCG@10" -> {HR@10, NDCG@10}
std::vector<std::string> split_metrics(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string m;
  while (std::getline(ss, m, ','))
    if (!m.empty()) out.push_back(m);
  if (out.empty()) fail("--metrics: expected comma-separated metric names such as HR@10,NDCG@10, found '", text, "'");
  return out;
}

}  // namespace

std::vector<std::string> tested_metrics_option(const std::string& text) {
  return text.empty() ? std::vector<std::string>{} : split_metrics(text);
}

int cmd_compare(const Args& args) {
  po::options_description opts("recdistill compare options");
  std::string a_path, b_path, metric = "NDCG@10", experiment, control, metrics;
  opts.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment), "an experiment folder: test every variant against --control")(
      "control", po::value(&control), "with --experiment: the control variant's label (e.g. base)")(
      "metrics", po::value(&metrics), "with --experiment: comma-separated metrics (default: HR@10,HR@20,NDCG@10,NDCG@20, those the runs have)")(
      "metric", po::value(&metric), "per-user metric to compare (a column of the dumps, e.g. HR@10)")(
      "a", po::value(&a_path), "run folder or per-user CSV of run A")(
      "b", po::value(&b_path), "run folder or per-user CSV of run B");
  po::positional_options_description pos;
  pos.add("a", 1).add("b", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill compare RUN_A RUN_B [--metric NDCG@10]\n"
                 "       recdistill compare --experiment DIR --control LABEL [--metrics HR@10,NDCG@10,...]\n"
              << opts;
    return 0;
  }
  po::notify(vm);
  if (!experiment.empty()) {
    if (control.empty()) fail("--experiment needs --control LABEL (the variant the others are tested against)");
    if (!a_path.empty()) fail("give either --experiment DIR or two runs, not both");
    const fs::path dir(experiment);
    const auto runs = io::read_runs_csv((dir / "runs.csv").string());
    std::cout << io::write_variant_tests(dir, runs, control, tested_metrics_option(metrics)) << "\nwritten: "
              << (dir / "tests.md").string() << ", " << (dir / "tests.csv").string() << "\n";
    return 0;
  }
  if (a_path.empty() || b_path.empty()) fail("expected two runs to compare (RUN_A RUN_B), or --experiment DIR --control LABEL");
  const std::string fa = per_user_file(a_path), fb = per_user_file(b_path);
  const eval::PerCaseColumn a = eval::read_per_case_csv(fa, metric), b = eval::read_per_case_csv(fb, metric);
  if (a.protocol != b.protocol || a.exclude != b.exclude)
    fail("the runs were evaluated differently: ", fa, " has protocol '", a.protocol, "', exclude '", a.exclude,
         "'; ", fb, " has '", b.protocol, "', '", b.exclude, "'");
  // Pair by (user, target): every case of A must be in B and the other way round.
  std::unordered_map<std::string, size_t> index_b;
  for (size_t i = 0; i < b.keys.size(); ++i) index_b.emplace(b.keys[i], i);
  std::vector<double> va, vb;
  size_t only_a = 0;
  std::string example;
  for (size_t i = 0; i < a.keys.size(); ++i) {
    const auto it = index_b.find(a.keys[i]);
    if (it == index_b.end()) {
      if (only_a++ == 0) example = a.keys[i];
      continue;
    }
    va.push_back(a.values[i]);
    vb.push_back(b.values[it->second]);
  }
  const size_t only_b = b.keys.size() - va.size();
  if (only_a > 0 || only_b > 0) {
    for (char& c : example) c = c == '\t' ? ' ' : c;
    fail("the runs do not hold the same cases: ", only_a, " only in ", fa, only_a ? " (e.g. user/target '" + example + "')" : "",
         ", ", only_b, " only in ", fb, "; compare runs on the same data and split");
  }
  const auto sa = eval::summarise(va), sb = eval::summarise(vb);
  const auto t = eval::paired_t_test(va, vb);
  const auto w = eval::wilcoxon_signed_rank(va, vb);
  std::cout << std::setprecision(4) << std::fixed << metric << " over " << va.size() << " paired cases (protocol "
            << a.protocol << ", exclude " << a.exclude << ")\n"
            << "  A " << fa << ": mean " << sa.mean << "\n"
            << "  B " << fb << ": mean " << sb.mean << "\n"
            << "  A - B: mean " << t.mean_diff << " (std " << t.std_diff << ")\n"
            << "  paired t-test: t = " << std::setprecision(3) << t.t << ", df = " << std::setprecision(0) << t.df
            << ", p = " << std::setprecision(4) << std::scientific << t.p_value << std::fixed << "\n"
            << "  Wilcoxon signed-rank: " << w.n << " non-zero differences, W = " << std::setprecision(1)
            << w.statistic << ", p = " << std::setprecision(4) << std::scientific << w.p_value << std::fixed
            << (w.exact ? " (exact)" : " (normal approximation)") << "\n";
  return 0;
}

}  // namespace recdistill::app
