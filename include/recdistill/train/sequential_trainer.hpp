// recdistill/train/sequential_trainer.hpp: next-item training of a sequential backbone on
// all positions of each (windowed) user sequence, with full-ranking validation, early
// stopping, checkpoints with exact resume (train/checkpoint.hpp) and a test with the
// selected weights.
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
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/layers/softmax_cross_entropy.hpp"
#include "recdistill/train/checkpoint.hpp"
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
// `train` (the split's training sequences) gives each case its `seen` list (eval.exclude: seen).
inline std::vector<eval::Case> eval_cases(const std::vector<data::SplitCase>& split_cases,
                                          const std::vector<std::vector<int32_t>>* train = nullptr) {
  std::vector<eval::Case> cases;
  cases.reserve(split_cases.size());
  for (const auto& c : split_cases) {
    if (c.target == 0 || c.history.empty()) continue;
    eval::Case e{c.history.data(), c.history.size(), c.target, c.user};
    if (train && c.user >= 0 && size_t(c.user) < train->size()) {
      e.seen = (*train)[size_t(c.user)].data();
      e.n_seen = (*train)[size_t(c.user)].size();
    }
    cases.push_back(e);
  }
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
    valid_cases_ = eval_cases(split_.valid, &split_.train);
    test_cases_ = eval_cases(split_.test, &split_.train);
  }

  const Model& model() const { return model_; }
  std::vector<T>& params() { return params_; }
  size_t windows() const { return windows_.size(); }

  eval::Metrics evaluate(const std::vector<eval::Case>& cases) {
    return eval::metrics_from_ranks(rank(cases), cfg_.eval);
  }
  // The target's rank of each case under the config's eval.* options (one per case, in order).
  std::vector<int64_t> rank(const std::vector<eval::Case>& cases) {
    if (!eval_acts_)
      eval_acts_ = std::make_unique<typename Model::Activations>(
          model_.make_activations(eval::kEvalBlock));
    if (cfg_.eval.sampling == eval::Sampling::popularity && popularity_.empty()) {
      // Popularity of sampled negatives: training interactions per item.
      popularity_.assign(size_t(model_.config().n_items), 0.0);
      for (const auto& seq : split_.train)
        for (int32_t j : seq) popularity_[size_t(j)] += 1;
    }
    return eval::rank_cases<B>(model_, params_.data(), *eval_acts_, cases, cfg_.eval, cfg_.seed,
                               &popularity_);
  }
  eval::Metrics evaluate_valid() { return evaluate(valid_cases_); }
  eval::Metrics evaluate_test() { return evaluate(test_cases_); }

  // One epoch of training; returns its log (no evaluation). A NaN/Inf loss or gradient
  // norm stops training with the epoch and step named, or with `o.skip_nonfinite` skips the
  // step (no optimiser update) and counts it in the log.
  EpochLog train_epoch(int epoch, Adam<T>& opt, const FitOptions& o = {}) {
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
    const int n_steps = int((perm.size() + size_t(Bsz) - 1) / size_t(Bsz));
    double loss_sum = 0, norm_sum = 0;
    int step = 0;
    for (size_t start = 0; start < perm.size(); start += size_t(Bsz), ++step) {
      const auto ts = std::chrono::steady_clock::now();
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
      double norm = std::numeric_limits<double>::quiet_NaN();
      if (std::isfinite(loss)) {
        model_.backward(params_.data(), grads_.data(), *acts_, dh_.data());
        norm = clip_grad_norm(grads_.data(), grads_.size(), cfg_.training.clip_grad_norm);
      }
      const bool finite = std::isfinite(loss) && std::isfinite(norm);
      if (!finite && !o.skip_nonfinite) {
        if (!std::isfinite(loss))
          fail("training diverged: the loss is ", loss, " at epoch ", epoch, ", step ", step + 1,
               " (batch of ", n, " windows); try a lower training.learning_rate or set "
               "training.clip_grad_norm");
        fail("training diverged: the gradient norm is ", norm, " at epoch ", epoch, ", step ",
             step + 1, " (batch of ", n, " windows)");
      }
      if (finite) {
        opt.step(params_.data(), grads_.data());
        loss_sum += loss;
        norm_sum += norm;
        log.targets += count;
      } else {
        ++log.skipped_steps;
      }
      // Encoder forward + backward (3x forward) and the tied output layer over the targets
      // (logits, dh, dE: 3 x 2 T d N).
      log.gflop += 1e-9 * (3.0 * model_.forward_gemm_flops(n) + 6.0 * double(count) * d * N);
      if (o.on_step)
        o.on_step({epoch, step + 1, n_steps, loss, norm,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count(), !finite});
    }
    log.steps = step;
    const int taken = std::max(step - log.skipped_steps, 1);
    log.loss = loss_sum / taken;
    log.grad_norm = norm_sum / taken;
    log.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return log;
  }

  // The whole schedule: train, validate every eval_every epochs, stop after `patience`
  // evaluations without improvement, test with the selected weights.
  TrainResult fit(const std::function<void(const EpochLog&)>& on_epoch = {}) {
    FitOptions o;
    o.on_epoch = on_epoch;
    return fit(o);
  }

  // As above, with checkpoints (train/checkpoint.hpp), resume and per-step callbacks. A
  // resumed run continues with the checkpoint's weights, optimiser and early-stopping state;
  // because every random draw is keyed by (seed, epoch, step), it gives the same bits as a
  // run that was never interrupted (same thread count). Schedule settings (epochs, patience,
  // eval_every) come from the current config.
  TrainResult fit(const FitOptions& o) {
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
    int first_epoch = 1;
    const uint64_t shash = data::split_hash(split_);
    if (!o.resume_from.empty()) {
      auto ck = load_checkpoint<T>(o.resume_from);
      check_resumable(ck, o.resume_from, cfg_, o.mapping_hash, shash);
      if (ck.params.size() != params_.size())
        fail(o.resume_from, ": the checkpoint holds ", ck.params.size(), " weights, this model has ",
             params_.size());
      params_ = std::move(ck.params);
      best = std::move(ck.best_params);
      opt.restore(ck.step, std::move(ck.adam_m), std::move(ck.adam_v));
      best_score = ck.best_score;
      bad_evals = ck.bad_evals;
      res.best_epoch = ck.best_epoch;
      res.best_valid = ck.best_valid;
      res.train_seconds = ck.train_seconds;
      res.eval_seconds = ck.eval_seconds;
      res.train_seconds_to_best = ck.train_seconds_to_best;
      res.epochs = std::move(ck.epochs);
      res.epochs_run = ck.epoch;
      res.resumed_from_epoch = ck.epoch;
      first_epoch = ck.epoch + 1;
    }
    const bool select_best = cfg_.training.selection == "best";
    // A resumed run that had already stopped early under the current patience trains no more.
    const bool stopped = select_best && res.epochs_run > 0 && bad_evals >= cfg_.training.patience;
    if (!o.checkpoint_dir.empty()) std::filesystem::create_directories(o.checkpoint_dir);
    for (int epoch = first_epoch; epoch <= cfg_.training.epochs && !stopped; ++epoch) {
      EpochLog log = train_epoch(epoch, opt, o);
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
      if (!o.checkpoint_dir.empty()) {
        const Checkpoint<T> ck = make_checkpoint(res, opt, best, best_score, bad_evals, o.mapping_hash, shash);
        const std::string bytes = encode_checkpoint(ck);
        const std::filesystem::path dir(o.checkpoint_dir);
        io::write_container((dir / kLatestCheckpoint).string(), kCheckpointFile, bytes);
        if (log.best) io::write_container((dir / kBestCheckpoint).string(), kCheckpointFile, bytes);
      }
      if (o.on_epoch) o.on_epoch(log);
      if (select_best && bad_evals >= cfg_.training.patience) break;
    }
    if (select_best && res.best_epoch > 0) {
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
  Checkpoint<T> make_checkpoint(const TrainResult& res, Adam<T>& opt, const std::vector<T>& best,
                                double best_score, int bad_evals, uint64_t mapping_hash,
                                uint64_t shash) const {
    Checkpoint<T> ck;
    ck.config_yaml = config_yaml_text(cfg_);
    ck.settings = checkpoint_settings(cfg_);
    ck.mapping_hash = mapping_hash;
    ck.split_hash = shash;
    ck.seed = cfg_.seed;
    ck.epoch = res.epochs_run;
    ck.step = opt.steps();
    ck.params = params_;
    ck.best_params = best;
    ck.adam_m = opt.first_moment();
    ck.adam_v = opt.second_moment();
    ck.best_score = best_score;
    ck.best_epoch = res.best_epoch;
    ck.bad_evals = bad_evals;
    ck.best_valid = res.best_valid;
    ck.train_seconds = res.train_seconds;
    ck.eval_seconds = res.eval_seconds;
    ck.train_seconds_to_best = res.train_seconds_to_best;
    ck.epochs = res.epochs;
    return ck;
  }

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
  std::vector<double> popularity_;  // (N,) for eval.sampling: popularity
  std::unique_ptr<typename Model::Activations> acts_, eval_acts_;
  layers::CrossEntropyWorkspace<T> ce_;
  std::vector<int32_t> seq_, tgt_;
  std::vector<T> dh_;
};

}  // namespace recdistill
