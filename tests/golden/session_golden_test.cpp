// Tier 2: golden fixtures for the session models (tools/make_session_fixtures.py, double
// precision). `stamp_recbole` comes from RecBole 1.2.1's own STAMP module (forward,
// calculate_loss with CE, full_sort_predict); `stamp_alkdrec` and `fpmc_session` from the PyTorch
// reference tools/torch_session.py written from specs/backbones.md §5.2 and §4.2, with in-batch
// BPR. The C++ model must reproduce each row's session state, the full-catalogue scores, the
// loss, every gradient (the pad row included: blocked on the lookup path, trained through the
// tied output of RecBole's STAMP) and the weights after three Adam steps on the same batch.
//
// Tolerances (absolute, double precision): states and scores 1e-12, loss 1e-12, gradients 1e-12,
// weights after 3 steps 1e-9 (Adam divides by sqrt(v) + eps, which amplifies last-bit
// differences of tiny gradients).
#include <gtest/gtest.h>

#include <simdjson.h>

#include <string>
#include <vector>

#include "../common/golden_fixture.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/in_batch_bpr.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/train/optimizer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {

using rdtest::expect_close;

struct Fixture : rdtest::Fixture {
  explicit Fixture(const std::string& name)
      : rdtest::Fixture(name, ".venv-recbole/bin/python tools/make_session_fixtures.py") {}
};

template <class M, template <class> class O>
void run_fixture(Fixture& fx, const M& m) {
  const int Bn = int(fx.cfg("batch")), L = m.max_len(), d = m.hidden_size(), N = m.n_items();

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
  m.forward(params.data(), acts, batch.seq.data(), Bn, true);
  const double* out = m.output(acts);
  expect_close({out, out + size_t(Bn) * d}, fx.f64("session"), 1e-12, "session");

  // Full-catalogue scores of the batch's sessions through the scorer, and the same through
  // query() on the sessions as evaluation cases.
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

  // Loss and gradients.
  O<M> objective(m, Bn);
  const StepContext ctx{};
  std::vector<double> grads(params.size(), 0.0), d_out(size_t(Bn) * d);
  const LossValue lv = objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data());
  EXPECT_EQ(lv.targets, Bn);
  expect_close({lv.loss}, fx.f64("loss"), 1e-12, "loss");
  m.backward(params.data(), grads.data(), acts, d_out.data());
  for (const auto& info : m.layout().infos())
    expect_close({grads.begin() + long(info.offset), grads.begin() + long(info.offset + info.size)},
                 fx.f64("grad." + info.name), 1e-12, "grad." + info.name);

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

template <class V>
STAMPConfig stamp_config(Fixture& fx) {
  STAMPConfig c;
  c.variant = V::id;
  c.n_items = int(fx.cfg("N"));
  c.max_len = int(fx.cfg("L"));
  c.hidden = int(fx.cfg("d"));
  return c;
}

}  // namespace

TEST(Golden, StampRecboleFromRecBolesModule) {
  Fixture fx("stamp_recbole");
  ASSERT_EQ(std::string_view(fx.manifest["config"]["loss"]), "ce");
  const STAMP<cpu::Backend, double, stamp::RecBole> m(stamp_config<stamp::RecBole>(fx));
  run_fixture<STAMP<cpu::Backend, double, stamp::RecBole>, NextItemCE>(fx, m);
}

TEST(Golden, StampAlkdrecSimplified) {
  Fixture fx("stamp_alkdrec");
  ASSERT_EQ(std::string_view(fx.manifest["config"]["loss"]), "inbatch_bpr");
  const STAMP<cpu::Backend, double, stamp::Alkdrec> m(stamp_config<stamp::Alkdrec>(fx));
  run_fixture<STAMP<cpu::Backend, double, stamp::Alkdrec>, InBatchBPR>(fx, m);
}

TEST(Golden, FpmcSession) {
  Fixture fx("fpmc_session");
  ASSERT_EQ(std::string_view(fx.manifest["config"]["loss"]), "inbatch_bpr");
  FPMCConfig c;
  c.n_items = int(fx.cfg("N"));
  c.max_len = int(fx.cfg("L"));
  c.hidden = int(fx.cfg("d"));
  const FPMCSession<cpu::Backend, double> m(c);
  run_fixture<FPMCSession<cpu::Backend, double>, InBatchBPR>(fx, m);
}

}  // namespace RD_TEST_FILE
