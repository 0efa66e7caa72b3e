// The SASRec plugin: SequentialTrainer<cpu::Backend, float> behind the plugin edge
// (include/recdistill/plugin/interface.hpp). Offers the model "SASRec" (config model.model_name).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/topk.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/plugin/interface.hpp"
#include "recdistill/train/sequential_trainer.hpp"

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;
using Trainer = SequentialTrainer<cpu::Backend, float>;

// The trainer's options from the app's: callbacks, checkpoints (train/checkpoint.hpp), resume.
TrainResult run_fit(Trainer& t, const plugin::RunOptions& r, const data::Dataset& data) {
  FitOptions o;
  o.on_epoch = r.on_epoch;
  o.on_step = r.on_step;
  o.checkpoint_dir = r.checkpoint_dir;
  o.resume_from = r.resume_from;
  // A run folder stands for its latest checkpoint.
  std::error_code ec;
  if (!r.resume_from.empty() && std::filesystem::is_directory(r.resume_from, ec))
    o.resume_from = (std::filesystem::path(r.resume_from) / kLatestCheckpoint).string();
  o.skip_nonfinite = r.skip_nonfinite;
  o.mapping_hash = data::mapping_hash(data);
  return t.fit(o);
}

// Weights file (io/container.hpp framing: magic, version, length, checksum, verified before
// decoding): the model settings that fix the parameters' meaning, the item-mapping hash,
// then the flat float parameters.
inline constexpr io::FileKind kWeightsFile{std::string_view("RDWGHT\0\1", 8), 1, "SASRec weights"};

class SASRecModel final : public plugin::Model {
 public:
  explicit SASRecModel(const io::ExperimentConfig& cfg) : cfg_(cfg) {
    cpu::Backend::set_threads(cfg_.runtime.threads);
  }

  std::string name() const override { return "SASRec"; }

  std::string summary() const override {
    return mc_ ? describe_model(*mc_, params_.size()) : describe_model(cfg_.sasrec, 0);
  }

  TrainResult train(const data::Dataset& data, const data::Split& split,
                    const plugin::RunOptions& opt) override {
    Trainer trainer(cfg_, split);
    if (opt.log) {
      opt.log("model: " + describe_model(trainer.model_config(), trainer.num_params()));
      opt.log(cat("training: ", trainer.windows(), " windows, batch ", cfg_.training.batch_size, ", lr ",
                  cfg_.training.learning_rate, " (", cfg_.training.optimizer, "), up to ",
                  cfg_.training.epochs, " epochs, early stop on ", cfg_.training.valid_metric,
                  " (patience ", cfg_.training.patience, "), threads ", cfg_.runtime.threads,
                  ", seed ", cfg_.seed));
    }
    TrainResult res = run_fit(trainer, opt, data);
    // Keep the selected weights; the trainer's buffers and activations go with it.
    mc_ = trainer.model_config();
    params_ = trainer.params();
    item_hash_ = data::item_mapping_hash(data);
    return res;
  }

  std::vector<int64_t> rank(const data::Split& split, const std::vector<data::SplitCase>& cases) override {
    require_weights("rank cases");
    if (split.n_items != mc_->n_items)
      fail("SASRec: the split has ", split.n_items - 1, " items, the weights ", mc_->n_items - 1);
    for (size_t i = 0; i < cases.size(); ++i)
      if (cases[i].target == 0 || cases[i].history.empty())
        fail("SASRec: case ", i, " (user ", cases[i].user, ") has no target or an empty history");
    // Through the trainer's own evaluation, so saved weights score exactly as in training.
    Trainer t(cfg_, split);
    t.params() = params_;
    return t.rank(eval_cases(cases, &split.train));
  }

  void save(const std::string& path) const override {
    if (!mc_) fail(path, ": SASRec has no weights to save (neither trained nor loaded)");
    const auto& mc = *mc_;
    io::ByteWriter w;
    w.put<int32_t>(mc.variant == SASRecVariant::recbole ? 0 : 1);
    for (int32_t v : {mc.n_items, mc.max_len, mc.hidden, mc.layers, mc.heads, mc.inner}) w.put<int32_t>(v);
    w.put<double>(mc.ln_eps);
    w.put<uint64_t>(item_hash_);
    w.put(params_);
    io::write_container(path, kWeightsFile, w.bytes());
  }

  void load(const std::string& path, const data::Dataset& data) override {
    const std::string payload = io::read_container(path, kWeightsFile);
    io::ByteReader r(payload, path);
    const int32_t variant = r.get<int32_t>("model.variant");
    const int32_t n_items = r.get<int32_t>("item count");
    const int32_t max_len = r.get<int32_t>("model.maxlen"), hidden = r.get<int32_t>("model.hidden_units"),
                  layers = r.get<int32_t>("model.num_blocks"), heads = r.get<int32_t>("model.num_heads"),
                  inner = r.get<int32_t>("model.inner_size");
    const double ln_eps = r.get<double>("model.layer_norm_eps");
    const uint64_t hash = r.get<uint64_t>("item-mapping hash");
    std::vector<float> params = r.get_vector<float>("parameters");
    r.expect_end();
    // The weights must fit the configured model: these settings change the parameters' meaning.
    const SASRecConfig& want = cfg_.sasrec;
    auto check = [&](const char* key, auto got, auto expected) {
      if (got != expected)
        fail(path, ": ", key, " is ", got, " in the weights but ", expected, " in the config");
    };
    check("model.variant", variant == 0 ? "recbole" : "pmixer",
          want.variant == SASRecVariant::recbole ? "recbole" : "pmixer");
    check("model.maxlen", max_len, want.max_len);
    check("model.hidden_units", hidden, want.hidden);
    check("model.num_blocks", layers, want.layers);
    check("model.num_heads", heads, want.heads);
    check("model.inner_size", inner, want.inner);
    check("model.layer_norm_eps", ln_eps, want.ln_eps);
    if (n_items != data.items.size())
      fail(path, ": the weights are for ", n_items - 1, " items but the data (", data.source, ") has ",
           data.items.size() - 1);
    if (hash != data::item_mapping_hash(data))
      fail(path, ": the weights were trained on a different item mapping than ", data.source,
           "'s (same number of items, different ids or order)");
    SASRecConfig mc = cfg_.sasrec;
    mc.n_items = n_items;
    size_t n_params = 0;
    const SASRecConfig normalised = sasrec::with_variant(mc.variant, [&]<class V>() {
      const SASRec<cpu::Backend, float, V> net(mc);
      n_params = net.num_params();
      return net.config();
    });
    if (n_params != params.size())
      fail(path, ": ", params.size(), " parameters in the file, the configured model has ", n_params);
    params_ = std::move(params);
    mc_ = normalised;
    item_hash_ = hash;
  }

  int32_t num_items() const override { return mc_ ? mc_->n_items : 0; }

  std::vector<std::vector<plugin::Recommendation>> recommend(
      const std::vector<std::vector<int32_t>>& histories, int k,
      const std::vector<std::vector<int32_t>>& exclude) override {
    require_weights("recommend");
    const int N = mc_->n_items;
    // Cases viewing the histories; exclusions (ids outside 1..N-1 ignored) as the `listed` set.
    std::vector<std::vector<int32_t>> banned(histories.size());
    std::vector<eval::Case> cases(histories.size());
    for (size_t i = 0; i < histories.size(); ++i) {
      const auto& h = histories[i];
      if (h.empty()) fail("recommend: history ", i + 1, " is empty");
      for (int32_t it : h)
        if (it < 1 || it >= N) fail("recommend: item id ", it, " is outside 1..", N - 1);
      if (i < exclude.size())
        for (int32_t it : exclude[i])
          if (it > 0 && it < N) banned[i].push_back(it);
      cases[i] = eval::Case{h.data(), h.size(), 0, int32_t(i), banned[i].data(), banned[i].size()};
    }
    std::vector<std::vector<plugin::Recommendation>> out(histories.size());
    if (histories.empty() || k <= 0) return out;
    sasrec::with_variant(mc_->variant, [&]<class V>() {
      SASRec<cpu::Backend, float, V> net(*mc_);
      auto acts = net.make_activations(eval::kEvalBlock);
      const auto top = eval::topk_cases<cpu::Backend>(net, params_.data(), acts, cases, k, eval::Exclude::listed);
      for (size_t i = 0; i < histories.size(); ++i)
        for (int r = 0; r < k; ++r)
          if (top.items_of(i)[r] != 0) out[i].push_back({top.items_of(i)[r], top.scores_of(i)[r]});
    });
    return out;
  }

 private:
  // "SASRec variant=recbole d=64 ...", with the parameter count when known (n_params > 0).
  static std::string describe_model(const SASRecConfig& mc, size_t n_params) {
    std::string s = cat("SASRec variant=", mc.variant == SASRecVariant::recbole ? "recbole" : "pmixer",
                        " d=", mc.hidden, " layers=", mc.layers, " heads=", mc.heads, " inner=", mc.inner,
                        " L=", mc.max_len, " dropout=", mc.hidden_dropout, "/", mc.attn_dropout);
    if (n_params > 0) s += cat(", ", n_params, " parameters");
    return s;
  }
  void require_weights(const char* what) const {
    if (!mc_) fail("SASRec: cannot ", what, " before the model is trained or its weights are loaded");
  }

  io::ExperimentConfig cfg_;
  std::optional<SASRecConfig> mc_;  // the trained or loaded model's settings
  std::vector<float> params_;
  uint64_t item_hash_ = 0;
};

plugin::PluginInfo describe() {
  plugin::PluginInfo info;
  info.name = "sasrec";
  info.version = RECDISTILL_VERSION;
  info.models.push_back({"SASRec", "self-attentive sequential recommender (Kang & McAuley 2018), "
                                   "variants recbole and pmixer, next-item CE on all positions, CPU"});
  return info;
}

std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ExperimentConfig& cfg) {
  if (name != "SASRec") return nullptr;
  if (cfg.runtime.backend != "cpu")
    fail("runtime.backend: the SASRec plugin runs on 'cpu', found '", cfg.runtime.backend, "'");
  return std::make_unique<SASRecModel>(cfg);
}

}  // namespace

RECDISTILL_PLUGIN(describe, create_model, recdistill::plugin::no_strategies)
