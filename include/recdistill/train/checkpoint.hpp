// recdistill/train/checkpoint.hpp: everything a training run needs to continue exactly where
// it stopped, in one verified binary file (io/container.hpp, magic "RDCKPT\0\1").
//
// A checkpoint holds the flat weights, the best weights so far, Adam's moments and step
// count, the number of finished epochs, the early-stopping state (best score and epoch, bad
// evaluations, the per-epoch logs so far), the resolved config (YAML text), the settings that
// must not change on resume, and hashes of the dataset's id mapping and of the split.
// Randomness needs no stored state: every draw is keyed by (seed, epoch, step, row), so the
// seed and the epoch count are the whole RNG state (DESIGN.md, Rules: counter-based).
//
// Trainer::fit(FitOptions) (train/trainer.hpp) commits "latest.ckpt" after every epoch and
// "best.ckpt" whenever validation improves, the two together (train/checkpoint_files.hpp);
// docs/checkpoints.md describes the files.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <iomanip>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/train/checkpoint_files.hpp"
#include "recdistill/train/result.hpp"

namespace recdistill {

// Version 3: the layout written by save_checkpoint below, with the settings named by the
// config keys' declarations (version 1 had one optimiser step count for all tensors; version 2's
// settings predate the key declarations). Older checkpoints are not converted.
inline constexpr io::FileKind kCheckpointFile{
    std::string_view("RDCKPT\0\1", 8), 3, "checkpoint",
    "an older checkpoint cannot be resumed by this build: start the run again; its run folder's results stay valid"};

namespace data {

// FNV-1a over one id mapping: its size, then each token with its length, in id order.
inline uint64_t idmap_hash(const IdMap& m, uint64_t h = io::kFnvOffset) {
  const uint64_t n = uint64_t(m.size());
  h = io::fnv1a64_bytes(&n, sizeof n, h);
  for (const auto& t : m.tokens()) {
    const uint64_t len = t.size();
    h = io::fnv1a64_bytes(&len, sizeof len, h);
    h = io::fnv1a64(t, h);
  }
  return h;
}

// Hash of a dataset's id mappings (user and item tokens in id order): two datasets with the
// same hash map every raw token to the same internal id, so weights trained on one fit the other.
inline uint64_t mapping_hash(const Dataset& d) { return idmap_hash(d.items, idmap_hash(d.users)); }

// Hash of the item mapping alone: a model's weights score items, so they fit any dataset that
// numbers the items the same way, whatever its users.
inline uint64_t item_mapping_hash(const Dataset& d) { return idmap_hash(d.items); }

// Hash of a split's content (sizes, training sequences, validation and test cases).
inline uint64_t split_hash(const Split& s) {
  uint64_t h = io::fnv1a64(s.protocol);
  const int32_t sizes[2] = {s.n_items, s.n_users};
  h = io::fnv1a64_bytes(sizes, sizeof sizes, h);
  auto seq = [&](const std::vector<int32_t>& v) {
    const uint64_t n = v.size();
    h = io::fnv1a64_bytes(&n, sizeof n, h);
    h = io::fnv1a64_bytes(v.data(), v.size() * sizeof(int32_t), h);
  };
  for (const auto& t : s.train) seq(t);
  if (!s.train_weight.empty() || !s.train_group.empty()) {  // (absent: the hash of older splits)
    h = io::fnv1a64_bytes(s.train_weight.data(), s.train_weight.size() * sizeof(float), h);
    seq(s.train_group);
  }
  for (const auto* cases : {&s.valid, &s.test}) {
    const uint64_t n = cases->size();
    h = io::fnv1a64_bytes(&n, sizeof n, h);
    for (const auto& c : *cases) {
      const int32_t ut[2] = {c.user, c.target};
      h = io::fnv1a64_bytes(ut, sizeof ut, h);
      seq(c.history);
    }
  }
  return h;
}

}  // namespace data

template <class T>
struct Checkpoint {
  std::string config_yaml;                      // the resolved config of the run
  std::map<std::string, std::string> settings;  // checkpoint_settings(cfg): must match on resume
  uint64_t mapping_hash = 0;                    // data::mapping_hash (0 = not given by the caller)
  uint64_t split_hash = 0;                      // data::split_hash of the trained split
  uint64_t seed = 0;
  int32_t epoch = 0;        // epochs finished
  int64_t step = 0;         // training steps taken (skipped non-finite steps included)
  std::vector<int64_t> tensor_steps;  // Adam's t of each tensor of the layout (frozen ones lag)
  std::vector<T> params, best_params, adam_m, adam_v;
  // Early stopping and the running result.
  double best_score = -1;
  int32_t best_epoch = 0, bad_evals = 0;
  eval::Metrics best_valid;
  double train_seconds = 0, eval_seconds = 0, train_seconds_to_best = 0;
  std::vector<EpochLog> epochs;
};

namespace detail {

inline void put_metrics(io::ByteWriter& w, const eval::Metrics& m) {
  w.put<uint64_t>(m.size());
  for (const auto& [k, v] : m) {
    w.put(k);
    w.put<double>(v);
  }
}
inline eval::Metrics get_metrics(io::ByteReader& r) {
  eval::Metrics m;
  const auto n = r.get<uint64_t>("metrics count");
  for (uint64_t i = 0; i < n; ++i) {
    std::string k = r.get_string("metric name");
    m[k] = r.get<double>("metric value");
  }
  return m;
}

}  // namespace detail

// The settings a resumed run must share with the checkpoint, as "section.key" -> value: every
// key declared with keys::kResume (weights and prepared-data keys included; defaults count,
// spellings do not). The schedule's length (training.epochs, patience, eval_every, ...), where
// files lie, runtime.* but runtime.threads, and experiment_name may change. Where the data lies does not count: its
// content is compared through the mapping and split hashes.
template <class C>
std::map<std::string, std::string> checkpoint_settings(const C& c) {
  return io::compat_settings(c, keys::kResume);
}

template <class C>
std::string config_yaml_text(const C& c) {
  return io::effective_config_text(c);
}

template <class T>
std::string encode_checkpoint(const Checkpoint<T>& c) {
  io::ByteWriter w;
  w.put<uint32_t>(sizeof(T));
  w.put(c.config_yaml);
  w.put<uint64_t>(c.settings.size());
  for (const auto& [k, v] : c.settings) {
    w.put(k);
    w.put(v);
  }
  w.put<uint64_t>(c.mapping_hash);
  w.put<uint64_t>(c.split_hash);
  w.put<uint64_t>(c.seed);
  w.put<int32_t>(c.epoch);
  w.put<int64_t>(c.step);
  w.put(c.tensor_steps);
  w.put(c.params);
  w.put(c.best_params);
  w.put(c.adam_m);
  w.put(c.adam_v);
  w.put<double>(c.best_score);
  w.put<int32_t>(c.best_epoch);
  w.put<int32_t>(c.bad_evals);
  detail::put_metrics(w, c.best_valid);
  w.put<double>(c.train_seconds);
  w.put<double>(c.eval_seconds);
  w.put<double>(c.train_seconds_to_best);
  w.put<uint64_t>(c.epochs.size());
  for (const auto& e : c.epochs) {
    w.put<int32_t>(e.epoch);
    w.put<double>(e.loss);
    w.put<double>(e.train_seconds);
    w.put<int64_t>(e.targets);
    w.put<int32_t>(e.steps);
    w.put<int32_t>(e.skipped_steps);
    w.put<double>(e.grad_norm);
    w.put<double>(e.gflop);
    w.put<uint8_t>(e.evaluated);
    detail::put_metrics(w, e.valid);
    w.put<double>(e.eval_seconds);
    w.put<uint8_t>(e.best);
  }
  return w.take();
}

// More steps than any run takes (2^53: step counts stay exact as doubles).
inline constexpr int64_t kMaxCheckpointSteps = int64_t(1) << 53;

// The payload (io::unframe has verified it) as a checkpoint of T weights; every inconsistency is
// an Error naming `path`, so that a resumed trainer can index without checks.
template <class T>
Checkpoint<T> decode_checkpoint(std::string_view payload, const std::string& path) {
  io::ByteReader r(payload, path);
  Checkpoint<T> c;
  const auto scalar = r.get<uint32_t>("scalar size");
  if (scalar != sizeof(T))
    fail(path, ": the checkpoint holds ", scalar * 8, "-bit weights, this trainer uses ",
         sizeof(T) * 8, "-bit ones");
  c.config_yaml = r.get_string("config");
  const auto n_settings = r.get<uint64_t>("settings count");
  for (uint64_t i = 0; i < n_settings; ++i) {
    std::string k = r.get_string("setting name");
    c.settings[k] = r.get_string("setting value");
  }
  c.mapping_hash = r.get<uint64_t>("mapping hash");
  c.split_hash = r.get<uint64_t>("split hash");
  c.seed = r.get<uint64_t>("seed");
  c.epoch = r.get<int32_t>("epoch");
  c.step = r.get<int64_t>("step");
  c.tensor_steps = r.get_vector<int64_t>("optimiser steps per tensor");
  c.params = r.get_vector<T>("params");
  c.best_params = r.get_vector<T>("best params");
  c.adam_m = r.get_vector<T>("adam first moment");
  c.adam_v = r.get_vector<T>("adam second moment");
  c.best_score = r.get<double>("best score");
  c.best_epoch = r.get<int32_t>("best epoch");
  c.bad_evals = r.get<int32_t>("bad evaluations");
  c.best_valid = detail::get_metrics(r);
  c.train_seconds = r.get<double>("train seconds");
  c.eval_seconds = r.get<double>("eval seconds");
  c.train_seconds_to_best = r.get<double>("train seconds to best");
  const auto n_epochs = r.get<uint64_t>("epoch log count");
  if (n_epochs > payload.size()) fail(path, ": implausible epoch log count ", n_epochs);
  for (uint64_t i = 0; i < n_epochs; ++i) {
    EpochLog e;
    e.epoch = r.get<int32_t>("epoch log");
    e.loss = r.get<double>("epoch loss");
    e.train_seconds = r.get<double>("epoch train seconds");
    e.targets = r.get<int64_t>("epoch targets");
    e.steps = r.get<int32_t>("epoch steps");
    e.skipped_steps = r.get<int32_t>("epoch skipped steps");
    e.grad_norm = r.get<double>("epoch grad norm");
    e.gflop = r.get<double>("epoch gflop");
    e.evaluated = r.get<uint8_t>("epoch evaluated") != 0;
    e.valid = detail::get_metrics(r);
    e.eval_seconds = r.get<double>("epoch eval seconds");
    e.best = r.get<uint8_t>("epoch best") != 0;
    c.epochs.push_back(std::move(e));
  }
  r.expect_end();
  // Internal consistency, so a resumed trainer can index without checks.
  const size_t n = c.params.size();
  if (c.best_params.size() != n || c.adam_m.size() != n || c.adam_v.size() != n)
    fail(path, ": inconsistent checkpoint: ", n, " weights but ", c.best_params.size(), " best weights, ",
         c.adam_m.size(), "/", c.adam_v.size(), " optimiser moments");
  for (int64_t t : c.tensor_steps)
    if (t < 0 || t > c.step) fail(path, ": inconsistent checkpoint: a tensor has ", t, " optimiser steps of ", c.step);
  if (c.epoch < 0 || c.step < 0 || size_t(c.epoch) != c.epochs.size())
    fail(path, ": inconsistent checkpoint: epoch ", c.epoch, " with ", c.epochs.size(), " epoch logs");
  // The resumed trainer counts on from here (a step count near 2^63 would overflow).
  if (c.step > kMaxCheckpointSteps) fail(path, ": implausible checkpoint: ", c.step, " training steps");
  if (c.best_epoch < 0 || c.best_epoch > c.epoch)
    fail(path, ": inconsistent checkpoint: best epoch ", c.best_epoch, " after ", c.epoch, " epochs");
  if (c.bad_evals < 0) fail(path, ": inconsistent checkpoint: ", c.bad_evals, " validations without improvement");
  return c;
}

template <class T>
void save_checkpoint(const std::string& path, const Checkpoint<T>& c) {
  io::write_container(path, kCheckpointFile, encode_checkpoint(c));
}

// A checkpoint from a whole file's bytes (header and payload; `path` names it in messages).
template <class T>
Checkpoint<T> checkpoint_from_bytes(std::string_view bytes, const std::string& path) {
  return decode_checkpoint<T>(io::unframe(bytes, kCheckpointFile, path), path);
}

template <class T>
Checkpoint<T> load_checkpoint(const std::string& path) {
  const std::string bytes = io::read_file_bytes(path);
  return checkpoint_from_bytes<T>(bytes, path);
}

// `c` cut back to its best epoch (the best weights and the epoch logs up to it; the optimiser
// state stays c's, so the file gives the best weights, not an exact resume), as a whole file's
// bytes: best.ckpt where no improving epoch wrote one (the run's first epochs were not
// validated, or it was resumed into a new folder).
template <class T>
std::string best_cut_file(const Checkpoint<T>& c) {
  Checkpoint<T> b = c;
  b.params = c.best_params;
  b.epoch = c.best_epoch;
  b.epochs.resize(size_t(b.epoch));
  return io::frame(kCheckpointFile, encode_checkpoint(b));
}

// The best.ckpt of a run resumed from `path` (holding `c`) into a folder without one: the
// best.ckpt beside `path` when it holds the best epoch and weights `c` records; otherwise
// best_cut_file(c). The whole file's bytes.
template <class T>
std::string resumed_best_file(const std::string& path, const Checkpoint<T>& c) {
  const auto beside = std::filesystem::path(path).parent_path() / kBestCheckpoint;
  std::error_code ec;
  if (std::filesystem::is_regular_file(beside, ec)) {
    try {
      const std::string bytes = io::read_file_bytes(beside.string());
      const auto b = checkpoint_from_bytes<T>(bytes, beside.string());
      if (b.epoch == c.best_epoch && b.params == c.best_params) return bytes;
    } catch (const Error&) {  // unreadable: made from `c` below
    }
  }
  return best_cut_file(c);
}

// Refuses to resume `c` (read from `path`) under config `cfg` on data with the given hashes;
// the message names every setting that differs.
template <class T>
void check_resumable(const Checkpoint<T>& c, const std::string& path,
                     const std::map<std::string, std::string>& now, uint64_t mapping_hash,
                     uint64_t split_hash) {
  if (c.mapping_hash != 0 && mapping_hash != 0 && c.mapping_hash != mapping_hash)
    fail(path, ": the checkpoint was trained on a dataset with another id mapping (mapping hash ",
         io::hex64(c.mapping_hash), ", this dataset's is ", io::hex64(mapping_hash),
         "): its users and items are not these; resume only on the same data");
  std::string diffs;
  int n = 0;
  auto add = [&](const std::string& k, const std::string& was, const std::string& is) {
    if (n++ < 8) diffs += cat("\n  ", k, ": checkpoint ", was, ", config ", is);
  };
  for (const auto& [k, v] : c.settings) {
    auto it = now.find(k);
    if (it == now.end()) add(k, v, "(not set)");
    else if (it->second != v) add(k, v, it->second);
  }
  for (const auto& [k, v] : now)
    if (!c.settings.count(k) && k != "runtime.threads")  // checkpoints before it was a resume key
      add(k, "(not set)", v);
  if (n > 8) diffs += cat("\n  ... and ", n - 8, " more");
  if (n > 0)
    fail(path, ": the checkpoint's model/data/training settings differ from the config (the keys marked "
               "'resume' in docs/config.md must match; the schedule's length, paths and runtime.* but runtime.threads may change):", diffs);
  if (c.split_hash != split_hash)
    fail(path, ": the checkpoint was trained on another split of the data (split hash ",
         io::hex64(c.split_hash), ", this split's is ", io::hex64(split_hash),
         "): the same settings gave different training sequences or evaluation cases");
}

template <class T, class C>
void check_resumable(const Checkpoint<T>& c, const std::string& path, const C& cfg, uint64_t mapping_hash,
                     uint64_t split_hash) {
  check_resumable(c, path, checkpoint_settings(cfg), mapping_hash, split_hash);
}

}  // namespace recdistill
