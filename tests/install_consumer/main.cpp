// A project outside the tree, built against the installed package: it runs SASRec's forward
// pass, then defines a backbone of its own (causal mean pooling over item embeddings) that
// satisfies the library's Backbone concept and trains it with the library's Trainer and the
// next-item CE objective, evaluated by the library's evaluator through the model's scorer.
// Last, it composes profile distillation from policies and trains it:
// ProfileDistillation<SASRec<cpu::Backend>, ExpWeight, MSE>.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/methods/profile_distillation.hpp"
#include "recdistill/train/trainer.hpp"

namespace rd = recdistill;

// h[b, l] = mean of E[seq[b, j]] over the real items j <= l (right padding). As matrices per
// sequence: H_b (L, d) = W_b (L, L) X_b (L, d), W_b[l, j] = [j <= l, j real] / count_l. W is built
// on the host from the ids (the only data the model reads back), everything else is backend ops.
template <rd::Backend B, class T = float>
class MeanPool {
 public:
  using BackendType = B;
  using Scalar = T;
  using Batch = rd::SeqBatch<B>;
  struct Activations {
    int capacity = 0, rows = 0;
    rd::Buffer<B, int32_t> seq, seq_in, slot;
    rd::Buffer<B, uint8_t> valid;
    rd::Buffer<B, T> x, w, h, gx;  // (R, d), (rows, L, L), (R, d), (R, d)
    std::vector<int32_t> ids, slot_host;
    std::vector<T> w_host;
  };

  MeanPool(int n_items, int L, int d) : N_(n_items), L_(L), d_(d) { layout_.add("item_embedding", {N_, d_}); }

  const rd::ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
  int blocks() const { return 1; }
  int max_len() const { return L_; }
  int hidden_size() const { return d_; }
  int n_items() const { return N_; }
  rd::Scorer scorer() const { return {0, -1, N_, d_}; }
  double forward_gemm_flops(int64_t rows) const { return 2.0 * double(rows) * L_ * L_ * d_; }
  rd::WindowBatching batching(int stride) const { return rd::WindowBatching(L_, stride, false, false); }

  void init(T* host, uint64_t seed) const {
    for (size_t i = 0; i < layout_.size(); i += 2) {
      const auto u = rd::uniform4(seed, rd::Stream::init, 0, 0, 0, uint32_t(i));
      host[i] = T(0.1 * rd::normal_from(u[0], u[1]));
      if (i + 1 < layout_.size()) host[i + 1] = T(0.1 * rd::normal_from(u[2], u[3]));
    }
  }

  Activations make_activations(int cap) const {
    Activations a;
    const size_t R = size_t(cap) * L_;
    a.capacity = cap;
    a.seq = rd::Buffer<B, int32_t>(R), a.seq_in = rd::Buffer<B, int32_t>(R);
    a.slot = rd::Buffer<B, int32_t>(size_t(cap));
    a.valid = rd::Buffer<B, uint8_t>(R);
    a.x = rd::Buffer<B, T>(R * d_), a.h = rd::Buffer<B, T>(R * d_), a.gx = rd::Buffer<B, T>(R * d_);
    a.w = rd::Buffer<B, T>(R * L_);
    a.ids.resize(R), a.w_host.resize(R * L_);
    return a;
  }

  void forward(rd::CPtr<B, T> params, Activations& a, rd::CPtr<B, int32_t> seq, int rows, bool,
               rd::DropoutKey = {}) const {
    const int R = rows * L_;
    a.rows = rows;
    B::template copy<int32_t>(a.seq.data(), seq, size_t(R));
    rd::ops::nonzero_mask<B>(a.valid.data(), rd::CPtr<B, int32_t>(a.seq.data()), int64_t(R));
    B::template to_host<int32_t>(a.ids.data(), rd::CPtr<B, int32_t>(a.seq.data()), size_t(R));
    for (int b = 0; b < rows; ++b) {
      T* w = a.w_host.data() + size_t(b) * L_ * L_;
      int count = 0;
      for (int l = 0; l < L_; ++l) {
        count += a.ids[size_t(b) * L_ + l] != 0;
        for (int j = 0; j < L_; ++j)
          w[l * L_ + j] = (j <= l && a.ids[size_t(b) * L_ + j] != 0 && count > 0) ? T(1) / T(count) : T(0);
      }
    }
    B::template to_device<T>(a.w.data(), a.w_host.data(), size_t(R) * L_);
    rd::ops::gather_rows<B>(a.x.data(), params, rd::CPtr<B, int32_t>(a.seq.data()), R, d_, 1.0);
    // H_b = W_b X_b
    B::template gemm_strided_batched<T>(false, false, L_, d_, L_, T(1), a.w.data(), L_, long(L_) * L_,
                                        a.x.data(), d_, long(L_) * d_, T(0), a.h.data(), d_, long(L_) * d_,
                                        rows);
  }

  rd::CPtr<B, T> output(const Activations& a) const { return a.h.data(); }
  rd::CPtr<B, T> block_output(const Activations& a, int) const { return a.h.data(); }
  rd::CPtr<B, T> embedding_output(const Activations& a) const { return a.x.data(); }
  rd::CPtr<B, uint8_t> mask(const Activations& a) const { return a.valid.data(); }

  void backward(rd::CPtr<B, T>, rd::Ptr<B, T> grads, Activations& a, rd::CPtr<B, T> d_out,
                const rd::Taps<B, T>& taps = {}) const {
    const int R = a.rows * L_;
    rd::Buffer<B, T> g(size_t(R) * d_);  // a user's model may allocate; the library's do not
    if (d_out) B::template copy<T>(g.data(), d_out, g.size());
    else rd::ops::fill<B>(g.data(), int64_t(g.size()), 0.0);
    for (const auto& t : taps.at)
      if (t.point != rd::TapPoint::embedding) rd::ops::add<B>(g.data(), rd::CPtr<B, T>(g.data()), t.grad, int64_t(g.size()));
    // dX_b = W_b^T dH_b, then into the table.
    B::template gemm_strided_batched<T>(true, false, L_, d_, L_, T(1), a.w.data(), L_, long(L_) * L_, g.data(),
                                        d_, long(L_) * d_, T(0), a.gx.data(), d_, long(L_) * d_, a.rows);
    for (const auto& t : taps.at)
      if (t.point == rd::TapPoint::embedding) rd::ops::add<B>(a.gx.data(), rd::CPtr<B, T>(a.gx.data()), t.grad, int64_t(g.size()));
    rd::ops::scatter_add_rows<B>(grads, rd::CPtr<B, T>(a.gx.data()), rd::CPtr<B, int32_t>(a.seq.data()), R, d_,
                                 true, 1.0);
  }

  void query(rd::CPtr<B, T> params, Activations& a, const rd::eval::Case* cases, size_t n, int rows,
             rd::Ptr<B, T> out) const {
    std::vector<int32_t> seq(size_t(rows) * L_);
    a.slot_host.resize(size_t(rows));
    for (size_t i = 0; i < size_t(rows); ++i) {
      const auto& c = cases[i < n ? i : 0];
      rd::data::layout_history(seq.data() + i * L_, c.history, c.length, L_, false);
      a.slot_host[i] = int32_t(i * L_ + std::min(c.length, size_t(L_)) - 1);
    }
    B::template to_device<int32_t>(a.seq_in.data(), seq.data(), seq.size());
    B::template to_device<int32_t>(a.slot.data(), a.slot_host.data(), a.slot_host.size());
    forward(params, a, a.seq_in.data(), rows, false);
    rd::ops::gather_rows<B>(out, output(a), rd::CPtr<B, int32_t>(a.slot.data()), rows, d_, 1.0);
  }

 private:
  int N_, L_, d_;
  rd::ParamLayout layout_;
};

static_assert(rd::Backbone<MeanPool<rd::cpu::Backend>>);

int main() {
  // SASRec from the installed headers: one forward pass.
  rd::SASRecConfig cfg;
  cfg.n_items = 10;
  cfg.max_len = 4;
  cfg.hidden = 8;
  cfg.inner = 16;
  rd::SASRec<rd::cpu::Backend> model(cfg);
  std::vector<float> params(model.num_params());
  model.init(params.data(), 1);
  auto acts = model.make_activations(1);
  const int seq[4] = {1, 2, 3, 0};
  model.forward(params.data(), acts, seq, 1, false);

  // The out-of-tree backbone, trained by the library: users cycle through item pairs.
  rd::data::UserSequences s;
  s.n_items = 21;
  s.n_users = 61;
  s.items.resize(61);
  for (int u = 1; u <= 60; ++u)
    for (int t = 0; t < 12; ++t) s.items[size_t(u)].push_back(1 + (u + t) % 20);
  const rd::data::Split split = rd::data::to_split(rd::data::split_leave_one_out(s));
  rd::TrainerConfig tc;
  tc.batch_size = 16;
  tc.epochs = 15;
  tc.adam.lr = 0.02;
  tc.patience = 20;
  rd::eval::Options eo;
  eo.ks = {10};
  rd::Trainer<MeanPool<rd::cpu::Backend>, rd::NextItemCE> trainer(MeanPool<rd::cpu::Backend>(s.n_items, 8, 16), tc,
                                                                   eo, split, 3);
  const rd::TrainResult r = trainer.fit();
  const double first = r.epochs.front().loss, last = r.epochs.back().loss;
  std::printf("mean-pool backbone: loss %.4f -> %.4f, test HR@10 %.3f\n", first, last, r.test.at("HR@10"));
  if (!(last < 0.9 * first) || !std::isfinite(r.test.at("HR@10"))) return 1;

  // Profile distillation composed from policies: SASRec on the CPU, exponential aggregation,
  // MSE reconstruction of a 6-dimensional profile per user, fine-tuning from epoch 4.
  using Distilled = rd::ProfileDistillation<rd::SASRec<rd::cpu::Backend>, rd::aggregators::ExpWeight, rd::losses::MSE>;
  auto profiles = std::make_shared<rd::ProfileTargets>();
  profiles->K = 1;
  profiles->D = 6;
  profiles->available.assign(61, 1);
  profiles->available[0] = 0;
  for (int u = 0; u <= 60; ++u)
    for (int j = 0; j < 6; ++j) profiles->values.push_back(float(std::sin(0.3 * u + j)));
  rd::SASRecConfig sc;
  sc.n_items = s.n_items;
  sc.max_len = 8;
  sc.hidden = 16;
  sc.heads = 2;
  sc.layers = 1;
  sc.inner = 32;
  rd::DistillationConfig dc;
  dc.alpha = 0.5;
  dc.fine_tune_epoch = 4;
  rd::TrainerConfig dtc = tc;
  dtc.epochs = 6;
  dtc.adam.lr = 0.005;
  rd::Trainer<Distilled, rd::DistillObjective> dt(Distilled(rd::SASRec<rd::cpu::Backend>(sc), dc, rd::aggregators::ExpWeight{0.1}, profiles),
                                                  dtc, eo, split, 3);
  rd::add_distillation_phases(dt);
  const rd::TrainResult dr = dt.fit();
  // Phase 1 logs alpha L_distil + (1 - alpha) L_rec, phase 2 L_rec alone: compare within phase 2.
  const double ft_first = dr.epochs[size_t(dc.fine_tune_epoch - 1)].loss, ft_last = dr.epochs.back().loss;
  std::printf("distilled SASRec: %zu parameters (%zu in the head), fine-tuning loss %.4f -> %.4f, test HR@10 %.3f\n",
              dt.model().num_params(), dt.model().num_params() - dt.model().backbone().num_params(), ft_first, ft_last,
              dr.test.at("HR@10"));
  if (!std::isfinite(dr.test.at("HR@10")) || !(ft_last < ft_first)) return 1;
  std::printf("consumer ok: %zu SASRec parameters, h[0] = %f\n", model.num_params(), model.hidden(acts)[0]);
  return 0;
}
