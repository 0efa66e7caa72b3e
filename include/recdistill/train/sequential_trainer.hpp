// recdistill/train/sequential_trainer.hpp: a sequential transformer's training from an
// experiment config (the `model`, `training`, `eval` and `runtime` sections): the family
// (SASRecFamily: SASRec with next-item CE; BERT4RecFamily: BERT4Rec with the cloze objective)
// names the config, the model and the objective, the variant named by model.variant picks the
// model type, and Trainer<Model<B, T, Variant>, Objective> (train/trainer.hpp) does the work.
//
// SASRec:
// Objective: every training pair (s_t -> s_{t+1}) of a user is one target; a batch holds
// `batch_size` windows of up to L pairs and the loss is the mean CE over its targets. For a
// user whose training sequence fits in one window this is exactly the set of RecBole's
// prefix rows (causal attention makes slot t see s_1..s_t); docs/training.md says when the
// two objectives differ.
#pragma once
#include <cmath>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/bert4rec.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/losses/attenmixer_official_ce.hpp"
#include "recdistill/losses/cloze.hpp"
#include "recdistill/losses/fpmc_objective.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/session_objective.hpp"
#include "recdistill/methods/profile_distillation.hpp"
#include "recdistill/train/checkpoint.hpp"
#include "recdistill/train/trainer.hpp"

namespace recdistill {

// The trainer settings of an experiment config's `training` section.
template <class C>
TrainerConfig trainer_config(const C& cfg) {
  const auto& t = cfg.training;
  TrainerConfig tc;
  tc.schedule = t.schedule == "iterations" ? TrainerConfig::Schedule::iterations : TrainerConfig::Schedule::epochs;
  tc.batch_size = t.batch_size;
  tc.epochs = t.epochs;
  tc.steps_per_epoch = t.steps_per_epoch;
  tc.first_epoch_steps = t.first_epoch_steps;
  tc.max_steps = t.max_steps;
  tc.eval_every = t.eval_every;
  tc.eval_every_steps = t.eval_every_steps;
  tc.patience = t.patience;
  tc.valid_metric = cfg.valid_metric();
  tc.select_best = t.selection == "best";
  tc.window_stride = t.window_stride;
  tc.windows_per_user = t.windows_per_user;
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

// What a family of models brings to SequentialTrainer and the plugins: its config, model,
// objective and variants.
struct SASRecFamily {
  static constexpr const char* name = "SASRec";
  static constexpr bool distils = false;
  using Config = io::ExperimentConfig;
  using ModelConfig = SASRecConfig;
  template <class B, class T, class V>
  using Model = SASRec<B, T, V>;
  template <class M>
  using Objective = NextItemCE<M>;
  using Variants = std::tuple<sasrec::RecBole, sasrec::Pmixer>;
  static const ModelConfig& model_config(const Config& c) { return c.sasrec; }
  static const char* variant_name(SASRecVariant v) { return sasrec::variant_name(v); }
  template <class F>
  static decltype(auto) with_variant(SASRecVariant v, F&& f) { return sasrec::with_variant(v, std::forward<F>(f)); }
  template <class B, class T, class V>
  static Model<B, T, V> make(const Config&, const ModelConfig& mc, const std::shared_ptr<const ProfileTargets>&) {
    return Model<B, T, V>(mc);
  }
};

struct BERT4RecFamily {
  static constexpr const char* name = "BERT4Rec";
  static constexpr bool distils = false;
  using Config = io::BERT4RecExperimentConfig;
  using ModelConfig = BERT4RecConfig;
  template <class B, class T, class V>
  using Model = BERT4Rec<B, T, V>;
  template <class M>
  using Objective = ClozeCE<M>;
  using Variants = std::tuple<bert4rec::RecBole, bert4rec::Hf>;
  static const ModelConfig& model_config(const Config& c) { return c.bert4rec; }
  static const char* variant_name(BERT4RecVariant v) { return bert4rec::variant_name(v); }
  template <class F>
  static decltype(auto) with_variant(BERT4RecVariant v, F&& f) { return bert4rec::with_variant(v, std::forward<F>(f)); }
  template <class B, class T, class V>
  static Model<B, T, V> make(const Config&, const ModelConfig& mc, const std::shared_ptr<const ProfileTargets>&) {
    return Model<B, T, V>(mc);
  }
};

// Session models (STAMP, FPMC): one state per row, scored against an item table; the objective
// is the config's training.loss (losses/session_objective.hpp).
struct STAMPFamily {
  static constexpr const char* name = "STAMP";
  static constexpr bool distils = false;
  using Config = io::STAMPExperimentConfig;
  using ModelConfig = STAMPConfig;
  template <class B, class T, class V>
  using Model = STAMP<B, T, V>;
  template <class M>
  using Objective = SessionObjective<M>;
  using Variants = std::tuple<stamp::RecBole, stamp::Alkdrec>;
  static const ModelConfig& model_config(const Config& c) { return c.session; }
  static const char* variant_name(STAMPVariant v) { return stamp::variant_name(v); }
  template <class F>
  static decltype(auto) with_variant(STAMPVariant v, F&& f) { return stamp::with_variant(v, std::forward<F>(f)); }
  template <class B, class T, class V>
  static Model<B, T, V> make(const Config&, const ModelConfig& mc, const std::shared_ptr<const ProfileTargets>&) {
    return Model<B, T, V>(mc);
  }
};

struct FPMCFamily {
  static constexpr const char* name = "FPMC";
  static constexpr bool distils = false;
  using Config = io::FPMCExperimentConfig;
  using ModelConfig = FPMCConfig;
  // `recbole`: FPMCRecBole (user factor, last-item term, bpr); `session`: FPMCSession
  // (backbones/fpmc.hpp). The objective is the config's training.loss (losses/fpmc_objective.hpp).
  template <class B, class T, class V>
  using Model = std::conditional_t<V::id == FPMCVariant::recbole, FPMCRecBole<B, T>, FPMCSession<B, T>>;
  template <class M>
  using Objective = FPMCObjective<M>;
  using Variants = std::tuple<fpmc::RecBole, fpmc::Session>;
  static const ModelConfig& model_config(const Config& c) { return c.session; }
  static const char* variant_name(FPMCVariant v) { return fpmc::variant_name(v); }
  template <class F>
  static decltype(auto) with_variant(FPMCVariant v, F&& f) { return fpmc::with_variant(v, std::forward<F>(f)); }
  template <class B, class T, class V>
  static Model<B, T, V> make(const Config&, const ModelConfig& mc, const std::shared_ptr<const ProfileTargets>&) {
    return Model<B, T, V>(mc);
  }
};

struct AttenMixerFamily {
  static constexpr const char* name = "AttenMixer";
  static constexpr bool distils = false;
  using Config = io::AttenMixerExperimentConfig;
  using ModelConfig = AttenMixerConfig;
  template <class B, class T, class V>
  using Model = AttenMixer<B, T, V>;
  // `official` trains with its own scaled CE over normalised rows (losses/attenmixer_official_ce.hpp),
  // `alkdrec` with training.loss or bce_multi (losses/session_objective.hpp).
  template <class M>
  using Objective = std::conditional_t<M::Variant::id == AttenMixerVariant::official, AttenMixerOfficialCE<M>,
                                       SessionObjective<M>>;
  using Variants = std::tuple<attenmixer::Alkdrec, attenmixer::Official>;
  static const ModelConfig& model_config(const Config& c) { return c.session; }
  static const char* variant_name(AttenMixerVariant v) { return attenmixer::variant_name(v); }
  template <class F>
  static decltype(auto) with_variant(AttenMixerVariant v, F&& f) { return attenmixer::with_variant(v, std::forward<F>(f)); }
  template <class B, class T, class V>
  static Model<B, T, V> make(const Config& cfg, const ModelConfig& mc, const std::shared_ptr<const ProfileTargets>&) {
    ModelConfig m = mc;
    m.query_seed = cfg.seed;  // keys model.train_mode_queries' masks
    return Model<B, T, V>(m);
  }
};

// The method's settings from the `model` and `training` keys of profile distillation.
inline DistillationConfig distillation_config(const io::DistillKeys& k) {
  DistillationConfig dc;
  dc.reconstruction_layer = k.reconstruction_layer;
  dc.alpha = k.alpha;
  dc.scale_guide_loss = k.scale_guide_loss;
  dc.fine_tune_epoch = k.fine_tune_epoch;
  using P = methods::Projection;
  dc.head.projection = k.use_down_scale ? (k.use_upscale ? P::both : P::down) : (k.use_upscale ? P::up : P::none);
  dc.head.mask_padding = k.mask_padding;
  dc.head.detach_target = k.detach_target;
  dc.head.null_profile_mode =
      k.null_profile_mode == "upstream_copy" ? methods::NullProfileMode::upstream_copy : methods::NullProfileMode::drop;
  dc.head.combiner = k.multi_profile_aggr_scheme == "attention" ? methods::Combiner::attention : methods::Combiner::mean;
  dc.head.mask_missing_profiles = k.multi_profile_missing == "mask";
  return dc;
}

inline aggregators::Any aggregator_of(const io::DistillKeys& k) {
  using K = aggregators::Any::Kind;
  const K kind = k.weighting_scheme == "exponential" ? K::exp_weight
                 : k.weighting_scheme == "attention" ? K::attention
                 : k.weighting_scheme == "last_item" ? K::last_item
                                                     : K::mean;
  return {kind, k.weight_scale};
}

inline losses::AnyReconstruction loss_of(const io::DistillKeys& k) {
  using K = losses::AnyReconstruction::Kind;
  return {k.reconstruct_loss == "RMSE" ? K::rmse : k.reconstruct_loss == "CosSim" ? K::cosine : K::mse};
}

// A backbone family with profile distillation (the seed's SASRecLLM, BERT4RecLLM): the model is
// ProfileDistillation over the backbone with run-time aggregator and loss, the objective
// DistillObjective over the backbone's own (Rec).
template <class Base, template <class> class Rec>
struct DistilledFamily : Base {
  static constexpr bool distils = true;
  static const char* base_name() { return Base::name; }  // what `export` writes: the backbone alone
  template <class B, class T, class V>
  using Model = ProfileDistillation<typename Base::template Model<B, T, V>, aggregators::Any, losses::AnyReconstruction, Rec>;
  template <class M>
  using Objective = DistillObjective<M>;
  template <class B, class T, class V>
  static Model<B, T, V> make(const typename Base::Config& cfg, const typename Base::ModelConfig& mc,
                             const std::shared_ptr<const ProfileTargets>& profiles) {
    if (!profiles) fail("profile distillation needs profile embeddings: set data.user_profile_embeddings_files");
    // Projection none, or down and up together, compare profiles with hidden states directly.
    const auto& k = cfg.distill;
    if (k.use_down_scale == k.use_upscale && profiles->D != mc.hidden)
      fail(cfg.data.user_profile_embeddings_files.empty() ? std::string("the profiles")
                                                          : cfg.data.user_profile_embeddings_files.front(),
           ": profiles of ", profiles->D, " numbers, but ",
           k.use_down_scale ? "model.use_down_scale and model.use_upscale together need"
                            : "without model.use_down_scale or model.use_upscale (projection none) they need",
           " model.hidden_units = ", mc.hidden, " numbers; set one of the two (a learned projection)");
    return Model<B, T, V>(typename Base::template Model<B, T, V>(mc), distillation_config(cfg.distill),
                          aggregator_of(cfg.distill), profiles, loss_of(cfg.distill));
  }
};

struct SASRecLLMFamily : DistilledFamily<SASRecFamily, NextItemCE> {
  static constexpr const char* name = "SASRecLLM";
};

struct BERT4RecLLMFamily : DistilledFamily<BERT4RecFamily, ClozeCE> {
  static constexpr const char* name = "BERT4RecLLM";
};

// The backbone's settings of a model (a method's model wraps one).
template <class M>
const auto& backbone_config(const M& m) {
  if constexpr (requires { m.backbone(); })
    return m.backbone().config();
  else
    return m.config();
}

template <Backend B, class T = float, class Family = SASRecFamily>
class SequentialTrainer {
 public:
  template <class V>
  using TrainerOf = Trainer<typename Family::template Model<B, T, V>, Family::template Objective>;
  using Config = typename Family::Config;
  using ModelConfig = typename Family::ModelConfig;

  // The trainer keeps its own copy of the split (training sequences and evaluation cases).
  // `profiles`: the users' profile embeddings, for the families that distil them.
  SequentialTrainer(const Config& cfg, data::Split split, std::shared_ptr<const ProfileTargets> profiles = nullptr) {
    ModelConfig mc = Family::model_config(cfg);
    mc.n_items = split.n_items;
    const CheckpointMeta meta{config_yaml_text(cfg), checkpoint_settings(cfg)};
    Family::with_variant(mc.variant, [&]<class V>() {
      auto t = std::make_unique<TrainerOf<V>>(Family::template make<B, T, V>(cfg, mc, profiles), trainer_config(cfg),
                                              cfg.eval, std::move(split), cfg.seed, meta);
      if constexpr (Family::distils) add_distillation_phases(*t);
      t_ = std::move(t);
    });
  }

  // f(trainer) with the variant's Trainer<Model<B, T, V>, Objective>.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit([&](auto& p) -> decltype(auto) { return f(*p); }, t_);
  }

  const ModelConfig& model_config() {
    return visit([](auto& t) -> const ModelConfig& { return backbone_config(t.model()); });
  }
  size_t num_params() { return visit([](auto& t) { return t.model().num_params(); }); }
  size_t windows() { return visit([](auto& t) { return t.rows(); }); }
  Buffer<B, T>& params() { return visit([](auto& t) -> Buffer<B, T>& { return t.params(); }); }
  std::vector<int64_t> rank(const std::vector<eval::Case>& cases) {
    return visit([&](auto& t) { return t.rank(cases); });
  }
  eval::Metrics evaluate_valid() { return visit([](auto& t) { return t.evaluate_valid(); }); }
  eval::Metrics evaluate_test() { return visit([](auto& t) { return t.evaluate_test(); }); }

  // Distilling families: the terms of the batches trained since the last call, as a log line
  // (spec §4, §6: L_distil and beta, which the logged loss hides under beta; the users with a
  // profile per batch; the Frobenius norm of each learned projection, and the variance of the
  // projected profiles y = W_T e + b_T, which head for 0 in the collapse docs/distillation.md
  // describes). "" when no batch distilled.
  std::string distillation_line(int epoch) {
    if constexpr (!Family::distils) {
      return "";
    } else {
      return visit([&](auto& t) -> std::string {
        if (!t.objective()) return "";
        const auto s = t.objective()->take_epoch_terms();
        if (s.distilled == 0) return "";
        std::ostringstream line;
        line << "distillation, epoch " << epoch << ": L_rec " << s.rec / s.batches << ", L_distil "
             << s.distil / s.distilled << ", beta " << s.beta / s.distilled << ", users with a profile per batch "
             << s.usable / s.distilled;
        const std::vector<T> w = t.host_params();
        const ParamInfo* wt = nullptr;
        const ParamInfo* bt = nullptr;
        for (const auto& info : t.model().layout().infos()) {
          if (info.name == "profile_transform.weight") wt = &info;
          if (info.name == "profile_transform.bias") bt = &info;
          if (info.name == "profile_transform.weight" || info.name == "hidden_upscale.weight") {
            double sq = 0;
            for (size_t i = 0; i < info.size; ++i) sq += double(w[info.offset + i]) * double(w[info.offset + i]);
            line << ", |" << info.name << "|_F " << std::sqrt(sq);
          }
        }
        if (wt && bt) line << ", var(y) " << projected_variance(t.model().profiles(), w, *wt, *bt);
        if (s.distilled < s.batches) line << " (" << s.batches - s.distilled << " of " << s.batches << " batches without a usable user)";
        return line.str();
      });
    }
  }

  TrainResult fit(const FitOptions& o) { return visit([&](auto& t) { return t.fit(o); }); }
  TrainResult fit(const std::function<void(const EpochLog&)>& on_epoch = {}) {
    FitOptions o;
    o.on_epoch = on_epoch;
    return fit(o);
  }

 private:
  // The variance of y = W_T e + b_T (d) over the first kMaxRows available profiles, averaged
  // over y's dimensions: the spread the reconstruction target keeps.
  static double projected_variance(const ProfileTargets& p, const std::vector<T>& w, const ParamInfo& wt,
                                   const ParamInfo& bt) {
    constexpr size_t kMaxRows = 1024;  // enough for the diagnostic, cheap at any number of users
    const size_t d = size_t(wt.shape[0]), D = size_t(wt.shape[1]);
    std::vector<double> sum(d, 0.0), sq(d, 0.0);
    size_t n = 0;
    for (size_t row = 0; row < p.available.size() && n < kMaxRows; ++row) {
      if (!p.available[row]) continue;
      const float* e = p.values.data() + row * D;
      for (size_t j = 0; j < d; ++j) {
        double acc = double(w[bt.offset + j]);
        for (size_t i = 0; i < D; ++i) acc += double(w[wt.offset + j * D + i]) * double(e[i]);
        sum[j] += acc;
        sq[j] += acc * acc;
      }
      ++n;
    }
    if (n < 2) return 0.0;
    double var = 0;
    for (size_t j = 0; j < d; ++j) var += (sq[j] - sum[j] * sum[j] / double(n)) / double(n - 1);
    return var / double(d);
  }

  template <class Tuple>
  struct Of;
  template <class... V>
  struct Of<std::tuple<V...>> {
    using type = std::variant<std::unique_ptr<TrainerOf<V>>...>;
  };
  typename Of<typename Family::Variants>::type t_;
};

}  // namespace recdistill
