// Tier 2 for profile distillation: the method (ProfileDistillation on SASRec `pmixer`, the
// seed's model, with DistillObjective) against a PyTorch reference written from the spec
// (tools/make_distillation_fixtures.py): the tapped tensor, L_rec, L_distil, beta, the total, every
// gradient, and three AdamW steps with clipping whose third is in the fine-tuning phase.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "../common/golden_fixture.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/methods/profile_distillation.hpp"
#include "recdistill/train/optimizer.hpp"

using namespace recdistill;
using B = cpu::Backend;
using rdtest::expect_close;

namespace {

template <class Agg, class Loss>
void run_fixture(const std::string& name, Agg agg, methods::Projection projection, Loss loss = {}) {
  rdtest::Fixture fx(name, "/usr/bin/python3 tools/make_distillation_fixtures.py");
  SASRecConfig sc;
  sc.variant = SASRecVariant::pmixer;
  sc.n_items = int(fx.cfg("N"));
  sc.max_len = int(fx.cfg("L"));
  sc.hidden = int(fx.cfg("d"));
  sc.heads = int(fx.cfg("heads"));
  sc.layers = int(fx.cfg("layers"));
  sc.inner = int(fx.cfg("inner"));
  sc.ln_eps = fx.cfgd("ln_eps");
  sc.hidden_dropout = sc.attn_dropout = 0;
  const int Bn = int(fx.cfg("batch")), L = sc.max_len, D = int(fx.cfg("D"));

  auto prof = std::make_shared<ProfileTargets>();
  prof->K = 1;
  prof->D = D;
  const auto e = fx.f64("profiles");
  const auto has = fx.i32("has_profile");
  prof->values.assign(size_t(Bn + 1) * D, 0.f);
  prof->available.assign(size_t(Bn + 1), 0);
  for (int u = 1; u <= Bn; ++u) {
    prof->available[size_t(u)] = uint8_t(has[size_t(u - 1)]);
    for (int j = 0; j < D; ++j) prof->values[size_t(u) * D + j] = float(e[size_t(u - 1) * D + j]);
  }
  // The profile table holds float32; the fixture's profiles are exactly representable in it.
  DistillationConfig dc;
  dc.reconstruction_layer = int(fx.cfg("tap"));
  dc.alpha = fx.cfgd("alpha");
  dc.scale_guide_loss = bool(fx.manifest["config"]["beta"]);
  dc.fine_tune_epoch = 2;
  dc.head.projection = projection;
  using M = ProfileDistillation<SASRec<B, double, sasrec::Pmixer>, Agg, Loss>;
  M m(SASRec<B, double, sasrec::Pmixer>(sc), dc, agg, prof, loss);

  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(names.size(), m.layout().infos().size());
  std::vector<double> params(m.num_params());
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& info = m.layout().infos()[i];
    ASSERT_EQ(names[i], info.name);
    const auto v = fx.f64("param." + info.name);
    ASSERT_EQ(v.size(), info.size) << info.name;
    std::copy(v.begin(), v.end(), params.begin() + long(info.offset));
  }
  typename M::Batch batch(Bn, L);
  const auto seq = fx.i32("seq"), tgt = fx.i32("target");
  batch.rows = Bn;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(tgt.begin(), tgt.end(), batch.target_host.begin());
  for (int b = 0; b < Bn; ++b) {
    batch.users[size_t(b)] = b + 1;
    batch.lengths[size_t(b)] = int(std::count_if(seq.begin() + long(b) * L, seq.begin() + long(b + 1) * L,
                                                 [](int32_t x) { return x != 0; }));
  }
  batch.upload();

  auto acts = m.make_activations(Bn);
  DistillObjective<M> obj(m, Bn);
  const size_t n_out = size_t(Bn) * L * sc.hidden;
  std::vector<double> grads(params.size(), 0.0), d_out(n_out);
  m.forward(params.data(), acts, batch.seq.data(), Bn, true, DropoutKey{});
  expect_close({m.tapped(acts), m.tapped(acts) + n_out}, fx.f64("tap"), 1e-10, "tap");
  const LossValue lv = obj.loss(m, params.data(), grads.data(), acts, batch, StepContext{}, d_out.data());
  const auto want = fx.f64("losses");  // total, rec, distil, beta
  expect_close({obj.last().rec}, {want[1]}, 1e-12, "L_rec");
  expect_close({obj.last().distil}, {want[2]}, 1e-12, "L_distil");
  expect_close({obj.last().beta}, {want[3]}, 1e-11, "beta");
  expect_close({lv.loss}, {want[0]}, 1e-12, "total");
  m.backward(params.data(), grads.data(), acts, d_out.data());
  for (const auto& info : m.layout().infos())
    expect_close({grads.begin() + long(info.offset), grads.begin() + long(info.offset + info.size)},
                 fx.f64("grad." + info.name), 1e-10, "grad." + info.name);

  // Three AdamW steps (decay 0.01, clip 0.5); the third in the fine-tuning phase.
  AdamConfig ac;
  ac.lr = fx.cfgd("lr");
  ac.weight_decay = fx.cfgd("weight_decay");
  ac.decoupled = true;
  Adam<B, double> opt(m.layout(), ac);
  std::vector<double> step_losses;
  for (int s = 0; s < 3; ++s) {
    if (s == 2) {  // what add_distillation_phases does at fine_tune_epoch
      obj.set_distill(false);
      ParamGroup g;
      g.name = "distillation";
      g.tensors = m.head_tensors();
      g.frozen = true;
      opt.set_groups({g});
    }
    std::fill(grads.begin(), grads.end(), 0.0);
    m.forward(params.data(), acts, batch.seq.data(), Bn, true, DropoutKey{});
    step_losses.push_back(obj.loss(m, params.data(), grads.data(), acts, batch, StepContext{}, d_out.data()).loss);
    m.backward(params.data(), grads.data(), acts, d_out.data());
    opt.clip(grads.data(), fx.cfgd("clip"));
    opt.step(params.data(), grads.data(), ac.lr);
  }
  expect_close(step_losses, fx.f64("step_losses"), 1e-10, "step_losses");
  for (const auto& info : m.layout().infos())
    expect_close({params.begin() + long(info.offset), params.begin() + long(info.offset + info.size)},
                 fx.f64("step3." + info.name), 1e-9, "step3." + info.name);
}

}  // namespace

TEST(DistillGolden, SASRecAttentionDownMSEBeta) {
  run_fixture<aggregators::Attention, losses::MSE>("distill_sasrec_attention_down_mse", {}, methods::Projection::down);
}

TEST(DistillGolden, SASRecExpWeightUpCosine) {
  run_fixture<aggregators::ExpWeight, losses::Cosine>("distill_sasrec_exp_up_cosine", aggregators::ExpWeight{0.3},
                                                      methods::Projection::up);
}

// The run-time policies the plugins use give the same numbers.
TEST(DistillGolden, RunTimePoliciesMatch) {
  using aggregators::Any;
  using losses::AnyReconstruction;
  run_fixture<Any, AnyReconstruction>("distill_sasrec_attention_down_mse", Any{Any::Kind::attention},
                                      methods::Projection::down, AnyReconstruction{AnyReconstruction::Kind::mse});
  run_fixture<Any, AnyReconstruction>("distill_sasrec_exp_up_cosine", Any{Any::Kind::exp_weight, 0.3},
                                      methods::Projection::up, AnyReconstruction{AnyReconstruction::Kind::cosine});
}
