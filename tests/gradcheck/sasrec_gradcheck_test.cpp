// Tier 1 for the backbone: the whole SASRec (both variants, two heads, padded rows, dropout
// on with fixed keys) against central finite differences of the all-positions CE loss.
#include <gtest/gtest.h>

#include "../test_util.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"

using namespace recdistill;
using Model = SASRec<cpu::Backend, double>;

struct Case {
  SASRecVariant variant;
  double dropout;
};

class SASRecGrad : public ::testing::TestWithParam<Case> {};

TEST_P(SASRecGrad, EveryParameterMatchesFiniteDifferences) {
  const Case c = GetParam();
  SASRecConfig cfg;
  cfg.variant = c.variant;
  cfg.n_items = 9;
  cfg.max_len = 5;
  cfg.hidden = 6;
  cfg.heads = 2;
  cfg.layers = 2;
  cfg.inner = 8;
  cfg.hidden_dropout = cfg.attn_dropout = c.dropout;
  cfg.ln_eps = c.variant == SASRecVariant::recbole ? 1e-12 : 1e-8;
  Model m(cfg);
  const int Bn = 3, L = cfg.max_len, R = Bn * L;
  // Rows with 5, 3 and 1 real items on the model's padding side; targets 0 on pads.
  std::vector<int32_t> seq, tgt;
  const std::vector<std::vector<int>> rows = {{1, 2, 3, 4, 5}, {6, 7, 8}, {3}};
  const std::vector<std::vector<int>> next = {{2, 3, 4, 5, 6}, {7, 8, 1}, {2}};
  for (size_t b = 0; b < rows.size(); ++b) {
    const int pad = L - int(rows[b].size());
    for (int j = 0; j < L; ++j) {
      const int k = m.padding_side() == PaddingSide::right ? j : j - pad;
      const bool real = k >= 0 && k < int(rows[b].size());
      seq.push_back(real ? rows[b][k] : 0);
      tgt.push_back(real ? next[b][k] : 0);
    }
  }
  std::vector<double> params(m.num_params());
  m.init(params.data(), 99);
  // Larger weights than the 0.02 init so that every path carries a visible gradient.
  auto noise = rdtest::randn(params.size(), 5, 0.4);
  for (size_t i = 0; i < params.size(); ++i) params[i] += noise[i];
  auto acts = m.make_activations(Bn);
  layers::CrossEntropyWorkspace<double> ws;
  ws.reserve(R, 4, cfg.hidden, cfg.n_items);
  const bool train = c.dropout > 0;
  const layers::DropoutKey key{123, 1, 2};
  auto loss = [&] {
    m.forward(params.data(), acts, seq.data(), Bn, train, key);
    return layers::softmax_cross_entropy<cpu::Backend, double>(
        nullptr, nullptr, m.hidden(acts), m.item_table(params.data()), tgt.data(), R, cfg.hidden,
        cfg.n_items, ws);
  };
  loss();
  std::vector<double> grads(params.size(), 0.0), dh(R * cfg.hidden);
  layers::softmax_cross_entropy<cpu::Backend, double>(dh.data(), m.item_table(grads.data()),
                                                      m.hidden(acts), m.item_table(params.data()),
                                                      tgt.data(), R, cfg.hidden, cfg.n_items, ws);
  m.backward(params.data(), grads.data(), acts, dh.data());
  for (const auto& p : m.layout().infos()) {
    std::vector<double> x(params.begin() + p.offset, params.begin() + p.offset + p.size);
    std::vector<double> g(grads.begin() + p.offset, grads.begin() + p.offset + p.size);
    auto loss_at = [&] {
      std::copy(x.begin(), x.end(), params.begin() + p.offset);
      return loss();
    };
    const double err = rdtest::gradcheck(x, g, loss_at);
    std::copy(x.begin(), x.end(), params.begin() + p.offset);
    EXPECT_LT(err, 1e-6) << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SASRecGrad,
                         ::testing::Values(Case{SASRecVariant::recbole, 0.0},
                                           Case{SASRecVariant::recbole, 0.3},
                                           Case{SASRecVariant::pmixer, 0.0},
                                           Case{SASRecVariant::pmixer, 0.3}),
                         [](const auto& info) {
                           return std::string(info.param.variant == SASRecVariant::recbole
                                                  ? "recbole"
                                                  : "pmixer") +
                                  (info.param.dropout > 0 ? "_dropout" : "");
                         });
