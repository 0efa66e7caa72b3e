// recdistill/train/sequential_trainer.hpp: next-item training of a sequential backbone on
// all positions of each (windowed) user sequence, with full-ranking validation, early
// stopping and a test with the selected weights.
//
// Objective: every training pair (s_t -> s_{t+1}) of a user is one target; a batch holds
// `batch_size` windows of up to L pairs and the loss is the mean CE over its targets. For a
// user whose training sequence fits in one window this is exactly the set of RecBole's
// prefix rows (causal attention makes slot t see s_1..s_t); docs/training.md says when the
// two objectives differ.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/layers/softmax_cross_entropy.hpp"
#include "recdistill/train/optimizer.hpp"
#include "recdistill/train/result.hpp"

namespace recdistill {

// Shuffled order of n items for one epoch (Fisher-Yates on counter-based draws).
inline std::vector<uint32_t> epoch_permutation(size_t n, uint64_t seed, uint32_t epoch) {
  std::vector<uint32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = uint32_t(i);
  for (size_t i = n; i > 1; --i) {
    const auto r = bits4(seed, Stream::shuffling, epoch, 0, uint32_t(i - 1), 0);
    const uint64_t wide = (uint64_t(r[0]) << 32) | r[1];
    std::swap(p[i - 1], p[size_t(wide % i)]);
  }
  return p;
}

// Evaluation cases viewing the histories of a split's cases (which must outlive them).
inline std::vector<eval::Case> eval_cases(const std::vector<data::SplitCase>& split_cases) {
  std::vector<eval::Case> cases;
  cases.reserve(split_cases.size());
  for (const auto& c : split_cases)
    if (c.target != 0 && !c.history.empty()) cases.push_back({c.history.data(), c.history.size(), c.target});
  return cases;
}

template <Backend B, class T = float>
class SequentialTrainer {
 public:
  using Model = SASRec<B, T>;

  // The trainer keeps its own copy of the split (training sequences and evaluation cases).
  SequentialTrainer(const io::ExperimentConfig& cfg, data::Split split)
      : cfg_(cfg), split_(std::move(split)), model_(model_config(cfg, split_)) {
    params_.resize(model_.num_params());
    grads_.resize(model_.num_params());
    model_.init(params_.data(), cfg_.seed);
    windows_ = data::make_windows(split_.train, model_.config().max_len, cfg_.training.window_stride);
    if (windows_.empty()) fail(cfg_.data.path, ": no training pairs (every user has < 2 training items)");
    valid_cases_ = eval_cases(split_.valid);
    test_cases_ = eval_cases(split_.test);
  }

  const Model& model() const { return model_; }
  std::vector<T>& params() { return params_; }
  size_t windows() const { return windows_.size(); }

  eval::Metrics evaluate(const std::vector<eval::Case>& cases) {
    if (!eval_acts_)
      eval_acts_ = std::make_unique<typename Model::Activations>(
          model_.make_activations(eval::kEvalBlock));
    const auto ranks =
        eval::rank_cases<B>(model_, params_.data(), *eval_acts_, cases, cfg_.eval.ties);
    return eval::metrics_from_ranks(ranks, cfg_.eval.ks);
  }
  eval::Metrics evaluate_valid() { return evaluate(valid_cases_); }
  eval::Metrics evaluate_test() { return evaluate(test_cases_); }

  // One epoch of training; returns its log (no evaluation).
  EpochLog train_epoch(int epoch, Adam<T>& opt) {
    const auto& mc = model_.config();
    const int L = mc.max_len, d = mc.hidden, N = mc.n_items, Bsz = cfg_.training.batch_size;
    if (!acts_) {
      acts_ = std::make_unique<typename Model::Activations>(model_.make_activations(Bsz));
      ce_.reserve(Bsz * L, 512, d, N);
      seq_.resize(size_t(Bsz) * L);
      tgt_.resize(size_t(Bsz) * L);
      dh_.resize(size_t(Bsz) * L * d);
    }
    EpochLog log;
    log.epoch = epoch;
    const auto t0 = std::chrono::steady_clock::now();
    const auto perm = epoch_permutation(windows_.size(), cfg_.seed, uint32_t(epoch));
    const bool left = model_.padding_side() == PaddingSide::left;
    const bool quirk = mc.variant == SASRecVariant::pmixer;
    double loss_sum = 0, norm_sum = 0;
    int step = 0;
    for (size_t start = 0; start < perm.size(); start += size_t(Bsz), ++step) {
      const int n = int(std::min(perm.size() - start, size_t(Bsz)));
      for (int i = 0; i < n; ++i) {
        const auto& w = windows_[perm[start + size_t(i)]];
        data::layout_window(seq_.data() + size_t(i) * L, tgt_.data() + size_t(i) * L,
                            split_.train[size_t(w.user)], w, L, left, quirk);
      }
      std::fill(grads_.begin(), grads_.end(), T(0));
      // Dropout is keyed by (seed, epoch, step) and the row within the batch; the batch order
      // is itself a function of (seed, epoch), so any step can be replayed exactly.
      model_.forward(params_.data(), *acts_, seq_.data(), n, true,
                     {cfg_.seed, uint32_t(epoch), uint32_t(step)});
      int64_t count = 0;
      const double loss = layers::softmax_cross_entropy<B, T>(
          dh_.data(), model_.item_table(grads_.data()), model_.hidden(*acts_),
          model_.item_table(params_.data()), tgt_.data(), n * L, d, N, ce_, &count);
      if (!std::isfinite(loss))
        fail("training diverged: the loss is ", loss, " at epoch ", epoch, ", step ", step + 1,
             " (batch of ", n, " windows); try a lower training.learning_rate or set "
             "training.clip_grad_norm");
      model_.backward(params_.data(), grads_.data(), *acts_, dh_.data());
      const double norm = clip_grad_norm(grads_.data(), grads_.size(), cfg_.training.clip_grad_norm);
      if (!std::isfinite(norm))
        fail("training diverged: the gradient norm is ", norm, " at epoch ", epoch, ", step ",
             step + 1);
      opt.step(params_.data(), grads_.data());
      loss_sum += loss;
      norm_sum += norm;
      log.targets += count;
      // Encoder forward + backward (3x forward) and the tied output layer over the targets
      // (logits, dh, dE: 3 x 2 T d N).
      log.gflop += 1e-9 * (3.0 * model_.forward_gemm_flops(n) + 6.0 * double(count) * d * N);
    }
    log.steps = step;
    log.loss = loss_sum / std::max(step, 1);
    log.grad_norm = norm_sum / std::max(step, 1);
    log.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return log;
  }

  // The whole schedule: train, validate every eval_every epochs, stop after `patience`
  // evaluations without improvement, test with the selected weights.
  TrainResult fit(const std::function<void(const EpochLog&)>& on_epoch = {}) {
    TrainResult res;
    res.n_params = model_.num_params();
    res.n_windows = windows_.size();
    AdamConfig ac;
    ac.lr = cfg_.training.learning_rate;
    ac.weight_decay = cfg_.training.weight_decay;
    ac.decoupled = cfg_.training.optimizer == "adamw";
    Adam<T> opt(params_.size(), ac);
    std::vector<T> best = params_;
    double best_score = -1;
    int bad_evals = 0;
    for (int epoch = 1; epoch <= cfg_.training.epochs; ++epoch) {
      EpochLog log = train_epoch(epoch, opt);
      res.train_seconds += log.train_seconds;
      res.epochs_run = epoch;
      const bool last = epoch == cfg_.training.epochs;
      if (epoch % cfg_.training.eval_every == 0 || last) {
        const auto t0 = std::chrono::steady_clock::now();
        log.valid = evaluate_valid();
        log.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        res.eval_seconds += log.eval_seconds;
        log.evaluated = true;
        const double score = log.valid.at(cfg_.training.valid_metric);
        if (score > best_score) {
          best_score = score;
          best = params_;
          res.best_epoch = epoch;
          res.best_valid = log.valid;
          res.train_seconds_to_best = res.train_seconds;
          log.best = true;
          bad_evals = 0;
        } else {
          ++bad_evals;
        }
      }
      res.epochs.push_back(log);
      if (on_epoch) on_epoch(log);
      if (cfg_.training.selection == "best" && bad_evals >= cfg_.training.patience) break;
    }
    if (cfg_.training.selection == "best" && res.best_epoch > 0) {
      params_ = best;
    } else {
      res.best_epoch = res.epochs_run;
      res.train_seconds_to_best = res.train_seconds;
      if (!res.epochs.empty()) res.best_valid = res.epochs.back().valid;
    }
    const auto t0 = std::chrono::steady_clock::now();
    res.test = evaluate_test();
    res.eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  }

 private:
  static SASRecConfig model_config(const io::ExperimentConfig& cfg, const data::Split& s) {
    SASRecConfig mc = cfg.sasrec;
    mc.n_items = s.n_items;
    return mc;
  }

  io::ExperimentConfig cfg_;
  data::Split split_;
  Model model_;
  std::vector<T> params_, grads_;
  std::vector<data::Window> windows_;
  std::vector<eval::Case> valid_cases_, test_cases_;
  std::unique_ptr<typename Model::Activations> acts_, eval_acts_;
  layers::CrossEntropyWorkspace<T> ce_;
  std::vector<int32_t> seq_, tgt_;
  std::vector<T> dh_;
};

}  // namespace recdistill
