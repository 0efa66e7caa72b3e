// Aggregation over runs and paired tests, against hand values and values from
// scipy 1.10.1 (scipy.stats.ttest_rel / wilcoxon, computed once; the calls are quoted).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "recdistill/eval/per_case.hpp"
#include "recdistill/eval/stats.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::eval;

TEST(Stats, SummariseByHand) {
  const auto s = summarise({1.0, 2.0, 3.0, 6.0});
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(14.0 / 3.0));  // (4 + 1 + 0 + 9) / (4 - 1)
  EXPECT_EQ(s.n, 4u);
  EXPECT_DOUBLE_EQ(summarise({5.0}).std, 0.0);
  const auto agg = aggregate_runs({{{"NDCG@10", 0.25}, {"HR@10", 0.5}},
                                   {{"NDCG@10", 0.75}, {"HR@10", 0.5}}});
  EXPECT_DOUBLE_EQ(agg.at("NDCG@10").mean, 0.5);
  EXPECT_DOUBLE_EQ(agg.at("NDCG@10").std, std::sqrt(0.125));
  EXPECT_DOUBLE_EQ(agg.at("HR@10").std, 0.0);
  EXPECT_EQ(agg.at("HR@10").n, 2u);
  EXPECT_THROW(aggregate_runs({{{"NDCG@10", 0.25}}, {{"HR@10", 0.5}}}), Error);
}

TEST(Stats, PairedTTestMatchesScipy) {
  // ttest_rel(a, b) -> statistic 2.15322168769582, pvalue 0.05972273563526072
  const std::vector<double> a = {0.5, 0.25, 0.875, 0.125, 0.75, 0.375, 0.8125, 0.4375, 0.625, 0.0625};
  const std::vector<double> b = {0.375, 0.3125, 0.5, 0.125, 0.5, 0.4375, 0.5625, 0.25, 0.6875, 0.0};
  const auto r = paired_t_test(a, b);
  EXPECT_EQ(r.n, 10u);
  EXPECT_DOUBLE_EQ(r.df, 9.0);
  EXPECT_NEAR(r.t, 2.15322168769582, 1e-12);
  EXPECT_NEAR(r.p_value, 0.05972273563526072, 1e-12);
  EXPECT_NEAR(paired_t_test(b, a).t, -2.15322168769582, 1e-12);  // antisymmetric
  // 0/1 hit indicators of 40 users: statistic 2.725540575476988, pvalue 0.009563548476957924
  const std::vector<double> x = {1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1,
                                 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1};
  const std::vector<double> y = {1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0,
                                 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1};
  const auto h = paired_t_test(x, y);
  EXPECT_NEAR(h.t, 2.725540575476988, 1e-12);
  EXPECT_NEAR(h.p_value, 0.009563548476957924, 1e-12);
  // Identical runs: no difference, p = 1; a constant shift: p = 0.
  EXPECT_DOUBLE_EQ(paired_t_test(a, a).p_value, 1.0);
  EXPECT_DOUBLE_EQ(paired_t_test({1, 2, 3}, {0, 1, 2}).p_value, 0.0);
  EXPECT_THROW(paired_t_test({1, 2}, {1}), Error);
  EXPECT_THROW(paired_t_test({1}, {1}), Error);
}

TEST(Stats, WilcoxonMatchesScipy) {
  // wilcoxon(d, mode="exact") -> statistic 16.0, pvalue 0.0771484375;
  // mode="approx" -> pvalue 0.07118923429208965 (no ties, 12 pairs)
  const std::vector<double> d = {1.5, 2.0, -0.25, 3.0, 0.75, -1.0, 2.5, 0.5, 4.0, -3.5, 1.25, 2.25};
  const std::vector<double> zero(d.size(), 0.0);
  const auto w = wilcoxon_signed_rank(d, zero);
  EXPECT_TRUE(w.exact);
  EXPECT_DOUBLE_EQ(w.statistic, 16.0);  // W- = 1 (0.25) + 4 (1.0) + 11 (3.5)
  EXPECT_DOUBLE_EQ(w.w_plus + w.w_minus, 78.0);
  EXPECT_NEAR(w.p_value, 0.0771484375, 1e-15);
  // With ties and zeros (0/1 hits of 40 users, from the t-test above): statistic 5.5,
  // pvalue 0.011412036386001651 (mode="approx", zero_method="wilcox", no correction).
  const std::vector<double> x = {1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1,
                                 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1};
  const std::vector<double> y = {1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0,
                                 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1};
  const auto t = wilcoxon_signed_rank(x, y);
  EXPECT_FALSE(t.exact);
  EXPECT_EQ(t.n, 10u);  // pairs that differ
  EXPECT_DOUBLE_EQ(t.statistic, 5.5);
  EXPECT_NEAR(t.p_value, 0.011412036386001651, 1e-12);
  // NDCG-like values with ties and zeros: statistic 2.5, pvalue 0.1755543027732298.
  const std::vector<double> u = {1.0, 0.5, 0.0, 0.6309297535714575, 0.0, 0.5, 1.0, 0.0, 0.43067655807339306, 0.5};
  const std::vector<double> v = {0.5, 0.5, 0.0, 1.0, 0.0, 0.38685280723454163, 0.6309297535714575, 0.0, 0.0, 0.5};
  const auto n = wilcoxon_signed_rank(u, v);
  EXPECT_DOUBLE_EQ(n.statistic, 2.5);
  EXPECT_NEAR(n.p_value, 0.1755543027732298, 1e-12);
  EXPECT_DOUBLE_EQ(wilcoxon_signed_rank(u, u).p_value, 1.0);
}

TEST(Stats, PairByUser) {
  const auto [a, b] = pair_by_user({3, 1, 2}, {0.3, 0.1, 0.2}, {1, 2, 3}, {1.0, 2.0, 3.0});
  EXPECT_EQ(a, (std::vector<double>{0.3, 0.1, 0.2}));
  EXPECT_EQ(b, (std::vector<double>{3.0, 1.0, 2.0}));
  EXPECT_THROW(pair_by_user({1, 2}, {0, 0}, {1, 3}, {0, 0}), Error);
  EXPECT_THROW(pair_by_user({1, 1}, {0, 0}, {1, 2}, {0, 0}), Error);
  EXPECT_THROW(pair_by_user({1}, {0}, {1, 2}, {0, 0}), Error);
}

// read_per_case_csv reads back what write_per_case wrote, and names file and line on bad input.
namespace {
std::string write_text(const std::string& name, const std::string& text) {
  const auto p = (std::filesystem::temp_directory_path() / ("rd_per_case_" + name)).string();
  std::ofstream(p, std::ios::binary) << text;
  return p;
}
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(PerCaseDump, ReadsBackWhatWasWritten) {
  const std::vector<int32_t> h = {1, 2};
  const std::vector<Case> cases = {{h.data(), 2, 3, 1}, {h.data(), 2, 4, 2}};
  Options o;
  o.ks = {1, 10};
  const std::string path = write_text("round.csv", "");
  write_per_case(path, cases, {1, 4}, o);
  const auto col = read_per_case_csv(path, "NDCG@10");
  ASSERT_EQ(col.keys.size(), 2u);
  EXPECT_EQ(col.keys[0], "1\t3");
  EXPECT_DOUBLE_EQ(col.values[0], 1.0);
  EXPECT_NEAR(col.values[1], 1.0 / std::log2(5.0), 1e-15);
  EXPECT_EQ(col.protocol, "full");
  EXPECT_EQ(read_per_case_csv(path, "HR@1").values, (std::vector<double>{1.0, 0.0}));
  std::filesystem::remove(path);
}

TEST(PerCaseDump, BadInputNamesFileAndLine) {
  const auto missing = write_text("missing.csv", "user,target,rank,protocol,exclude\nu,i,1,full,none\n");
  EXPECT_NE(error_of([&] { read_per_case_csv(missing, "NDCG@10"); }).find("missing.csv:1: missing column 'NDCG@10'"),
            std::string::npos);
  const auto nan = write_text("nonnum.csv", "user,target,NDCG@10,protocol,exclude\nu,i,0.5,full,none\nv,i,high,full,none\n");
  EXPECT_NE(error_of([&] { read_per_case_csv(nan, "NDCG@10"); }).find("nonnum.csv:3: column 'NDCG@10': expected a number"),
            std::string::npos);
  const auto dup = write_text("dup.csv", "user,target,NDCG@10,protocol,exclude\nu,i,0.5,full,none\nu,i,0.1,full,none\n");
  EXPECT_NE(error_of([&] { read_per_case_csv(dup, "NDCG@10"); }).find("dup.csv:3: user 'u' with target 'i' is also on line 2"),
            std::string::npos);
  const auto mixed = write_text("mixed.csv", "user,target,NDCG@10,protocol,exclude\nu,i,0.5,full,none\nv,i,0.1,sampled 100 uniform,none\n");
  EXPECT_NE(error_of([&] { read_per_case_csv(mixed, "NDCG@10"); }).find("mixed.csv:3: protocol"), std::string::npos);
  const auto empty = write_text("header_only.csv", "user,target,NDCG@10,protocol,exclude\n");
  EXPECT_NE(error_of([&] { read_per_case_csv(empty, "NDCG@10"); }).find("no cases"), std::string::npos);
  for (const auto& p : {missing, nan, dup, mixed, empty}) std::filesystem::remove(p);
}

}  // namespace RD_TEST_FILE
