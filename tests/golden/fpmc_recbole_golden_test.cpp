// Tier 2: the golden fixture of FPMC's `recbole` variant from RecBole 1.2.1's own FPMC module
// (tools/make_fpmc_recbole_fixture.py, double precision, tests/fixtures/fpmc_recbole/). Its four
// tensors are loaded by RecBole's names through FPMCRecBole::from_reference; the C++ model must
// reproduce forward's positive and negative scores, full_sort_predict's scores through the
// scorer (training rows and evaluation queries alike), calculate_loss (BPRLoss, gamma 1e-10, on
// the fixture's negatives), every gradient (the never-read rows exactly zero) and the weights
// after three Adam steps on the same batch. The float state_dict of the same weights has
// RecBole's keys and shapes in RecBole's order (what load_state_dict(strict=True) checks).
//
// Tolerances (absolute, double precision): scores, loss and gradients 1e-12, the loss before
// each step 1e-10, weights after 3 steps 1e-9 (Adam divides by sqrt(v) + eps).
#include <gtest/gtest.h>

#include <simdjson.h>

#include <string>
#include <vector>

#include "../common/golden_fixture.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/session_state_dict.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/recbole_bpr.hpp"
#include "recdistill/train/optimizer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {

using rdtest::expect_close;
using M = FPMCRecBole<cpu::Backend, double>;

struct Fixture : rdtest::Fixture {
  Fixture() : rdtest::Fixture("fpmc_recbole", ".venv-recbole/bin/python tools/make_fpmc_recbole_fixture.py") {}
};

FPMCConfig config_of(Fixture& fx) {
  FPMCConfig c;
  c.variant = FPMCVariant::recbole;
  c.n_items = int(fx.cfg("N"));
  c.n_users = int(fx.cfg("U"));
  c.hidden = int(fx.cfg("d"));
  c.max_len = 1;
  c.loss = FPMCLoss::bpr;
  c.rows = SessionRows::prefixes;
  return c;
}

// RecBole's tensors (fixture stems PREFIX.NAME) concatenated in reference_tensors() order.
template <class S = double>
std::vector<S> reference_values(Fixture& fx, const M& m, const std::string& prefix) {
  std::vector<S> out;
  for (const auto& t : m.reference_tensors()) {
    const auto v = fx.f64(prefix + "." + t.name);
    EXPECT_EQ(v.size(), size_t(t.rows) * t.cols) << t.name;
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Our flat buffer as RecBole's tensors, compared tensor by tensor with PREFIX.NAME.
void expect_tensors(Fixture& fx, const M& m, const std::vector<double>& ours, const std::string& prefix, double tol) {
  std::vector<double> ref(ours.size());
  m.to_reference(ours.data(), ref.data());
  size_t at = 0;
  for (const auto& t : m.reference_tensors()) {
    const size_t n = size_t(t.rows) * t.cols;
    expect_close({ref.begin() + long(at), ref.begin() + long(at + n)}, fx.f64(prefix + "." + t.name), tol,
                 prefix + "." + t.name);
    at += n;
  }
}

}  // namespace

TEST(Golden, FpmcRecboleFromRecBolesModule) {
  Fixture fx;
  ASSERT_EQ(std::string_view(fx.manifest["config"]["loss"]), "bpr");
  ASSERT_EQ(double(fx.manifest["config"]["bpr_gamma"]), RecBoleBPR<M>::gamma);
  const M m(config_of(fx));
  const int Bn = int(fx.cfg("batch")), L = int(fx.cfg("L")), N = m.n_items(), dim = m.hidden_size();

  // The fixture's parameters are RecBole's four tensors, in its order.
  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(names.size(), m.reference_tensors().size());
  for (size_t i = 0; i < names.size(); ++i) ASSERT_EQ(names[i], m.reference_tensors()[i].name);
  const auto ref = reference_values(fx, m, "param");
  ASSERT_EQ(ref.size(), m.num_params());
  std::vector<double> params(m.num_params());
  m.from_reference(ref.data(), params.data());

  // The batch: RecBole's (user, item sequence) rows laid out as ours, [user, last item], by the
  // batching policy (a training sequence whose prefix ends at the target).
  const auto user = fx.i32("user"), seq = fx.i32("seq"), len = fx.i32("seq_len"), tgt = fx.i32("target"),
             neg = fx.i32("negative");
  ASSERT_EQ(seq.size(), size_t(Bn) * L);
  const UserLastItemBatching batching(m.n_users(), SessionRows::prefixes);
  SeqBatch<cpu::Backend> batch(Bn, m.max_len());
  batch.rows = Bn;
  batch.targets_per_row = 1;
  for (int b = 0; b < Bn; ++b) {
    std::vector<int32_t> items(seq.begin() + long(b) * L, seq.begin() + long(b) * L + len[size_t(b)]);
    items.push_back(tgt[size_t(b)]);
    const SessionBatching::Row r{user[size_t(b)], len[size_t(b)], 1};
    batch.target_host[size_t(b)] = batching.layout(batch.seq_host.data() + size_t(b) * 2, items, r);
    ASSERT_EQ(batch.seq_host[size_t(b) * 2], user[size_t(b)]);
    ASSERT_EQ(batch.seq_host[size_t(b) * 2 + 1], seq[size_t(b) * L + size_t(len[size_t(b)]) - 1]);
    ASSERT_EQ(batch.target_host[size_t(b)], tgt[size_t(b)]);
  }
  batch.upload();

  auto acts = m.make_activations(Bn);
  m.forward(params.data(), acts, batch.seq.data(), Bn, true);
  const double* q = m.output(acts);

  // forward()'s positive and negative scores, and full_sort_predict through the scorer.
  const Scorer s = m.scorer();
  ASSERT_EQ(s.n_items, N);
  ASSERT_EQ(s.dim, dim);
  ASSERT_EQ(s.bias, -1);
  std::vector<double> scores(size_t(Bn) * N), pos(static_cast<size_t>(Bn)), negs(static_cast<size_t>(Bn));
  cpu::Backend::gemm<double>(false, true, Bn, N, dim, 1.0, q, dim, params.data() + s.table, dim, 0.0, scores.data(), N);
  for (int b = 0; b < Bn; ++b) {
    pos[size_t(b)] = scores[size_t(b) * N + size_t(tgt[size_t(b)])];
    negs[size_t(b)] = scores[size_t(b) * N + size_t(neg[size_t(b)])];
  }
  expect_close(pos, fx.f64("pos_score"), 1e-12, "pos_score");
  expect_close(negs, fx.f64("neg_score"), 1e-12, "neg_score");
  expect_close(scores, fx.f64("scores"), 1e-12, "scores (full_sort_predict)");
  {  // The same rows as evaluation cases (user, history, target): query() gives the same states.
    std::vector<eval::Case> cases;
    for (int b = 0; b < Bn; ++b)
      cases.push_back({seq.data() + size_t(b) * L, size_t(len[size_t(b)]), tgt[size_t(b)], user[size_t(b)]});
    auto eacts = m.make_activations(Bn);
    std::vector<double> eq(size_t(Bn) * dim);
    m.query(params.data(), eacts, cases.data(), size_t(Bn), Bn, eq.data());
    expect_close(eq, {q, q + size_t(Bn) * dim}, 0.0, "query states");
  }

  // calculate_loss and every gradient.
  RecBoleBPR<M> objective(m, Bn);
  std::vector<double> grads(params.size(), 0.0), d_out(size_t(Bn) * dim);
  const LossValue lv = objective.loss_on(m, params.data(), grads.data(), acts, batch, neg.data(), d_out.data());
  EXPECT_EQ(lv.targets, Bn);
  expect_close({lv.loss}, fx.f64("loss"), 1e-12, "loss");
  m.backward(params.data(), grads.data(), acts, d_out.data());
  expect_tensors(fx, m, grads, "grad", 1e-12);

  // Three Adam steps on the same batch and negatives.
  AdamConfig ac;
  ac.lr = fx.cfgd("lr");
  ac.beta1 = double(fx.manifest["config"]["betas"].at(0));
  ac.beta2 = double(fx.manifest["config"]["betas"].at(1));
  ac.eps = fx.cfgd("eps");
  ac.weight_decay = fx.cfgd("weight_decay");
  Adam<cpu::Backend, double> opt(m.layout(), ac);
  std::vector<double> step_losses;
  for (int k = 0; k < 3; ++k) {
    std::fill(grads.begin(), grads.end(), 0.0);
    m.forward(params.data(), acts, batch.seq.data(), Bn, true);
    step_losses.push_back(objective.loss_on(m, params.data(), grads.data(), acts, batch, neg.data(), d_out.data()).loss);
    m.backward(params.data(), grads.data(), acts, d_out.data());
    opt.step(params.data(), grads.data(), ac.lr);
  }
  expect_close(step_losses, fx.f64("step_losses"), 1e-10, "step_losses");
  expect_tensors(fx, m, params, "step3", 1e-9);
}

// The safetensors export of the fixture's weights has RecBole's state_dict keys and shapes, in
// RecBole's order, and its values; reading it back gives the same parameters.
TEST(Golden, FpmcRecboleStateDictIsRecBoles) {
  Fixture fx;
  const FPMCRecBole<cpu::Backend, float> m(config_of(fx));
  const M md(config_of(fx));
  const auto ref = reference_values(fx, md, "param");
  std::vector<float> ref_f(ref.begin(), ref.end()), params(m.num_params());
  m.from_reference(ref_f.data(), params.data());
  const io::SafeTensors st = to_state_dict(m, params);
  const auto want = fx.manifest["state_dict"].get_array();
  ASSERT_EQ(st.tensors.size(), want.size());
  size_t k = 0, at = 0;
  for (auto entry : want) {
    const auto& t = st.tensors[k++];
    EXPECT_EQ(t.name, std::string_view(entry.at(0)));
    std::vector<int64_t> shape;
    for (auto dim : entry.at(1).get_array()) shape.push_back(int64_t(dim));
    EXPECT_EQ(t.shape, shape) << t.name;
    EXPECT_EQ(t.data, std::vector<float>(ref_f.begin() + long(at), ref_f.begin() + long(at + t.data.size()))) << t.name;
    at += t.data.size();
  }
  EXPECT_EQ(from_state_dict(m, st, "fpmc.safetensors"), params);
}

}  // namespace RD_TEST_FILE
