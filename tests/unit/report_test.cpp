// Experiment reports: mean ± sample std tables (Markdown, CSV) and gnuplot PNGs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "recdistill/io/experiment_events.hpp"
#include "recdistill/io/report.hpp"
#include "recdistill/io/variant_tests.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("recdistill_report_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

io::RunRecord run(const std::string& variant, uint64_t seed, double ndcg, double hr5) {
  io::RunRecord r;
  r.variant = variant;
  r.seed = seed;
  r.test = {{"NDCG@10", ndcg}, {"HR@10", 2 * ndcg}, {"HR@5", hr5}};
  r.valid = {{"NDCG@10", ndcg + 0.01}};
  r.best_epoch = 2;
  r.epochs_run = 3;
  r.train_seconds = 1.5;
  r.run_dir = "runs/" + variant + "/seed" + std::to_string(seed);
  for (int e = 1; e <= 3; ++e) r.curve.push_back({e, 5.0 - e + 0.01 * double(seed % 7), e == 2 ? NAN : ndcg * e / 3});
  return r;
}

std::vector<io::RunRecord> runs() {
  return {run("base", 2020, 0.1, 0.05), run("base", 2021, 0.3, 0.07), run("wide", 2020, 0.2, 0.06),
          run("wide", 2021, 0.2, 0.08)};
}

}  // namespace

TEST(Report, SampleStd) {
  const auto s = io::summarize({1, 2, 3, 4});
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.std, std::sqrt(5.0 / 3.0), 1e-12);  // n - 1 in the denominator
  EXPECT_TRUE(std::isnan(io::summarize({0.5}).std));
  EXPECT_EQ(io::summarize({}).n, 0);
}

TEST(Report, MetricsInTableOrder) {
  const std::vector<io::RunRecord> r = {run("a", 1, 0.1, 0.1)};
  auto rr = r;
  rr[0].test["MRR@20"] = 0.1;
  rr[0].test["HR@20"] = 0.1;
  rr[0].test["Precision@10"] = 0.01;
  EXPECT_EQ(io::metrics_of(rr),
            (std::vector<std::string>{"HR@5", "HR@10", "HR@20", "NDCG@10", "MRR@20", "Precision@10"}));
  EXPECT_EQ(io::metrics_of(rr, false, {"NDCG", "MRR"}), (std::vector<std::string>{"NDCG@10", "MRR@20"}));
}

TEST(Report, MarkdownTableMeanStdPerVariant) {
  const std::string md = io::markdown_table(runs(), false);
  // base: NDCG@10 over {0.1, 0.3}: mean 0.2, sample std 0.1414; wide: {0.2, 0.2}: std 0.
  EXPECT_NE(md.find("| base    | 2   | 2020,2021 |"), std::string::npos) << md;
  EXPECT_NE(md.find("0.2000 ± 0.1414"), std::string::npos) << md;
  EXPECT_NE(md.find("0.2000 ± 0.0000"), std::string::npos) << md;
  EXPECT_NE(md.find("0.0600 ± 0.0141"), std::string::npos) << md;  // base HR@5
  // Header in table order; separator right-aligns the numbers.
  EXPECT_LT(md.find("HR@5"), md.find("HR@10"));
  EXPECT_LT(md.find("HR@10"), md.find("NDCG@10"));
  EXPECT_NE(md.find("-: |"), std::string::npos);
  // One seed: the mean alone, no "±".
  const std::string one = io::markdown_table({run("solo", 7, 0.25, 0.1)}, false);
  EXPECT_NE(one.find("0.2500"), std::string::npos);
  EXPECT_EQ(one.find("±"), std::string::npos) << one;
}

TEST(Report, NarrowTableByCutoff) {
  const std::string md = io::markdown_table_by_k(runs(), false);
  // Columns are cut-offs in K order, rows are variant x family; NDCG has no @5 here.
  EXPECT_EQ(md.substr(0, md.find('\n')),
            "| variant | n   | metric |              @5 |             @10 |");
  EXPECT_NE(md.find("| base    | 2   | NDCG   |                 | 0.2000 ± 0.1414 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| wide    | 2   | HR     | 0.0700 ± 0.0141 | 0.4000 ± 0.0000 |"), std::string::npos) << md;
}

TEST(Report, CurvesScriptSkipsEpochsWithoutValidation) {
  const std::string gp = io::curves_script(runs(), "/tmp/x.png", {});
  const size_t at = gp.find("$valid0 << EOD\n");
  ASSERT_NE(at, std::string::npos) << gp;
  const std::string block = gp.substr(at, gp.find("EOD\n", at + 15) - at);
  EXPECT_NE(block.find("\n1 "), std::string::npos) << block;
  EXPECT_EQ(block.find("\n2 "), std::string::npos) << "epoch 2 was not evaluated: " << block;
  EXPECT_NE(block.find("\n3 "), std::string::npos) << block;
  // Two variants: colour per variant, dash pattern per seed.
  EXPECT_NE(gp.find("lc 2 dt 2 title 'wide seed 2021'"), std::string::npos) << gp;
  EXPECT_NE(gp.find("set output '/tmp/x.png'"), std::string::npos);
}

TEST(Report, CsvLongFormat) {
  const std::string csv = io::summary_csv(runs());
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "variant,split,metric,n,mean,std");
  EXPECT_NE(csv.find("\nbase,test,NDCG@10,2,0.2,0.1414213562\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\nwide,valid,NDCG@10,2,0.21,0\n"), std::string::npos) << csv;
  const std::string per_run = io::runs_csv(runs());
  EXPECT_EQ(per_run.substr(0, per_run.find('\n')),
            "variant,seed,best_epoch,epochs_run,train_seconds,test_HR@5,test_HR@10,test_NDCG@10,valid_NDCG@10,run_dir");
  EXPECT_NE(per_run.find("\nbase,2021,2,3,1.5,0.07,0.6,0.3,0.31,runs/base/seed2021\n"), std::string::npos) << per_run;
}

TEST(Report, CsvQuotesFieldsWithCommasAndQuotes) {
  auto r = runs();
  r[0].run_dir = "runs/a,b \"c\"";
  EXPECT_NE(io::runs_csv(r).find(",\"runs/a,b \"\"c\"\"\"\n"), std::string::npos) << io::runs_csv(r);
}

TEST(Report, WithoutGnuplotTablesAreWrittenAndPlotsSkipped) {
  const fs::path d = temp_dir("nognuplot");
  io::ReportOptions o;
  o.gnuplot = "/nonexistent/gnuplot";
  const auto f = io::write_report(d, runs(), o);
  EXPECT_TRUE(fs::exists(d / "summary.md"));
  EXPECT_TRUE(fs::exists(d / "summary.csv"));
  EXPECT_TRUE(fs::exists(d / "runs.csv"));
  EXPECT_TRUE(f.plots.empty());
  EXPECT_NE(f.plot_message.find("plots skipped: '/nonexistent/gnuplot' not found"), std::string::npos)
      << f.plot_message;
  EXPECT_FALSE(fs::exists(d / "curves.png"));
  EXPECT_NE(slurp(d / "summary.md").find("0.2000 ± 0.1414"), std::string::npos);
  EXPECT_NE(f.table.find("0.2000 ± 0.1414"), std::string::npos);  // the short table to print
  EXPECT_NE(slurp(d / "summary.md").find("validation metrics of the tested weights"), std::string::npos);
  EXPECT_EQ(f.table.find("validation metrics of the tested weights"), std::string::npos);
  fs::remove_all(d);
}

TEST(Report, GnuplotDrawsPngsAtomically) {
  if (io::find_program("gnuplot").empty()) GTEST_SKIP() << "gnuplot not installed (apt-get install gnuplot-nox)";
  const fs::path d = temp_dir("plots");
  io::ReportOptions o;
  o.title = "it's a test";  // a quote in a gnuplot string
  const auto f = io::write_report(d, runs(), o);
  EXPECT_EQ(f.plot_message, "");
  ASSERT_EQ(f.plots.size(), 2u);
  for (const char* name : {"curves.png", "variants.png"}) {
    const std::string png = slurp(d / name);
    ASSERT_GT(png.size(), 1000u) << name;
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << name;
  }
  EXPECT_TRUE(fs::exists(d / "curves.gp"));  // kept for restyling
  for (const auto& e : fs::directory_iterator(d))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary left: " << e.path();
  fs::remove_all(d);
}

TEST(Report, FailingGnuplotIsReportedNotFatal) {
  const fs::path d = temp_dir("badgnuplot");
  io::ReportOptions o;
  o.gnuplot = "/bin/false";  // exists, exits 1
  const auto f = io::write_report(d, runs(), o);
  EXPECT_TRUE(f.plots.empty());
  EXPECT_NE(f.plot_message.find("/bin/false failed (exit status 1)"), std::string::npos) << f.plot_message;
  EXPECT_TRUE(fs::exists(d / "summary.md"));
  for (const auto& e : fs::directory_iterator(d))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary left: " << e.path();
  fs::remove_all(d);
}

// ---- Paired tests against a control (io/variant_tests.hpp) ----

namespace {

// A run whose per_user_test.csv holds `ndcg` per case (users 1..n, target 100+user).
io::RunRecord run_with_cases(const fs::path& root, const std::string& variant, uint64_t seed,
                             const std::vector<double>& ndcg) {
  io::RunRecord r;
  r.variant = variant;
  r.seed = seed;
  r.run_dir = (root / "runs" / variant / ("run-seed" + std::to_string(seed))).string();
  fs::create_directories(r.run_dir);
  std::ofstream f(fs::path(r.run_dir) / "per_user_test.csv");
  f << "user,target,rank,NDCG@10,protocol,exclude\n";
  double sum = 0;
  for (size_t i = 0; i < ndcg.size(); ++i) {
    f << i + 1 << "," << 101 + i << ",1," << ndcg[i] << ",full,none\n";
    sum += ndcg[i];
  }
  r.test["NDCG@10"] = sum / double(ndcg.size());
  return r;
}

}  // namespace

TEST(VariantTests, AveragesCasesOverSeedsThenPairs) {
  const fs::path d = temp_dir("variant_tests");
  std::vector<io::RunRecord> runs = {
      run_with_cases(d, "base", 1, {0.0, 0.5, 1.0, 0.2}), run_with_cases(d, "base", 2, {0.2, 0.5, 0.0, 0.2}),
      run_with_cases(d, "dist", 1, {0.4, 0.5, 1.0, 0.0}), run_with_cases(d, "dist", 2, {0.4, 0.9, 0.6, 0.2}),
      run_with_cases(d, "dist", 3, {1.0, 1.0, 1.0, 1.0})};  // seed 3 has no control run: left out
  const auto t = io::variant_tests(runs, "base", {"NDCG@10"});
  ASSERT_EQ(t.rows.size(), 1u);
  const auto& r = t.rows[0];
  EXPECT_EQ(r.seeds, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(t.comparisons, 3u);
  // Seed means: base 0.425, 0.225; dist 0.475, 0.525 -> differences 0.05, 0.30.
  EXPECT_NEAR(r.control_mean, 0.325, 1e-12);
  EXPECT_NEAR(r.mean, 0.5, 1e-12);
  ASSERT_TRUE(r.seed_test);
  EXPECT_NEAR(r.over_seeds.mean_diff, 0.175, 1e-12);
  EXPECT_EQ(r.over_seeds.n, 2u);
  // Per-case means over seeds 1, 2: base 0.1 0.5 0.5 0.2; dist 0.4 0.7 0.8 0.1.
  EXPECT_EQ(r.cases, 4u);
  EXPECT_NEAR(r.over_users.mean_diff, (0.3 + 0.2 + 0.3 - 0.1) / 4, 1e-12);
  EXPECT_EQ(r.wilcoxon.n, 4u);
  EXPECT_NEAR(r.wilcoxon.w_minus, 1.0, 1e-12);  // the one negative difference has the smallest |d|
  const std::string md = io::variant_tests_markdown(t);
  EXPECT_NE(md.find("3 comparisons"), std::string::npos) << md;
  EXPECT_NE(md.find("| dist | NDCG@10 | 2 | 0.3250 | 0.5000 | +0.1750 | +53.8% |"), std::string::npos) << md;
  fs::remove_all(d);
}

TEST(VariantTests, ReadsRunsCsvAndFindsMovedRunFolders) {
  const fs::path d = temp_dir("variant_tests_csv");
  std::vector<io::RunRecord> runs = {run_with_cases(d, "base", 7, {0.0, 1.0}), run_with_cases(d, "x", 7, {1.0, 1.0})};
  io::write_file_atomic((d / "runs.csv").string(), io::runs_csv(runs));
  auto back = io::read_runs_csv((d / "runs.csv").string());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].variant, "x");
  EXPECT_EQ(back[1].seed, 7u);
  EXPECT_DOUBLE_EQ(back[1].test.at("NDCG@10"), 1.0);
  for (auto& r : back) r.run_dir = "/elsewhere/" + fs::path(r.run_dir).filename().string();  // the folder moved
  const auto t = io::variant_tests(back, "base", {"NDCG@10"}, d);
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_FALSE(t.rows[0].seed_test);  // one seed: no test over seeds
  EXPECT_NE(io::variant_tests_markdown(t).find("n/a (1 seed)"), std::string::npos);
  fs::remove_all(d);
}

TEST(VariantTests, ClearErrors) {
  const fs::path d = temp_dir("variant_tests_err");
  std::vector<io::RunRecord> runs = {run_with_cases(d, "base", 1, {0.0, 1.0}), run_with_cases(d, "x", 1, {1.0, 1.0, 0.5})};
  try {
    io::variant_tests(runs, "ctrl", {"NDCG@10"});
    FAIL() << "unknown control accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("control variant 'ctrl' is not in the experiment (its variants: base, x)"),
              std::string::npos) << e.what();
  }
  try {
    io::variant_tests(runs, "base", {"NDCG@10"});
    FAIL() << "different test cases accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("were tested on different cases (3 and 2)"), std::string::npos) << e.what();
  }
  {  // the same cases, evaluated another way
    std::vector<io::RunRecord> other = {run_with_cases(d, "base", 1, {0.0, 1.0}), run_with_cases(d, "y", 1, {1.0, 1.0})};
    std::ofstream f(fs::path(other[1].run_dir) / "per_user_test.csv");
    f << "user,target,rank,NDCG@10,protocol,exclude\n1,101,1,1,full,history\n2,102,1,1,full,history\n";
    f.close();
    const std::string e = [&] {
      try {
        io::variant_tests(other, "base", {"NDCG@10"});
      } catch (const Error& x) {
        return std::string(x.what());
      }
      return std::string("(no error)");
    }();
    EXPECT_NE(e.find("was evaluated with protocol 'full', exclude 'history'"), std::string::npos) << e;
  }
  runs[1].run_dir = (d / "nowhere").string();
  try {
    io::variant_tests(runs, "base", {"NDCG@10"});
    FAIL() << "missing per-user file accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no per-user test metrics at"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

// experiment.jsonl as `experiment --resume` reads it (io/experiment_events.hpp): a run_end event
// written with the app's fields reads back to the same record (curve included, NaN as null);
// a later run_end clears an earlier interruption; a damaged line is an error naming the line.
TEST(ExperimentEvents, RunEndReadsBackExactlyAndDamageNamesTheLine) {
  io::RunRecord r = run("wide", 2021, 0.123456789012345, 0.5);
  r.valid = {{"NDCG@10", 0.25}};
  r.best_epoch = 3;
  r.epochs_run = 4;
  r.train_seconds = 1.5;
  r.run_dir = "runs/wide/run-1";
  r.curve = {{1, 5.5, NAN}, {2, 5.25, 0.125}};
  const std::string end = io::json_log_line("run_end", io::run_end_fields(r, "NDCG@10", "best"));
  const std::string cut = io::json_log_line("run_interrupted", io::JsonFields()
                                                                   .add("variant", "base")
                                                                   .add("seed", 7)
                                                                   .add("epoch", 2)
                                                                   .add("run_dir", "runs/base/run-2"));
  const std::string start = io::json_log_line("experiment_start", io::JsonFields().add("runs", 4));
  const auto ev = io::parse_experiment_events(start + cut + end, "e.jsonl");
  ASSERT_EQ(ev.finished.count("wide/2021"), 1u);
  const io::RunRecord& got = ev.finished.at("wide/2021");
  EXPECT_EQ(got.test, r.test);
  EXPECT_EQ(got.valid, r.valid);
  EXPECT_EQ(got.best_epoch, 3);
  EXPECT_EQ(got.epochs_run, 4);
  EXPECT_EQ(got.run_dir, r.run_dir);
  ASSERT_EQ(got.curve.size(), 2u);
  EXPECT_TRUE(std::isnan(got.curve[0].valid));
  EXPECT_EQ(got.curve[1].valid, 0.125);
  EXPECT_EQ(ev.valid_metric.at("wide/2021"), "NDCG@10");
  EXPECT_EQ(ev.interrupted.at("base/7"), "runs/base/run-2");
  // The interrupted run finished later: no longer interrupted.
  io::RunRecord r7 = r;
  r7.variant = "base";
  r7.seed = 7;
  const std::string end7 = io::json_log_line("run_end", io::run_end_fields(r7, "NDCG@10", "best"));
  EXPECT_EQ(io::parse_experiment_events(cut + end7, "e.jsonl").interrupted.count("base/7"), 0u);
  try {
    io::parse_experiment_events(start + "{\"event\": \"run_end\", \"variant\": \"x\"}\n", "e.jsonl");
    ADD_FAILURE() << "a run_end without its fields was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e.jsonl:2: expected an experiment event"), std::string::npos) << e.what();
  }
  EXPECT_THROW(io::parse_experiment_events("not json\n", "e.jsonl"), Error);
}

}  // namespace RD_TEST_FILE
