// recdistill/train/trainer.hpp: the generic trainer, Trainer<Model, Objective>, counting steps.
//
// Any Backbone (backbones/backbone.hpp) with any Objective (losses/objective.hpp):
//   Trainer<SASRec<cpu::Backend>, NextItemCE> t(model, trainer_config, eval_options, split, seed);
//   TrainResult r = t.fit();
//
// Schedules: `epochs` passes over the model's training rows in a shuffled order (Fisher-Yates
// on counter-based draws keyed by (seed, epoch)), or `iterations`, where every step draws
// batch_size distinct rows (keyed by (seed, epoch, step)) and an "epoch" is a fixed number of
// steps for logs, validation and checkpoints (epoch 1 may have its own, first_epoch_steps, so
// that validation comes after steps 1, 1 + S, 1 + 2S, ... as ALKDRec's). Validation every
// eval_every epochs, or after every epoch in which a multiple of eval_every_steps steps was
// reached; `max_steps` caps the total steps of either schedule. Early stopping and selection as
// before (docs/training.md). Parameter groups: a learning-rate multiplier, a
// weight decay, or frozen (bit-identical while frozen; train/optimizer.hpp). Phases switch at an
// epoch or a step: their callback may change the objective's terms, the groups or the training
// rows, and a phase may restart best-epoch selection from its start. Learning-rate schedules:
// train/optimizer.hpp LRSchedule. Params, grads and optimiser state live in backend buffers;
// the trainer writes checkpoints for any model (train/checkpoint.hpp).
//
// Data-parallel (FitOptions::comm with more than one rank, docs/distributed.md): every rank
// holds the same weights and draws the same global batch; rank r runs its contiguous slice of
// the batch's rows (dist::slice_of), with dropout and draws keyed by global rows. The step's
// target count and loss are all-reduced before the backward, each rank's gradient (a mean over
// its own targets) is scaled by its share of the targets and the gradients are summed with one
// all-reduce on the flat buffer, so clipping and the optimiser see the one-process gradient
// (up to the order of the sums). Validation and test rank a slice of the cases per rank and
// gather the ranks. Only rank 0 writes checkpoints.
#pragma once
#include <chrono>
#include <iomanip>
#include <sstream>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/core/interrupt.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/dist/comm.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/eval/topk.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/losses/objective.hpp"
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

// k distinct rows of n for one iteration, keyed by (seed, epoch, step): draws with rejection of
// repeats (k <= n).
inline void draw_distinct(std::vector<uint32_t>& out, size_t k, size_t n, uint64_t seed, uint32_t epoch,
                          uint32_t step, std::vector<uint8_t>& mark) {
  out.clear();
  mark.assign(n, 0);
  for (uint32_t slot = 0; out.size() < k; ++slot) {
    const auto r = bits4(seed, Stream::shuffling, epoch, step, slot, 1);
    const uint64_t wide = (uint64_t(r[0]) << 32) | r[1];
    const size_t j = size_t(wide % n);
    if (mark[j]) continue;
    mark[j] = 1;
    out.push_back(uint32_t(j));
  }
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

struct TrainerConfig {
  enum class Schedule { epochs, iterations };
  Schedule schedule = Schedule::epochs;
  int batch_size = 256;
  int epochs = 200;               // epochs to run (iterations: logged epochs of steps_per_epoch)
  int64_t steps_per_epoch = 0;    // iterations: steps per epoch (0 = rows / batch_size, rounded up)
  int64_t first_epoch_steps = 0;  // iterations: epoch 1's steps (0 = steps_per_epoch), so that its
                                  // validation comes after them (ALKDRec's after its first update)
  int64_t max_steps = 0;          // a cap on optimiser steps over the whole run (0 = none)
  int eval_every = 1;             // validate every N epochs (and after the last)
  int64_t eval_every_steps = 0;   // > 0: instead, validate at the end of every epoch in which a
                                  // multiple of N steps was reached
  int patience = 10;              // evaluations without improvement
  std::string valid_metric = "NDCG@10";
  bool select_best = true;        // false: test the last weights (training.selection: last)
  int window_stride = 0;          // the batching policy's stride (0 = model.maxlen)
  int windows_per_user = 0;       // > 0: only each user's newest N rows (1 = the seed's one sample)
  AdamConfig adam;
  LRSchedule lr_schedule;
  double clip_grad_norm = 0.0;    // 0 = off
  std::vector<ParamGroup> groups;
};

// What a checkpoint records about the run beyond the trainer's state: the resolved config and
// the settings a resume must share (train/checkpoint.hpp checkpoint_settings).
struct CheckpointMeta {
  std::string config_yaml;
  std::map<std::string, std::string> settings;
};

// Whose exclusions eval.exclude: window means under model.legacy_pad_zero (Trainer::window_cases):
// upstream's evaluation, or upstream's prediction step (specs/active-llm-distillation.md §9 Q2, Q3).
enum class WindowUse { evaluation, prediction };

template <class M, template <class> class O>
  requires Backbone<M> && Objective<O<M>, M>
class Trainer {
 public:
  using B = typename M::BackendType;
  using T = typename M::Scalar;
  using Batching = decltype(std::declval<const M&>().batching(0));
  using Row = typename decltype(std::declval<const Batching&>().rows({}))::value_type;

  // A phase starts at an epoch (start_epoch > 0) or a global step (start_step > 0); `enter` runs
  // just before its first step (and again, in order, when a run resumes past its start). Phases
  // are entered in the order they were added, so add them in the order they start.
  struct Phase {
    int start_epoch = 0;
    int64_t start_step = 0;
    std::function<void(Trainer&)> enter;
    bool restart_selection = false;  // best-epoch selection counts from this phase on
  };

  Trainer(M model, TrainerConfig tc, eval::Options eo, data::Split split, uint64_t seed,
          CheckpointMeta meta = {})
      : model_(std::move(model)), tc_(std::move(tc)), eo_(std::move(eo)), split_(std::move(split)),
        seed_(seed), meta_(std::move(meta)), batching_(model_.batching(tc_.window_stride)),
        params_(model_.num_params()), grads_(model_.num_params()), best_(model_.num_params()),
        opt_(model_.layout(), tc_.adam) {
    std::vector<T> host(model_.num_params());
    model_.init(host.data(), seed_);
    B::template to_device<T>(params_.data(), host.data(), host.size());
    if (tc_.first_epoch_steps > 0 && tc_.schedule != TrainerConfig::Schedule::iterations)
      fail("training.first_epoch_steps needs training.schedule: iterations");
    for (const size_t n : {split_.train_weight.size(), split_.train_group.size()})
      if (n != 0 && n != split_.train.size())
        fail("the split's training annotations have ", n, " entries for ", split_.train.size(), " sequences");
    for (const float w : split_.train_weight)
      if (!(w >= 0) || !std::isfinite(w)) fail("the split's training weights must be finite and >= 0, found ", w);
    rows_ = batching_.rows(split_.train);
    if (tc_.windows_per_user > 0) keep_newest_rows(size_t(tc_.windows_per_user));
    if (rows_.empty()) fail("no training rows (every user has fewer than 2 training items)");
    valid_cases_ = eval_cases(split_.valid, &split_.train);
    test_cases_ = eval_cases(split_.test, &split_.train);
    opt_.set_groups(tc_.groups);
    add_trainer_settings();
  }

  const M& model() const { return model_; }
  // The objective (made at the first step): phases switch its terms through it.
  O<M>* objective() { return obj_.get(); }
  Buffer<B, T>& params() { return params_; }
  const TrainerConfig& config() const { return tc_; }
  Adam<B, T>& optimizer() { return opt_; }
  size_t rows() const { return rows_.size(); }
  const std::vector<Row>& training_rows() const { return rows_; }
  // New training rows: from the next epoch on (epochs schedule, whose shuffled order covers
  // the rows of the epoch's start), or from the next step (iterations schedule).
  void set_rows(std::vector<Row> rows) {
    if (rows.empty()) fail("a phase set no training rows");
    pending_rows_ = std::move(rows);
  }
  void add_phase(Phase p) {
    if (p.start_epoch <= 0 && p.start_step <= 0)
      fail("a training phase needs start_epoch > 0 or start_step > 0");
    phases_.push_back(std::move(p));
  }
  // Starts from the given weights (host memory) with a fresh optimiser.
  void start_from(const std::vector<T>& weights) {
    if (weights.size() != model_.num_params())
      fail("start_from: ", weights.size(), " weights given, the model has ", model_.num_params());
    B::template to_device<T>(params_.data(), weights.data(), weights.size());
    opt_ = Adam<B, T>(model_.layout(), tc_.adam);
    opt_.set_groups(tc_.groups);
  }
  std::vector<T> host_params() const {
    std::vector<T> h(params_.size());
    B::template to_host<T>(h.data(), params_.data(), h.size());
    return h;
  }

  // The target's rank of each case under the eval options (one per case, in order).
  std::vector<int64_t> rank(const std::vector<eval::Case>& cases) {
    prepare_eval();
    eval::Options o = eo_;
    const auto cut = window_cases(cases, o, WindowUse::evaluation);
    return eval::rank_cases<B>(model_, CPtr<B, T>(params_.data()), *eval_acts_, cut ? cut->cases : cases, o, seed_,
                               &popularity_);
  }
  // Ranks (as rank(), full ranking) and the top-K lists under the same exclusions and ties;
  // `use` says whose exclusions eval.exclude: window means under model.legacy_pad_zero.
  std::pair<std::vector<int64_t>, eval::TopK<T>> rank_and_topk(const std::vector<eval::Case>& cases, int K,
                                                               WindowUse use = WindowUse::evaluation) {
    prepare_eval();
    eval::Options o = eo_;
    const auto cut = window_cases(cases, o, use);
    return eval::rank_and_topk_cases<B>(model_, CPtr<B, T>(params_.data()), *eval_acts_, cut ? cut->cases : cases, o, K);
  }
  // The scores of items[i] (ids in 1..N-1) for case i, as evaluation scores them.
  std::vector<std::vector<T>> item_scores(const std::vector<eval::Case>& cases,
                                          const std::vector<std::vector<int32_t>>& items) {
    RD_REQUIRE(items.size() == cases.size(), "item_scores: ", items.size(), " item lists for ", cases.size(), " cases");
    prepare_eval();
    std::vector<std::vector<T>> out(cases.size());
    eval::score_cases<B>(model_, CPtr<B, T>(params_.data()), *eval_acts_, cases, [&](size_t i, const T* row) {
      for (int32_t j : items[i]) out[i].push_back(row[j]);
    });
    return out;
  }
  // Metrics of the cases. During a data-parallel fit each rank ranks its slice of the cases and
  // the ranks are gathered (a case's rank depends on the case alone: sampled negatives are keyed
  // by its user and target, eval/ranking.hpp).
  eval::Metrics evaluate(const std::vector<eval::Case>& cases) {
    if (dist::parallel(comm_)) {
      const dist::Slice sl = dist::slice_of(cases.size(), comm_->rank(), comm_->size());
      const std::vector<eval::Case> mine(cases.begin() + ptrdiff_t(sl.first), cases.begin() + ptrdiff_t(sl.last));
      return eval::metrics_from_ranks(comm_->allgather(rank(mine), "the evaluation's ranks"), eo_);
    }
    return eval::metrics_from_ranks(rank(cases), eo_);
  }
  eval::Metrics evaluate_valid() { return evaluate(valid_cases_); }
  eval::Metrics evaluate_test() { return evaluate(test_cases_); }

  // One epoch of training; returns its log (no evaluation). A NaN/Inf loss or gradient norm
  // stops training with the epoch and step named, or with `o.skip_nonfinite` skips the step
  // (no optimiser update) and counts it in the log.
  EpochLog train_epoch(int epoch, const FitOptions& o = {}) {
    const int Bsz = tc_.batch_size;
    if (!acts_) {
      acts_ = std::make_unique<typename M::Activations>(model_.make_activations(Bsz));
      obj_ = std::make_unique<O<M>>(model_, Bsz);
      // Row weights and groups of the training sequences, for objectives that read them.
      if constexpr (requires { obj_->set_row_annotations(split_.train_weight, split_.train_group); })
        obj_->set_row_annotations(split_.train_weight, split_.train_group);
      batch_ = typename M::Batch(Bsz, model_.max_len());
      d_out_ = Buffer<B, T>(size_t(Bsz) * model_.max_len() * model_.hidden_size());
    }
    // An objective with collectives of its own (its global quantities, the global batch's
    // targets) learns the fit's ranks (null: this process).
    if constexpr (has_comm()) obj_->set_comm(model_, comm_);
    EpochLog log;
    log.epoch = epoch;
    const auto t0 = std::chrono::steady_clock::now();
    const bool iterations = tc_.schedule == TrainerConfig::Schedule::iterations;
    // Phases that start with this epoch come first: they may change the rows the epoch covers.
    if (tc_.max_steps <= 0 || global_step_ < tc_.max_steps) enter_phases(epoch, true, global_step_ + 1);
    apply_pending_rows();
    std::vector<uint32_t> order;
    int64_t n_steps;
    if (iterations) {
      n_steps = tc_.steps_per_epoch > 0 ? tc_.steps_per_epoch
                                        : int64_t((rows_.size() + size_t(Bsz) - 1) / size_t(Bsz));
      if (epoch == 1 && tc_.first_epoch_steps > 0) n_steps = tc_.first_epoch_steps;
    } else {
      order = epoch_permutation(rows_.size(), seed_, uint32_t(epoch));
      n_steps = int64_t((order.size() + size_t(Bsz) - 1) / size_t(Bsz));
    }
    double loss_sum = 0, norm_sum = 0;
    std::vector<uint32_t> ids;
    int step = 0;
    for (; step < n_steps; ++step) {
      if (tc_.max_steps > 0 && global_step_ >= tc_.max_steps) break;
      enter_phases(epoch, step == 0, global_step_ + 1);
      if (iterations) apply_pending_rows();
      const auto ts = std::chrono::steady_clock::now();
      int n;
      const uint32_t* row_ids;
      if (iterations) {
        n = int(std::min(rows_.size(), size_t(Bsz)));
        draw_distinct(ids, size_t(n), rows_.size(), seed_, uint32_t(epoch), uint32_t(step), mark_);
        row_ids = ids.data();
      } else {
        const size_t start = size_t(step) * size_t(Bsz);
        n = int(std::min(order.size() - start, size_t(Bsz)));
        row_ids = order.data() + start;
      }
      // Dropout and sampling are keyed by (seed, epoch, step) and the row within the batch, masks
      // (the batching policy's) by (seed, epoch) and the row's index; the batch itself is a
      // function of (seed, epoch, step), so any step can be replayed exactly. A data-parallel
      // rank runs its slice of the batch, keyed by the slice's global rows.
      const dist::Slice sl = dist::parallel(comm_) ? dist::slice_of(size_t(n), comm_->rank(), comm_->size())
                                                   : dist::Slice{0, size_t(n)};
      const int n_here = int(sl.last - sl.first);
      const StepContext ctx{seed_, uint32_t(epoch), uint32_t(step), uint32_t(sl.first)};
      ops::fill<B>(grads_.data(), int64_t(grads_.size()), 0.0);
      LossValue lv;
      if (n_here > 0) {
        batching_.fill(batch_, split_.train, rows_, row_ids + sl.first, n_here, ctx);
        model_.forward(CPtr<B, T>(params_.data()), *acts_, CPtr<B, int32_t>(batch_.seq.data()), n_here, true,
                       DropoutKey{ctx.seed, ctx.epoch, ctx.step, ctx.first_seq});
        lv = obj_->loss(model_, CPtr<B, T>(params_.data()), grads_.data(), *acts_, batch_, ctx, d_out_.data());
      } else if constexpr (has_comm()) {
        lv = obj_->idle_loss(model_, ctx);  // joins the objective's collectives
      }
      const double weight_here = lv.weight >= 0 ? lv.weight : double(lv.targets);
      // The reduced loss (a self-reducing objective returned it already).
      if (dist::parallel(comm_) && !self_reducing()) lv = reduce_loss(lv, epoch, step);
      double norm = std::numeric_limits<double>::quiet_NaN();
      if (std::isfinite(lv.loss)) {  // the same on every rank: lv is the reduced loss
        if (n_here > 0)
          model_.backward(CPtr<B, T>(params_.data()), grads_.data(), *acts_, CPtr<B, T>(d_out_.data()));
        if (dist::parallel(comm_)) reduce_gradient(weight_here, lv.weight, epoch, step);
        norm = opt_.clip(grads_.data(), tc_.clip_grad_norm);
      }
      const bool finite = std::isfinite(lv.loss) && std::isfinite(norm);
      if (!finite && !o.skip_nonfinite) {
        if (!std::isfinite(lv.loss))
          fail("training diverged: the loss is ", lv.loss, " at epoch ", epoch, ", step ", step + 1,
               " (batch of ", n, " rows); try a lower training.learning_rate or set "
               "training.clip_grad_norm");
        fail("training diverged: the gradient norm is ", norm, " at epoch ", epoch, ", step ", step + 1,
             " (batch of ", n, " rows)");
      }
      ++global_step_;
      if (finite) {
        opt_.step(params_.data(), CPtr<B, T>(grads_.data()), tc_.lr_schedule.at(tc_.adam.lr, opt_.steps() + 1));
        loss_sum += lv.loss;
        norm_sum += norm;
        log.targets += lv.targets;
      } else {
        ++log.skipped_steps;
      }
      // Encoder forward + backward (3x forward) and the objective's own products.
      log.gflop += 1e-9 * (3.0 * model_.forward_gemm_flops(n) + obj_->gemm_flops(model_, lv));
      if (o.on_step)
        o.on_step({epoch, step + 1, int(n_steps), lv.loss, norm,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count(), !finite});
      if (tc_.eval_every_steps > 0 && global_step_ % tc_.eval_every_steps == 0) step_evals_.push_back(global_step_);
    }
    log.steps = step;
    const int taken = std::max(step - log.skipped_steps, 1);
    log.loss = loss_sum / taken;
    log.grad_norm = norm_sum / taken;
    log.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return log;
  }

  // The whole schedule: train, validate, stop after `patience` evaluations without improvement,
  // test with the selected weights; checkpoints and resume through FitOptions.
  TrainResult fit(const FitOptions& o = {}) {
    // The step counter, the phases entered and the optimiser carry over from a first fit: a
    // second one would not be the run it looks like. Resume from a checkpoint instead.
    if (fitted_) fail("Trainer::fit called twice; make a new trainer (or resume one from a checkpoint)");
    fitted_ = true;
    TrainResult res;
    res.n_params = model_.num_params();
    res.n_windows = rows_.size();
    B::template copy<T>(best_.data(), CPtr<B, T>(params_.data()), params_.size());
    double best_score = -1;
    int bad_evals = 0;
    int first_epoch = 1;
    const uint64_t shash = data::split_hash(split_);
    // The comm is the fit's: later rank() / evaluate() calls are this process's own, also when
    // fit ends with an exception.
    struct EndComm {
      Trainer& t;
      ~EndComm() {
        t.comm_ = t.device_comm_ = nullptr;
        if constexpr (has_comm())
          if (t.obj_) t.obj_->set_comm(t.model_, nullptr);
      }
    } end_comm{*this};
    start_data_parallel(o.comm, o.device_comm);
    std::optional<CheckpointFiles> files;  // latest.ckpt and best.ckpt, committed together
    const bool writes = !dist::parallel(comm_) || comm_->rank() == 0;  // rank 0 alone writes
    if (!o.checkpoint_dir.empty() && writes) files.emplace(o.checkpoint_dir);
    if (!o.resume_from.empty()) {
      auto ck = load_checkpoint<T>(o.resume_from);
      check_same_ranks(ck, o.resume_from);
      check_resumable(ck, o.resume_from, meta_.settings, o.mapping_hash, shash);
      if (ck.params.size() != params_.size())
        fail(o.resume_from, ": the checkpoint holds ", ck.params.size(), " weights, this model has ",
             params_.size());
      if (ck.tensor_steps.size() != model_.layout().infos().size())
        fail(o.resume_from, ": the checkpoint has optimiser steps for ", ck.tensor_steps.size(),
             " tensors, this model has ", model_.layout().infos().size());
      // A run resumed into a new folder starts it with the pair it resumed from.
      if (files && !files->has_committed()) {
        const std::string best = resumed_best_file(o.resume_from, ck);
        files->commit(-1, io::read_file_bytes(o.resume_from), &best);
      }
      B::template to_device<T>(params_.data(), ck.params.data(), ck.params.size());
      B::template to_device<T>(best_.data(), ck.best_params.data(), ck.best_params.size());
      opt_.restore(std::move(ck.tensor_steps), ck.adam_m, ck.adam_v);
      global_step_ = ck.step;
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
    // A resumed run that had already stopped early under the current patience trains no more.
    const bool stopped = tc_.select_best && res.epochs_run > 0 && bad_evals >= tc_.patience;
    for (int epoch = first_epoch; epoch <= tc_.epochs && !stopped; ++epoch) {
      if (tc_.max_steps > 0 && global_step_ >= tc_.max_steps) break;
      step_evals_.clear();
      EpochLog log = train_epoch(epoch, o);
      res.train_seconds += log.train_seconds;
      res.epochs_run = epoch;
      if (restart_selection_) {
        best_score = -1;
        bad_evals = 0;
        restart_selection_ = false;
      }
      const bool last = epoch == tc_.epochs || (tc_.max_steps > 0 && global_step_ >= tc_.max_steps);
      const bool due = tc_.eval_every_steps > 0 ? !step_evals_.empty() : epoch % tc_.eval_every == 0;
      if (due || last) {
        const auto t0 = std::chrono::steady_clock::now();
        log.valid = evaluate_valid();
        log.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        res.eval_seconds += log.eval_seconds;
        log.evaluated = true;
        const auto it = log.valid.find(tc_.valid_metric);
        if (it == log.valid.end()) fail("training.valid_metric: '", tc_.valid_metric, "' is not computed");
        if (it->second > best_score) {
          best_score = it->second;
          B::template copy<T>(best_.data(), CPtr<B, T>(params_.data()), params_.size());
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
      if (files) {
        const auto ck = make_checkpoint(res, best_score, bad_evals, o.mapping_hash, shash);
        const std::string latest = io::frame(kCheckpointFile, encode_checkpoint(ck));
        if (log.best) files->commit(epoch, latest, &latest);
        else if (files->has_best()) files->commit(epoch, latest, nullptr);
        else {  // no improving epoch yet (epoch 1 not validated): the best so far is the start
          const std::string best = best_cut_file(ck);
          files->commit(epoch, latest, &best);
        }
      }
      if (o.on_epoch) o.on_epoch(log);
      if (tc_.select_best && bad_evals >= tc_.patience) break;
      // A stop asked for during the last epoch lets the run finish with its test.
      const bool more = epoch < tc_.epochs && !(tc_.max_steps > 0 && global_step_ >= tc_.max_steps);
      if (o.stop_requested && more)
        if (const int sig = agreed_stop(o.stop_requested(), epoch)) throw Interrupted(sig, epoch);
    }
    if (tc_.select_best && res.best_epoch > 0) {
      B::template copy<T>(params_.data(), CPtr<B, T>(best_.data()), params_.size());
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
  // ---- data parallelism (dist/comm.hpp) ----
  // Objectives that all-reduce their own global quantities (profile distillation's).
  static constexpr bool self_reducing() {
    if constexpr (requires { O<M>::reduces_itself; }) return O<M>::reduces_itself;
    return false;
  }
  // Objectives with collectives of their own: set_comm(model, comm) before a fit's steps (null
  // after it), and idle_loss(model, ctx) on a rank whose slice of a step is empty, which joins
  // them.
  static constexpr bool has_comm() {
    return requires(O<M>& o, const M& m, dist::Comm* c, const StepContext& ctx) {
      o.set_comm(m, c);
      { o.idle_loss(m, ctx) } -> std::same_as<LossValue>;
    };
  }
  // Refuses what would not be the one-process objective, and records the rank count in the
  // checkpoint settings (a resume must use as many ranks).
  void start_data_parallel(dist::Comm* comm, dist::Comm* device_comm) {
    comm_ = comm;
    if (!dist::parallel(comm_)) return;
    if (device_comm) {
      if (device_comm->size() != comm_->size() || device_comm->rank() != comm_->rank())
        fail("data-parallel training: the device communicator is rank ", device_comm->rank(), " of ",
             device_comm->size(), ", the job's is rank ", comm_->rank(), " of ", comm_->size());
      if constexpr (!std::is_same_v<Ptr<B, T>, T*>)
        fail("data-parallel training: backend '", B::name, "' has no plain pointers for a device all-reduce");
      device_comm_ = device_comm;
    }
    bool exact = self_reducing();  // it checks its own settings at the first step
    if constexpr (requires { O<M>::data_parallel; }) exact = O<M>::data_parallel;
    std::string name = "profile distillation";  // DistillObjective names no single loss
    if constexpr (requires { O<M>::name; }) name = O<M>::name;
    if (!exact)
      fail("data-parallel training (", comm_->size(), " ranks): the objective '", name,
           "' does not support it (its loss is not a mean over its rows' targets, or its draws are not keyed by "
           "global rows: losses/objective.hpp); every built-in objective does (docs/distributed.md); run it "
           "without mpirun");
    meta_.settings["trainer.ranks"] = std::to_string(comm_->size());
  }
  void check_same_ranks(const Checkpoint<T>& ck, const std::string& path) const {
    const auto it = ck.settings.find("trainer.ranks");
    const std::string was = it == ck.settings.end() ? "1" : it->second;
    const std::string now = dist::parallel(comm_) ? std::to_string(comm_->size()) : "1";
    if (was != now)
      fail(path, ": the checkpoint was trained by ", was, " data-parallel rank(s), this run has ", now,
           ": resume with the same number of ranks (", was == "1" ? std::string("without mpirun") : cat("mpirun -np ", was),
           "); the sums of another rank count differ in their last bits, so the run would not continue bit for bit");
  }
  // The step's loss over the global batch: sum_r loss_r w_r / sum_r w_r, w_r the rank's weight
  // (LossValue::weight, by default its target count t_r; a rank without weight adds 0). The
  // result's targets are the global count, its weight the global weight.
  LossValue reduce_loss(const LossValue& here, int epoch, int step) {
    const double w = here.weight >= 0 ? here.weight : double(here.targets);
    double v[3] = {w > 0 ? here.loss * w : 0.0, w, double(here.targets)};
    comm_->allreduce_sum(v, 3, cat("epoch ", epoch, " step ", step + 1, "'s loss all-reduce"));
    LossValue g;
    g.targets = int64_t(v[2]);
    g.weight = v[1];
    g.loss = v[1] > 0 ? v[0] / v[1] : 0.0;
    return g;
  }
  // grads <- sum_r (w_r / W) grads_r: each rank's gradient is its loss's, a mean of weight w_r
  // over its own rows (a self-reducing objective's gradient is its share already).
  void reduce_gradient(double weight_here, double weight, int epoch, int step) {
    const size_t P = grads_.size();
    if (!self_reducing()) {
      if (!(weight_here > 0)) ops::fill<B>(grads_.data(), int64_t(P), 0.0);  // no weight here: adds nothing
      else ops::scale<B>(grads_.data(), int64_t(P), weight_here / weight);
    }
    const std::string what = cat("epoch ", epoch, " step ", step + 1, "'s gradient all-reduce");
    if constexpr (std::is_same_v<Ptr<B, T>, T*>) {
      if (device_comm_) return device_comm_->allreduce_sum(grads_.data(), P, what);  // in place, on the device
    }
    dp_host_.resize(P);
    B::template to_host<T>(dp_host_.data(), CPtr<B, T>(grads_.data()), P);
    comm_->allreduce_sum(dp_host_.data(), P, what);
    B::template to_device<T>(grads_.data(), dp_host_.data(), P);
  }
  // A stop asked for on any rank stops every rank after the same epoch.
  int agreed_stop(int sig, int epoch) {
    if (!dist::parallel(comm_)) return sig;
    double any = sig != 0 ? 1.0 : 0.0;
    comm_->allreduce_sum(&any, 1, cat("epoch ", epoch, "'s stop check"));
    return sig != 0 ? sig : any > 0 ? 15 : 0;  // SIGTERM where another rank was asked
  }

  // Runs the phases that start at (epoch, global step) and, when resuming, every earlier one in
  // order. Only a phase that starts at this very step restarts selection: one re-entered on
  // resume finds the selection state in the checkpoint.
  void enter_phases(int epoch, bool epoch_start, int64_t step) {
    for (size_t i = entered_; i < phases_.size(); ++i) {
      const Phase& p = phases_[i];
      const bool by_epoch = p.start_epoch > 0 && epoch >= p.start_epoch;
      const bool by_step = p.start_step > 0 && step >= p.start_step;
      if (!by_epoch && !by_step) break;  // phases are entered in the order they were added
      if (p.enter) p.enter(*this);
      const bool now = (by_epoch && epoch == p.start_epoch && epoch_start) || (by_step && step == p.start_step);
      if (p.restart_selection && now) restart_selection_ = true;
      entered_ = i + 1;
    }
  }

  // What a resume must share besides the caller's settings (CheckpointMeta): the seed, every
  // trainer setting that changes the steps taken (not the schedule's length: epochs, patience,
  // eval_every, eval_every_steps, max_steps may change), and the model's tensors.
  void add_trainer_settings() {
    auto num = [](double v) {
      std::ostringstream o;
      o << std::setprecision(17) << v;
      return o.str();
    };
    auto& m = meta_.settings;
    m["trainer.seed"] = std::to_string(seed_);
    m["trainer.schedule"] = tc_.schedule == TrainerConfig::Schedule::epochs ? "epochs" : "iterations";
    m["trainer.batch_size"] = std::to_string(tc_.batch_size);
    m["trainer.steps_per_epoch"] = std::to_string(tc_.steps_per_epoch);
    if (tc_.first_epoch_steps > 0) m["trainer.first_epoch_steps"] = std::to_string(tc_.first_epoch_steps);
    m["trainer.window_stride"] = std::to_string(tc_.window_stride);
    if (tc_.windows_per_user > 0) m["trainer.windows_per_user"] = std::to_string(tc_.windows_per_user);
    const AdamConfig& a = tc_.adam;
    m["trainer.adam"] = cat(num(a.lr), " ", num(a.beta1), " ", num(a.beta2), " ", num(a.eps), " ",
                            num(a.weight_decay), a.decoupled ? " adamw" : " adam");
    const LRSchedule& l = tc_.lr_schedule;
    m["trainer.lr_schedule"] = cat(int(l.kind), " ", l.warmup_steps, " ", l.step_size, " ", num(l.gamma), " ",
                                   l.total_steps, " ", num(l.min_lr));
    m["trainer.clip_grad_norm"] = num(tc_.clip_grad_norm);
    std::string groups;
    for (const auto& g : tc_.groups) {
      groups += cat(g.name, "(", num(g.lr_scale), ",", num(g.weight_decay), g.frozen ? ",frozen" : "", "):");
      for (const auto& t : g.tensors) groups += t + ",";
      groups += ";";
    }
    m["trainer.groups"] = groups;
    uint64_t h = io::kFnvOffset;
    for (const auto& t : model_.layout().infos()) {
      h = io::fnv1a64(t.name, h);
      for (int d : t.shape) h = io::fnv1a64_bytes(&d, sizeof d, h);
    }
    m["model.tensors"] = cat(model_.layout().infos().size(), " tensors, ", model_.num_params(),
                             " weights, layout hash ", io::hex64(h));
  }

  void prepare_eval() {
    if (!eval_acts_)
      eval_acts_ = std::make_unique<typename M::Activations>(model_.make_activations(eval::kEvalBlock));
    if (eo_.sampling == eval::Sampling::popularity && popularity_.empty()) {
      // Popularity of sampled negatives: training interactions per item.
      popularity_.assign(size_t(model_.n_items()), 0.0);
      for (const auto& seq : split_.train)
        for (int32_t j : seq) popularity_[size_t(j)] += 1;
    }
  }
  // eval.exclude: window is `history` over histories cut to the model's window (its last
  // max_len() items): the cut cases, with o.exclude set to history; nullopt otherwise.
  // Under model.legacy_pad_zero, upstream's exclusions instead (spec §9), as each case's
  // `listed` set: its evaluation also excludes item 0 (id 1, its pad id) when the window is
  // padded (Q2); its prediction step never excludes item 0 (Q3).
  struct WindowCases {
    std::vector<eval::Case> cases;             // under legacy_pad_zero they point into `listed`:
    std::vector<std::vector<int32_t>> listed;  // case i's exclusions (move a WindowCases, never copy it)
  };
  std::optional<WindowCases> window_cases(const std::vector<eval::Case>& cases, eval::Options& o, WindowUse use) const {
    if (o.exclude != eval::Exclude::window) return std::nullopt;
    WindowCases w{cases, {}};
    const size_t L = size_t(model_.max_len());
    for (auto& c : w.cases)
      if (c.length > L) c.history += c.length - L, c.length = L;
    o.exclude = eval::Exclude::history;
    bool legacy = false;
    if constexpr (requires { model_.legacy_pad_zero(); }) legacy = model_.legacy_pad_zero();
    if (!legacy) return w;
    constexpr int32_t kItemZero = 1;  // item_index 0 (data/sessions.hpp: id = item_index + 1)
    w.listed.resize(w.cases.size());
    for (size_t i = 0; i < w.cases.size(); ++i) {
      eval::Case& c = w.cases[i];
      auto& x = w.listed[i];
      for (size_t k = 0; k < c.length; ++k)
        if (use == WindowUse::evaluation || c.history[k] != kItemZero) x.push_back(c.history[k]);
      if (use == WindowUse::evaluation && c.length < L) x.push_back(kItemZero);
      c.seen = x.data();
      c.n_seen = x.size();
    }
    o.exclude = eval::Exclude::listed;
    return w;
  }

  // Keeps each user's first `n` rows in the batching's order, which is newest first (both
  // window layouts walk each sequence back from its end).
  void keep_newest_rows(size_t n) {
    if constexpr (requires(const Row& r) { r.user; }) {
      std::unordered_map<int64_t, size_t> kept;
      std::vector<Row> out;
      for (const Row& r : rows_)
        if (kept[int64_t(r.user)]++ < n) out.push_back(r);
      rows_ = std::move(out);
    } else {
      fail("training.windows_per_user: this model's training rows do not name their user");
    }
  }

  void apply_pending_rows() {
    if (pending_rows_) rows_ = std::move(*pending_rows_);
    pending_rows_.reset();
  }

  Checkpoint<T> make_checkpoint(const TrainResult& res, double best_score, int bad_evals, uint64_t mapping_hash,
                                uint64_t shash) const {
    Checkpoint<T> ck;
    ck.config_yaml = meta_.config_yaml;
    ck.settings = meta_.settings;
    ck.mapping_hash = mapping_hash;
    ck.split_hash = shash;
    ck.seed = seed_;
    ck.epoch = res.epochs_run;
    ck.step = global_step_;
    ck.tensor_steps = opt_.tensor_steps();
    ck.params = host_params();
    ck.best_params.resize(best_.size());
    B::template to_host<T>(ck.best_params.data(), CPtr<B, T>(best_.data()), best_.size());
    ck.adam_m = opt_.first_moment();
    ck.adam_v = opt_.second_moment();
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

  M model_;
  TrainerConfig tc_;
  eval::Options eo_;
  data::Split split_;
  uint64_t seed_;
  CheckpointMeta meta_;
  Batching batching_;
  std::vector<Row> rows_;
  std::optional<std::vector<Row>> pending_rows_;  // set_rows(): applied at the next epoch or step
  Buffer<B, T> params_, grads_, best_;
  Adam<B, T> opt_;
  std::vector<eval::Case> valid_cases_, test_cases_;
  std::vector<double> popularity_;  // (N,) for eval.sampling: popularity
  std::unique_ptr<typename M::Activations> acts_, eval_acts_;
  std::unique_ptr<O<M>> obj_;
  typename M::Batch batch_;
  Buffer<B, T> d_out_;
  std::vector<Phase> phases_;
  size_t entered_ = 0;
  bool restart_selection_ = false;
  bool fitted_ = false;
  int64_t global_step_ = 0;
  std::vector<int64_t> step_evals_;
  std::vector<uint8_t> mark_;
  dist::Comm* comm_ = nullptr;  // during a data-parallel fit
  dist::Comm* device_comm_ = nullptr;  // FitOptions::device_comm, during a data-parallel fit
  std::vector<T> dp_host_;      // (P) the gradient on the host for the all-reduce
};

}  // namespace recdistill
