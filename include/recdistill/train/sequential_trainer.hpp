// recdistill/train/sequential_trainer.hpp: SASRec's next-item training from an experiment
// config (the `model`, `training`, `eval` and `runtime` sections): the variant named by
// model.variant picks the model type, and Trainer<SASRec<B, T, Variant>, NextItemCE>
// (train/trainer.hpp) does the work.
//
// Objective: every training pair (s_t -> s_{t+1}) of a user is one target; a batch holds
// `batch_size` windows of up to L pairs and the loss is the mean CE over its targets. For a
// user whose training sequence fits in one window this is exactly the set of RecBole's
// prefix rows (causal attention makes slot t see s_1..s_t); docs/training.md says when the
// two objectives differ.
#pragma once
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/train/checkpoint.hpp"
#include "recdistill/train/trainer.hpp"

namespace recdistill {

// The trainer settings of an experiment config's `training` section.
inline TrainerConfig trainer_config(const io::ExperimentConfig& cfg) {
  const auto& t = cfg.training;
  TrainerConfig tc;
  tc.schedule = t.schedule == "iterations" ? TrainerConfig::Schedule::iterations : TrainerConfig::Schedule::epochs;
  tc.batch_size = t.batch_size;
  tc.epochs = t.epochs;
  tc.steps_per_epoch = t.steps_per_epoch;
  tc.max_steps = t.max_steps;
  tc.eval_every = t.eval_every;
  tc.eval_every_steps = t.eval_every_steps;
  tc.patience = t.patience;
  tc.valid_metric = cfg.valid_metric();
  tc.select_best = t.selection == "best";
  tc.window_stride = t.window_stride;
  tc.adam.lr = t.learning_rate;
  tc.adam.weight_decay = t.weight_decay;
  tc.adam.decoupled = t.optimizer == "adamw";
  using K = LRSchedule::Kind;
  tc.lr_schedule.kind = t.lr_schedule == "warmup" ? K::warmup
                        : t.lr_schedule == "step" ? K::step
                        : t.lr_schedule == "cosine" ? K::cosine
                                                    : K::constant;
  tc.lr_schedule.warmup_steps = t.warmup_steps;
  tc.lr_schedule.step_size = t.lr_step_size;
  tc.lr_schedule.gamma = t.lr_gamma;
  tc.lr_schedule.total_steps = t.lr_decay_steps;
  tc.lr_schedule.min_lr = t.min_lr;
  tc.clip_grad_norm = t.clip_grad_norm;
  return tc;
}

template <Backend B, class T = float>
class SequentialTrainer {
 public:
  template <class V>
  using TrainerOf = Trainer<SASRec<B, T, V>, NextItemCE>;

  // The trainer keeps its own copy of the split (training sequences and evaluation cases).
  SequentialTrainer(const io::ExperimentConfig& cfg, data::Split split) {
    SASRecConfig mc = cfg.sasrec;
    mc.n_items = split.n_items;
    const CheckpointMeta meta{config_yaml_text(cfg), checkpoint_settings(cfg)};
    sasrec::with_variant(mc.variant, [&]<class V>() {
      t_ = std::make_unique<TrainerOf<V>>(SASRec<B, T, V>(mc), trainer_config(cfg), cfg.eval,
                                          std::move(split), cfg.seed, meta);
    });
  }

  // f(trainer) with the variant's Trainer<SASRec<B, T, V>, NextItemCE>.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit([&](auto& p) -> decltype(auto) { return f(*p); }, t_);
  }

  const SASRecConfig& model_config() {
    return visit([](auto& t) -> const SASRecConfig& { return t.model().config(); });
  }
  size_t num_params() { return visit([](auto& t) { return t.model().num_params(); }); }
  size_t windows() { return visit([](auto& t) { return t.rows(); }); }
  Buffer<B, T>& params() { return visit([](auto& t) -> Buffer<B, T>& { return t.params(); }); }
  std::vector<int64_t> rank(const std::vector<eval::Case>& cases) {
    return visit([&](auto& t) { return t.rank(cases); });
  }
  eval::Metrics evaluate_valid() { return visit([](auto& t) { return t.evaluate_valid(); }); }
  eval::Metrics evaluate_test() { return visit([](auto& t) { return t.evaluate_test(); }); }

  TrainResult fit(const FitOptions& o) { return visit([&](auto& t) { return t.fit(o); }); }
  TrainResult fit(const std::function<void(const EpochLog&)>& on_epoch = {}) {
    FitOptions o;
    o.on_epoch = on_epoch;
    return fit(o);
  }

 private:
  std::variant<std::unique_ptr<TrainerOf<sasrec::RecBole>>, std::unique_ptr<TrainerOf<sasrec::Pmixer>>> t_;
};

}  // namespace recdistill
