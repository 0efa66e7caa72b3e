// recdistill/io/config.hpp: the experiment config (the seed README's sections model.*,
// training.*, data.*, plus eval.* and runtime.*) as components that each declare their keys
// once (core/keys.hpp); io/config_schema.hpp turns YAML layers into them. docs/config.md's key
// table is generated from these declarations (a test keeps it in step).
//
// Precedence: built-in default < model-name default < `compat` preset < --config files, in
// order < `--set section.key=value` overrides. Unknown keys and ill-typed or out-of-range values
// are errors naming the file (or the --set override), the line and the key.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/bert4rec.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config_schema.hpp"
#include "recdistill/llm/config.hpp"

namespace recdistill::io {

// training.*: what the trainer does with the model (train/trainer.hpp TrainerConfig).
struct TrainingConfig {
  int batch_size = 256;
  int window_stride = 0;  // 0 = model.maxlen (non-overlapping windows); docs/training.md
  int windows_per_user = 0;  // 0 = every window; 1 = the seed's one sample per user
  int epochs = 200;
  std::string schedule = "epochs";  // epochs | iterations
  int64_t steps_per_epoch = 0;
  int64_t first_epoch_steps = 0;  // iterations: epoch 1's steps (0 = steps_per_epoch)
  int64_t max_steps = 0;
  double learning_rate = 1e-3;
  std::string optimizer = "adam";  // adam | adamw
  double weight_decay = 0.0;
  double clip_grad_norm = 0.0;  // 0 = off
  std::string lr_schedule = "constant";
  int64_t warmup_steps = 0, lr_step_size = 0, lr_decay_steps = 0;
  double lr_gamma = 0.1, min_lr = 0.0;
  int eval_every = 1;
  int64_t eval_every_steps = 0;
  int patience = 10;  // evaluations without improvement
  std::string valid_metric = "NDCG@10";
  std::string selection = "best";  // best | last
  std::string init_weights;  // a weights file to start from ("" = the model's initialisation)

  template <class V>
  void keys(V& v) {
    // The profile-distillation seed's training (specs/profile-distillation.md §8, §11) for its
    // models, and for every model under `compat: upstream` (the seed's SASRec/BERT4Rec baselines).
    const auto seed = [](Key&& k, const char* value) {
      return std::move(k).for_model("SASRecLLM", value).for_model("BERT4RecLLM", value).preset("upstream", value);
    };
    v(batch_size, Key("training", "batch_size", "sequences (windows) per optimiser step").range(1, 1 << 20).resume());
    v(window_stride, Key("training", "window_stride", "step between training windows; 0 = model.maxlen")
                         .range(0, 1 << 20).resume());
    v(windows_per_user, seed(Key("training", "windows_per_user", "train on each user's newest N windows only; 0 = every "
                                                                 "window; 1 = the profile-distillation seed's one sample per user")
                                 .range(0, 1 << 20).resume(), "1"));
    v(epochs, Key("training", "epochs", "epochs to run (may change on resume)").range(0, 1 << 20));
    v(schedule, Key("training", "schedule", "epochs: shuffled passes over the rows; iterations: each step draws a batch")
                    .one_of({"epochs", "iterations"}).resume());
    v(steps_per_epoch, Key("training", "steps_per_epoch", "iterations: steps per logged epoch; 0 = rows / batch_size")
                           .range(0, 1e15).resume());
    v(first_epoch_steps, Key("training", "first_epoch_steps", "iterations: the steps of epoch 1, so its validation "
                                                              "comes after them (ALKDRec validates after its first update: "
                                                              "1); 0 = steps_per_epoch")
                             .range(0, 1e15).resume());
    v(max_steps, Key("training", "max_steps", "a cap on optimiser steps over the run; 0 = none").range(0, 1e15));
    v(learning_rate, Key("training", "learning_rate", "Adam learning rate").range(0, 10).resume());
    v(optimizer, seed(Key("training", "optimizer", "adam: L2 in the gradient; adamw: decoupled weight decay")
                          .one_of({"adam", "adamw"}).resume(), "adamw"));
    v(weight_decay, seed(Key("training", "weight_decay", "weight decay of every tensor").range(0, 10).resume(), "0.01"));
    v(clip_grad_norm, seed(Key("training", "clip_grad_norm", "clip the global gradient L2 norm to this; 0 = off")
                               .range(0, 1e12).resume().spelling("training.grad_clip_norm"), "0.5"));
    v(lr_schedule, Key("training", "lr_schedule", "learning rate over steps (train/optimizer.hpp LRSchedule)")
                       .one_of({"constant", "warmup", "step", "cosine"}).resume());
    v(warmup_steps, Key("training", "warmup_steps", "linear warm-up steps before the schedule").range(0, 1e15).resume());
    v(lr_step_size, Key("training", "lr_step_size", "step schedule: steps between decays").range(0, 1e15).resume());
    v(lr_gamma, Key("training", "lr_gamma", "step schedule: decay factor").range(0, 1).resume());
    v(lr_decay_steps, Key("training", "lr_decay_steps", "cosine schedule: steps of the decay").range(0, 1e15).resume());
    v(min_lr, Key("training", "min_lr", "cosine schedule: the final learning rate").range(0, 10).resume());
    v(eval_every, Key("training", "eval_every", "validate every N epochs (may change on resume)").range(1, 1 << 20));
    v(eval_every_steps, Key("training", "eval_every_steps", "> 0: validate after each epoch that passed a multiple of N steps")
                            .range(0, 1e15));
    v(patience, Key("training", "patience", "stop after N validations without improvement").range(1, 1 << 20));
    v(valid_metric, Key("training", "valid_metric", "model selection metric, NAME@K with K in eval.ks").resume());
    // The seed reports its last epoch and has no early stopping (spec §8.7, §11.2).
    v(selection, seed(Key("training", "selection", "test the best-validation weights or the last ones (last: no early stopping)")
                          .one_of({"best", "last"}).value_alias("best_valid", "best").resume(), "last"));
    v(init_weights, Key("training", "init_weights", "start from this weights file of the same model (a run's "
                                                    "model.safetensors) with a fresh optimiser; \"\" = initialise"));
    v.declared(Key("training", "save_checkpoints", "the seed's switch")
                   .ignore("checkpoints are always written to the run folder (docs/checkpoints.md)", true),
               keys::Type::boolean);
  }
};

// data.*: docs/data.md describes every format, filter and split.
struct DataConfig {
  std::string format = "atomic";  // atomic | csv | amazon | sessions
  std::string path = "data/ml-100k/ml-100k.inter";
  std::string prepared;  // a `recdistill prepare` file to read instead of importing; "" = import
  std::string item_path, user_path;  // optional item/user (metadata) files; "" = none
  std::string split = "loo";      // loo | temporal | session | ratio
  std::string user_field = "user_id", item_field = "item_id", time_field = "timestamp";
  std::string rating_field = "rating";
  bool drop_duplicates = false;
  double min_rating = -1e300;     // below: dropped; the default keeps every rating
  int min_user_interactions = 0, min_item_interactions = 0;  // k-core; <= 1 = off
  double temporal_quantile = 0.8, valid_share = 0.2;        // data.split: temporal
  std::vector<double> split_ratios = {0.6, 0.2, 0.2};       // data.split: ratio
  std::vector<int> expected_counts;  // [items, train, valid, test] checked at load; [] = none
  // Profile embeddings (docs/data.md, "Profile embeddings"): K files, JSON or .npy + ids.
  std::vector<std::string> user_profile_embeddings_files;
  std::string profile_unknown_users = "warn";  // warn | error
  std::string on_nonfinite = "error";          // error | drop_user
  std::string profile_key_normalize = "none";  // none | integer
  // The seed's data files as JSON (data/interchange.hpp); set, they replace format/path/split.
  std::string profile_train_sequences, finetune_train_sequences, valid_sequences, test_sequences, mappings, counts;

  template <class V>
  void keys(V& v) {
    v(format, Key("data", "format", "`atomic` (RecBole .inter/.item/.user), `csv` (seed layout), `amazon` (2018 JSON lines) or `sessions` (alkdrec-ml layout); docs/data.md").one_of({"atomic", "csv", "amazon", "sessions"}).prepared().resume());
    v(path, Key("data", "path", "the interactions: .inter, interactions.csv, the review dump or sessions.tsv (on resume its content must match, not its path)").prepared());
    v(prepared, Key("data", "prepared", "a file written by `recdistill prepare`, read instead of importing; refused when the data settings or the input files changed (docs/prepared.md)"));
    v(item_path, Key("data", "item_path", "item file whose columns become metadata and whose ids are interned first (.item, items.csv, Amazon metadata, items.tsv)").prepared());
    v(user_path, Key("data", "user_path", "user file whose columns become metadata (.user, users.csv)").prepared());
    v(split, Key("data", "split", "`loo` (leave-one-out by time), `temporal` (global time quantile), `session` (the shipped labels) or `ratio` (contiguous fractions); docs/data.md").one_of({"loo", "temporal", "session", "ratio"}).prepared().resume());
    v(user_field, Key("data", "user_field", "user column name (atomic, csv)").prepared().resume());
    v(item_field, Key("data", "item_field", "item column name (atomic, csv)").prepared().resume());
    v(time_field, Key("data", "time_field", "timestamp column name (atomic, csv)").prepared().resume());
    v(rating_field, Key("data", "rating_field", "rating column, read when present (atomic, csv)").prepared().resume());
    v(drop_duplicates, Key("data", "drop_duplicates", "drop rows repeating an earlier (user, item, timestamp); duplicates are always counted").prepared().resume());
    v(min_rating, Key("data", "min_rating", "drop rows rated below this (the data needs ratings); the default keeps all").range(-1e300, 1e300).prepared().resume());
    v(min_user_interactions, Key("data", "min_user_interactions", "k-core filter on users, iterated to a fixed point with the item filter; <= 1 = off")
                                 .range(0, 1 << 30).prepared().resume());
    v(min_item_interactions, Key("data", "min_item_interactions", "k-core filter on items; <= 1 = off")
                                 .range(0, 1 << 30).prepared().resume());
    v(temporal_quantile, Key("data", "temporal_quantile", "`temporal`: the boundary is this quantile of all timestamps")
                             .range(0, 1).prepared().resume());
    v(valid_share, Key("data", "valid_share", "`temporal`: share of training users drawn (with `seed`) for validation")
                       .range_open(0, 1).prepared().resume());
    v(split_ratios, Key("data", "split_ratios", "`ratio`: train, valid and test fractions, summing to 1")
                        .range(0, 1).items(3, 3).prepared().resume());
    v(expected_counts, Key("data", "expected_counts", "checked at load: [items, training sequences, validation cases, test cases] "
                                                      "(the shipped ALKDRec ML data: [8475, 7393, 2465, 2465]); [] = no check")
                           .range(0, 2e9).items(0, 4).resume());
    v(user_profile_embeddings_files, Key("data", "user_profile_embeddings_files", "profile embeddings: one path or K paths (multi-profile), JSON or .npy with a .npy.ids sidecar (docs/profiles.md)")
                                         .deprecated_alias("data.profile_embeddings_path")
                                         .deprecated_alias("model.profile_embeddings_path"));
    v(profile_unknown_users, Key("data", "profile_unknown_users", "profile keys that are not users of the dataset: `warn` (counted, ignored) or `error`")
                                 .one_of({"warn", "error"}));
    v(on_nonfinite, Key("data", "on_nonfinite", "a NaN/Inf/float32-overflowing profile value: `error`, or `drop_user` (no profile from that file)")
                        .one_of({"error", "drop_user"}));
    v(profile_key_normalize, Key("data", "profile_key_normalize", "`none`: profile keys match user ids exactly (\"123.0\" is not \"123\"); `integer`: keys and ids that read as the same integer match (\"123.0\", \"0123\", \"123\")")
                                 .one_of({"none", "integer"}));
    const char* seed_json = " (the seed's data as JSON, docs/data.md \"The seed's data keys\"; with these keys "
                            "data.format, path and split are not used)";
    v(profile_train_sequences, Key("data", "profile_train_sequences",
                                   cat("training sequences {\"<user index>\": [item index, ...]}", seed_json)).prepared());
    v(finetune_train_sequences, Key("data", "finetune_train_sequences",
                                    cat("phase-2 training sequences: the same as profile_train_sequences (default)", seed_json)).prepared());
    v(valid_sequences, Key("data", "valid_sequences", cat("validation sequences; the last item is the target", seed_json)).prepared());
    v(test_sequences, Key("data", "test_sequences", cat("test sequences; the last item is the target", seed_json)).prepared());
    v(mappings, Key("data", "mappings", cat("{\"users\": {original id: index}, \"items\": {...}}", seed_json)).prepared());
    v(counts, Key("data", "counts", cat("[num_users, num_items]", seed_json)).prepared());
  }
};

// Profile distillation (SASRecLLM, BERT4RecLLM; specs/profile-distillation.md §11): the seed's
// keys in its sections, the library's switches beside them. Other models accept and ignore them,
// as the seed does.
struct DistillKeys {
  int reconstruction_layer = -1;
  std::string weighting_scheme = "mean";  // mean | exponential | attention | last_item
  double weight_scale = 0.0;               // gamma: required with exponential
  bool use_down_scale = true, use_upscale = false;
  bool multi_profile = false;
  std::string multi_profile_aggr_scheme = "mean";  // mean | attention
  std::string multi_profile_missing = "mask";      // mask | upstream_zero
  bool mask_padding = true;
  std::string reconstruct_loss = "MSE";  // MSE | RMSE | CosSim
  double alpha = 0.5;
  int fine_tune_epoch = -1;  // not given: training.epochs // 2 (the seed's default); <= 1: none
  bool scale_guide_loss = false;
  std::string null_profile_mode = "drop";  // drop | upstream_copy
  bool detach_target = false;

  template <class V>
  void keys(V& v) {
    const auto both = [](const char* name) { return std::vector<std::string>{cat("model.", name), cat("training.", name)}; };
    Key tap("model", "reconstruction_layer", "the tapped layer: SASRec -1 = the final output, k = block k (0-based, before the final LN); BERT4Rec -1 = the last layer, k = hidden state k (0 = embeddings)");
    tap.deprecated = both("distillation_layer");
    v(reconstruction_layer, std::move(tap).range(-1, 4096).resume());
    Key scheme("model", "weighting_scheme", "aggregator of the tapped layer: mean, exponential (weight_scale = gamma), attention (learned), last_item");
    scheme.deprecated = both("aggregation_method");
    v(weighting_scheme, std::move(scheme).one_of({"mean", "exponential", "attention", "last_item"})
                            .value_alias("exp_weight", "exponential").resume());
    v(weight_scale, Key("model", "weight_scale", "gamma of the exponential weights exp(-gamma * recency); required with exponential")
                        .range(0, 1e6).resume());
    v(use_down_scale, Key("model", "use_down_scale", "T: a Linear(D -> d) on the profile side (projection `down`)").resume());
    v(use_upscale, Key("model", "use_upscale", "a Linear(d -> D) on the model side (projection `up`); with use_down_scale needs D = d").resume());
    v(multi_profile, Key("model", "multi_profile", "data.user_profile_embeddings_files lists K profile files per user").resume());
    v(multi_profile_aggr_scheme, Key("model", "multi_profile_aggr_scheme", "combiner of a user's K profiles: mean or attention (learned)")
                                     .one_of({"mean", "attention"}).resume());
    v(multi_profile_missing, Key("model", "multi_profile_missing", "a profile missing from some files: mask it, or upstream_zero (a zero vector joins)")
                                 .one_of({"mask", "upstream_zero"}).preset("upstream", "upstream_zero").resume());
    v(mask_padding, Key("model", "mask_padding", "aggregate real items only; false = every slot, as upstream").preset("upstream", "false").resume());
    v(reconstruct_loss, Key("training", "reconstruct_loss", "reconstruction loss: MSE, RMSE or CosSim (cosine)")
                            .one_of({"MSE", "RMSE", "CosSim"}).value_alias("cosine", "CosSim").resume());
    Key alpha_key("training", "alpha", "weight of the distillation term: alpha * beta * L_distil + (1 - alpha) * L_rec");
    alpha_key.deprecated = both("distillation_alpha");
    v(alpha, std::move(alpha_key).range(0, 1).resume());
    v(fine_tune_epoch, Key("training", "fine_tune_epoch", "first recommendation-only epoch (head frozen, selection from here); <= 1: no distillation")
                           .range(-1, 1 << 20).derived_default("training.epochs // 2").resume());
    Key beta("training", "scale_guide_loss", "beta = L_rec / L_distil per batch, as a constant (dynamic scaling)");
    beta.deprecated = both("use_dynamic_scaling");
    v(scale_guide_loss, std::move(beta).resume());
    v(null_profile_mode, Key("training", "null_profile_mode", "users without a profile: drop them from L_distil, or upstream_copy (they count in its denominator)")
                             .one_of({"drop", "upstream_copy"}).preset("upstream", "upstream_copy").resume());
    v(detach_target, Key("training", "detach_target", "no gradient into T and the profile combiner (against the degenerate minimiser, docs/distillation.md)").resume());
    v.declared(Key("training", "log_guide_in_finetune", "log L_distil in the fine-tuning phase")
                   .ignore("L_distil is not computed in the fine-tuning phase", true),
               keys::Type::boolean);
  }

  // Cross-key checks and the derived default, after binding.
  void finish(const ResolvedConfig& r, int epochs) {
    // (Any value given, -1 included, is the user's: <= 1 trains without distillation.)
    if (!r.has("training.fine_tune_epoch")) fine_tune_epoch = epochs / 2;
    if (weighting_scheme == "exponential" && !r.has("model.weight_scale"))
      fail(r.where_last({"model.weighting_scheme"}), ": key 'model.weight_scale': required with model.weighting_scheme "
           "exponential (gamma of exp(-gamma * recency); the seed's configs use 0.1)");
  }
};

struct RuntimeConfig {
  int threads = 1;
  std::string backend = "cpu";
  int device = 0;
  double dist_timeout_s = 300;
  bool tf32 = false;

  template <class V>
  void keys(V& v) {
    v(threads, Key("runtime", "threads", "Eigen/OpenMP threads; a count repeats bit for bit, another can differ in the last bits (multi-threaded GEMM sums in blocks), so a resume keeps it; on 2 cores one thread was as fast").range(1, 1024).resume());
    v(backend, Key("runtime", "backend", "where the model runs: `cpu`, or `cuda` (every bundled model; needs the CUDA plugin, built where a CUDA toolkit is found, and a GPU: docs/cuda.md)").one_of({"cpu", "cuda"}));
    v(device, Key("runtime", "device", "runtime.backend cuda: the GPU's index (as CUDA numbers them, after CUDA_VISIBLE_DEVICES); under mpirun the first GPU of each machine, local rank l using device + l (docs/distributed.md)").range(0, 1023));
    v(tf32, Key("runtime", "tf32", "runtime.backend cuda: float GEMMs on TF32 tensor cores (faster, about 3 decimal digits per product instead of 7); false keeps true fp32, as the CPU"));
    v(dist_timeout_s, Key("runtime", "dist_timeout_s", "under mpirun: seconds a rank waits for the others at a collective before the job ends naming the rank that did not arrive (docs/distributed.md)").range(1, 86400));
  }
};

// The keys the app itself reads: the top level, the model's name, the run folder, data, eval
// and runtime. A plugin's model adds its own sections' keys (its ComponentInfo lists them).
struct CommonConfig {
  uint64_t seed = 2020;
  std::string experiment_name = "experiment";
  std::string compat = "reference";
  std::string model_name = "SASRec";
  bool add_head = true;
  std::string model_dir = "runs";
  DataConfig data;
  eval::Options eval;
  RuntimeConfig runtime;
  llm::LlmConfig llm;  // the LLM endpoint and its answer cache (docs/llm.md)
  std::string source;  // the first config file (for messages)

  template <class V>
  void keys(V& v) {
    v(seed, Key("", "seed", "seed of every random stream (init, dropout, shuffling, sampling)")
                .range(0, 9.2e18).resume().spelling("runtime.seed"));
    v(experiment_name, Key("", "experiment_name", "run label; runs go to training.model_dir/experiment_name"));
    v(compat, Key("", "compat", "preset: reference (= recommended) is the library's behaviour; upstream (profile "
                                "seed) and upstream_compat (active seed) restore the releases' behaviour")
                  .one_of({"reference", "upstream", "upstream_compat"}).value_alias("recommended", "reference").resume());
    v(model_name, Key("model", "model_name", "the model, by the name a loaded plugin offers it under (`recdistill plugins` lists them); SASRecLLM and BERT4RecLLM distil profiles")
                      .deprecated_alias("model.model_type").value_alias("sasrec", "SASRec").value_alias("bert4rec", "BERT4Rec"));
    v(add_head, Key("model", "add_head", "emit logits; must be true for training (the seed's key)"));
    v.declared(Key("model", "item_num", "the seed's placeholder").ignore("overwritten from the data", false),
               keys::Type::integer);
    v.declared(Key("model", "user_num", "the seed's placeholder").ignore("overwritten from the data", false),
               keys::Type::integer);
    v.declared(Key("model", "use_distillation", "the seed README's switch; the seed itself names the method by "
                                                "model.model_name (SASRecLLM, BERT4RecLLM)")
                   .deprecated_alias("training.use_distillation")
                   .refuse("profile distillation is chosen by model.model_name: SASRecLLM or BERT4RecLLM"),
               keys::Type::boolean);
    v(model_dir, Key("training", "model_dir", "parent of the run folders (training.model_dir/experiment_name/run-...)"));
    data.keys(v);
    eval.keys(v);
    runtime.keys(v);
    llm.keys(v);
  }

  // Cross-key checks and derived values, after binding; `r` says where each key came from.
  void finish(const ResolvedConfig& r) {
    if (!add_head) fail(r.where_last({"model.add_head"}), ": key 'model.add_head': must be true for training");
    double sum = 0;
    for (double x : data.split_ratios) sum += x;
    if (std::abs(sum - 1) > 1e-9)
      fail(r.where_last({"data.split_ratios"}), ": key 'data.split_ratios': expected fractions summing to 1, found a sum of ", sum);
    const std::pair<const char*, const std::string*> urls[] = {{"llm.base_url", &llm.base_url},
                                                               {"llm.embedding_base_url", &llm.embedding_base_url}};
    for (const auto& [key, url] : urls) {
      try {
        llm::checked_base_url(*url, key);
      } catch (const Error& e) {
        fail(r.where_last({key}), ": ", e.what());
      }
    }
  }
};

inline void check_valid_metric(const ResolvedConfig& r, const TrainingConfig& training, const eval::Options& eval);

// The checks every sequential-transformer run shares, after binding: the window stride fits
// the window, heads divide the hidden size, the validation metric is computed.
inline void check_sequential(const ResolvedConfig& r, const TrainingConfig& training, const eval::Options& eval,
                             int max_len, int hidden, int heads) {
  if (training.window_stride > max_len)
    fail(r.where_last({"training.window_stride", "model.maxlen"}), ": training.window_stride (", training.window_stride,
         ") must be at most model.maxlen (", max_len, ")");
  if (training.windows_per_user > 0 && training.window_stride > 0 && training.window_stride < max_len)
    fail(r.where_last({"training.windows_per_user", "training.window_stride"}), ": training.windows_per_user (",
         training.windows_per_user, ") keeps each user's newest windows whole, but training.window_stride (",
         training.window_stride, ") < model.maxlen (", max_len, ") makes windows train only their last ",
         training.window_stride, " pairs: set window_stride to 0 with windows_per_user");
  if (hidden % heads != 0)
    fail(r.where_last({"model.hidden_units", "model.num_heads"}), ": model.hidden_units (", hidden,
         ") must be divisible by model.num_heads (", heads, ")");
  check_valid_metric(r, training, eval);
}

// The validation metric is one the evaluation computes, and the validation schedule is one the
// training schedule has.
inline void check_valid_metric(const ResolvedConfig& r, const TrainingConfig& training, const eval::Options& eval) {
  if (training.first_epoch_steps > 0 && training.schedule != "iterations")
    fail(r.where_last({"training.first_epoch_steps", "training.schedule"}), ": training.first_epoch_steps needs "
         "training.schedule: iterations (an epoch of the epochs schedule is a pass over the rows)");
  bool metric_ok = false;
  for (int k : eval.ks)
    for (const auto& n : eval::metric_families())
      if (training.valid_metric == n + "@" + std::to_string(k)) metric_ok = true;
  if (!metric_ok)
    fail(r.where_last({"training.valid_metric", "eval.ks"}), ": training.valid_metric '", training.valid_metric,
         "' is not computed with eval.ks ", flow_text(to_yaml(eval.ks)),
         "; expected HR@K, Recall@K, NDCG@K, MRR@K or Precision@K with K in eval.ks");
}

// Everything a SASRec run reads: the app's keys plus the model's and the trainer's.
struct ExperimentConfig : CommonConfig {
  SASRecConfig sasrec;
  TrainingConfig training;
  DistillKeys distill;

  template <class V>
  void keys(V& v) {
    CommonConfig::keys(v);
    sasrec.keys(v);
    training.keys(v);
    distill.keys(v);
  }

  void finish(const ResolvedConfig& r) {
    CommonConfig::finish(r);
    distill.finish(r, training.epochs);
    sasrec.resolve_defaults([&](const char* path) { return r.has(path); });
    // model.seed_window's defaults (SASRecLLM's, compat: upstream's) describe pmixer's window: the
    // recbole variant keeps its maxlen slots unless the config itself asks, which is refused.
    if (sasrec.variant != SASRecVariant::pmixer) {
      if (r.given("model.seed_window") && sasrec.seed_window)
        fail(r.where_last({"model.seed_window", "model.variant"}), ": model.seed_window: ECIR's window is the pmixer "
             "variant's (model.variant: pmixer); the recbole variant sees maxlen slots");
      sasrec.seed_window = false;
    }
    if (sasrec.variant == SASRecVariant::pmixer && sasrec.inner != sasrec.hidden)
      fail(r.where_last({"model.inner_size", "model.hidden_units", "model.variant"}), ": model.inner_size (", sasrec.inner,
           ") must equal model.hidden_units (", sasrec.hidden,
           ") under model.variant pmixer, whose feed-forward is hidden_units x hidden_units");
    check_sequential(r, training, eval, sasrec.slots(), sasrec.hidden, sasrec.heads);
  }

  // The validation metric as results name it (sampled evaluation adds a suffix to every name).
  std::string valid_metric() const { return training.valid_metric + eval::metric_suffix(eval); }
};

// Everything a BERT4Rec run reads: the app's keys plus the model's and the trainer's.
struct BERT4RecExperimentConfig : CommonConfig {
  BERT4RecConfig bert4rec;
  TrainingConfig training;
  DistillKeys distill;

  template <class V>
  void keys(V& v) {
    CommonConfig::keys(v);
    bert4rec.keys(v);
    training.keys(v);
    distill.keys(v);
  }

  void finish(const ResolvedConfig& r) {
    CommonConfig::finish(r);
    distill.finish(r, training.epochs);
    bert4rec.resolve_defaults([&](const char* path) { return r.has(path); });
    check_sequential(r, training, eval, bert4rec.max_len, bert4rec.hidden, bert4rec.heads);
  }

  std::string valid_metric() const { return training.valid_metric + eval::metric_suffix(eval); }
};

// Everything a session model's run reads (STAMP, FPMC, Atten-Mixer: Model is its config): the
// app's keys plus the model's and the trainer's.
template <class Model>
struct SessionExperimentConfig : CommonConfig {
  Model session;
  TrainingConfig training;

  template <class V>
  void keys(V& v) {
    CommonConfig::keys(v);
    session.keys(v);
    training.keys(v);
  }

  void finish(const ResolvedConfig& r) {
    CommonConfig::finish(r);
    session.resolve_defaults([&](const char* path) { return r.has(path); });
    session.drop_preset_quirks([&](const char* path) { return r.given(path); });
    if (training.window_stride != 0)
      fail(r.where_last({"training.window_stride"}), ": key 'training.window_stride': session models cut rows by "
                                                    "training.session_rows (last | prefixes), found ", training.window_stride);
    check_valid_metric(r, training, eval);
  }

  std::string valid_metric() const { return training.valid_metric + eval::metric_suffix(eval); }
};
using STAMPExperimentConfig = SessionExperimentConfig<STAMPConfig>;
using FPMCExperimentConfig = SessionExperimentConfig<FPMCConfig>;
using AttenMixerExperimentConfig = SessionExperimentConfig<AttenMixerConfig>;

// ---- a component from layers, and back ----

template <class C>
Schema schema_of() {
  return Schema(describe<C>());
}

// Binds a component (with CommonConfig's finish) from a resolved document.
template <class C>
C bind_config(const ResolvedConfig& r) {
  C c{};
  Binder b{r};
  c.keys(b);
  if constexpr (requires { c.source; }) c.source = r.config_files;
  if constexpr (requires { c.finish(r); }) c.finish(r);
  return c;
}

// A component from config layers. `extra`: keys other components declare (a plugin's model's,
// seen by the app); `opt.strict` rejects every other key.
template <class C>
C parse_config(const ConfigLayers& layers, const std::vector<KeyDoc>& extra = {}, const ResolveOptions& opt = {}) {
  Schema s = schema_of<C>();
  s.add(extra);
  return bind_config<C>(resolve(s, read_layers(layers), opt));
}

inline ExperimentConfig parse_config(const ConfigLayers& layers) { return parse_config<ExperimentConfig>(layers); }

// Config text as if read from `file` (tests and tools).
inline ExperimentConfig parse_config_text(const std::string& text, const std::string& file = "config.yaml",
                                          const std::vector<std::string>& sets = {}) {
  return parse_config(ConfigLayers{{{file, text}}, sets});
}

// One file and --set overrides (the library's entry point; the app passes layers).
inline ExperimentConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {}) {
  return parse_config(config_layers({path}, overrides));
}

// The resolved config of a component: every key with the value it resolved to (defaults, then
// the layers), in the sections and names the parser reads, so parsing it gives the same config
// back (tested). Runs print it and save it as config.yaml; aliases come back canonical.
template <class C>
YAML::Node effective_config(const C& c) {
  YAML::Node root(YAML::NodeType::Map);
  Emitter e{root};
  const_cast<C&>(c).keys(e);  // the emitter only reads
  return root;
}

template <class C>
std::string effective_config_text(const C& c) {
  return yaml_text(effective_config(c));
}

// The settings whose compatibility has a bit of `mask` (keys::kResume, kWeights, kPrepared).
template <class C>
std::map<std::string, std::string> compat_settings(const C& c, unsigned mask) {
  std::map<std::string, std::string> out;
  SettingsCollector s{mask, out};
  const_cast<C&>(c).keys(s);
  return out;
}

}  // namespace recdistill::io
