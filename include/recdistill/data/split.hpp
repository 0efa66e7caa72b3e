// recdistill/data/split.hpp: the split protocols, each producing a data::Split (docs/data.md).
//
//   loo       leave-one-out by time (RecBole): per user, last item = test target, the one
//             before = validation target, the rest = training sequence.
//   temporal  the global temporal split of the profile-distillation code
//             (specs/profile-distillation.md §9), seeded validation draw.
//   session   the split labels shipped with session data (Dataset::session_split).
//   ratio     contiguous fractions of the users (sessions) in id order: the first
//             floor(r1 * n) train, up to floor((r1 + r2) * n) valid, the rest test; with
//             (0.6, 0.2, 0.2) this reproduces alkdrec-ml's shipped `split` column.
// Users with too few items to give a (history, target) pair give no case; `loo` is the only
// protocol that holds out items of training users.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"

namespace recdistill::data {

inline Split split_loo(const Interactions& d) { return to_split(split_leave_one_out(to_sequences(d))); }

// The p-quantile with linear interpolation between order statistics (numpy's default):
// h = (n - 1) p, q = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
inline double quantile_linear(std::vector<double> x, double p) {
  RD_REQUIRE(!x.empty() && p >= 0 && p <= 1, "quantile_linear needs values and p in [0, 1]");
  std::sort(x.begin(), x.end());
  const double h = double(x.size() - 1) * p;
  const size_t lo = size_t(std::floor(h));
  if (lo + 1 >= x.size()) return x.back();
  return x[lo] + (h - double(lo)) * (x[lo + 1] - x[lo]);
}

// The first k of a seeded Fisher-Yates shuffle of `ids` (Stream::shuffling, counter epoch
// 0xFFFFFFFF, step 1: a slot the per-epoch training shuffles, which count epochs from 0,
// never reach).
inline std::vector<int32_t> seeded_shuffle(std::vector<int32_t> ids, uint64_t seed) {
  for (size_t i = ids.size(); i > 1; --i) {
    const auto r = bits4(seed, Stream::shuffling, 0xFFFFFFFFu, 1, uint32_t(i - 1), 0);
    const uint64_t wide = (uint64_t(r[0]) << 32) | r[1];
    std::swap(ids[i - 1], ids[size_t(wide % i)]);
  }
  return ids;
}

// Global temporal split (profile-distillation §9). q = the `quantile` of all timestamps.
//   train users: first interaction <= q; their interactions <= q are their sequence;
//   test users:  last interaction > q; case = full sequence minus its last item -> last item;
//   valid users: floor(valid_share * #train users) train users, drawn with the seed and
//                removed from train; case = their sequence (<= q) minus its last item -> last.
// A user can be in train (or valid) and in test. Sequences are ordered as to_sequences does.
inline Split split_temporal(const Interactions& d, double quantile, double valid_share, uint64_t seed) {
  RD_REQUIRE(d.size() > 0, "split_temporal needs interactions");
  RD_REQUIRE(valid_share >= 0 && valid_share < 1, "valid_share must be in [0, 1)");
  const double q = quantile_linear(d.timestamp, quantile);
  // Rows per user in time order (stable: file order on ties).
  std::vector<size_t> order(d.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (d.user[a] != d.user[b]) return d.user[a] < d.user[b];
    return d.timestamp[a] < d.timestamp[b];
  });
  Split s;
  s.protocol = "temporal";
  s.n_items = d.items.size();
  s.n_users = d.users.size();
  s.train.resize(size_t(s.n_users));
  std::vector<int32_t> train_users;
  for (size_t k = 0; k < order.size();) {
    const int32_t u = d.user[order[k]];
    size_t e = k;
    while (e < order.size() && d.user[order[e]] == u) ++e;
    if (d.timestamp[order[k]] <= q) {
      train_users.push_back(u);
      for (size_t j = k; j < e && d.timestamp[order[j]] <= q; ++j) s.train[size_t(u)].push_back(d.item[order[j]]);
    }
    if (d.timestamp[order[e - 1]] > q && e - k >= 2) {
      SplitCase c{u, {}, d.item[order[e - 1]]};
      for (size_t j = k; j + 1 < e; ++j) c.history.push_back(d.item[order[j]]);
      s.test.push_back(std::move(c));
    }
    k = e;
  }
  const size_t n_valid = size_t(std::floor(valid_share * double(train_users.size()) + 1e-9));
  auto drawn = seeded_shuffle(train_users, seed);
  drawn.resize(n_valid);
  std::sort(drawn.begin(), drawn.end());  // cases in user order
  for (int32_t u : drawn) {
    auto seq = std::move(s.train[size_t(u)]);
    s.train[size_t(u)].clear();
    if (seq.size() < 2) continue;
    const int32_t target = seq.back();
    seq.pop_back();
    s.valid.push_back({u, std::move(seq), target});
  }
  return s;
}

// Per-user labels to a Split: "train" users train on their whole sequence; "valid" and
// "test" users give one case each: their sequence minus its last item -> the last item.
inline Split split_by_labels(const Interactions& d, const std::vector<std::string>& labels,
                             const std::string& protocol) {
  RD_REQUIRE(labels.size() == size_t(d.users.size()), "one label per user id (including the pad)");
  const auto seqs = to_sequences(d);
  Split s;
  s.protocol = protocol;
  s.n_items = seqs.n_items;
  s.n_users = seqs.n_users;
  s.train.resize(size_t(s.n_users));
  for (size_t u = 1; u < seqs.items.size(); ++u) {
    const auto& seq = seqs.items[u];
    if (labels[u] == "train") {
      s.train[u] = seq;
    } else if (seq.size() >= 2) {
      SplitCase c{int32_t(u), std::vector<int32_t>(seq.begin(), seq.end() - 1), seq.back()};
      (labels[u] == "valid" ? s.valid : s.test).push_back(std::move(c));
    }
  }
  return s;
}

// The shipped labels of session data.
inline Split split_sessions(const Interactions& d) {
  if (d.session_split.empty())
    fail(d.source, ": data.split 'session' needs the split labels of session data (data.format: sessions); "
         "use data.split: ratio for contiguous fractions of other data");
  return split_by_labels(d, d.session_split, "session");
}

// Labels of n users in id order for contiguous fractions (train, valid, test): boundaries
// floor(n * r1) and floor(n * (r1 + r2)), the cumulative fractions rounded to 1e-12 so that
// 0.6 + 0.2 gives the boundary of 0.8.
inline std::vector<std::string> ratio_labels(size_t n, const std::vector<double>& ratios) {
  RD_REQUIRE(ratios.size() == 3, "three ratios (train, valid, test)");
  auto cut = [n](double cum) {
    cum = std::round(cum * 1e12) / 1e12;
    return std::min(n, size_t(std::floor(double(n) * cum)));
  };
  const size_t b1 = cut(ratios[0]), b2 = cut(ratios[0] + ratios[1]);
  std::vector<std::string> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = i < b1 ? "train" : i < b2 ? "valid" : "test";
  return out;
}

inline Split split_ratio(const Interactions& d, const std::vector<double>& ratios) {
  auto labels = ratio_labels(size_t(d.users.size() - 1), ratios);
  labels.insert(labels.begin(), std::string());
  return split_by_labels(d, labels, "ratio");
}

struct SplitOptions {
  std::string protocol = "loo";  // loo | temporal | session | ratio
  double temporal_quantile = 0.8;
  double valid_share = 0.2;  // temporal: share of train users drawn for validation
  std::vector<double> ratios = {0.6, 0.2, 0.2};
};

inline Split make_split(const Interactions& d, const SplitOptions& o, uint64_t seed) {
  if (o.protocol == "loo") return split_loo(d);
  if (o.protocol == "temporal") return split_temporal(d, o.temporal_quantile, o.valid_share, seed);
  if (o.protocol == "session") return split_sessions(d);
  if (o.protocol == "ratio") return split_ratio(d, o.ratios);
  fail("data.split: expected loo, temporal, session or ratio, found '", o.protocol, "'");
}

// data.expected_counts: the loaded data must have exactly these item, training-sequence,
// validation and test counts (a shipped dataset's load-time facts), or the load fails naming each.
inline void check_expected_counts(const std::vector<int>& want, const Dataset& data, const Split& split,
                                  const std::string& source) {
  if (want.empty()) return;
  if (want.size() != 4)
    fail("data.expected_counts: expected [items, training sequences, validation cases, test cases], found ", want.size(), " numbers");
  int64_t train = 0;
  for (const auto& seq : split.train) train += seq.empty() ? 0 : 1;
  const int64_t have[4] = {int64_t(data.items.size()) - 1, train, int64_t(split.valid.size()), int64_t(split.test.size())};
  const char* what[4] = {"items", "training sequences", "validation cases", "test cases"};
  std::string diffs;
  for (int i = 0; i < 4; ++i)
    if (have[i] != want[size_t(i)]) diffs += cat("\n  ", what[i], ": expected ", want[size_t(i)], ", found ", have[i]);
  if (!diffs.empty())
    fail(source, ": the data does not have the counts data.expected_counts gives (a different or damaged copy?):", diffs);
}

}  // namespace recdistill::data
