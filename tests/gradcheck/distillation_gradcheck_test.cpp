// Profile distillation's parts (specs/profile-distillation.md §3, §5): finite-difference
// checks of every aggregator (masked and upstream) and reconstruction loss, and the spec's
// conformance tests 1, 2, 3 and 6 (§17). Double precision; loss = <output, R> for a fixed
// random R unless the part is a loss itself.
#include <gtest/gtest.h>

#include "../test_util.hpp"
#include "recdistill/aggregators/aggregators.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/reconstruction.hpp"
#include "recdistill/methods/distillation_head.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using rdtest::dot;
using rdtest::gradcheck;
using rdtest::randn;
constexpr double kTol = 1e-6;

namespace {

// Aggregates h (Bn, L, d) of left-padded windows with `lengths` real items; returns H.
template <class Agg>
std::vector<double> aggregate(const Agg& agg, const std::vector<double>& h, const std::vector<double>& params,
                              const std::vector<int>& lengths, int L, int d, bool mask_padding,
                              aggregators::Work<B, double>& w) {
  aggregators::Slots s;
  aggregators::left_padded_slots(s, lengths, L);
  w.reserve(int(lengths.size()), L);
  aggregators::prepare(agg, s, mask_padding, w);
  std::vector<double> H(lengths.size() * size_t(d));
  aggregators::forward(agg, H.data(), h.data(), params.data(), w, d);
  return H;
}

template <class Agg>
void check_aggregator(const Agg& agg, bool mask_padding) {
  const int L = 5, d = 3;
  const std::vector<int> lengths = {5, 2, 0, 1};
  const int Bn = int(lengths.size());
  auto h = randn(size_t(Bn) * L * d, 31), Rg = randn(size_t(Bn) * d, 32);
  auto params = randn(size_t(Agg::n_params(d)), 33);
  aggregators::Work<B, double> w;
  auto loss = [&] { return dot(aggregate(agg, h, params, lengths, L, d, mask_padding, w), Rg); };
  loss();
  std::vector<double> dh(h.size(), 0.0), dparams(params.size(), 0.0);
  aggregators::backward(agg, dh.data(), dparams.data(), Rg.data(), h.data(), params.data(), w, d);
  EXPECT_LT(gradcheck(h, dh, loss), kTol) << Agg::name << " mask_padding " << mask_padding;
  if (!params.empty()) {
    EXPECT_LT(gradcheck(params, dparams, loss), kTol) << Agg::name;
    EXPECT_EQ(dparams[size_t(d)], 0.0);  // conformance 3: the score bias gets exactly no gradient
  }
  // A row without a slot (masked, empty history) aggregates to 0.
  if (mask_padding) {
    const auto H = aggregate(agg, h, params, lengths, L, d, mask_padding, w);
    for (int c = 0; c < d; ++c) EXPECT_EQ(H[size_t(2 * d + c)], 0.0) << Agg::name;
    EXPECT_FALSE(w.nonempty[2]);
  }
}

}  // namespace

TEST(DistillGradCheck, Aggregators) {
  for (bool masked : {true, false}) {
    check_aggregator(aggregators::Mean{}, masked);
    check_aggregator(aggregators::ExpWeight{0.3}, masked);
    check_aggregator(aggregators::LastItem{}, masked);
    check_aggregator(aggregators::Attention{}, masked);
  }
}

// Conformance 1: upstream mean (every slot counts) of rows whose pad slots are exactly 0
// (SASRec, k >= 0) is the sum of the real rows divided by L; masked, by n.
TEST(DistillConformance, UnmaskedMeanDividesByL) {
  const int L = 6, d = 4;
  const std::vector<int> lengths = {2, 6};
  auto h = randn(size_t(2) * L * d, 41);
  for (int t = 0; t < L - 2; ++t)
    for (int c = 0; c < d; ++c) h[size_t(t * d + c)] = 0.0;  // row 0's pad slots
  aggregators::Work<B, double> w;
  const auto up = aggregate(aggregators::Mean{}, h, {}, lengths, L, d, false, w);
  const auto masked = aggregate(aggregators::Mean{}, h, {}, lengths, L, d, true, w);
  for (int c = 0; c < d; ++c) {
    const double real_sum = h[size_t((L - 2) * d + c)] + h[size_t((L - 1) * d + c)];
    EXPECT_NEAR(up[size_t(c)], real_sum / L, 1e-15);
    EXPECT_NEAR(masked[size_t(c)], real_sum / 2, 1e-15);
  }
}

// Conformance 2: masked exp_weight does not depend on how much padding the window has, and
// gamma = 0 is the mean; left- and right-padded windows aggregate alike.
TEST(DistillConformance, ExpWeightIgnoresPaddingAndGammaZeroIsMean) {
  const int d = 3, n = 4;
  const auto real_rows = randn(size_t(n) * d, 42);
  aggregators::Work<B, double> w;
  std::vector<double> first;
  for (int L : {4, 7, 11}) {
    std::vector<double> h(size_t(L) * d, 9.0);  // pad rows: anything
    std::copy(real_rows.begin(), real_rows.end(), h.begin() + long(L - n) * d);
    const auto H = aggregate(aggregators::ExpWeight{0.5}, h, {}, {n}, L, d, true, w);
    if (first.empty()) first = H;
    for (int c = 0; c < d; ++c) EXPECT_NEAR(H[size_t(c)], first[size_t(c)], 1e-15) << "L " << L;
    const auto e0 = aggregate(aggregators::ExpWeight{0.0}, h, {}, {n}, L, d, true, w);
    const auto mean = aggregate(aggregators::Mean{}, h, {}, {n}, L, d, true, w);
    for (int c = 0; c < d; ++c) EXPECT_NEAR(e0[size_t(c)], mean[size_t(c)], 1e-15);
  }
  // The same items right-padded (newest real item first in recency, pads at the end).
  const int L = 7;
  std::vector<double> h(size_t(L) * d, -3.0);
  std::copy(real_rows.begin(), real_rows.end(), h.begin());
  aggregators::Slots s;
  s.Bn = 1;
  s.L = L;
  s.real.assign(size_t(L), 0);
  s.recency.assign(size_t(L), 0);
  for (int t = 0; t < L; ++t) {
    s.real[size_t(t)] = t < n;
    s.recency[size_t(t)] = t < n ? n - 1 - t : L - 1 - t;
  }
  w.reserve(1, L);
  for (const bool last : {false, true}) {
    std::vector<double> H(static_cast<size_t>(d));
    if (last) {
      aggregators::prepare(aggregators::LastItem{}, s, true, w);
      aggregators::forward(aggregators::LastItem{}, H.data(), h.data(), static_cast<const double*>(nullptr), w, d);
      for (int c = 0; c < d; ++c) EXPECT_EQ(H[size_t(c)], real_rows[size_t((n - 1) * d + c)]);
    } else {
      aggregators::prepare(aggregators::ExpWeight{0.5}, s, true, w);
      aggregators::forward(aggregators::ExpWeight{0.5}, H.data(), h.data(), static_cast<const double*>(nullptr), w, d);
      for (int c = 0; c < d; ++c) EXPECT_NEAR(H[size_t(c)], first[size_t(c)], 1e-15);
    }
  }
}

namespace {

template <class Loss>
void check_loss() {
  const int Bn = 5, D = 4;
  auto p = randn(size_t(Bn) * D, 51), y = randn(size_t(Bn) * D, 52);
  const std::vector<uint8_t> usable = {1, 0, 1, 1, 0};
  losses::ReconstructionWork<B, double> w;
  w.reserve(Bn, D);
  w.set_usable(usable);
  auto loss = [&] { return Loss::value(p.data(), y.data(), w); };
  const double l = loss();
  // The value, from its definition over the usable rows.
  double sq = 0, cos_sum = 0;
  for (int u = 0; u < Bn; ++u) {
    if (!usable[size_t(u)]) continue;
    double pp = 0, yy = 0, py = 0;
    for (int c = 0; c < D; ++c) {
      const double a = p[size_t(u * D + c)], b = y[size_t(u * D + c)];
      sq += (a - b) * (a - b);
      pp += a * a;
      yy += b * b;
      py += a * b;
    }
    cos_sum += py / (std::sqrt(pp) * std::sqrt(yy));
  }
  const double expect = Loss::name == "MSE" ? sq / (3 * D) : Loss::name == "RMSE" ? std::sqrt(sq / (3 * D)) : 1 - cos_sum / 3;
  EXPECT_NEAR(l, expect, 1e-14) << Loss::name;
  std::vector<double> dp(p.size()), dy(y.size());
  Loss::backward(dp.data(), dy.data(), 1.0, w);
  EXPECT_LT(gradcheck(p, dp, loss), kTol) << Loss::name;
  EXPECT_LT(gradcheck(y, dy, loss), kTol) << Loss::name;
  // The scale multiplies the gradients (alpha * beta).
  loss();
  std::vector<double> dp2(p.size());
  Loss::backward(dp2.data(), static_cast<double*>(nullptr), 2.5, w);
  for (size_t i = 0; i < dp.size(); ++i) EXPECT_NEAR(dp2[i], 2.5 * dp[i], 1e-15);
  // Conformance 6: a batch without a usable row gives a zero loss and finite, zero gradients.
  w.set_usable(std::vector<uint8_t>(size_t(Bn), 0));
  EXPECT_EQ(loss(), 0.0);
  Loss::backward(dp.data(), dy.data(), 1.0, w);
  for (size_t i = 0; i < dp.size(); ++i) {
    EXPECT_EQ(dp[i], 0.0) << Loss::name;
    EXPECT_EQ(dy[i], 0.0) << Loss::name;
  }
  // p = y on the usable rows: RMSE's gradient is 0 there, not NaN.
  w.set_usable(usable);
  EXPECT_NEAR(Loss::value(y.data(), y.data(), w), 0.0, 1e-15);
  Loss::backward(dp.data(), dy.data(), 1.0, w);
  for (double g : dp) EXPECT_TRUE(std::isfinite(g)) << Loss::name;
}

}  // namespace

TEST(DistillGradCheck, ReconstructionLosses) {
  check_loss<losses::MSE>();
  check_loss<losses::RMSE>();
  check_loss<losses::Cosine>();
}

namespace {

struct HeadCase {
  methods::Projection projection;
  bool detach_target = false;
  methods::NullProfileMode null_mode = methods::NullProfileMode::drop;
  int K = 1;
  methods::Combiner combiner = methods::Combiner::mean;
  bool mask_missing = true;
};

// The whole head: loss = L_distil(h, params) over a batch with an empty history (row 2) and a
// user without a profile (row 3). Returns the analytic gradients of h and params.
template <class Agg, class Loss>
void check_head(const Agg& agg, const HeadCase& hc) {
  using Head = methods::DistillationHead<B, double, Agg, Loss>;
  const std::vector<int> lengths = {4, 1, 0, 3, 2};
  const std::vector<uint8_t> has_profile = {1, 1, 1, 0, 1};
  const int Bn = int(lengths.size()), L = 4, d = 3;
  methods::DistillHeadConfig c;
  c.d = d;
  c.D = hc.projection == methods::Projection::none || hc.projection == methods::Projection::both ? d : 5;
  c.L = L;
  c.max_rows = 8;
  c.projection = hc.projection;
  c.detach_target = hc.detach_target;
  c.null_profile_mode = hc.null_mode;
  c.K = hc.K;
  c.combiner = hc.combiner;
  c.mask_missing_profiles = hc.mask_missing;
  Head head(c, agg);
  ParamLayout layout;
  head.describe(layout);
  std::vector<double> params(layout.size());
  head.init(params, 7);
  for (double v : params) ASSERT_LE(std::abs(v), 1.0);  // U(+-1/sqrt(fan_in))
  auto h = randn(size_t(Bn) * L * d, 61);
  auto profiles = randn(size_t(Bn) * hc.K * c.D, 62);
  // K = 1: row 3 has no profile. K = 3: rows 0-4 have {all, 0 and 2, 0 and 1, none, 1}.
  const std::vector<uint8_t> multi = {1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0};
  const std::vector<uint8_t>& available = hc.K == 1 ? has_profile : multi;
  // A missing profile is a zero vector, as the objective fills it (upstream_zero combines it).
  for (size_t r = 0; r < available.size(); ++r)
    if (!available[r]) std::fill(profiles.begin() + long(r) * c.D, profiles.begin() + long(r + 1) * c.D, 0.0);
  aggregators::Slots slots;
  aggregators::left_padded_slots(slots, lengths, L);
  auto loss = [&] { return head.forward(params.data(), h.data(), slots, profiles, available); };
  const double l = loss();
  EXPECT_TRUE(std::isfinite(l));
  EXPECT_EQ(head.usable_count(), 3);  // rows 0, 1, 4
  std::vector<double> grads(params.size(), 0.0), dh(h.size(), 0.0);
  head.backward(grads.data(), dh.data(), params.data(), 1.0);
  const std::string what = cat(Agg::name, " ", Loss::name, " projection ", int(hc.projection), hc.detach_target ? " detached" : "",
                               " K ", hc.K, " combiner ", int(hc.combiner), hc.mask_missing ? "" : " upstream_zero");
  EXPECT_LT(gradcheck(h, dh, loss), kTol) << what;
  for (const auto& p : layout.infos()) {
    std::vector<double> sub(params.begin() + long(p.offset), params.begin() + long(p.offset + p.size));
    const std::vector<double> g(grads.begin() + long(p.offset), grads.begin() + long(p.offset + p.size));
    if (hc.detach_target && (p.name.starts_with("profile_transform") || p.name.starts_with("profile_combiner"))) {
      for (double x : g) EXPECT_EQ(x, 0.0) << what << " " << p.name;  // T gets no gradient
      continue;
    }
    auto sub_loss = [&] {
      std::copy(sub.begin(), sub.end(), params.begin() + long(p.offset));
      return loss();
    };
    EXPECT_LT(gradcheck(sub, g, sub_loss), kTol) << what << " " << p.name;
    std::copy(sub.begin(), sub.end(), params.begin() + long(p.offset));
  }
  // The empty history (row 2) sends no gradient into its tap.
  for (int i = 0; i < L * d; ++i) EXPECT_EQ(dh[size_t(2 * L * d + i)], 0.0) << what;
}

}  // namespace

TEST(DistillGradCheck, HeadEveryProjectionAndLoss) {
  using methods::Projection;
  for (Projection p : {Projection::down, Projection::up, Projection::none, Projection::both}) {
    check_head<aggregators::Mean, losses::MSE>(aggregators::Mean{}, {p});
    check_head<aggregators::Attention, losses::RMSE>(aggregators::Attention{}, {p});
    check_head<aggregators::ExpWeight, losses::Cosine>(aggregators::ExpWeight{0.1}, {p});
  }
  check_head<aggregators::LastItem, losses::MSE>(aggregators::LastItem{}, {Projection::down, true});
  check_head<aggregators::Mean, losses::MSE>(aggregators::Mean{}, {Projection::down, false, methods::NullProfileMode::upstream_copy});
  check_head<aggregators::Mean, losses::RMSE>(aggregators::Mean{}, {Projection::up, false, methods::NullProfileMode::upstream_copy});
  // Multi-profile targets: three profiles per user, combined by mean or attention, missing ones
  // masked or (upstream) joining as zero vectors.
  for (Projection p : {Projection::down, Projection::up})
    for (auto comb : {methods::Combiner::mean, methods::Combiner::attention})
      for (bool mask_missing : {true, false}) {
        const auto nm = methods::NullProfileMode::drop;
        check_head<aggregators::Mean, losses::MSE>(aggregators::Mean{}, {p, false, nm, 3, comb, mask_missing});
        check_head<aggregators::Attention, losses::Cosine>(aggregators::Attention{}, {p, false, nm, 3, comb, mask_missing});
      }
  check_head<aggregators::Mean, losses::MSE>(aggregators::Mean{}, {Projection::down, true, methods::NullProfileMode::drop, 3,
                                                                   methods::Combiner::attention});
  // D must equal d for `none` and `both`.
  methods::DistillHeadConfig c;
  c.d = 4;
  c.D = 6;
  c.projection = Projection::none;
  try {
    methods::DistillationHead<B, double, aggregators::Mean, losses::MSE> head(c, {});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("projection none needs the profile width D (6) to equal model.hidden_units (4)"),
              std::string::npos) << e.what();
  }
}

// Conformance 5: with beta (a detached L_rec / (L_distil + 1e-8)) the update alpha * beta *
// grad L_distil is the same under `drop` and `upstream_copy` (their per-batch factor cancels).
TEST(DistillConformance, BetaCancelsTheNullProfileFactor) {
  const double alpha = 0.4, l_rec = 3.7;
  std::vector<std::vector<double>> updates;
  for (auto mode : {methods::NullProfileMode::drop, methods::NullProfileMode::upstream_copy}) {
    methods::DistillHeadConfig c;
    c.d = 3;
    c.D = 5;
    c.L = 4;
    c.max_rows = 8;
    c.null_profile_mode = mode;
    methods::DistillationHead<B, double, aggregators::Mean, losses::MSE> head(c, {});
    ParamLayout layout;
    head.describe(layout);
    std::vector<double> params(layout.size());
    head.init(params, 7);
    const auto h = randn(size_t(5) * 4 * 3, 71);
    const auto profiles = randn(size_t(5) * 5, 72);
    aggregators::Slots slots;
    aggregators::left_padded_slots(slots, {4, 1, 2, 3, 2}, 4);
    const double l = head.forward(params.data(), h.data(), slots, profiles, {1, 0, 1, 0, 1});
    const double beta = l_rec / (l + 1e-8);
    std::vector<double> grads(params.size(), 0.0), dh(h.size(), 0.0);
    head.backward(grads.data(), dh.data(), params.data(), alpha * beta);
    grads.insert(grads.end(), dh.begin(), dh.end());
    updates.push_back(grads);
  }
  for (size_t i = 0; i < updates[0].size(); ++i)
    EXPECT_NEAR(updates[0][i], updates[1][i], 1e-7 * std::max(1.0, std::abs(updates[0][i]))) << i;
}

}  // namespace RD_TEST_FILE
