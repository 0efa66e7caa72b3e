// recdistill/methods/alkd_selection.hpp: the selection strategies of active LLM distillation
// (specs/active-llm-distillation.md §5; docs/alkd.md): which training sessions get an LLM answer.
//
// A strategy sees the pool of training sessions ordered hardest first (position 1 = hardest),
// a budget τ, a view of the oracle (has this session an answer, and is it usable?) and a seed.
// It draws sessions until τ are answered or nothing is left to draw, and returns the answered
// sessions in draw order (B) with a report. Selection is non-adaptive (§4.3): no strategy reads
// answer content, only whether an answer exists.
//
//   alkdrec       the max–min policy of §5.2: p*_i ∝ h_i on 1..k* (sampling fixed or sequential)
//   rad_bc        the binary policy of §5.3 (a_i = 2/3, Γ(k) = (G_k − (1 − ρ_c)N)/H_k)
//   random        uniform without replacement
//   hardest       pool order; easiest: reverse pool order
//   replay        a given list of session ids, in order (the route to the released subsets)
//   teacher_only  TR: no selection (the distillation stage uses every train instance itself)
//
// Answers: `usable` and `unusable` (an empty answer) both count as answered and toward τ, as
// upstream (`count_unusable_toward_budget`, §4.4); `missing` is skipped: the session leaves the
// pool, is never redrawn, and is reported with its id and the reason.
//
// Randomness comes only from the project's Philox stream `Stream::selection`, keyed by
// (seed, strategy id, draw counter), so a selection depends on the seed alone. A caller that
// wants per-dataset streams folds the dataset into the seed.
//
// Also here: the reader of selection files (data/alkdrec-ml/selections/*.txt), one session id
// per line, and the check that the first n ids of such a list are distinct.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/text.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/methods/alkd_answer_state.hpp"

namespace recdistill::alkd {

// ---------------------------------------------------------------------------------------------
// The pool

struct PoolEntry {
  std::string session_id;
  double difficulty = 0;  // grows with hardness (§0)
};

namespace detail {

inline bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace detail

// Ascending session id: numerically when both ids are all digits (any length, no overflow),
// else lexicographically. All-digit ids sort before the others: comparing mixed pairs
// lexicographically would not be transitive ("2" < "10" < "1a" < "2"), and std::sort needs a
// strict weak order. Equal numbers with different spellings ("07", "7") fall back to the text.
inline bool session_id_less(std::string_view a, std::string_view b) {
  const bool da = detail::all_digits(a), db = detail::all_digits(b);
  if (da != db) return da;
  if (!da) return a < b;
  const auto strip = [](std::string_view s) {
    size_t z = 0;
    while (z + 1 < s.size() && s[z] == '0') ++z;
    return s.substr(z);
  };
  const std::string_view na = strip(a), nb = strip(b);
  if (na.size() != nb.size()) return na.size() < nb.size();
  if (na != nb) return na < nb;
  return a < b;
}

// Hardest first: difficulty descending, ties by ascending session id (§3.1). A NaN difficulty
// has no place in the order and is an error naming the session.
inline std::vector<PoolEntry> order_hardest_first(std::vector<PoolEntry> pool) {
  for (const auto& e : pool)
    if (std::isnan(e.difficulty)) fail("selection pool: session ", e.session_id, " has a NaN difficulty");
  std::sort(pool.begin(), pool.end(), [](const PoolEntry& x, const PoolEntry& y) {
    if (x.difficulty != y.difficulty) return x.difficulty > y.difficulty;
    return session_id_less(x.session_id, y.session_id);
  });
  return pool;
}

// ---------------------------------------------------------------------------------------------
// The oracle as the strategies see it

using OracleView = std::function<AnswerState(const std::string& session_id)>;

// ---------------------------------------------------------------------------------------------
// The max–min policy (§5.2) and RAD-BC (§5.3)

struct Ratios {
  double ef = 0.1, si = 0.5, in = 0.4;  // ρ_ef, ρ_si, ρ_in
};

// Each ratio finite and ≥ 0, and the three sum to 1 within 1e-9.
inline void validate_ratios(const Ratios& r) {
  const auto check = [](double v, const char* key) {
    if (!std::isfinite(v) || v < 0) fail("selection: ", key, " must be a finite ratio >= 0, found ", v);
  };
  check(r.ef, "rho_ef");
  check(r.si, "rho_si");
  check(r.in, "rho_in");
  const double sum = r.ef + r.si + r.in;
  if (std::fabs(sum - 1.0) > 1e-9)
    fail("selection: rho_ef + rho_si + rho_in must sum to 1, found ", r.ef, " + ", r.si, " + ", r.in, " = ",
         io::json_number(sum));
}

struct MaxMinPolicy {
  size_t n = 0;               // pool size N
  size_t m = 0;               // positions 1..m use the (si, in) pair, m+1..N the (ef, in) pair
  size_t k_star = 0;          // 1-based smallest argmax of Γ; 0 only when N = 0
  double gamma = 0;           // Γ(k*) in the units of g_i = i^−µ (the guaranteed gain)
  double gamma_scaled = 0;    // Γ(k*)·N^µ, what is computed with h′_i = (i/N)^µ
  double g_total = 0, k_in = 0;  // G_N and K_in: G_N ≤ K_in is the degenerate case
  bool degenerate = false;    // every Γ(k) ≤ 0 and k* drifts to N (the library warns)
  size_t support = 0;         // number of i with p_i > 0
  std::vector<double> p;      // p[i − 1] = p*_i; sums to 1 over the support (all 0 if empty)
};

namespace detail {

// floor(x), snapping up when x is within 1e-9 (relative) of the next integer: (1 − 0.3)·10
// is 6.9999999999999996 in binary, and the ratios are meant as exact decimal fractions.
inline size_t floor_snapped(double x) {
  double f = std::floor(x);
  if (x - f > 1.0 - 1e-9 * std::max(1.0, std::fabs(x))) f += 1;
  return f <= 0 ? 0 : size_t(f);
}

// The common core of both policies. Positions i ≤ m: a_i = 1/2, h_i = i^µ; i > m: a_i = 2/3,
// h_i = (2/3)·i^µ. Γ(k) = (G_k − K_in)/H_k. Computed with h′_i = (i/N)^µ (Γ′ = Γ·N^µ has the
// same argmax) in long double, so neither i^µ overflows nor the small terms get lost.
inline void policy_core(size_t N, size_t m, double k_in, double mu, bool legacy_support, MaxMinPolicy& out) {
  out.n = N;
  out.m = m;
  out.k_in = k_in;
  out.p.assign(N, 0.0);
  out.k_star = 0;
  out.support = 0;
  out.gamma = out.gamma_scaled = out.g_total = 0;
  out.degenerate = false;
  if (N == 0) return;
  const long double n = (long double)N, two_thirds = 2.0L / 3.0L;
  long double G = 0, H = 0, best = 0;
  std::vector<long double> h(N);
  for (size_t i = 1; i <= N; ++i) {
    const long double base = std::pow((long double)i / n, (long double)mu);
    h[i - 1] = i <= m ? base : two_thirds * base;
    G += i <= m ? 0.5L : two_thirds;
    H += h[i - 1];
    const long double gamma = (G - (long double)k_in) / H;
    if (i == 1 || gamma > best) {  // strict: the smallest argmax wins
      best = gamma;
      out.k_star = i;
    }
  }
  out.g_total = double(G);
  out.degenerate = G <= (long double)k_in;
  out.gamma_scaled = double(best);
  out.gamma = double(best / std::pow(n, (long double)mu));
  // Upstream zeroes element k* too (`legacy_maxmin_support`, Q11): support 1..k*−1.
  const size_t last = legacy_support ? out.k_star - 1 : out.k_star;
  long double mass = 0;
  for (size_t i = 0; i < last; ++i) mass += h[i];
  if (mass <= 0) return;  // legacy support with k* = 1: nothing to draw from
  for (size_t i = 0; i < last; ++i) {
    out.p[i] = double(h[i] / mass);
    if (out.p[i] > 0) ++out.support;
  }
}

inline void validate_mu(double mu) {
  if (!std::isfinite(mu) || mu < 0) fail("selection: mu must be a finite exponent >= 0, found ", mu);
}

inline void validate_rad_bc(double correct) {
  if (!std::isfinite(correct) || correct < 0 || correct > 1)
    fail("selection: rad_bc_correct must lie in [0, 1], found ", correct);
}

}  // namespace detail

// ALKDRec's max–min policy over N positions, hardest first (§5.2): g_i = i^−µ,
// m = ⌊(1 − ρ_ef)N⌋, K_in = ρ_in·N, k* = the smallest argmax of Γ, p*_i = h_i/H_{k*} on 1..k*.
inline MaxMinPolicy maxmin_policy(size_t N, Ratios r, double mu, bool legacy_support) {
  validate_ratios(r);
  detail::validate_mu(mu);
  MaxMinPolicy out;
  const size_t m = std::min(N, detail::floor_snapped((1.0 - r.ef) * double(N)));
  detail::policy_core(N, m, r.in * double(N), mu, legacy_support, out);
  return out;
}

// RAD-BC (§5.3): binary, correct fraction ρ_c: a_i = 2/3, h_i = (2/3)·i^µ for every i,
// Γ(k) = (G_k − (1 − ρ_c)N)/H_k. The max–min core with m = 0 and K_in = (1 − ρ_c)N.
inline MaxMinPolicy rad_bc_policy(size_t N, double correct, double mu, bool legacy_support) {
  detail::validate_rad_bc(correct);
  detail::validate_mu(mu);
  MaxMinPolicy out;
  detail::policy_core(N, 0, (1.0 - correct) * double(N), mu, legacy_support, out);
  return out;
}

// The warning printed for a degenerate policy (G_N ≤ K_in).
inline std::string degenerate_warning(const std::string& strategy, const MaxMinPolicy& p) {
  return cat(strategy, ": G_N = ", io::json_number(p.g_total), " <= K_in = ", io::json_number(p.k_in),
             " (N = ", p.n, "): every Gamma(k) <= 0 and k* drifts to N; the ratios leave no positive guaranteed gain");
}

// ---------------------------------------------------------------------------------------------
// Reports

struct Skip {
  std::string session_id;
  std::string reason;  // no_answer | not_in_pool | repeated (replay lists only)
};

struct PercentileStats {
  double p05 = 0, p50 = 0, p95 = 0, mean = 0;
  size_t count = 0;
};

struct SelectionReport {
  std::string strategy;
  std::string sampling;          // the policies only: fixed | sequential
  uint64_t seed = 0;
  size_t budget = 0, pool_size = 0;
  size_t drawn = 0;              // sessions taken from the pool (or the replay list)
  size_t answered = 0;           // usable + unusable = |B|
  size_t unusable = 0;
  size_t skipped = 0;            // = skips.size()
  std::vector<Skip> skips;
  double coverage = 0;           // answered / drawn (0 if none drawn)
  size_t shortfall = 0;          // budget − |B|
  size_t proposals = 0;          // random draws made (fixed sampling discards repeats)
  // The policies (alkdrec, rad_bc): from the policy over the whole pool (sequential sampling
  // recomputes it before each draw; these describe the first).
  bool has_policy = false;
  size_t k_star = 0, m = 0, support = 0;
  double gamma = 0, gamma_scaled = 0;
  bool degenerate = false, legacy_maxmin_support = false;
  // Hardest-first percentiles (position i/N, 1-based i) of the sessions in B.
  PercentileStats percentiles;
  std::vector<std::string> warnings;
  std::string note;
};

struct Selection {
  std::vector<std::string> sessions;  // B, in draw order
  SelectionReport report;
};

namespace detail {

// Linear interpolation between order statistics (the common "type 7" quantile).
inline double quantile_sorted(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const double h = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(h));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - double(lo)) * (v[hi] - v[lo]);
}

}  // namespace detail

inline PercentileStats percentile_stats(std::vector<double> v) {
  PercentileStats s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(v.size());
  s.p05 = detail::quantile_sorted(v, 0.05);
  s.p50 = detail::quantile_sorted(v, 0.50);
  s.p95 = detail::quantile_sorted(v, 0.95);
  return s;
}

// The report as a JSON object (fixed key order, one key per line; numbers shortest round-trip).
inline std::string selection_report_json(const SelectionReport& r) {
  using io::json_number;
  using io::json_quote;
  std::string o = "{\n";
  const auto line = [&](std::string_view key, const std::string& value, bool last = false) {
    o += "  " + json_quote(key) + ": " + value + (last ? "\n" : ",\n");
  };
  line("strategy", json_quote(r.strategy));
  line("sampling", r.sampling.empty() ? "null" : json_quote(r.sampling));
  line("seed", std::to_string(r.seed));
  line("budget", std::to_string(r.budget));
  line("pool_size", std::to_string(r.pool_size));
  line("drawn", std::to_string(r.drawn));
  line("answered", std::to_string(r.answered));
  line("unusable", std::to_string(r.unusable));
  line("skipped", std::to_string(r.skipped));
  line("coverage", json_number(r.coverage));
  line("shortfall", std::to_string(r.shortfall));
  line("proposals", std::to_string(r.proposals));
  if (r.has_policy) {
    const double frac = r.pool_size ? double(r.k_star) / double(r.pool_size) : 0.0;
    line("policy", "{\"k_star\": " + std::to_string(r.k_star) + ", \"k_star_fraction\": " + json_number(frac) +
                       ", \"gamma\": " + json_number(r.gamma) + ", \"gamma_scaled\": " + json_number(r.gamma_scaled) +
                       ", \"m\": " + std::to_string(r.m) + ", \"support\": " + std::to_string(r.support) +
                       ", \"degenerate\": " + (r.degenerate ? "true" : "false") +
                       ", \"legacy_maxmin_support\": " + (r.legacy_maxmin_support ? "true" : "false") + "}");
  } else {
    line("policy", "null");
  }
  const auto& p = r.percentiles;
  line("selected_percentiles", "{\"count\": " + std::to_string(p.count) + ", \"p05\": " + json_number(p.p05) +
                                   ", \"p50\": " + json_number(p.p50) + ", \"p95\": " + json_number(p.p95) +
                                   ", \"mean\": " + json_number(p.mean) + "}");
  std::string skips = "[";
  for (size_t i = 0; i < r.skips.size(); ++i)
    skips += std::string(i ? ", " : "") + "{\"session_id\": " + json_quote(r.skips[i].session_id) +
             ", \"reason\": " + json_quote(r.skips[i].reason) + "}";
  line("skips", skips + "]");
  std::string warnings = "[";
  for (size_t i = 0; i < r.warnings.size(); ++i) warnings += std::string(i ? ", " : "") + json_quote(r.warnings[i]);
  line("warnings", warnings + "]");
  line("note", json_quote(r.note), true);
  return o + "}\n";
}

// ---------------------------------------------------------------------------------------------
// Strategies

struct StrategyConfig {
  std::string name;
  double rho_ef = 0.1, rho_si = 0.5, rho_in = 0.4, mu = 10, rad_bc_correct = 0.6;
  std::string sampling = "fixed";  // fixed (reference) | sequential (upstream, Q12)
  bool legacy_maxmin_support = false;  // Q11: p*_{k*} = 0 as well
  std::vector<std::string> replay_list;
};

inline constexpr const char* kStrategyNames = "alkdrec, rad_bc, random, hardest, easiest, replay, teacher_only";

// The strategy part of every random key: a strategy's draws never share counters with another's.
enum class StrategyId : uint32_t { alkdrec = 1, rad_bc = 2, random = 3 };

// A uniform double in [0, 1) with 53 random bits: draw `counter` of strategy `id`.
inline double selection_uniform(uint64_t seed, StrategyId id, uint64_t counter) {
  const auto r = bits4(seed, Stream::selection, uint32_t(id), uint32_t(counter >> 32), uint32_t(counter), 0);
  const uint64_t x = ((uint64_t(r[0]) << 32) | r[1]) >> 11;
  return double(x) * 0x1p-53;
}

// A uniform integer in [0, n) (n > 0): 64 random bits scaled by n (bias below n/2^64).
inline uint64_t selection_below(uint64_t seed, StrategyId id, uint64_t counter, uint64_t n) {
  const auto r = bits4(seed, Stream::selection, uint32_t(id), uint32_t(counter >> 32), uint32_t(counter), 0);
  const uint64_t x = (uint64_t(r[0]) << 32) | r[1];
  return uint64_t((unsigned __int128)x * n >> 64);
}

namespace detail {

// The bookkeeping every strategy shares: which pool positions are taken, B, the counts.
class Drawer {
 public:
  Drawer(const std::vector<PoolEntry>& pool, size_t budget, const OracleView& oracle, SelectionReport& report)
      : pool_(pool), budget_(budget), oracle_(oracle), report_(report), taken_(pool.size(), 0) {}

  bool full() const { return sessions_.size() >= budget_; }
  bool taken(size_t pos) const { return taken_[pos] != 0; }

  // Draws pool position `pos` (not yet taken): asks the oracle; a missing answer is skipped.
  // Returns whether the session joined B.
  bool draw(size_t pos) {
    taken_[pos] = 1;
    ++report_.drawn;
    const std::string& id = pool_[pos].session_id;
    const AnswerState s = oracle_(id);
    if (s == AnswerState::missing) {
      skip(id, "no_answer");
      return false;
    }
    ++report_.answered;
    if (s == AnswerState::unusable) ++report_.unusable;
    sessions_.push_back(id);
    positions_.push_back(pos);
    return true;
  }

  // A replay entry that cannot be drawn (not in the pool, or already drawn).
  void skip_entry(const std::string& id, const char* reason) {
    ++report_.drawn;
    skip(id, reason);
  }

  std::vector<std::string> finish() {
    report_.coverage = report_.drawn ? double(report_.answered) / double(report_.drawn) : 0.0;
    report_.shortfall = budget_ > sessions_.size() ? budget_ - sessions_.size() : 0;
    std::vector<double> pct;
    pct.reserve(positions_.size());
    for (size_t pos : positions_) pct.push_back(double(pos + 1) / double(pool_.size()));
    report_.percentiles = percentile_stats(std::move(pct));
    return std::move(sessions_);
  }

 private:
  void skip(const std::string& id, const char* reason) {
    ++report_.skipped;
    report_.skips.push_back({id, reason});
  }

  const std::vector<PoolEntry>& pool_;
  size_t budget_;
  const OracleView& oracle_;
  SelectionReport& report_;
  std::vector<char> taken_;
  std::vector<std::string> sessions_;
  std::vector<size_t> positions_;
};

// `fixed` sampling: proposals i.i.d. ∝ p* by inverse CDF; a proposal already taken (drawn or
// skipped) is discarded. That is successive sampling without replacement ∝ p*. So that the
// rejections stay cheap when most of the mass is gone, the CDF is rebuilt over the untaken
// support whenever taken entries hold half of its mass; conditioning a distribution on a
// subset is the same whether done by rejection or by renormalising, so the law is unchanged.
// Stops when B is full or every support position is taken (the rest is the shortfall).
inline void sample_fixed(const std::vector<double>& p, Drawer& d, uint64_t seed, StrategyId id,
                         SelectionReport& report) {
  std::vector<size_t> pos;       // positions of the current CDF
  std::vector<long double> cdf;  // cumulative mass over pos
  long double taken_mass = 0;
  const auto rebuild = [&] {
    pos.clear();
    cdf.clear();
    long double c = 0;
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] > 0 && !d.taken(i)) {
        c += p[i];
        pos.push_back(i);
        cdf.push_back(c);
      }
    taken_mass = 0;
  };
  rebuild();
  uint64_t counter = 0;
  while (!d.full() && !pos.empty()) {
    const long double total = cdf.back();
    const long double t = (long double)selection_uniform(seed, id, counter++) * total;
    ++report.proposals;
    size_t k = size_t(std::upper_bound(cdf.begin(), cdf.end(), t) - cdf.begin());
    if (k >= pos.size()) k = pos.size() - 1;  // t rounded up to the total
    const size_t i = pos[k];
    if (d.taken(i)) continue;  // a repeat: discarded
    d.draw(i);
    taken_mass += p[i];
    if (taken_mass * 2 >= total) rebuild();
  }
}

// `sequential` sampling (upstream, Q12): before each draw the policy is recomputed on the
// untaken positions, re-indexed 1..N′ in pool order; the drawn position leaves the pool.
template <class PolicyOf>
void sample_sequential(size_t N, const PolicyOf& policy_of, Drawer& d, uint64_t seed, StrategyId id,
                       SelectionReport& report) {
  std::vector<size_t> remaining(N);
  for (size_t i = 0; i < N; ++i) remaining[i] = i;
  uint64_t counter = 0;
  while (!d.full() && !remaining.empty()) {
    const MaxMinPolicy pol = policy_of(remaining.size());
    if (pol.support == 0) break;
    const double t = selection_uniform(seed, id, counter++);
    ++report.proposals;
    double c = 0;
    size_t k = 0, last_positive = 0;
    bool found = false;
    for (size_t j = 0; j < pol.p.size(); ++j) {
      if (pol.p[j] <= 0) continue;
      last_positive = j;
      c += pol.p[j];
      if (t < c) {
        k = j;
        found = true;
        break;
      }
    }
    if (!found) k = last_positive;  // rounding left t above the summed mass
    const size_t i = remaining[k];
    remaining.erase(remaining.begin() + long(k));
    d.draw(i);
  }
}

}  // namespace detail

// Runs strategy `cfg.name` on the pool (hardest first: the vector's order is the ranking; the
// difficulties are not read) until |B| = budget or nothing is left to draw. `warnings` gets the
// printed warnings (they are also in the report); nullptr = silent.
inline Selection select(const StrategyConfig& cfg, const std::vector<PoolEntry>& pool_hardest_first, size_t budget,
                        const OracleView& oracle, uint64_t seed, std::ostream* warnings = &std::cerr) {
  const std::string& name = cfg.name;
  const bool policy = name == "alkdrec" || name == "rad_bc";
  if (!policy && name != "random" && name != "hardest" && name != "easiest" && name != "replay" &&
      name != "teacher_only")
    fail("selection: unknown strategy '", name, "'; expected one of ", kStrategyNames);
  if (policy && cfg.sampling != "fixed" && cfg.sampling != "sequential")
    fail("selection: sampling must be fixed or sequential, found '", cfg.sampling, "'");

  Selection sel;
  SelectionReport& rep = sel.report;
  rep.strategy = name;
  rep.seed = seed;
  rep.budget = budget;
  const size_t N = pool_hardest_first.size();
  rep.pool_size = N;
  if (name == "teacher_only") {
    rep.note = "teacher_only (TR): no selection and no LLM answers; the distillation stage uses every train "
               "instance with the teacher's top-50 items";
    return sel;
  }
  if (!oracle) fail("selection: strategy ", name, " needs an oracle view");

  std::unordered_map<std::string, size_t> where;
  where.reserve(N);
  for (size_t i = 0; i < N; ++i) {
    const auto [it, fresh] = where.emplace(pool_hardest_first[i].session_id, i);
    if (!fresh)
      fail("selection pool: session id ", pool_hardest_first[i].session_id, " appears twice (positions ",
           it->second + 1, " and ", i + 1, ")");
  }

  detail::Drawer d(pool_hardest_first, budget, oracle, rep);
  const auto warn = [&](const std::string& text) {
    rep.warnings.push_back(text);
    if (warnings) *warnings << "warning: selection: " << text << "\n";
  };

  if (policy) {
    const bool alkdrec = name == "alkdrec";
    const Ratios ratios{cfg.rho_ef, cfg.rho_si, cfg.rho_in};
    const auto policy_of = [&](size_t n) {
      return alkdrec ? maxmin_policy(n, ratios, cfg.mu, cfg.legacy_maxmin_support)
                     : rad_bc_policy(n, cfg.rad_bc_correct, cfg.mu, cfg.legacy_maxmin_support);
    };
    const MaxMinPolicy pol = policy_of(N);  // validates the config even for an empty pool
    rep.sampling = cfg.sampling;
    rep.has_policy = true;
    rep.k_star = pol.k_star;
    rep.m = pol.m;
    rep.support = pol.support;
    rep.gamma = pol.gamma;
    rep.gamma_scaled = pol.gamma_scaled;
    rep.degenerate = pol.degenerate;
    rep.legacy_maxmin_support = cfg.legacy_maxmin_support;
    if (pol.degenerate) warn(degenerate_warning(name, pol));
    if (N > 0 && pol.support == 0) warn(name + ": the policy's support is empty (legacy_maxmin_support with k* = 1)");
    const StrategyId id = alkdrec ? StrategyId::alkdrec : StrategyId::rad_bc;
    if (cfg.sampling == "fixed")
      detail::sample_fixed(pol.p, d, seed, id, rep);
    else
      detail::sample_sequential(N, policy_of, d, seed, id, rep);
    if (rep.answered < budget && rep.drawn < N)
      rep.note = "the policy's support was exhausted before the budget was met (positions beyond it are never drawn)";
  } else if (name == "random") {
    // Fisher–Yates, one step per draw: position j gets a uniform pick among the untouched rest.
    std::vector<size_t> order(N);
    for (size_t i = 0; i < N; ++i) order[i] = i;
    for (size_t j = 0; j < N && !d.full(); ++j) {
      const size_t r = j + size_t(selection_below(seed, StrategyId::random, j, N - j));
      std::swap(order[j], order[r]);
      ++rep.proposals;
      d.draw(order[j]);
    }
  } else if (name == "hardest") {
    for (size_t i = 0; i < N && !d.full(); ++i) d.draw(i);
  } else if (name == "easiest") {
    for (size_t i = N; i > 0 && !d.full(); --i) d.draw(i - 1);
  } else {  // replay
    if (cfg.replay_list.empty()) fail("selection: replay needs a non-empty replay list (a selection file)");
    for (size_t j = 0; j < cfg.replay_list.size() && !d.full(); ++j) {
      const std::string& id = cfg.replay_list[j];
      const auto it = where.find(id);
      if (it == where.end())
        d.skip_entry(id, "not_in_pool");
      else if (d.taken(it->second))
        d.skip_entry(id, "repeated");
      else
        d.draw(it->second);
    }
  }
  sel.sessions = d.finish();
  if (rep.shortfall > 0 && rep.note.empty())
    rep.note = "the pool (or the replay list) ran out before the budget was met";
  return sel;
}

// ---------------------------------------------------------------------------------------------
// Selection files: one session id per line (data/alkdrec-ml/selections/*.txt)

// A session id is 1 to 20 decimal digits without leading zeros (20 digits hold any uint64).
inline constexpr size_t kMaxSessionIdDigits = 20;

// The ids of a selection file, in order. A UTF-8 BOM, CRLF line ends and a missing final line
// end are accepted. Errors name the file and the 1-based line. Repeated ids are kept (the
// shipped files are appended runs); check_distinct_prefix checks the part a run uses.
inline std::vector<std::string> parse_selection_text(std::string_view text, const std::string& name) {
  data::detail::LineReader lines(text);
  std::vector<std::string> ids;
  std::string_view line;
  while (lines.next(line)) {
    const size_t ln = lines.lineno();
    if (line.empty())
      fail(name, ":", ln, ": expected a session id (digits), found an empty line", data::detail::truncation_hint(lines));
    if (line.size() > kMaxSessionIdDigits)
      fail(name, ":", ln, ": expected a session id of at most ", kMaxSessionIdDigits, " digits, found ", line.size(),
           " characters: ", data::detail::printable(line));
    for (size_t c = 0; c < line.size(); ++c)
      if (line[c] < '0' || line[c] > '9')
        fail(name, ":", ln, ":", c + 1, ": expected a session id (digits only, one per line), found ",
             data::detail::printable(line));
    if (line.size() > 1 && line[0] == '0')
      fail(name, ":", ln, ": expected a session id without leading zeros, found ", data::detail::printable(line));
    ids.emplace_back(line);
  }
  if (ids.empty()) fail(name, ": expected one session id per line, found an empty file");
  return ids;
}

inline std::vector<std::string> read_selection_file(const std::string& path) {
  return parse_selection_text(data::detail::read_whole_file(path), path);
}

// The first n ids (all, if fewer) are distinct; otherwise an error naming both lines
// (line = index + 1, as parse_selection_text keeps one id per line).
inline void check_distinct_prefix(const std::vector<std::string>& ids, size_t n, const std::string& name) {
  std::unordered_map<std::string_view, size_t> first;
  const size_t upto = std::min(n, ids.size());
  first.reserve(upto);
  for (size_t i = 0; i < upto; ++i) {
    const auto [it, fresh] = first.emplace(ids[i], i);
    if (!fresh)
      fail(name, ":", i + 1, ": expected the first ", n, " session ids to be distinct, found ", ids[i],
           " again (first on line ", it->second + 1, ")");
  }
}

// The §1.1 facts of a shipped selection file: its first n ids are distinct, training sessions,
// and sessions with a recorded answer. Otherwise an error naming the file and the line.
inline void check_shipped_selection(const std::vector<std::string>& ids, size_t n, const std::string& name,
                                    const std::unordered_set<std::string>& train_sessions,
                                    const std::unordered_set<std::string>& answered) {
  if (ids.size() < n) fail(name, ": expected at least ", n, " session ids (spec §1.1), found ", ids.size());
  check_distinct_prefix(ids, n, name);
  for (size_t i = 0; i < n; ++i) {
    if (!train_sessions.count(ids[i]))
      fail(name, ":", i + 1, ": session ", ids[i], " is not a training session (spec §1.1: the first ", n,
           " ids of a shipped selection file are)");
    if (!answered.count(ids[i]))
      fail(name, ":", i + 1, ": session ", ids[i], " has no recorded answer (spec §1.1: the first ", n,
           " ids of a shipped selection file have one)");
  }
}

}  // namespace recdistill::alkd
