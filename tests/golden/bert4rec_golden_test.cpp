// Tier 2: golden fixtures for BERT4Rec (tools/make_bert4rec_fixtures.py, double precision,
// dropout off). `recbole` numbers come from RecBole 1.2.1's own BERT4Rec module (calculate_loss,
// full_sort_predict); `hf` numbers from the PyTorch reference tools/torch_bert4rec.py. The C++
// model must reproduce hidden states, all-slot logits, the cloze loss, every gradient, the weights
// after three optimiser steps, and the full-catalogue evaluation scores of a few histories.
//
// Tolerances (absolute, double precision): forward values 1e-10, loss 1e-12, gradients 1e-10,
// weights after 3 steps 1e-9 (Adam divides by sqrt(v) + eps, which amplifies last-bit differences
// of tiny gradients slightly), evaluation scores 1e-10 on columns 1..N-1 (column 0, the pad, is
// left as computed in the fixture and is not compared).
//
// The hf fixture follows spec §3.2's `dataset` attention mask: its batch has a [MASK] on one pad
// slot (row 1, slot 1) that stays invisible as a key (attn_valid.npy) and has no target. Such a
// masked pad is inert (the generator checks that the batch with it put back to 0 gives bitwise the
// same loss, gradients, steps, and states at every other slot), and the model's `dataset` mode
// never draws one (backbones/cloze_batching.hpp): so the model reads seq with masked pads put back
// to 0, and hidden/logits are compared at every slot but those.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "recdistill/backbones/bert4rec.hpp"
#include "../common/golden_fixture.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/case.hpp"
#include "recdistill/io/npy.hpp"
#include "recdistill/losses/cloze.hpp"
#include "recdistill/train/optimizer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {

using rdtest::expect_close;

struct Fixture : rdtest::Fixture {
  explicit Fixture(const std::string& name) : rdtest::Fixture(name, ".venv-recbole/bin/python tools/make_bert4rec_fixtures.py") {}
};

// rows x s.n_items scores q . table^T (+ bias) of the (rows, dim) states q.
std::vector<double> scores_of(const Scorer& s, const double* params, const double* q, int rows) {
  std::vector<double> out(size_t(rows) * s.n_items);
  cpu::Backend::gemm<double>(false, true, rows, s.n_items, s.dim, 1.0, q, s.dim, params + s.table, s.dim, 0.0,
                             out.data(), s.n_items);
  if (s.bias >= 0)
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < s.n_items; ++j) out[size_t(r) * s.n_items + j] += params[size_t(s.bias) + j];
  return out;
}

template <class V>
void run_fixture(const std::string& name, BERT4RecVariant variant) {
  using Model = BERT4Rec<cpu::Backend, double, V>;
  Fixture fx(name);
  BERT4RecConfig cfg;
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
  const int C = int(fx.cfg("n_logits"));  // recbole: N (E[0:N] + output_bias); hf: N + 1 (head)
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

  // The batch: ids with [MASK] (= N) placed, targets at the masked slots, 0 elsewhere. hf: a
  // masked pad (attn_valid 0) is put back to 0, see the file comment.
  const auto seq_fx = fx.i32("seq"), tgt = fx.i32("target");
  ASSERT_EQ(seq_fx.size(), size_t(R));
  std::vector<int32_t> seq = seq_fx;
  if (variant == BERT4RecVariant::hf) {
    const auto av = fx.i32("attn_valid");
    for (int r = 0; r < R; ++r)
      if (av[size_t(r)] == 0) seq[size_t(r)] = 0;
  }
  std::vector<uint8_t> valid(static_cast<size_t>(R)), same(static_cast<size_t>(R));
  for (int r = 0; r < R; ++r) {
    valid[size_t(r)] = uint8_t(seq[size_t(r)] != 0);
    same[size_t(r)] = uint8_t(seq[size_t(r)] == seq_fx[size_t(r)]);
  }
  // Rows (R, w) of `v` at the slots where the model read the fixture's own id.
  auto at_same = [&](const std::vector<double>& v, int w) {
    std::vector<double> o;
    for (int r = 0; r < R; ++r)
      if (same[size_t(r)]) o.insert(o.end(), v.begin() + long(r) * w, v.begin() + long(r + 1) * w);
    return o;
  };
  SeqBatch<cpu::Backend> batch(Bn, L);
  batch.rows = Bn;
  std::copy(seq.begin(), seq.end(), batch.seq_host.begin());
  std::copy(tgt.begin(), tgt.end(), batch.target_host.begin());
  batch.upload();
  int64_t n_targets = 0;
  for (int32_t t : tgt) n_targets += t != 0;

  auto acts = m.make_activations(Bn);
  m.forward(params.data(), acts, batch.seq.data(), Bn, false);
  {
    const uint8_t* got = m.mask(acts);
    EXPECT_EQ(std::vector<uint8_t>(got, got + R), valid) << "key-visibility mask";
  }
  const double* out = m.output(acts);
  expect_close(at_same({out, out + size_t(R) * d}, d), at_same(fx.f64("hidden"), d), 1e-10, "hidden");

  // Training logits through the head: (R, C).
  const Scorer head = m.head();
  ASSERT_EQ(head.n_items, C);
  ASSERT_EQ(head.dim, d);
  ASSERT_GE(head.bias, 0) << "both variants' heads have a bias";
  expect_close(at_same(scores_of(head, params.data(), out, R), C), at_same(fx.f64("logits"), C), 1e-10, "logits");

  // Loss and gradients.
  ClozeCE<Model> objective(m, Bn);
  const StepContext ctx{};
  std::vector<double> grads(params.size(), 0.0), d_out(size_t(R) * d);
  const LossValue lv = objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data());
  EXPECT_EQ(lv.targets, n_targets);
  expect_close({lv.loss}, fx.f64("loss"), 1e-12, "loss");
  m.backward(params.data(), grads.data(), acts, d_out.data());
  for (const auto& info : m.layout().infos())
    expect_close({grads.begin() + info.offset, grads.begin() + info.offset + info.size},
                 fx.f64("grad." + info.name), 1e-10, "grad." + info.name);

  // Evaluation at the initial parameters: each history's query state, scored by scorer() over
  // items 0..N-1 (recbole: RecBole's full_sort_predict, which shifts the window left by one and
  // appends [MASK]; hf: the last L-1 items + [MASK] at slot L-1, left-padded).
  {
    const auto hist = fx.i32("eval_hist"), hist_len = fx.i32("eval_len");
    const int E = int(hist_len.size());
    const size_t H = hist.size() / size_t(E);
    std::vector<eval::Case> cases;
    for (int e = 0; e < E; ++e)
      cases.push_back({hist.data() + size_t(e) * H, size_t(hist_len[size_t(e)]), /*target=*/1, /*user=*/e});
    auto eacts = m.make_activations(E);
    std::vector<double> q(size_t(E) * d);
    m.query(params.data(), eacts, cases.data(), size_t(E), E, q.data());
    const Scorer s = m.scorer();
    ASSERT_EQ(s.n_items, N);
    ASSERT_EQ(s.dim, d);
    const auto got = scores_of(s, params.data(), q.data(), E), want = fx.f64("eval_scores");
    ASSERT_EQ(want.size(), size_t(E) * N);
    std::vector<double> g1, w1;  // columns 1..N-1
    for (int e = 0; e < E; ++e)
      for (int j = 1; j < N; ++j) g1.push_back(got[size_t(e) * N + j]), w1.push_back(want[size_t(e) * N + j]);
    expect_close(g1, w1, 1e-10, "eval_scores (columns 1..N-1)");
  }

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
    m.forward(params.data(), acts, batch.seq.data(), Bn, false);
    step_losses.push_back(objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data()).loss);
    m.backward(params.data(), grads.data(), acts, d_out.data());
    opt.clip(grads.data(), clip);
    opt.step(params.data(), grads.data(), ac.lr);
  }
  expect_close(step_losses, fx.f64("step_losses"), 1e-10, "step_losses");
  for (const auto& info : m.layout().infos())
    expect_close({params.begin() + info.offset, params.begin() + info.offset + info.size},
                 fx.f64("step3." + info.name), 1e-9, "step3." + info.name);
}

}  // namespace

TEST(Golden, BERT4RecRecbole) { run_fixture<bert4rec::RecBole>("bert4rec_recbole", BERT4RecVariant::recbole); }
TEST(Golden, BERT4RecHf) { run_fixture<bert4rec::Hf>("bert4rec_hf", BERT4RecVariant::hf); }

}  // namespace RD_TEST_FILE
