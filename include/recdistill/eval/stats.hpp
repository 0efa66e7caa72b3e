// recdistill/eval/stats.hpp: aggregation of metrics over runs (seeds) and paired tests
// between two runs evaluated on the same cases (docs/metrics.md, "Comparing runs").
//
//   summarise: mean, sample standard deviation (n - 1 in the denominator) and n.
//   paired_t_test: d_i = a_i - b_i, t = mean(d) / (sd(d) / sqrt(n)), df = n - 1, two-sided
//     p = 2 P(T_df >= |t|) (Student's t CDF from Boost.Math); as scipy.stats.ttest_rel.
//   wilcoxon_signed_rank: zero differences dropped (Wilcoxon's convention), |d| ranked with
//     average ranks for ties, W+ / W- the rank sums of positive / negative differences,
//     statistic min(W+, W-); two-sided p exact when n <= 25 with no ties, otherwise from the
//     normal approximation with the tie correction and no continuity correction; as
//     scipy.stats.wilcoxon(mode="exact" / "approx").
#pragma once
#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/eval/ranking.hpp"

namespace recdistill::eval {

struct Summary {
  double mean = 0, std = 0;  // std: sample standard deviation, 0 when n < 2
  size_t n = 0;
};

inline Summary summarise(const std::vector<double>& x) {
  Summary s;
  s.n = x.size();
  if (x.empty()) return s;
  for (double v : x) s.mean += v;
  s.mean /= double(x.size());
  if (x.size() < 2) return s;
  double ss = 0;
  for (double v : x) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / double(x.size() - 1));
  return s;
}

// Mean / std / n of every metric over runs (e.g. one Metrics per seed). Every run must report
// the same metric names.
inline std::map<std::string, Summary> aggregate_runs(const std::vector<Metrics>& runs) {
  std::map<std::string, Summary> out;
  if (runs.empty()) return out;
  for (size_t r = 1; r < runs.size(); ++r) {
    if (runs[r].size() != runs[0].size())
      fail("aggregate_runs: run ", r, " reports ", runs[r].size(), " metrics, run 0 reports ", runs[0].size());
    for (const auto& [k, v] : runs[0])
      if (!runs[r].count(k)) fail("aggregate_runs: run ", r, " lacks metric '", k, "' that run 0 reports");
  }
  for (const auto& [k, v] : runs[0]) {
    std::vector<double> x;
    for (const auto& m : runs) x.push_back(m.at(k));
    out[k] = summarise(x);
  }
  return out;
}

struct PairedTTest {
  size_t n = 0;
  double mean_diff = 0, std_diff = 0;  // of d = a - b (sample std)
  double t = 0, df = 0, p_value = 1;   // two-sided
};

inline PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    fail("paired t-test: the runs have ", a.size(), " and ", b.size(), " values; expected the same cases");
  if (a.size() < 2) fail("paired t-test: need at least 2 pairs, got ", a.size());
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const Summary s = summarise(d);
  PairedTTest r;
  r.n = d.size();
  r.mean_diff = s.mean;
  r.std_diff = s.std;
  r.df = double(r.n - 1);
  if (s.std == 0) {  // every difference equal: no spread to test against
    r.t = s.mean == 0 ? 0.0 : std::copysign(INFINITY, s.mean);
    r.p_value = s.mean == 0 ? 1.0 : 0.0;
    return r;
  }
  r.t = s.mean / (s.std / std::sqrt(double(r.n)));
  boost::math::students_t_distribution<double> dist(r.df);
  r.p_value = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t))));
  return r;
}

struct WilcoxonTest {
  size_t n = 0;                       // pairs with a non-zero difference
  double w_plus = 0, w_minus = 0;     // rank sums of positive / negative differences
  double statistic = 0;               // min(W+, W-)
  double z = 0;                       // normal approximation (0 when exact)
  double p_value = 1;                 // two-sided
  bool exact = false;
};

inline WilcoxonTest wilcoxon_signed_rank(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    fail("Wilcoxon test: the runs have ", a.size(), " and ", b.size(), " values; expected the same cases");
  std::vector<double> d;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] - b[i] != 0) d.push_back(a[i] - b[i]);
  WilcoxonTest r;
  r.n = d.size();
  if (r.n == 0) return r;  // identical runs: p = 1
  std::vector<size_t> order(r.n);
  for (size_t i = 0; i < r.n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return std::fabs(d[x]) < std::fabs(d[y]); });
  // Average ranks over ties of |d|; tie_term = sum (t^3 - t) over tie groups.
  double tie_term = 0;
  for (size_t i = 0; i < r.n;) {
    size_t j = i;
    while (j + 1 < r.n && std::fabs(d[order[j + 1]]) == std::fabs(d[order[i]])) ++j;
    const double rank = (double(i + 1) + double(j + 1)) / 2.0, t = double(j - i + 1);
    tie_term += t * t * t - t;
    for (size_t k = i; k <= j; ++k) (d[order[k]] > 0 ? r.w_plus : r.w_minus) += rank;
    i = j + 1;
  }
  r.statistic = std::min(r.w_plus, r.w_minus);
  const double n = double(r.n);
  if (r.n <= 25 && tie_term == 0) {
    // Exact null distribution: count[s] = number of subsets of {1..n} with rank sum s.
    const size_t total = r.n * (r.n + 1) / 2;
    std::vector<double> count(total + 1, 0.0);
    count[0] = 1;
    for (size_t k = 1; k <= r.n; ++k)
      for (size_t s = total; s >= k; --s) count[s] += count[s - k];
    double le = 0;
    for (size_t s = 0; s <= size_t(r.statistic); ++s) le += count[s];
    r.exact = true;
    r.p_value = std::min(1.0, 2.0 * le / std::ldexp(1.0, int(r.n)));
    return r;
  }
  const double mean = n * (n + 1) / 4.0;
  const double var = n * (n + 1) * (2 * n + 1) / 24.0 - tie_term / 48.0;
  r.z = var > 0 ? (r.statistic - mean) / std::sqrt(var) : 0.0;
  r.p_value = std::min(1.0, std::erfc(std::fabs(r.z) / std::sqrt(2.0)));
  return r;
}

// Pairs two runs' per-case values by user id (each run's users must be distinct, and both runs
// must cover the same users); returns (a, b) in the order of run A's users.
inline std::pair<std::vector<double>, std::vector<double>> pair_by_user(
    const std::vector<int32_t>& users_a, const std::vector<double>& a,
    const std::vector<int32_t>& users_b, const std::vector<double>& b) {
  if (users_a.size() != a.size() || users_b.size() != b.size())
    fail("pair_by_user: each run needs one value per user");
  if (users_a.size() != users_b.size())
    fail("pair_by_user: run A has ", users_a.size(), " users, run B has ", users_b.size());
  std::unordered_map<int32_t, size_t> where;
  for (size_t i = 0; i < users_b.size(); ++i)
    if (!where.emplace(users_b[i], i).second) fail("pair_by_user: user ", users_b[i], " appears twice in run B");
  std::pair<std::vector<double>, std::vector<double>> out;
  std::vector<uint8_t> used(users_b.size(), 0);
  for (size_t i = 0; i < users_a.size(); ++i) {
    const auto it = where.find(users_a[i]);
    if (it == where.end()) fail("pair_by_user: user ", users_a[i], " of run A is not in run B");
    if (used[it->second]++) fail("pair_by_user: user ", users_a[i], " appears twice in run A");
    out.first.push_back(a[i]);
    out.second.push_back(b[it->second]);
  }
  return out;
}

}  // namespace recdistill::eval
