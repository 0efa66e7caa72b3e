// recdistill/io/config.hpp: the YAML experiment config (seed README layout: model.*,
// training.*, data.*, plus eval.* and runtime.*; docs/config.md lists every key).
//
// Precedence: built-in defaults < YAML file < `--set section.key=value` overrides. Unknown
// keys and ill-typed or out-of-range values are errors naming the file, line and key.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <charconv>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/eval/ranking.hpp"

namespace recdistill::io {

struct TrainingConfig {
  int batch_size = 256;
  int window_stride = 0;  // 0 = model.maxlen (non-overlapping windows); docs/training.md
  int epochs = 200;
  double learning_rate = 1e-3;
  std::string optimizer = "adam";  // adam | adamw
  double weight_decay = 0.0;
  double clip_grad_norm = 0.0;  // 0 = off
  int eval_every = 1;
  int patience = 10;  // evaluations without improvement
  std::string valid_metric = "NDCG@10";
  std::string selection = "best";  // best | last
  std::string model_dir = "runs";
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
  // Profile embeddings (docs/data.md, "Profile embeddings"): K files, JSON or .npy + ids.
  std::vector<std::string> user_profile_embeddings_files;
  std::string profile_unknown_users = "warn";  // warn | error
  std::string on_nonfinite = "error";          // error | drop_user
};

// eval.*: ks, ties, exclude, sampled_negatives, sampling (eval/ranking.hpp, docs/metrics.md).
using EvalConfig = eval::Options;

struct RuntimeConfig {
  int threads = 1;
  std::string backend = "cpu";
};

struct ExperimentConfig {
  uint64_t seed = 2020;
  std::string experiment_name = "experiment";
  std::string model_name = "SASRec";
  SASRecConfig sasrec;
  bool inner_size_set = false, attn_dropout_set = false, ln_eps_set = false;
  TrainingConfig training;
  DataConfig data;
  EvalConfig eval;
  RuntimeConfig runtime;
  std::string source;     // file it came from
  YAML::Node resolved;    // the merged YAML (file + overrides), for saving next to results
};

namespace detail {

inline std::string where(const std::string& file, const YAML::Node& n) {
  const auto m = n.Mark();
  return m.line >= 0 ? cat(file, ":", m.line + 1) : file;
}

template <class V>
V scalar(const YAML::Node& n, const std::string& file, const std::string& key, const char* what) {
  if (!n.IsScalar()) fail(where(file, n), ": key '", key, "': expected ", what, ", found a ",
                          n.IsSequence() ? "list" : n.IsMap() ? "mapping" : "null value");
  try {
    return n.as<V>();
  } catch (const YAML::Exception&) {
    fail(where(file, n), ": key '", key, "': expected ", what, ", found '", n.Scalar(), "'");
  }
}

inline bool boolean(const YAML::Node& n, const std::string& file, const std::string& key) {
  return scalar<bool>(n, file, key, "true or false");
}

}  // namespace detail

// Applies `section.key=value` overrides (value parsed as YAML) to the root node.
inline void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    fail("--set '", assignment, "': expected section.key=value");
  const std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  YAML::Node v;
  try {
    v = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail("--set '", assignment, "': the value is not valid YAML: ", e.msg);
  }
  const auto dot = key.find('.');
  if (dot == std::string::npos) {
    root[key] = v;
  } else {
    const std::string sec = key.substr(0, dot), k = key.substr(dot + 1);
    if (root[sec] && !root[sec].IsMap()) fail("--set '", assignment, "': '", sec, "' is not a section");
    root[sec][k] = v;
  }
}

inline ExperimentConfig parse_config(const YAML::Node& root, const std::string& file) {
  using detail::scalar;
  ExperimentConfig c;
  c.source = file;
  c.resolved = YAML::Clone(root);
  if (!root || root.IsNull()) fail(file, ": the config is empty");
  if (!root.IsMap()) fail(detail::where(file, root), ": expected a mapping of sections at the top level");

  using Setter = std::function<void(const YAML::Node&, const std::string&)>;
  auto Int = [&](int& dst, int lo, int hi) {
    return Setter([&dst, lo, hi, &file](const YAML::Node& n, const std::string& key) {
      const long long v = scalar<long long>(n, file, key, "an integer");
      if (v < lo || v > hi)
        fail(detail::where(file, n), ": key '", key, "': expected an integer in [", lo, ", ", hi,
             "], found ", v);
      dst = int(v);
    });
  };
  auto Real = [&](double& dst, double lo, double hi, bool hi_open = false) {
    return Setter([&dst, lo, hi, hi_open, &file](const YAML::Node& n, const std::string& key) {
      const double v = scalar<double>(n, file, key, "a number");
      if (!(v >= lo && (hi_open ? v < hi : v <= hi)))
        fail(detail::where(file, n), ": key '", key, "': expected a number in [", lo, ", ", hi,
             hi_open ? ")" : "]", ", found ", n.Scalar());
      dst = v;
    });
  };
  auto Str = [&](std::string& dst, std::vector<std::string> allowed = {}) {
    return Setter([&dst, allowed, &file](const YAML::Node& n, const std::string& key) {
      const std::string v = scalar<std::string>(n, file, key, "a string");
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(detail::where(file, n), ": key '", key, "': expected one of ", list, ", found '", v, "'");
      }
      dst = v;
    });
  };
  // Keys of the seed config that are accepted without effect; `warn` says so on stderr.
  auto Ignored = [&](const char* why, bool warn) {
    return Setter([why, warn, &file](const YAML::Node& n, const std::string& key) {
      if (warn) std::cerr << "warning: " << detail::where(file, n) << ": key '" << key << "' has no effect: " << why << "\n";
    });
  };
  auto Unsupported = [&](const char* why) {
    return Setter([why, &file](const YAML::Node& n, const std::string& key) {
      fail(detail::where(file, n), ": key '", key, "' is not supported yet: ", why);
    });
  };
  std::string variant = "recbole";
  std::string ties = "against_model";
  double dropout = 0.5;
  bool dropout_set = false;
  bool add_head = true;

  std::map<std::string, std::map<std::string, Setter>> keys;
  keys[""]["seed"] = [&](const YAML::Node& n, const std::string& key) {
    const long long v = scalar<long long>(n, file, key, "a non-negative integer");
    if (v < 0) fail(detail::where(file, n), ": key 'seed': expected a non-negative integer, found ", v);
    c.seed = uint64_t(v);
  };
  keys[""]["experiment_name"] = Str(c.experiment_name);
  keys[""]["compat"] = Unsupported("only the recommended (default) behaviour exists");
  auto& m = keys["model"];
  m["model_name"] = Str(c.model_name);  // any name: the plugins say which exist (`recdistill plugins`)
  m["variant"] = Str(variant, {"recbole", "pmixer"});
  m["item_num"] = Ignored("overwritten from the data", false);
  m["user_num"] = Ignored("overwritten from the data", false);
  m["maxlen"] = Int(c.sasrec.max_len, 1, 4096);
  m["hidden_units"] = Int(c.sasrec.hidden, 1, 8192);
  m["num_blocks"] = Int(c.sasrec.layers, 1, 64);
  m["num_heads"] = Int(c.sasrec.heads, 1, 256);
  m["inner_size"] = [&](const YAML::Node& n, const std::string& k) {
    Int(c.sasrec.inner, 1, 65536)(n, k);
    c.inner_size_set = true;
  };
  m["dropout_rate"] = [&](const YAML::Node& n, const std::string& k) {
    Real(dropout, 0, 1, true)(n, k);
    dropout_set = true;
  };
  m["attn_dropout_rate"] = [&](const YAML::Node& n, const std::string& k) {
    Real(c.sasrec.attn_dropout, 0, 1, true)(n, k);
    c.attn_dropout_set = true;
  };
  m["layer_norm_eps"] = [&](const YAML::Node& n, const std::string& k) {
    Real(c.sasrec.ln_eps, 1e-30, 1)(n, k);
    c.ln_eps_set = true;
  };
  m["initializer_range"] = Real(c.sasrec.init_range, 0, 10);
  m["add_head"] = [&](const YAML::Node& n, const std::string& k) {
    add_head = detail::boolean(n, file, k);
    if (!add_head) fail(detail::where(file, n), ": key 'model.add_head': must be true for training");
  };
  for (const char* k : {"reconstruction_layer", "weighting_scheme", "weight_scale", "use_down_scale",
                        "use_upscale", "multi_profile", "multi_profile_aggr_scheme"})
    m[k] = Unsupported("profile distillation (SASRecLLM) is not implemented yet");
  auto& t = keys["training"];
  t["batch_size"] = Int(c.training.batch_size, 1, 1 << 20);
  t["epochs"] = Int(c.training.epochs, 0, 1 << 20);
  t["window_stride"] = Int(c.training.window_stride, 0, 1 << 20);
  t["learning_rate"] = Real(c.training.learning_rate, 0, 10);
  t["optimizer"] = Str(c.training.optimizer, {"adam", "adamw"});
  t["weight_decay"] = Real(c.training.weight_decay, 0, 10);
  t["clip_grad_norm"] = Real(c.training.clip_grad_norm, 0, 1e12);
  t["grad_clip_norm"] = Real(c.training.clip_grad_norm, 0, 1e12);  // profile-distillation spelling
  t["eval_every"] = Int(c.training.eval_every, 1, 1 << 20);
  t["patience"] = Int(c.training.patience, 1, 1 << 20);
  t["valid_metric"] = Str(c.training.valid_metric);
  t["selection"] = Str(c.training.selection, {"best", "last"});
  t["model_dir"] = Str(c.training.model_dir);
  t["save_checkpoints"] = Ignored("checkpoints are always written to the run folder (docs/checkpoints.md)", true);
  for (const char* k : {"reconstruct_loss", "alpha", "fine_tune_epoch", "scale_guide_loss"})
    t[k] = Unsupported("profile distillation (SASRecLLM) is not implemented yet");
  auto& d = keys["data"];
  d["format"] = Str(c.data.format, {"atomic", "csv", "amazon", "sessions"});
  d["path"] = Str(c.data.path);
  d["prepared"] = Str(c.data.prepared);
  d["item_path"] = Str(c.data.item_path);
  d["user_path"] = Str(c.data.user_path);
  d["split"] = Str(c.data.split, {"loo", "temporal", "session", "ratio"});
  d["user_field"] = Str(c.data.user_field);
  d["item_field"] = Str(c.data.item_field);
  d["time_field"] = Str(c.data.time_field);
  d["rating_field"] = Str(c.data.rating_field);
  d["drop_duplicates"] = [&](const YAML::Node& n, const std::string& k) {
    c.data.drop_duplicates = detail::boolean(n, file, k);
  };
  d["min_rating"] = Real(c.data.min_rating, -1e300, 1e300);
  d["min_user_interactions"] = Int(c.data.min_user_interactions, 0, 1 << 30);
  d["min_item_interactions"] = Int(c.data.min_item_interactions, 0, 1 << 30);
  d["temporal_quantile"] = Real(c.data.temporal_quantile, 0, 1);
  d["valid_share"] = Real(c.data.valid_share, 0, 1, true);
  d["split_ratios"] = [&](const YAML::Node& n, const std::string& key) {
    if (!n.IsSequence() || n.size() != 3)
      fail(detail::where(file, n), ": key '", key, "': expected a list of 3 fractions (train, valid, test)");
    double sum = 0;
    c.data.split_ratios.clear();
    for (const auto& x : n) {
      const double v = scalar<double>(x, file, key, "a number");
      if (!(v >= 0 && v <= 1))
        fail(detail::where(file, x), ": key '", key, "': expected fractions in [0, 1], found ", x.Scalar());
      c.data.split_ratios.push_back(v);
      sum += v;
    }
    if (std::abs(sum - 1) > 1e-9)
      fail(detail::where(file, n), ": key '", key, "': expected fractions summing to 1, found a sum of ", sum);
  };
  for (const char* k : {"profile_train_sequences", "finetune_train_sequences", "valid_sequences",
                        "test_sequences", "mappings", "counts"})
    d[k] = Unsupported("the seed's pickle inputs are not read; give data.format and data.path");
  d["user_profile_embeddings_files"] = [&](const YAML::Node& n, const std::string& key) {
    auto& files = c.data.user_profile_embeddings_files;
    files.clear();
    if (!n.IsSequence()) {
      files.push_back(scalar<std::string>(n, file, key, "a path or a list of paths"));
      return;
    }
    if (n.size() == 0) fail(detail::where(file, n), ": key '", key, "': expected a path or a non-empty list of paths");
    for (const auto& x : n) files.push_back(scalar<std::string>(x, file, key, "a path"));
  };
  d["profile_unknown_users"] = Str(c.data.profile_unknown_users, {"warn", "error"});
  d["on_nonfinite"] = Str(c.data.on_nonfinite, {"error", "drop_user"});
  auto& e = keys["eval"];
  e["ks"] = [&](const YAML::Node& n, const std::string& key) {
    if (!n.IsSequence() || n.size() == 0)
      fail(detail::where(file, n), ": key '", key, "': expected a non-empty list of integers");
    c.eval.ks.clear();
    for (const auto& x : n) {
      const int k = scalar<int>(x, file, key, "a positive integer");
      if (k < 1) fail(detail::where(file, x), ": key '", key, "': expected positive integers, found ", k);
      c.eval.ks.push_back(k);
    }
  };
  e["ties"] = Str(ties, {"against_model", "index"});
  std::string exclude = "none", sampling = "uniform";
  e["exclude"] = Str(exclude, {"none", "history", "seen"});
  e["sampled_negatives"] = Int(c.eval.sampled_negatives, 0, 1 << 24);
  e["sampling"] = Str(sampling, {"uniform", "popularity"});
  auto& r = keys["runtime"];
  r["threads"] = Int(c.runtime.threads, 1, 1024);
  r["backend"] = Str(c.runtime.backend, {"cpu"});
  r["seed"] = keys[""]["seed"];

  auto known_list = [&](const std::string& sec) {
    std::string list;
    for (const auto& [k, _] : keys[sec]) list += (list.empty() ? "" : ", ") + k;
    return list;
  };
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string name = it->first.as<std::string>();
    const YAML::Node& val = it->second;
    if (keys[""].count(name)) {
      keys[""][name](val, name);
      continue;
    }
    if (!keys.count(name) || name.empty())
      fail(detail::where(file, it->first), ": unknown top-level key '", name,
           "' (expected seed, experiment_name, model, training, data, eval, runtime)");
    if (!val.IsMap())
      fail(detail::where(file, val), ": section '", name, "' must be a mapping of keys");
    for (auto kt = val.begin(); kt != val.end(); ++kt) {
      const std::string k = kt->first.as<std::string>();
      auto f = keys[name].find(k);
      if (f == keys[name].end())
        fail(detail::where(file, kt->first), ": unknown key '", name, ".", k, "' (known keys of '",
             name, "': ", known_list(name), ")");
      f->second(kt->second, name + "." + k);
    }
  }
  c.sasrec.variant = variant == "pmixer" ? SASRecVariant::pmixer : SASRecVariant::recbole;
  c.eval.ties = ties == "index" ? eval::Ties::index : eval::Ties::against_model;
  c.eval.exclude = exclude == "seen" ? eval::Exclude::seen
                   : exclude == "history" ? eval::Exclude::history : eval::Exclude::none;
  c.eval.sampling = sampling == "popularity" ? eval::Sampling::popularity : eval::Sampling::uniform;
  if (dropout_set) {
    c.sasrec.hidden_dropout = dropout;
    if (!c.attn_dropout_set) c.sasrec.attn_dropout = dropout;
  }
  if (c.sasrec.variant == SASRecVariant::pmixer && !c.ln_eps_set) c.sasrec.ln_eps = 1e-8;
  if (!c.inner_size_set) c.sasrec.inner = 4 * c.sasrec.hidden;
  if (c.training.window_stride > c.sasrec.max_len)
    fail(file, ": training.window_stride (", c.training.window_stride,
         ") must be at most model.maxlen (", c.sasrec.max_len, ")");
  if (c.sasrec.hidden % c.sasrec.heads != 0)
    fail(file, ": model.hidden_units (", c.sasrec.hidden, ") must be divisible by model.num_heads (",
         c.sasrec.heads, ")");
  // The validation metric must be one that is computed.
  bool metric_ok = false;
  for (int k : c.eval.ks)
    for (const auto& n : eval::metric_families())
      if (c.training.valid_metric == n + "@" + std::to_string(k)) metric_ok = true;
  if (!metric_ok)
    fail(file, ": training.valid_metric '", c.training.valid_metric,
         "' is not computed; expected HR@K, Recall@K, NDCG@K, MRR@K or Precision@K with K in eval.ks");
  // Sampled evaluation renames every metric (" (sampled 100 uniform)"); so does the selector.
  c.training.valid_metric += eval::metric_suffix(c.eval);
  return c;
}

// The effective config: every settable key with the value this config resolves to (defaults,
// then the file(s), then overrides), in the sections and names the parser reads, so
// parse_config(effective_config(c)) gives the same config back (tested). This is what runs
// print at start and save as config.yaml; the spellings a user wrote (e.g. grad_clip_norm)
// come back in their canonical form.
inline YAML::Node effective_config(const ExperimentConfig& c) {
  // Doubles as their shortest text that reads back to the same value (0.8, not 0.80000000000000004).
  auto num = [](double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return YAML::Node(std::string(buf, r.ptr));
  };
  YAML::Node root(YAML::NodeType::Map);
  root["seed"] = c.seed;
  root["experiment_name"] = c.experiment_name;
  YAML::Node m = root["model"];
  m["model_name"] = c.model_name;
  m["variant"] = c.sasrec.variant == SASRecVariant::pmixer ? "pmixer" : "recbole";
  m["maxlen"] = c.sasrec.max_len;
  m["hidden_units"] = c.sasrec.hidden;
  m["num_blocks"] = c.sasrec.layers;
  m["num_heads"] = c.sasrec.heads;
  m["inner_size"] = c.sasrec.inner;
  m["dropout_rate"] = num(c.sasrec.hidden_dropout);
  m["attn_dropout_rate"] = num(c.sasrec.attn_dropout);
  m["layer_norm_eps"] = num(c.sasrec.ln_eps);
  m["initializer_range"] = num(c.sasrec.init_range);
  YAML::Node t = root["training"];
  const auto& tc = c.training;
  t["batch_size"] = tc.batch_size;
  t["window_stride"] = tc.window_stride;
  t["epochs"] = tc.epochs;
  t["learning_rate"] = num(tc.learning_rate);
  t["optimizer"] = tc.optimizer;
  t["weight_decay"] = num(tc.weight_decay);
  t["clip_grad_norm"] = num(tc.clip_grad_norm);
  t["eval_every"] = tc.eval_every;
  t["patience"] = tc.patience;
  // Stored with the sampled-metric suffix (see parse_config); written as the user gives it.
  const std::string suffix = eval::metric_suffix(c.eval);
  std::string metric = tc.valid_metric;
  if (!suffix.empty() && metric.size() >= suffix.size() &&
      metric.compare(metric.size() - suffix.size(), suffix.size(), suffix) == 0)
    metric.resize(metric.size() - suffix.size());
  t["valid_metric"] = metric;
  t["selection"] = tc.selection;
  t["model_dir"] = tc.model_dir;
  YAML::Node d = root["data"];
  const auto& dc = c.data;
  d["format"] = dc.format;
  d["path"] = dc.path;
  d["prepared"] = dc.prepared;
  d["item_path"] = dc.item_path;
  d["user_path"] = dc.user_path;
  d["split"] = dc.split;
  d["user_field"] = dc.user_field;
  d["item_field"] = dc.item_field;
  d["time_field"] = dc.time_field;
  d["rating_field"] = dc.rating_field;
  d["drop_duplicates"] = dc.drop_duplicates;
  d["min_rating"] = num(dc.min_rating);
  d["min_user_interactions"] = dc.min_user_interactions;
  d["min_item_interactions"] = dc.min_item_interactions;
  d["temporal_quantile"] = num(dc.temporal_quantile);
  d["valid_share"] = num(dc.valid_share);
  YAML::Node ratios(YAML::NodeType::Sequence);
  for (double v : dc.split_ratios) ratios.push_back(num(v));
  d["split_ratios"] = ratios;
  if (!dc.user_profile_embeddings_files.empty())  // an empty list is not a valid value
    d["user_profile_embeddings_files"] = dc.user_profile_embeddings_files;
  d["profile_unknown_users"] = dc.profile_unknown_users;
  d["on_nonfinite"] = dc.on_nonfinite;
  YAML::Node e = root["eval"];
  e["ks"] = c.eval.ks;
  e["ties"] = c.eval.ties == eval::Ties::index ? "index" : "against_model";
  e["exclude"] = eval::name_of(c.eval.exclude);
  e["sampled_negatives"] = c.eval.sampled_negatives;
  e["sampling"] = eval::name_of(c.eval.sampling);
  YAML::Node r = root["runtime"];
  r["threads"] = c.runtime.threads;
  r["backend"] = c.runtime.backend;
  return root;
}

inline std::string effective_config_text(const ExperimentConfig& c) {
  YAML::Emitter em;
  em << effective_config(c);
  return std::string(em.c_str()) + "\n";
}

inline ExperimentConfig load_config(const std::string& path,
                                    const std::vector<std::string>& overrides = {}) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail(path, ": cannot open config file");
  } catch (const YAML::ParserException& e) {
    fail(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  }
  for (const auto& o : overrides) apply_override(root, o);
  return parse_config(root, path);
}

}  // namespace recdistill::io
