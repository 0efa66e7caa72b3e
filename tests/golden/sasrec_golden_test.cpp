// Tier 2: golden fixtures from the PyTorch reference (tools/make_fixtures.py, double
// precision, dropout off). The C++ model must reproduce hidden states, logits, loss, every
// gradient, and the weights after three optimiser steps.
//
// Tolerances (absolute, double precision): forward values 1e-10, gradients 1e-10, weights
// after 3 steps 1e-9 (Adam divides by sqrt(v) + eps, which amplifies last-bit differences
// of tiny gradients slightly).
#include <gtest/gtest.h>

#include <simdjson.h>

#include <cmath>
#include <string>

#include "recdistill/backbones/sasrec.hpp"
#include "../common/golden_fixture.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/io/npy.hpp"
#include "recdistill/train/optimizer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {

using rdtest::expect_close;

struct Fixture : rdtest::Fixture {
  explicit Fixture(const std::string& name) : rdtest::Fixture(name, "/usr/bin/python3 tools/make_fixtures.py") {}
};

template <class V>
void run_fixture(const std::string& name, SASRecVariant variant) {
  using Model = SASRec<cpu::Backend, double, V>;
  Fixture fx(name);
  SASRecConfig cfg;
  cfg.variant = variant;
  cfg.n_items = int(fx.cfg("N"));
  cfg.max_len = int(fx.cfg("L"));
  cfg.hidden = int(fx.cfg("d"));
  cfg.heads = int(fx.cfg("heads"));
  cfg.layers = int(fx.cfg("layers"));
  cfg.inner = int(fx.cfg("inner"));
  cfg.ln_eps = fx.cfgd("ln_eps");
  cfg.hidden_dropout = cfg.attn_dropout = 0;
  Model m(cfg);
  const int Bn = int(fx.cfg("batch")), L = cfg.max_len, d = cfg.hidden, N = cfg.n_items;
  const int R = Bn * L;

  // The fixture's parameter list must be our layout, name by name.
  std::vector<std::string> names;
  for (auto n : fx.manifest["params"].get_array()) names.emplace_back(std::string_view(n));
  ASSERT_EQ(names.size(), m.layout().infos().size());
  std::vector<double> params(m.num_params());
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& info = m.layout().infos()[i];
    ASSERT_EQ(names[i], info.name);
    auto v = fx.f64("param." + info.name);
    ASSERT_EQ(v.size(), info.size) << info.name;
    std::copy(v.begin(), v.end(), params.begin() + info.offset);
  }
  const auto seq = fx.i32("seq"), tgt = fx.i32("target");
  auto acts = m.make_activations(Bn);
  CrossEntropyWorkspace<cpu::Backend, double> ws;
  ws.reserve(R, 5, d, N);

  m.forward(params.data(), acts, seq.data(), Bn, false);
  expect_close({m.hidden(acts), m.hidden(acts) + R * d}, fx.f64("hidden"), 1e-10, "hidden");
  std::vector<double> logits(R * N);
  cpu::Backend::gemm<double>(false, true, R, N, d, 1.0, m.hidden(acts), d,
                             m.item_table(params.data()), d, 0.0, logits.data(), N);
  expect_close(logits, fx.f64("logits"), 1e-10, "logits");

  std::vector<double> grads(params.size(), 0.0), dh(R * d);
  const double loss = layers::softmax_cross_entropy<cpu::Backend, double>(
      dh.data(), m.item_table(grads.data()), m.hidden(acts), m.item_table(params.data()),
      tgt.data(), R, d, N, ws);
  expect_close({loss}, fx.f64("loss"), 1e-12, "loss");
  m.backward(params.data(), grads.data(), acts, dh.data());
  for (const auto& info : m.layout().infos())
    expect_close({grads.begin() + info.offset, grads.begin() + info.offset + info.size},
                 fx.f64("grad." + info.name), 1e-10, "grad." + info.name);

  // Three optimiser steps on the same batch.
  AdamConfig ac;
  ac.lr = fx.cfgd("lr");
  ac.beta1 = double(fx.manifest["config"]["betas"].at(0));
  ac.beta2 = double(fx.manifest["config"]["betas"].at(1));
  ac.eps = fx.cfgd("eps");
  ac.weight_decay = fx.cfgd("weight_decay");
  ac.decoupled = std::string_view(fx.manifest["config"]["optimizer"]) == "AdamW";
  const auto clip_el = fx.manifest["config"]["clip"];
  const double clip = clip_el.is_null() ? 0.0 : double(clip_el);
  Adam<cpu::Backend, double> opt(m.layout(), ac);
  std::vector<double> step_losses;
  for (int s = 0; s < 3; ++s) {
    std::fill(grads.begin(), grads.end(), 0.0);
    m.forward(params.data(), acts, seq.data(), Bn, false);
    step_losses.push_back(layers::softmax_cross_entropy<cpu::Backend, double>(
        dh.data(), m.item_table(grads.data()), m.hidden(acts), m.item_table(params.data()),
        tgt.data(), R, d, N, ws));
    m.backward(params.data(), grads.data(), acts, dh.data());
    opt.clip(grads.data(), clip);
    opt.step(params.data(), grads.data(), ac.lr);
  }
  expect_close(step_losses, fx.f64("step_losses"), 1e-10, "step_losses");
  for (const auto& info : m.layout().infos())
    expect_close({params.begin() + info.offset, params.begin() + info.offset + info.size},
                 fx.f64("step3." + info.name), 1e-9, "step3." + info.name);
}

}  // namespace

TEST(Golden, SASRecRecbole) { run_fixture<sasrec::RecBole>("sasrec_recbole", SASRecVariant::recbole); }
TEST(Golden, SASRecPmixer) { run_fixture<sasrec::Pmixer>("sasrec_pmixer", SASRecVariant::pmixer); }

TEST(Golden, NpyReaderRejectsGarbage) {
  EXPECT_THROW(io::parse_npy("hello", "x.npy"), Error);
  std::string hdr("\x93NUMPY\x01\x00", 8);
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  hdr += char(dict.size());
  hdr += char(0);
  EXPECT_THROW(io::parse_npy(hdr + dict + "1234567", "x.npy"), Error);  // short payload
  EXPECT_NO_THROW(io::parse_npy(hdr + dict + std::string(16, '\0'), "x.npy"));
}

}  // namespace RD_TEST_FILE
