// No host loop is left above the backend: SASRec (both variants), both objectives, the generic
// trainer and the evaluator instantiate on a backend whose memory is an opaque handle
// (opaque_backend.hpp), pass the SASRec gradient check there, and give the CPU backend's
// results bit for bit (the opaque ops run the CPU's loops).
#include <gtest/gtest.h>

#include "../common/test_util.hpp"
#include "../gradcheck/sasrec_gradcheck.hpp"
#include "opaque_backend.hpp"
#include "../common/distill_run.hpp"
#include "recdistill/eval/topk.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/methods/distillation_head.hpp"
#include "recdistill/methods/profile_distillation.hpp"
#include "recdistill/train/trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using Opaque = opaque::Backend;
using Cpu = cpu::Backend;

static_assert(Backbone<SASRec<Opaque>>);
static_assert(Backbone<SASRec<Opaque, double, sasrec::Pmixer>>);
static_assert(Objective<NextItemCE<SASRec<Opaque>>, SASRec<Opaque>>);
static_assert(Objective<SampledBPR<SASRec<Opaque>>, SASRec<Opaque>>);

TEST(OpaqueBackend, SASRecGradientCheckCE) {
  rdtest::sasrec_gradcheck<Opaque, sasrec::RecBole, NextItemCE>(0.3, 1);
  rdtest::sasrec_gradcheck<Opaque, sasrec::Pmixer, NextItemCE>(0.0, 0);
}

TEST(OpaqueBackend, SASRecGradientCheckBPR) {
  rdtest::sasrec_gradcheck<Opaque, sasrec::RecBole, SampledBPR>(0.0);
  rdtest::sasrec_gradcheck<Opaque, sasrec::Pmixer, SampledBPR>(0.3);
}

namespace {

TrainerConfig small_trainer() {
  TrainerConfig tc;
  tc.batch_size = 16;
  tc.epochs = 3;
  tc.eval_every = 1;
  tc.patience = 5;
  tc.adam.lr = 3e-3;
  tc.clip_grad_norm = 1.0;  // clipping through the backend's reductions too
  return tc;
}

SASRecConfig small_model() {
  SASRecConfig mc;
  mc.max_len = 10;
  mc.hidden = 16;
  mc.layers = 1;
  mc.heads = 2;
  mc.inner = 32;
  mc.hidden_dropout = mc.attn_dropout = 0.2;
  return mc;
}

// Trains on backend B and returns (weights, test metrics, top-5 of the first test cases).
template <class B, class V, template <class> class O>
std::tuple<std::vector<float>, eval::Metrics, std::vector<int32_t>> train_on(const data::Split& split,
                                                                             eval::Options eo) {
  SASRecConfig mc = small_model();
  mc.variant = V::id;
  mc.n_items = split.n_items;
  TrainerConfig tc = small_trainer();
  tc.valid_metric = "NDCG@10" + eval::metric_suffix(eo);
  Trainer<SASRec<B, float, V>, O> t(SASRec<B, float, V>(mc), tc, eo, split, 5);
  const TrainResult r = t.fit();
  auto acts = t.model().make_activations(eval::kEvalBlock);
  const auto cases = eval_cases(split.test, &split.train);
  const auto top = eval::topk_cases<B>(t.model(), CPtr<B, float>(t.params().data()), acts, cases, 5,
                                       eval::Exclude::seen);
  return {t.host_params(), r.test, top.items};
}

}  // namespace

TEST(OpaqueBackend, TrainerAndEvaluatorEqualTheCpuBackend) {
  const data::Split split = data::to_split(test::synthetic(80, 30, 12, 3));
  eval::Options eo;
  eo.ks = {5, 10};
  eo.exclude = eval::Exclude::history;
  const auto cpu_run = train_on<Cpu, sasrec::RecBole, NextItemCE>(split, eo);
  const auto opq_run = train_on<Opaque, sasrec::RecBole, NextItemCE>(split, eo);
  EXPECT_EQ(std::get<0>(cpu_run), std::get<0>(opq_run));
  EXPECT_EQ(std::get<1>(cpu_run), std::get<1>(opq_run));
  EXPECT_EQ(std::get<2>(cpu_run), std::get<2>(opq_run));
  EXPECT_GT(std::get<1>(cpu_run).at("HR@10"), 0.0);
}

TEST(OpaqueBackend, BPRAndSampledEvaluationEqualTheCpuBackend) {
  const data::Split split = data::to_split(test::synthetic(60, 3000, 10, 4));  // chunked ranking
  eval::Options eo;
  eo.ks = {10};
  const auto cpu_run = train_on<Cpu, sasrec::Pmixer, SampledBPR>(split, eo);
  const auto opq_run = train_on<Opaque, sasrec::Pmixer, SampledBPR>(split, eo);
  EXPECT_EQ(std::get<0>(cpu_run), std::get<0>(opq_run));
  EXPECT_EQ(std::get<1>(cpu_run), std::get<1>(opq_run));
  eo.sampled_negatives = 50;
  const auto cpu_s = train_on<Cpu, sasrec::Pmixer, SampledBPR>(split, eo);
  const auto opq_s = train_on<Opaque, sasrec::Pmixer, SampledBPR>(split, eo);
  EXPECT_EQ(std::get<1>(cpu_s), std::get<1>(opq_s));
}

// Profile distillation's head (aggregate, projection, reconstruction loss) needs no host
// access to a tensor either, and gives the CPU backend's numbers bit for bit.
template <class Bk, class Agg, class Loss>
std::pair<double, std::vector<float>> distill_head_run(methods::Projection projection) {
  methods::DistillHeadConfig c;
  c.d = 4;
  c.D = projection == methods::Projection::both ? 4 : 6;
  c.L = 5;
  c.max_rows = 4;
  c.projection = projection;
  methods::DistillationHead<Bk, float, Agg, Loss> head(c, Agg{});
  ParamLayout layout;
  head.describe(layout);
  std::vector<float> host(layout.size());
  head.init(host, 3);
  const size_t nh = size_t(4) * c.L * c.d;
  std::vector<float> h_host(nh), profiles(size_t(4) * c.D), zeros_p(layout.size(), 0.f), zeros_h(nh, 0.f);
  for (size_t i = 0; i < nh; ++i) h_host[i] = float(std::sin(0.37 * double(i)));
  for (size_t i = 0; i < profiles.size(); ++i) profiles[i] = float(std::cos(0.11 * double(i)));
  Buffer<Bk, float> params(layout.size()), grads(layout.size()), h(nh), dh(nh);
  Bk::template to_device<float>(params.data(), host.data(), host.size());
  Bk::template to_device<float>(grads.data(), zeros_p.data(), zeros_p.size());
  Bk::template to_device<float>(h.data(), h_host.data(), nh);
  Bk::template to_device<float>(dh.data(), zeros_h.data(), nh);
  aggregators::Slots slots;
  aggregators::left_padded_slots(slots, {5, 2, 0, 3}, c.L);
  const double l = head.forward(params.data(), h.data(), slots, profiles, {1, 1, 1, 0});
  head.backward(grads.data(), dh.data(), params.data(), 0.7);
  std::vector<float> out(layout.size() + nh);
  Bk::template to_host<float>(out.data(), grads.data(), layout.size());
  Bk::template to_host<float>(out.data() + layout.size(), dh.data(), nh);
  return {l, out};
}

TEST(OpaqueBackend, DistillationHeadEqualsTheCpuBackend) {
  for (auto p : {methods::Projection::down, methods::Projection::up, methods::Projection::both}) {
    EXPECT_EQ((distill_head_run<Cpu, aggregators::Attention, losses::Cosine>(p)),
              (distill_head_run<Opaque, aggregators::Attention, losses::Cosine>(p)));
    EXPECT_EQ((distill_head_run<Cpu, aggregators::ExpWeight, losses::RMSE>(p)),
              (distill_head_run<Opaque, aggregators::ExpWeight, losses::RMSE>(p)));
  }
}

// Profile distillation as a whole (model, objective, phases) trains on the opaque backend and
// ends with the CPU backend's weights bit for bit.
static_assert(Backbone<ProfileDistillation<SASRec<Opaque>, aggregators::Attention, losses::Cosine>>);
static_assert(Objective<DistillObjective<ProfileDistillation<SASRec<Opaque>, aggregators::Attention, losses::Cosine>>,
                        ProfileDistillation<SASRec<Opaque>, aggregators::Attention, losses::Cosine>>);

TEST(OpaqueBackend, ProfileDistillationTrainsLikeTheCpuBackend) {
  const data::Split split = data::to_split(test::synthetic(60, 20, 12, 3));
  const auto cpu = rdtest::distill_train<Cpu>(split);
  EXPECT_EQ(cpu, rdtest::distill_train<Opaque>(split));
}

}  // namespace RD_TEST_FILE
