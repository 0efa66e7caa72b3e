// Tier 2 for profile distillation: the method (ProfileDistillation on SASRec `pmixer`, the
// seed's model, and on BERT4Rec `hf` with ClozeCE, with DistillObjective) against a PyTorch
// reference written from the spec (tools/make_distillation_fixtures.py): the tapped tensor, L_rec,
// L_distil, beta, the total, every gradient, and AdamW steps with clipping across the switch to
// the fine-tuning phase (SASRec: 3 steps, the third fine-tuning; BERT4Rec: 4 steps, the last two),
// where the head's tensors must stay bit-identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../common/golden_fixture.hpp"
#include "recdistill/backbones/bert4rec.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/cloze.hpp"
#include "recdistill/methods/profile_distillation.hpp"
#include "recdistill/train/optimizer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using rdtest::expect_close;

namespace {

// The fixture's profiles as the library's table: row b of the batch is user b + 1 (row 0, the pad
// user, has none). The table holds float32; the fixture's profiles are exactly representable.
std::shared_ptr<ProfileTargets> fixture_profiles(rdtest::Fixture& fx) {
  const int Bn = int(fx.cfg("batch")), D = int(fx.cfg("D"));
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
  return prof;
}

DistillationConfig fixture_distillation(rdtest::Fixture& fx, methods::Projection projection) {
  DistillationConfig dc;
  dc.reconstruction_layer = int(fx.cfg("tap"));
  dc.alpha = fx.cfgd("alpha");
  dc.scale_guide_loss = bool(fx.manifest["config"]["beta"]);
  dc.fine_tune_epoch = 2;
  dc.head.projection = projection;
  return dc;
}

// The method against the fixture, from the initial parameters: the tapped tensor, L_rec, L_distil,
// beta, the total, every gradient, then `steps` AdamW steps (decay, clip) on the same batch whose
// steps from `fine_tune_step` (1-based) on are in the fine-tuning phase (the head frozen).
template <class M>
void check_method(rdtest::Fixture& fx, const M& m, typename M::Batch& batch) {
  const int Bn = batch.rows, L = m.max_len(), d = m.hidden_size();
  const auto& ccfg = fx.manifest["config"];
  const int steps = ccfg["steps"].error() ? 3 : int(int64_t(ccfg["steps"]));
  const int fine_tune_step = int(fx.cfg("fine_tune_step"));
  ASSERT_LT(fine_tune_step, steps + 1);

  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(names.size(), m.layout().infos().size());
  std::vector<std::string> head_names;
  for (auto n : fx.manifest["head_params"].get_array()) head_names.emplace_back(std::string_view(n));
  EXPECT_EQ(head_names, m.head_tensors());
  std::vector<double> params(m.num_params());
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& info = m.layout().infos()[i];
    ASSERT_EQ(names[i], info.name);
    const auto v = fx.f64("param." + info.name);
    ASSERT_EQ(v.size(), info.size) << info.name;
    std::copy(v.begin(), v.end(), params.begin() + long(info.offset));
  }

  auto acts = m.make_activations(Bn);
  DistillObjective<M> obj(m, Bn);
  const size_t n_out = size_t(Bn) * L * d;
  std::vector<double> grads(params.size(), 0.0), d_out(n_out);
  m.forward(params.data(), acts, batch.seq.data(), Bn, true, DropoutKey{});
  expect_close({m.tapped(acts), m.tapped(acts) + n_out}, fx.f64("tap"), 1e-10, "tap");
  if (fx.manifest["arrays"]["hidden"].error() == simdjson::SUCCESS)
    expect_close({m.output(acts), m.output(acts) + n_out}, fx.f64("hidden"), 1e-10, "hidden");
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

  // AdamW steps (decay 0.01, clip 0.5); from fine_tune_step on in the fine-tuning phase.
  AdamConfig ac;
  ac.lr = fx.cfgd("lr");
  ac.weight_decay = fx.cfgd("weight_decay");
  ac.decoupled = true;
  Adam<B, double> opt(m.layout(), ac);
  std::vector<double> step_losses, head_at_switch;
  auto head_values = [&] {
    std::vector<double> v;
    for (const auto& info : m.layout().infos())
      if (std::find(head_names.begin(), head_names.end(), info.name) != head_names.end())
        v.insert(v.end(), params.begin() + long(info.offset), params.begin() + long(info.offset + info.size));
    return v;
  };
  for (int s = 1; s <= steps; ++s) {
    if (s == fine_tune_step) {  // what add_distillation_phases does at fine_tune_epoch
      head_at_switch = head_values();
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
  const std::string last = "step" + std::to_string(steps) + ".";
  for (const auto& info : m.layout().infos())
    expect_close({params.begin() + long(info.offset), params.begin() + long(info.offset + info.size)},
                 fx.f64(last + info.name), 1e-9, last + info.name);
  // Frozen in the fine-tuning phase: bit-identical to what the last distillation step left.
  EXPECT_TRUE(head_values() == head_at_switch) << "the head's tensors moved in the fine-tuning phase";
  if (steps - fine_tune_step >= 1) {  // the fixture holds them too (BERT4Rec fixtures)
    const std::string at = "step" + std::to_string(fine_tune_step - 1) + ".";
    for (const auto& info : m.layout().infos())
      if (std::find(head_names.begin(), head_names.end(), info.name) != head_names.end())
        expect_close({params.begin() + long(info.offset), params.begin() + long(info.offset + info.size)},
                     fx.f64(at + info.name), 1e-9, at + info.name);
  }
}

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
  const int Bn = int(fx.cfg("batch")), L = sc.max_len;

  using M = ProfileDistillation<SASRec<B, double, sasrec::Pmixer>, Agg, Loss>;
  M m(SASRec<B, double, sasrec::Pmixer>(sc), fixture_distillation(fx, projection), agg, fixture_profiles(fx), loss);

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
  check_method(fx, m, batch);
}

// BERT4Rec `hf` with ClozeCE: the cloze batch (masks placed, targets at the masked slots) is the
// fixture's, and each row's real-item count is its window length before masking.
template <class Agg, class Loss>
void run_bert4rec_fixture(const std::string& name, Agg agg, methods::Projection projection, Loss loss = {}) {
  rdtest::Fixture fx(name, "/usr/bin/python3 tools/make_distillation_fixtures.py");
  BERT4RecConfig bc;
  bc.variant = BERT4RecVariant::hf;
  bc.n_items = int(fx.cfg("N"));
  bc.max_len = int(fx.cfg("L"));
  bc.hidden = int(fx.cfg("d"));
  bc.heads = int(fx.cfg("heads"));
  bc.layers = int(fx.cfg("layers"));
  bc.inner = int(fx.cfg("inner"));
  bc.ln_eps = fx.cfgd("ln_eps");
  bc.hidden_dropout = bc.attn_dropout = 0;
  const int Bn = int(fx.cfg("batch")), L = bc.max_len;

  using Bb = BERT4Rec<B, double, bert4rec::Hf>;
  using M = ProfileDistillation<Bb, Agg, Loss, ClozeCE>;
  M m(Bb(bc), fixture_distillation(fx, projection), agg, fixture_profiles(fx), loss);
  ASSERT_TRUE(m.batching().left_padded());

  typename M::Batch batch(Bn, L);
  const auto seq = fx.i32("seq"), tgt = fx.i32("target"), lengths = fx.i32("lengths");
  ASSERT_EQ(seq.size(), size_t(Bn) * L);
  batch.rows = Bn;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(tgt.begin(), tgt.end(), batch.target_host.begin());
  for (int b = 0; b < Bn; ++b) {
    batch.users[size_t(b)] = b + 1;
    batch.lengths[size_t(b)] = lengths[size_t(b)];
  }
  batch.upload();
  check_method(fx, m, batch);
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

// BERT4Rec hf: tap -1 (the last encoder layer), masked mean, down, MSE, alpha 0.4, beta on.
TEST(DistillGolden, BERT4RecMeanDownMSEBeta) {
  run_bert4rec_fixture<aggregators::Mean, losses::MSE>("distill_bert4rec_mean_down_mse", {}, methods::Projection::down);
}

// BERT4Rec hf: tap 1 (the output of layer 1, 1-based), exp_weight 0.3, up, RMSE, alpha 0.6, beta off.
TEST(DistillGolden, BERT4RecLayer1ExpWeightUpRMSE) {
  run_bert4rec_fixture<aggregators::ExpWeight, losses::RMSE>("distill_bert4rec_layer1_exp_up_rmse",
                                                             aggregators::ExpWeight{0.3}, methods::Projection::up);
}

// BERT4Rec hf: tap 0 (the embedding output), last_item, none (D = d), cosine, alpha 0.5, beta on.
TEST(DistillGolden, BERT4RecEmbeddingLastItemNoneCosine) {
  run_bert4rec_fixture<aggregators::LastItem, losses::Cosine>("distill_bert4rec_emb_last_none_cosine", {},
                                                              methods::Projection::none);
}

TEST(DistillGolden, BERT4RecRunTimePoliciesMatch) {
  using aggregators::Any;
  using losses::AnyReconstruction;
  run_bert4rec_fixture<Any, AnyReconstruction>("distill_bert4rec_mean_down_mse", Any{Any::Kind::mean},
                                               methods::Projection::down, AnyReconstruction{AnyReconstruction::Kind::mse});
  run_bert4rec_fixture<Any, AnyReconstruction>("distill_bert4rec_layer1_exp_up_rmse", Any{Any::Kind::exp_weight, 0.3},
                                               methods::Projection::up, AnyReconstruction{AnyReconstruction::Kind::rmse});
}

}  // namespace RD_TEST_FILE
