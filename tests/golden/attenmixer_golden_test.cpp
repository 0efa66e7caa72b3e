// Tier 2: golden fixtures for Atten-Mixer `alkdrec` (tools/make_attenmixer_fixtures.py, double
// precision, dropout off) from the PyTorch reference tools/torch_attenmixer.py written from
// specs/backbones.md §6.2-§6.4: H = 2 with each head split (`attenmixer_alkdrec/`:
// official_reshape, `attenmixer_alkdrec_standard/`: standard), K = L = 6, p = 1, in-batch BPR.
// The C++ model must reproduce each row's session state, the full-catalogue scores (also through
// query()), the loss, every gradient, the weights after three Adam steps on the same batch, and
// bce_multi's loss and gradients on the fixture's fixed negatives. With H = 1 the two head splits
// must give bit-identical states and gradients.
//
// `attenmixer_official/` (the same script, tools/torch_attenmixer.py's AttenMixerOfficial, spec
// §6.1): one table E, per-node dropout (off here), H = 2, K = 7 > L = 6, p = 4, scores
// 16 z . n(E_1..)^T over N - 1 columns and CE with target - 1: the session states, the scores
// (and the ranks evaluation gives, which must be those of the scores), the loss through
// AttenMixerOfficialCE, every gradient and 3 Adam steps.
//
// Tolerances (absolute, double precision): states, scores, losses and gradients 1e-12, weights
// after 3 steps 1e-9 (as the session models' fixtures).
#include <gtest/gtest.h>

#include <simdjson.h>

#include <string>
#include <vector>

#include "../common/golden_fixture.hpp"
#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/attenmixer_state_dict.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/losses/attenmixer_official_ce.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/train/optimizer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {

using rdtest::expect_close;
using M = AttenMixer<cpu::Backend, double, attenmixer::Alkdrec>;

struct Fixture : rdtest::Fixture {
  explicit Fixture(const std::string& name)
      : rdtest::Fixture(name, ".venv-recbole/bin/python tools/make_attenmixer_fixtures.py") {}
};

AttenMixerConfig config_of(Fixture& fx) {
  AttenMixerConfig c;
  c.variant = AttenMixerVariant::alkdrec;
  c.n_items = int(fx.cfg("N"));
  c.max_len = int(fx.cfg("L"));
  c.hidden = int(fx.cfg("d"));
  c.heads = int(fx.cfg("heads"));
  c.intent_levels = int(fx.cfg("intent_levels"));
  c.lp_exponent = fx.cfgd("lp_exponent");
  c.dropout = fx.cfgd("dropout");
  const std::string_view split = fx.manifest["config"]["head_split"];
  c.head_split = split == "standard" ? HeadSplit::standard : HeadSplit::official_reshape;
  return c;
}

void run_fixture(const std::string& name, HeadSplit expect_split) {
  Fixture fx(name);
  ASSERT_EQ(std::string_view(fx.manifest["config"]["loss"]), "inbatch_bpr");
  const AttenMixerConfig cfg = config_of(fx);
  ASSERT_EQ(cfg.head_split, expect_split);
  ASSERT_EQ(cfg.heads, 2);
  const M m(cfg);
  const int Bn = int(fx.cfg("batch")), L = m.max_len(), d = m.hidden_size(), N = m.n_items();

  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(names.size(), m.layout().infos().size());
  std::vector<double> params(m.num_params());
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& info = m.layout().infos()[i];
    ASSERT_EQ(names[i], info.name);
    auto v = fx.f64("param." + info.name);
    ASSERT_EQ(v.size(), info.size) << info.name;
    std::copy(v.begin(), v.end(), params.begin() + long(info.offset));
  }

  const auto seq = fx.i32("seq"), tgt = fx.i32("target"), len = fx.i32("seq_len");
  ASSERT_EQ(seq.size(), size_t(Bn) * L);
  ASSERT_EQ(tgt.size(), size_t(Bn));
  SeqBatch<cpu::Backend> batch(Bn, L);
  batch.rows = Bn;
  batch.targets_per_row = 1;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(tgt.begin(), tgt.end(), batch.target_host.begin());
  batch.upload();

  auto acts = m.make_activations(Bn);
  m.forward(params.data(), acts, batch.seq.data(), Bn, true);  // dropout_rate 0: train mode is exact
  const double* out = m.output(acts);
  expect_close({out, out + size_t(Bn) * d}, fx.f64("session"), 1e-12, "session");

  const Scorer s = m.scorer();
  ASSERT_EQ(s.n_items, N);
  ASSERT_EQ(s.bias, -1);
  std::vector<double> scores(size_t(Bn) * N);
  cpu::Backend::gemm<double>(false, true, Bn, N, d, 1.0, out, d, params.data() + s.table, d, 0.0, scores.data(), N);
  expect_close(scores, fx.f64("scores"), 1e-12, "scores");
  {
    std::vector<eval::Case> cases;
    for (int b = 0; b < Bn; ++b) cases.push_back({seq.data() + size_t(b) * L, size_t(len[size_t(b)]), tgt[size_t(b)], b});
    auto eacts = m.make_activations(Bn);
    std::vector<double> q(size_t(Bn) * d);
    m.query(params.data(), eacts, cases.data(), size_t(Bn), Bn, q.data());
    expect_close(q, fx.f64("session"), 1e-12, "query states");
  }

  // In-batch BPR: loss and gradients.
  InBatchBPR<M> objective(m, Bn);
  const StepContext ctx{};
  std::vector<double> grads(params.size(), 0.0), d_out(size_t(Bn) * d);
  const LossValue lv = objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data());
  EXPECT_EQ(lv.targets, Bn);
  expect_close({lv.loss}, fx.f64("loss"), 1e-12, "loss");
  m.backward(params.data(), grads.data(), acts, d_out.data());
  for (const auto& info : m.layout().infos())
    expect_close({grads.begin() + long(info.offset), grads.begin() + long(info.offset + info.size)},
                 fx.f64("grad." + info.name), 1e-12, "grad." + info.name);

  // bce_multi on the fixture's negatives (the op the BceMulti objective calls).
  {
    const auto neg = fx.i32("bce_negatives");
    const int n_neg = int(neg.size()) / Bn;
    ASSERT_EQ(size_t(n_neg) * Bn, neg.size());
    std::vector<double> g(params.size(), 0.0);
    const double bl = ops::bce_multi_loss<cpu::Backend>(d_out.data(), g.data() + s.table, out, params.data() + s.table,
                                                        batch.target.data(), neg.data(), Bn, n_neg, d);
    expect_close({bl}, fx.f64("bce_loss"), 1e-12, "bce_loss");
    m.backward(params.data(), g.data(), acts, d_out.data());
    for (const auto& info : m.layout().infos())
      expect_close({g.begin() + long(info.offset), g.begin() + long(info.offset + info.size)},
                   fx.f64("bce_grad." + info.name), 1e-12, "bce_grad." + info.name);
  }

  // Three Adam steps on the same batch.
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
    step_losses.push_back(objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data()).loss);
    m.backward(params.data(), grads.data(), acts, d_out.data());
    opt.step(params.data(), grads.data(), ac.lr);
  }
  expect_close(step_losses, fx.f64("step_losses"), 1e-10, "step_losses");
  for (const auto& info : m.layout().infos())
    expect_close({params.begin() + long(info.offset), params.begin() + long(info.offset + info.size)},
                 fx.f64("step3." + info.name), 1e-9, "step3." + info.name);
}

}  // namespace

TEST(Golden, AttenMixerAlkdrecOfficialReshape) { run_fixture("attenmixer_alkdrec", HeadSplit::official_reshape); }
TEST(Golden, AttenMixerAlkdrecStandard) { run_fixture("attenmixer_alkdrec_standard", HeadSplit::standard); }

// With one head the two splits are the same map (spec §6.3): states and gradients agree bit for
// bit, with dropout on. With two they differ.
TEST(AttenMixerHeadSplit, CoincideAtOneHeadAndDifferAtTwo) {
  auto run = [](HeadSplit split, int H, std::vector<double>& state, std::vector<double>& grads) {
    AttenMixerConfig c;
    c.variant = AttenMixerVariant::alkdrec;
    c.n_items = 11;
    c.max_len = 6;
    c.hidden = 8;
    c.heads = H;
    c.intent_levels = 6;
    c.lp_exponent = 1;
    c.dropout = 0.2;
    c.head_split = split;
    const M m(c);
    SeqBatch<cpu::Backend> batch(3, 6);
    batch.rows = 3;
    batch.targets_per_row = 1;
    const std::vector<int32_t> seq = {3, 7, 1, 9, 4, 10, 5, 2, 5, 8, 0, 0, 4, 0, 0, 0, 0, 0};
    std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
    batch.target_host[0] = 2, batch.target_host[1] = 5, batch.target_host[2] = 8;
    batch.upload();
    std::vector<double> params(m.num_params()), d_out(3 * 8);
    m.init(params.data(), 17);
    grads.assign(params.size(), 0.0);
    auto a = m.make_activations(3);
    m.forward(params.data(), a, batch.seq.data(), 3, true, DropoutKey{5, 1, 1});
    state.assign(m.output(a), m.output(a) + 3 * 8);
    InBatchBPR<M> o(m, 3);
    o.loss(m, params.data(), grads.data(), a, batch, {}, d_out.data());
    m.backward(params.data(), grads.data(), a, d_out.data());
  };
  std::vector<double> s1, g1, s2, g2;
  run(HeadSplit::official_reshape, 1, s1, g1);
  run(HeadSplit::standard, 1, s2, g2);
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(g1, g2);
  run(HeadSplit::official_reshape, 2, s1, g1);
  run(HeadSplit::standard, 2, s2, g2);
  EXPECT_NE(s1, s2);
}

// The fixture's parameter names are AttMix's state_dict keys: our tensors export under them and
// load back; a file from AttMix itself (with its unused linear_three) is refused with a hint.
TEST(AttenMixerStateDict, RoundTripsUnderAttMixNames) {
  Fixture fx("attenmixer_alkdrec");
  using MF = AttenMixer<cpu::Backend, float, attenmixer::Alkdrec>;
  const MF m(config_of(fx));
  std::vector<float> params(m.num_params());
  m.init(params.data(), 4);
  auto st = to_state_dict(m, params);
  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(st.tensors.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(st.tensors[i].name, names[i]);
  EXPECT_EQ(from_state_dict(m, st, "x.safetensors"), params);
  st.tensors.push_back({"mattn.linear_three.weight", {2, 8}, std::vector<float>(16, 0.f)});
  try {
    from_state_dict(m, st, "x.safetensors");
    FAIL() << "an extra tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AttMix's full state_dict"), std::string::npos) << e.what();
  }
}

TEST(Golden, AttenMixerOfficial) {
  using MO = AttenMixer<cpu::Backend, double, attenmixer::Official>;
  Fixture fx("attenmixer_official");
  ASSERT_EQ(std::string_view(fx.manifest["config"]["loss"]), "official_ce");
  AttenMixerConfig cfg = config_of(fx);
  cfg.variant = AttenMixerVariant::official;
  cfg.loss = SessionLoss::ce;
  ASSERT_EQ(cfg.intent_levels, 7);
  ASSERT_EQ(fx.cfgd("score_scale"), attenmixer::kScoreScale);
  const MO m(cfg);
  const int Bn = int(fx.cfg("batch")), L = m.max_len(), d = m.hidden_size(), N = m.n_items();

  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(names.size(), m.layout().infos().size());
  std::vector<double> params(m.num_params());
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& info = m.layout().infos()[i];
    ASSERT_EQ(names[i], info.name);
    auto v = fx.f64("param." + info.name);
    ASSERT_EQ(v.size(), info.size) << info.name;
    std::copy(v.begin(), v.end(), params.begin() + long(info.offset));
  }
  const auto seq = fx.i32("seq"), tgt = fx.i32("target"), len = fx.i32("seq_len");
  SeqBatch<cpu::Backend> batch(Bn, L);
  batch.rows = Bn;
  batch.targets_per_row = 1;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(tgt.begin(), tgt.end(), batch.target_host.begin());
  batch.upload();

  auto acts = m.make_activations(Bn);
  m.forward(params.data(), acts, batch.seq.data(), Bn, true);  // dropout_rate 0: train mode is exact
  const double* out = m.output(acts);
  expect_close({out, out + size_t(Bn) * d}, fx.f64("session"), 1e-12, "session");

  // Scores: 16 z . n(E_j) for j = 1..N-1, through the scorer's normalised rows.
  const Scorer s = m.scorer();
  ASSERT_TRUE(s.normalise_rows);
  std::vector<double> En(size_t(N) * d), all(size_t(Bn) * N), scores;
  std::vector<double> norms(static_cast<size_t>(N));
  ops::l2_normalise_axis_forward<cpu::Backend>(En.data(), norms.data(), params.data() + s.table, N, d, 1,
                                               kScorerNormEps);
  cpu::Backend::gemm<double>(false, true, Bn, N, d, attenmixer::kScoreScale, out, d, En.data(), d, 0.0, all.data(), N);
  for (int b = 0; b < Bn; ++b) scores.insert(scores.end(), all.begin() + b * N + 1, all.begin() + (b + 1) * N);
  const auto want_scores = fx.f64("scores");
  expect_close(scores, want_scores, 1e-12, "scores");
  // Evaluation ranks each target as the reference's scores do (ties against the model).
  {
    std::vector<eval::Case> cases;
    for (int b = 0; b < Bn; ++b) cases.push_back({seq.data() + size_t(b) * L, size_t(len[size_t(b)]), tgt[size_t(b)], b});
    auto eacts = m.make_activations(eval::kEvalBlock);
    eval::Options o;
    o.exclude = eval::Exclude::none;
    const auto ranks = eval::rank_cases<cpu::Backend>(m, params.data(), eacts, cases, o);
    for (int b = 0; b < Bn; ++b) {
      const double* row = want_scores.data() + size_t(b) * (N - 1);
      const double st = row[tgt[size_t(b)] - 1];
      int64_t r = 1;
      for (int j = 1; j < N; ++j) r += j != tgt[size_t(b)] && row[j - 1] >= st;
      EXPECT_EQ(ranks[size_t(b)], r) << b;
    }
  }

  AttenMixerOfficialCE<MO> objective(m, Bn);
  const StepContext ctx{};
  std::vector<double> grads(params.size(), 0.0), d_out(size_t(Bn) * d);
  const LossValue lv = objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data());
  EXPECT_EQ(lv.targets, Bn);
  expect_close({lv.loss}, fx.f64("loss"), 1e-12, "loss");
  m.backward(params.data(), grads.data(), acts, d_out.data());
  for (const auto& info : m.layout().infos())
    expect_close({grads.begin() + long(info.offset), grads.begin() + long(info.offset + info.size)},
                 fx.f64("grad." + info.name), 1e-12, "grad." + info.name);

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
    step_losses.push_back(objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data()).loss);
    m.backward(params.data(), grads.data(), acts, d_out.data());
    opt.step(params.data(), grads.data(), ac.lr);
  }
  expect_close(step_losses, fx.f64("step_losses"), 1e-10, "step_losses");
  for (const auto& info : m.layout().infos())
    expect_close({params.begin() + long(info.offset), params.begin() + long(info.offset + info.size)},
                 fx.f64("step3." + info.name), 1e-9, "step3." + info.name);
}

}  // namespace RD_TEST_FILE
