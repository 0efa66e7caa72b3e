// The SASRec gradient check (and model_gradcheck, its model-generic part, which BERT4Rec's uses),
// generic over backend, variant and objective, so the opaque-handle
// test backend (tests/unit/opaque_backend_test.cpp) runs the very same check.
//
// Loss = objective(model output, batch) [+ a tap penalty]; every parameter tensor's analytic
// gradient (objective's d_out through backward, plus the tap's gradient at its block) must match
// central finite differences in double precision. Parameters live in the backend's memory: each
// loss evaluation uploads the perturbed host copy.
//
// The tap wrapper (TapPenalty) is the test-only stand-in for a method: it reads block k's output,
// adds P = 0.5 * w * ||mean over real slots of H_k||^2 and hands back dP/dH_k = w * mean / count
// on real slots (0 on pads) as a tap on block k.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../test_util.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/losses/next_item.hpp"

namespace rdtest {

constexpr int kNoTap = -100;

template <class M>
struct TapPenalty {
  using B = typename M::BackendType;
  int block = kNoTap;  // kNoTap: off
  double weight = 0.7;
  recdistill::Buffer<B, double> grad;
  std::vector<double> host_h, host_g;
  std::vector<uint8_t> host_mask;

  // Adds the penalty's value; fills `grad` with its gradient w.r.t. block `block`'s output.
  double value(const M& m, const typename M::Activations& a, int rows) {
    const int L = m.max_len(), d = m.hidden_size(), R = rows * L;
    host_h.resize(size_t(R) * d);
    host_mask.resize(size_t(R));
    const auto src = block == recdistill::TapPoint::embedding      ? m.embedding_output(a)
                     : block == recdistill::TapPoint::final_output ? m.output(a)
                                                                   : m.block_output(a, block);
    B::template to_host<double>(host_h.data(), src, host_h.size());
    B::template to_host<uint8_t>(host_mask.data(), m.mask(a), host_mask.size());
    std::vector<double> mean(size_t(d), 0.0);
    int count = 0;
    for (int r = 0; r < R; ++r) {
      if (!host_mask[size_t(r)]) continue;
      ++count;
      for (int c = 0; c < d; ++c) mean[size_t(c)] += host_h[size_t(r) * d + c];
    }
    for (auto& v : mean) v /= count;
    host_g.assign(size_t(R) * d, 0.0);
    for (int r = 0; r < R; ++r)
      if (host_mask[size_t(r)])
        for (int c = 0; c < d; ++c) host_g[size_t(r) * d + c] = weight * mean[size_t(c)] / count;
    grad = recdistill::Buffer<B, double>(host_g.size());
    B::template to_device<double>(grad.data(), host_g.data(), host_g.size());
    return 0.5 * weight * dot(mean, mean);
  }
};

template <class M, template <class> class O>
double model_gradcheck(const M& m, const recdistill::SeqBatch<typename M::BackendType>& batch, double dropout,
                       int tap_block, double tol, const std::string& pad_row_of = "");

// Runs the check; returns the worst tensor error (every tensor is also EXPECTed below tol).
template <class B, class V, template <class> class O>
double sasrec_gradcheck(double dropout, int tap_block = kNoTap, double tol = 1e-6) {
  using namespace recdistill;
  using M = SASRec<B, double, V>;
  SASRecConfig cfg;
  cfg.variant = V::id;
  cfg.n_items = 9;
  cfg.max_len = 5;
  cfg.hidden = 6;
  cfg.heads = 2;
  cfg.layers = 2;
  cfg.inner = 8;
  cfg.hidden_dropout = cfg.attn_dropout = dropout;
  cfg.ln_eps = V::id == SASRecVariant::recbole ? 1e-12 : 1e-8;
  const M m(cfg);
  const int Bn = 3, L = cfg.max_len;
  // Rows with 5, 3 and 1 real items on the model's padding side; targets 0 on pads.
  SeqBatch<B> batch(Bn, L);
  batch.rows = Bn;
  const std::vector<std::vector<int>> rows = {{1, 2, 3, 4, 5}, {6, 7, 8}, {3}};
  const std::vector<std::vector<int>> next = {{2, 3, 4, 5, 6}, {7, 8, 1}, {2}};
  for (size_t b = 0; b < rows.size(); ++b) {
    const int pad = L - int(rows[b].size());
    for (int j = 0; j < L; ++j) {
      const int k = M::padding_side() == PaddingSide::right ? j : j - pad;
      const bool real = k >= 0 && k < int(rows[b].size());
      batch.seq_host[b * L + size_t(j)] = real ? rows[b][size_t(k)] : 0;
      batch.target_host[b * L + size_t(j)] = real ? next[b][size_t(k)] : 0;
    }
  }
  batch.upload();
  return model_gradcheck<M, O>(m, batch, dropout, tap_block, tol);
}

// The check itself for any backbone M (double) and objective O on a prepared batch.
// pad_row_of: a tensor whose row 0 is read through the lookup but deliberately gets no lookup
// gradient (PyTorch padding_idx on a pad row the model reads, as STAMP and FPMC do): that row is
// left out of the comparison (the golden fixtures check it against the reference instead).
template <class M, template <class> class O>
double model_gradcheck(const M& m, const recdistill::SeqBatch<typename M::BackendType>& batch, double dropout,
                       int tap_block, double tol, const std::string& pad_row_of) {
  using namespace recdistill;
  using B = typename M::BackendType;
  const int Bn = batch.rows, L = m.max_len(), d = m.hidden_size();
  std::vector<double> host(m.num_params());
  m.init(host.data(), 99);
  // Larger weights than the 0.02 init so that every path carries a visible gradient.
  const auto noise = randn(host.size(), 5, 0.4);
  for (size_t i = 0; i < host.size(); ++i) host[i] += noise[i];
  Buffer<B, double> params(host.size()), grads(host.size()), scratch(host.size()),
      d_out(size_t(Bn) * L * d);
  auto acts = m.make_activations(Bn);
  O<M> objective(m, Bn);
  TapPenalty<M> tap;
  tap.block = tap_block;
  const bool train = dropout > 0;
  const DropoutKey key{123, 1, 2};
  const StepContext ctx{123, 1, 2};
  auto loss = [&] {
    B::template to_device<double>(params.data(), host.data(), host.size());
    m.forward(params.data(), acts, batch.seq.data(), Bn, train, key);
    double l = objective.loss(m, params.data(), scratch.data(), acts, batch, ctx, d_out.data()).loss;
    if (tap.block != kNoTap) l += tap.value(m, acts, Bn);
    return l;
  };
  loss();
  ops::fill<B>(grads.data(), int64_t(host.size()), 0.0);
  B::template to_device<double>(params.data(), host.data(), host.size());
  m.forward(params.data(), acts, batch.seq.data(), Bn, train, key);
  const LossValue lv = objective.loss(m, params.data(), grads.data(), acts, batch, ctx, d_out.data());
  EXPECT_GT(lv.targets, 0);
  Taps<B, double> taps;
  if (tap.block != kNoTap) {
    tap.value(m, acts, Bn);
    taps.at.push_back({tap.block, tap.grad.data()});
  }
  m.backward(params.data(), grads.data(), acts, d_out.data(), taps);
  std::vector<double> g_host(host.size());
  B::template to_host<double>(g_host.data(), grads.data(), g_host.size());
  double worst = 0;
  for (const auto& p : m.layout().infos()) {
    std::vector<double> x(host.begin() + long(p.offset), host.begin() + long(p.offset + p.size));
    std::vector<double> g(g_host.begin() + long(p.offset), g_host.begin() + long(p.offset + p.size));
    auto loss_at = [&] {
      std::copy(x.begin(), x.end(), host.begin() + long(p.offset));
      return loss();
    };
    const size_t skip = p.name == pad_row_of ? size_t(p.shape[1]) : 0;  // row 0
    auto loss_at_tail = [&] {
      std::copy(x.begin(), x.end(), host.begin() + long(p.offset + skip));
      return loss();
    };
    if (skip) {
      x.erase(x.begin(), x.begin() + long(skip));
      g.erase(g.begin(), g.begin() + long(skip));
    }
    const double err = skip ? gradcheck(x, g, loss_at_tail) : gradcheck(x, g, loss_at);
    std::copy(x.begin(), x.end(), host.begin() + long(p.offset + skip));
    EXPECT_LT(err, tol) << p.name;
    worst = std::max(worst, err);
  }
  return worst;
}

}  // namespace rdtest
