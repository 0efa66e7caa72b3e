// FPMC's `recbole` variant (backbones/fpmc.hpp, specs/backbones.md §4.1) piece by piece: the
// parameter count and layout against RecBole's, the Xavier-normal init per table, the conversion
// to and from RecBole's four tensors and its safetensors state_dict (names, shapes and order as
// RecBole's module.state_dict(), strict on the way in), the [user, last item] batching and
// queries, RecBole's BPR negatives, the objective's dispatch and the config defaults.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "../common/test_util.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/session_state_dict.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/losses/fpmc_objective.hpp"
#include "recdistill/losses/recbole_bpr.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using test::error_of;

namespace {

FPMCConfig recbole_config(int n_users, int n_items, int d) {
  FPMCConfig c;
  c.variant = FPMCVariant::recbole;
  c.n_users = n_users;
  c.n_items = n_items;
  c.hidden = d;
  c.max_len = 1;
  c.rows = SessionRows::prefixes;
  c.loss = FPMCLoss::bpr;
  return c;
}

io::FPMCExperimentConfig parse(const std::string& text) {
  return io::parse_config<io::FPMCExperimentConfig>(io::ConfigLayers{{{"fpmc.yaml", text}}, {}});
}

}  // namespace

// (U + 3N) d: 383,552 on ml-100k and 985,984 on ml-1m (spec §4.1), as RecBole counts them.
TEST(FpmcRecbole, ParameterCountIsRecBoles) {
  const FPMCRecBole<B> ml100k(recbole_config(944, 1683, 64));
  EXPECT_EQ(ml100k.num_params(), 383552u);
  EXPECT_EQ(ml100k.num_params(), size_t(944 + 3 * 1683) * 64);
  const FPMCRecBole<B> ml1m(recbole_config(6034, 3124, 64));
  EXPECT_EQ(ml1m.num_params(), 985984u);

  std::vector<std::string> names;
  size_t total = 0;
  for (const auto& t : ml100k.reference_tensors()) {
    names.push_back(t.name);
    total += size_t(t.rows) * t.cols;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"UI_emb.weight", "IU_emb.weight", "LI_emb.weight", "IL_emb.weight"}));
  EXPECT_EQ(total, ml100k.num_params());
  // Our layout: the user and last-item tables, and the scorer's item table (N, 2d).
  const auto& infos = ml100k.layout().infos();
  ASSERT_EQ(infos.size(), 3u);
  EXPECT_EQ(infos[0].name, "UI_emb.weight");
  EXPECT_EQ(infos[0].shape, (std::vector<int>{944, 64}));
  EXPECT_EQ(infos[1].name, "LI_emb.weight");
  EXPECT_EQ(infos[1].shape, (std::vector<int>{1683, 64}));
  EXPECT_EQ(infos[2].name, "item_factors");
  EXPECT_EQ(infos[2].shape, (std::vector<int>{1683, 128}));
  const Scorer s = ml100k.scorer();
  EXPECT_EQ(s.table, infos[2].offset);
  EXPECT_EQ(s.bias, -1);
  EXPECT_EQ(s.n_items, 1683);
  EXPECT_EQ(s.dim, 128);
  EXPECT_EQ(ml100k.hidden_size(), 128);
  EXPECT_EQ(ml100k.max_len(), 2);
}

// Xavier-normal on each of RecBole's tables, std sqrt(2 / (rows + d)), every row (LI's pad row
// random, as RecBole's _init_weights leaves it); deterministic for a seed.
TEST(FpmcRecbole, InitIsXavierNormalPerTable) {
  const FPMCRecBole<B> m(recbole_config(944, 1683, 64));
  std::vector<float> p(m.num_params()), p2(m.num_params()), ref(m.num_params());
  m.init(p.data(), 7);
  m.init(p2.data(), 7);
  EXPECT_EQ(p, p2);
  m.init(p2.data(), 8);
  EXPECT_NE(p, p2);
  m.to_reference(p.data(), ref.data());
  size_t at = 0;
  for (const auto& t : m.reference_tensors()) {
    const size_t n = size_t(t.rows) * t.cols;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; ++i) sum += ref[at + i], sq += double(ref[at + i]) * ref[at + i];
    const double mean = sum / double(n), sd = std::sqrt(sq / double(n) - mean * mean);
    const double want = std::sqrt(2.0 / (t.rows + 64.0));
    EXPECT_NEAR(sd / want, 1.0, 0.02) << t.name;
    EXPECT_NEAR(mean / want, 0.0, 0.02) << t.name;
    double row0 = 0;
    for (int c = 0; c < t.cols; ++c) row0 += std::abs(ref[at + size_t(c)]);
    EXPECT_GT(row0, 0.0) << t.name << ": row 0 is drawn too";
    at += n;
  }
}

// item_factors row i is [IU[i], IL[i]]; the conversion is a permutation (exact both ways).
TEST(FpmcRecbole, ItemFactorsInterleaveRecBolesTwoItemTables) {
  const int U = 4, N = 5, d = 3;
  const FPMCRecBole<B, double> m(recbole_config(U, N, d));
  std::vector<double> ref(m.num_params()), ours(m.num_params()), back(m.num_params());
  std::iota(ref.begin(), ref.end(), 0.0);
  m.from_reference(ref.data(), ours.data());
  const size_t iu = size_t(U) * d, li = iu + size_t(N) * d, il = li + size_t(N) * d;
  const auto& info = m.layout().infos();
  for (int i = 0; i < N; ++i)
    for (int c = 0; c < d; ++c) {
      EXPECT_EQ(ours[info[2].offset + size_t(i) * 2 * d + c], ref[iu + size_t(i) * d + c]);
      EXPECT_EQ(ours[info[2].offset + size_t(i) * 2 * d + d + c], ref[il + size_t(i) * d + c]);
      EXPECT_EQ(ours[info[1].offset + size_t(i) * d + c], ref[li + size_t(i) * d + c]);
    }
  for (size_t k = 0; k < size_t(U) * d; ++k) EXPECT_EQ(ours[info[0].offset + k], ref[k]);
  m.to_reference(ours.data(), back.data());
  EXPECT_EQ(back, ref);
}

// A forward pass scores exactly RecBole's UI[u] . IU[i] + LI[last] . IL[i] through the scorer.
TEST(FpmcRecbole, ScoresAreTheUserAndLastItemTerms) {
  const int U = 4, N = 6, d = 3;
  const FPMCRecBole<B, double> m(recbole_config(U, N, d));
  std::vector<double> params(m.num_params()), ref(m.num_params());
  m.init(params.data(), 3);
  m.to_reference(params.data(), ref.data());
  // RecBole's tensors in ref: UI (U, d), then IU, LI, IL (N, d).
  const size_t start[4] = {0, size_t(U) * d, size_t(U + N) * d, size_t(U + 2 * N) * d};
  auto row = [&](int tensor, int i) { return ref.data() + start[tensor] + size_t(i) * d; };
  SeqBatch<B> batch(2, 2);
  batch.rows = 2;
  batch.targets_per_row = 1;
  batch.seq_host = {2, 5, 3, 1};
  batch.upload();
  auto acts = m.make_activations(2);
  m.forward(params.data(), acts, batch.seq.data(), 2, true);
  const double* q = m.output(acts);
  const Scorer s = m.scorer();
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < N; ++i) {
      const int u = batch.seq_host[size_t(2 * b)], last = batch.seq_host[size_t(2 * b + 1)];
      double want = 0, got = 0;
      for (int c = 0; c < d; ++c)
        want += row(0, u)[c] * row(1, i)[c] + row(2, last)[c] * row(3, i)[c];
      for (int c = 0; c < 2 * d; ++c) got += q[size_t(b) * 2 * d + c] * params[s.table + size_t(i) * 2 * d + c];
      EXPECT_NEAR(got, want, 1e-15) << b << " " << i;
    }
}

// Rows: one per target of each training sequence (prefixes) or per sequence (last), laid out as
// [user, the item before the target]; the user table must be the data's.
TEST(FpmcRecbole, BatchingLaysOutUserAndLastItem) {
  const std::vector<std::vector<int32_t>> train = {{}, {1, 2, 3, 4}, {7}, {8, 9}};
  const UserLastItemBatching pre(4, SessionRows::prefixes), last(4, SessionRows::last);
  EXPECT_EQ(pre.length(), 2);
  const auto rows = pre.rows(train);
  ASSERT_EQ(rows.size(), 4u);  // 3 targets of user 1, 1 of user 3; user 2 has none
  std::vector<std::vector<int32_t>> got;
  for (const auto& r : rows) {
    std::vector<int32_t> seq(2);
    const int32_t y = pre.layout(seq.data(), train[size_t(r.user)], r);
    got.push_back({seq[0], seq[1], y});
  }
  EXPECT_EQ(got, (std::vector<std::vector<int32_t>>{{1, 3, 4}, {1, 2, 3}, {1, 1, 2}, {3, 8, 9}}));
  const auto lrows = last.rows(train);
  ASSERT_EQ(lrows.size(), 2u);
  std::vector<int32_t> seq(2);
  EXPECT_EQ(last.layout(seq.data(), train[1], lrows[0]), 4);
  EXPECT_EQ(seq, (std::vector<int32_t>{1, 3}));

  SeqBatch<B> batch(3, 2);
  const uint32_t ids[] = {3, 0, 2};
  pre.fill(batch, train, rows, ids, 3);
  EXPECT_EQ(batch.rows, 3);
  EXPECT_EQ(batch.target_rows(), 3);
  EXPECT_EQ(std::vector<int32_t>(batch.seq_host.begin(), batch.seq_host.begin() + 6),
            (std::vector<int32_t>{3, 8, 1, 3, 1, 1}));
  EXPECT_EQ(std::vector<int32_t>(batch.target_host.begin(), batch.target_host.begin() + 3),
            (std::vector<int32_t>{9, 4, 2}));

  const UserLastItemBatching wrong(944, SessionRows::prefixes);
  EXPECT_NE(error_of([&] { wrong.rows(train); }).find("the data has 3 users, so model.n_users must be 4"),
            std::string::npos)
      << error_of([&] { wrong.rows(train); });
}

// query() builds [case.user, last history item] and gives the state a training row gets; a case
// without a user (recommend's anonymous histories) or outside the user table is refused.
TEST(FpmcRecbole, QueryIsTheUserAndTheLastHistoryItem) {
  const FPMCRecBole<B, double> m(recbole_config(5, 9, 4));
  std::vector<double> params(m.num_params());
  m.init(params.data(), 11);
  const std::vector<int32_t> h1 = {4, 2, 7}, h2 = {5};
  const std::vector<eval::Case> cases = {{h1.data(), h1.size(), 3, 2}, {h2.data(), h2.size(), 8, 4}};
  auto acts = m.make_activations(4);
  std::vector<double> q(size_t(4) * m.hidden_size());
  m.query(params.data(), acts, cases.data(), cases.size(), 4, q.data());
  SeqBatch<B> batch(2, 2);
  batch.rows = 2;
  batch.seq_host = {2, 7, 4, 5};
  batch.upload();
  auto tacts = m.make_activations(2);
  m.forward(params.data(), tacts, batch.seq.data(), 2, true);
  EXPECT_EQ(std::vector<double>(q.begin(), q.begin() + 2 * m.hidden_size()),
            std::vector<double>(m.output(tacts), m.output(tacts) + 2 * m.hidden_size()));

  const eval::Case anonymous{h1.data(), h1.size(), 0, 0};
  EXPECT_NE(error_of([&] { m.query(params.data(), acts, &anonymous, 1, 1, q.data()); }).find("names no user"),
            std::string::npos);
  const eval::Case stranger{h1.data(), h1.size(), 3, 5};
  EXPECT_NE(error_of([&] { m.query(params.data(), acts, &stranger, 1, 1, q.data()); }).find("names user 5, outside"),
            std::string::npos);
}

// RecBole's negatives: uniform over 1..N-1 without the positive (history items allowed), drawn
// per (seed, epoch, step, row).
TEST(FpmcRecbole, NegativesAreUniformWithoutThePositive) {
  using Loss = RecBoleBPR<FPMCRecBole<B>>;
  const int N = 11, y = 4, draws = 50000;
  std::vector<int> count(N, 0);
  for (int r = 0; r < draws; ++r) {
    const int32_t j = Loss::negative(9, StepContext{9, 2, 3}, uint32_t(r), y, N);
    ASSERT_GE(j, 1);
    ASSERT_LT(j, N);
    ASSERT_NE(j, y);
    ++count[size_t(j)];
  }
  const double expect = double(draws) / (N - 2);
  for (int j = 1; j < N; ++j) {
    if (j == y) continue;
    EXPECT_NEAR(count[size_t(j)] / expect, 1.0, 0.05) << j;
  }
  EXPECT_EQ(Loss::negative(9, StepContext{9, 2, 3}, 17, y, N), Loss::negative(9, StepContext{9, 2, 3}, 17, y, N));
  EXPECT_EQ(Loss::negative(9, StepContext{9, 2, 3}, 17, y, N), SampledBPR<FPMCRecBole<B>>::negative(9, StepContext{9, 2, 3}, 17, y, N));
}

// RecBole's BPRLoss value and gradients on given negatives, against the formula; FPMCObjective
// picks it for `bpr` and draws the negatives itself.
TEST(FpmcRecbole, BprLossIsRecBolesWithGamma) {
  using M = FPMCRecBole<B, double>;
  const M m(recbole_config(4, 7, 3));
  std::vector<double> params(m.num_params());
  m.init(params.data(), 5);
  for (auto& v : params) v *= 8;  // saturate some rows: gamma matters where sigmoid is tiny
  SeqBatch<B> batch(3, 2);
  batch.rows = 3;
  batch.targets_per_row = 1;
  batch.seq_host = {1, 2, 3, 6, 1, 6};
  batch.target_host = {5, 1, 2, 0, 0, 0};
  batch.upload();
  auto acts = m.make_activations(3);
  m.forward(params.data(), acts, batch.seq.data(), 3, true);
  const std::vector<int32_t> neg = {2, 6, 5};
  RecBoleBPR<M> loss(m, 3);
  std::vector<double> grads(params.size(), 0.0), d_out(size_t(3) * m.hidden_size());
  const LossValue v = loss.loss_on(m, params.data(), grads.data(), acts, batch, neg.data(), d_out.data());
  EXPECT_EQ(v.targets, 3);
  const Scorer s = m.scorer();
  const double* q = m.output(acts);
  double want = 0;
  for (int r = 0; r < 3; ++r) {
    double x = 0;
    for (int c = 0; c < s.dim; ++c)
      x += q[r * s.dim + c] * (params[s.table + size_t(batch.target_host[size_t(r)]) * s.dim + c] -
                               params[s.table + size_t(neg[size_t(r)]) * s.dim + c]);
    want += -std::log(1e-10 + 1.0 / (1.0 + std::exp(-x)));
  }
  EXPECT_NEAR(v.loss, want / 3, 1e-12);

  FPMCObjective<M> obj(m, 3);
  std::vector<double> g2(params.size(), 0.0);
  const StepContext ctx{1, 2, 3};
  const LossValue v2 = obj.loss(m, params.data(), g2.data(), acts, batch, ctx, d_out.data());
  std::vector<int32_t> drawn;
  for (int r = 0; r < 3; ++r) drawn.push_back(RecBoleBPR<M>::negative(1, ctx, uint32_t(r), batch.target_host[size_t(r)], 7));
  std::vector<double> g3(params.size(), 0.0), d3(d_out.size());
  EXPECT_DOUBLE_EQ(v2.loss, loss.loss_on(m, params.data(), g3.data(), acts, batch, drawn.data(), d3.data()).loss);
  EXPECT_EQ(g2, g3);
}

// The safetensors state_dict is RecBole's: its four tensors, names, shapes and order as
// FPMC.state_dict(), values de-interleaved; reading it back is exact and strict.
TEST(FpmcRecbole, StateDictIsRecBolesAndStrict) {
  const int U = 5, N = 7, d = 3;
  const FPMCRecBole<B> m(recbole_config(U, N, d));
  std::vector<float> params(m.num_params()), ref(m.num_params());
  m.init(params.data(), 21);
  m.to_reference(params.data(), ref.data());
  const io::SafeTensors st = to_state_dict(m, params);
  ASSERT_EQ(st.tensors.size(), 4u);
  size_t at = 0;
  const std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
      {"UI_emb.weight", {U, d}}, {"IU_emb.weight", {N, d}}, {"LI_emb.weight", {N, d}}, {"IL_emb.weight", {N, d}}};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(st.tensors[k].name, want[k].first);
    EXPECT_EQ(st.tensors[k].shape, want[k].second);
    EXPECT_EQ(st.tensors[k].data, std::vector<float>(ref.begin() + long(at), ref.begin() + long(at + st.tensors[k].data.size())));
    at += st.tensors[k].data.size();
  }
  EXPECT_EQ(from_state_dict(m, st, "m.safetensors"), params);

  auto err = [&](const io::SafeTensors& s) { return error_of([&] { from_state_dict(m, s, "m.safetensors"); }); };
  io::SafeTensors missing = st;
  missing.tensors.erase(missing.tensors.begin() + 3);
  EXPECT_NE(err(missing).find("missing tensors (1): 'IL_emb.weight'"), std::string::npos) << err(missing);
  io::SafeTensors extra = st;
  extra.tensors.push_back({"item_factors", {N, 2 * d}, std::vector<float>(size_t(N) * 2 * d)});
  EXPECT_NE(err(extra).find("unexpected tensors (1): 'item_factors'"), std::string::npos) << err(extra);
  io::SafeTensors other_users = to_state_dict(FPMCRecBole<B>(recbole_config(U + 1, N, d)), std::vector<float>(size_t(U + 1 + 3 * N) * d));
  EXPECT_NE(err(other_users).find("'UI_emb.weight': expected [5, 3], found [6, 3]"), std::string::npos) << err(other_users);
  EXPECT_NE(err(other_users).find("FPMC (recbole variant, U = 5, N = 7, d = 3)"), std::string::npos);
  // A session-variant file, read as recbole's and the other way round: the hints say so.
  FPMCConfig sc;
  sc.n_items = N;
  sc.hidden = d;
  const FPMCSession<B> session(sc);
  const io::SafeTensors sst = to_state_dict(session, std::vector<float>(session.num_params()));
  EXPECT_NE(err(sst).find("looks like the FPMC 'session' variant's state_dict"), std::string::npos) << err(sst);
  EXPECT_NE(error_of([&] { from_state_dict(session, st, "r.safetensors"); }).find("looks like the FPMC 'recbole' variant's"),
            std::string::npos);
}

// Config files: the registry default is `recbole` (bpr, prefixes, L 1); `compat: upstream_compat`
// or an explicit `session` keep ALKDRec's defaults. An FPMCConfig built in code stays `session`.
TEST(FpmcRecbole, ConfigDefaults) {
  EXPECT_EQ(FPMCConfig{}.variant, FPMCVariant::session);
  const auto rb = parse("model: {model_name: FPMC, n_users: 944}\n").session;
  EXPECT_EQ(rb.variant, FPMCVariant::recbole);
  EXPECT_EQ(rb.n_users, 944);
  EXPECT_EQ(rb.max_len, 1);
  EXPECT_EQ(rb.rows, SessionRows::prefixes);
  EXPECT_EQ(rb.loss, FPMCLoss::bpr);
  EXPECT_EQ(rb.hidden, 64);
  for (const char* text : {"compat: upstream_compat\nmodel: {model_name: FPMC}\n", "model: {model_name: FPMC, variant: session}\n"}) {
    const auto s = parse(text).session;
    EXPECT_EQ(s.variant, FPMCVariant::session) << text;
    EXPECT_EQ(s.max_len, 10) << text;
    EXPECT_EQ(s.rows, SessionRows::last) << text;
    EXPECT_EQ(s.loss, FPMCLoss::inbatch_bpr) << text;
  }
  EXPECT_EQ(parse("model: {model_name: FPMC, variant: session}\ntraining: {loss: bpr}\n").session.loss, FPMCLoss::bpr);

  // What the recbole variant refuses, when the model is built.
  auto built = [](const std::string& text) {
    return error_of([&] { FPMCConfig c = parse(text).session; c.n_items = 10; FPMCRecBole<B> m(c); });
  };
  EXPECT_EQ(built("model: {model_name: FPMC, n_users: 944}\n"), "(no error)");
  EXPECT_NE(built("model: {model_name: FPMC}\n").find("model.n_users: FPMC's recbole variant needs"), std::string::npos);
  EXPECT_NE(built("model: {model_name: FPMC, n_users: 944}\ntraining: {loss: ce}\n").find("trains with bpr only"),
            std::string::npos);
  EXPECT_NE(built("model: {model_name: FPMC, n_users: 944, maxlen: 50}\n").find("model.maxlen: FPMC's recbole variant"),
            std::string::npos);
  EXPECT_NE(error_of([] { FPMCConfig c; c.n_items = 10; FPMCRecBole<B> m(c); }).find("this model type is the 'recbole'"),
            std::string::npos);
}

}  // namespace RD_TEST_FILE
