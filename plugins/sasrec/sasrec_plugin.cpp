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
#include "recdistill/io/container.hpp"
#include "recdistill/plugin/interface.hpp"
#include "recdistill/train/sequential_trainer.hpp"

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;
using Trainer = SequentialTrainer<cpu::Backend, float>;
using Net = SASRec<cpu::Backend, float>;

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
    return net_ ? describe_model(net_->config(), net_->num_params()) : describe_model(cfg_.sasrec, 0);
  }

  TrainResult train(const data::Dataset& data, const data::Split& split,
                    const plugin::RunOptions& opt) override {
    Trainer trainer(cfg_, split);
    if (opt.log) {
      opt.log("model: " + describe_model(trainer.model().config(), trainer.model().num_params()));
      opt.log(cat("training: ", trainer.windows(), " windows, batch ", cfg_.training.batch_size, ", lr ",
                  cfg_.training.learning_rate, " (", cfg_.training.optimizer, "), up to ",
                  cfg_.training.epochs, " epochs, early stop on ", cfg_.training.valid_metric,
                  " (patience ", cfg_.training.patience, "), threads ", cfg_.runtime.threads,
                  ", seed ", cfg_.seed));
    }
    TrainResult res = run_fit(trainer, opt, data);
    // Keep the selected weights; the trainer's buffers and activations go with it.
    net_.emplace(trainer.model().config());
    params_ = trainer.params();
    item_hash_ = data::item_mapping_hash(data);
    acts_.reset();
    return res;
  }

  std::vector<int64_t> rank(const data::Split& split, const std::vector<data::SplitCase>& cases) override {
    require_weights("rank cases");
    if (split.n_items != net_->config().n_items)
      fail("SASRec: the split has ", split.n_items - 1, " items, the weights ", net_->config().n_items - 1);
    for (size_t i = 0; i < cases.size(); ++i)
      if (cases[i].target == 0 || cases[i].history.empty())
        fail("SASRec: case ", i, " (user ", cases[i].user, ") has no target or an empty history");
    // Through the trainer's own evaluation, so saved weights score exactly as in training.
    Trainer t(cfg_, split);
    t.params() = params_;
    return t.rank(eval_cases(cases, &split.train));
  }

  void save(const std::string& path) const override {
    if (!net_) fail(path, ": SASRec has no weights to save (neither trained nor loaded)");
    const auto& mc = net_->config();
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
    Net net(mc);
    if (net.num_params() != params.size())
      fail(path, ": ", params.size(), " parameters in the file, the configured model has ", net.num_params());
    params_ = std::move(params);
    net_.emplace(mc);
    item_hash_ = hash;
    acts_.reset();
  }

  int32_t num_items() const override { return net_ ? net_->config().n_items : 0; }

  std::vector<std::vector<plugin::Recommendation>> recommend(
      const std::vector<std::vector<int32_t>>& histories, int k,
      const std::vector<std::vector<int32_t>>& exclude) override {
    require_weights("recommend");
    const auto& mc = net_->config();
    const int L = mc.max_len, d = mc.hidden, N = mc.n_items, B = eval::kEvalBlock;
    const bool left = net_->padding_side() == PaddingSide::left;
    std::vector<int32_t> seq(size_t(B) * L);
    std::vector<float> last(size_t(B) * d), scores(size_t(B) * N);
    std::vector<std::vector<plugin::Recommendation>> out(histories.size());
    for (size_t start = 0; start < histories.size(); start += size_t(B)) {
      const size_t n = std::min(histories.size() - start, size_t(B));
      for (size_t i = 0; i < size_t(B); ++i) {
        const auto& h = histories[start + (i < n ? i : 0)];  // padding rows repeat the first
        if (h.empty()) fail("recommend: history ", start + i + 1, " is empty");
        for (int32_t it : h)
          if (it < 1 || it >= N) fail("recommend: item id ", it, " is outside 1..", N - 1);
        data::layout_history(seq.data() + i * L, h.data(), h.size(), L, left);
      }
      net_->forward(params_.data(), acts(), seq.data(), B, /*train=*/false);
      const float* H = net_->hidden(acts());
      for (size_t i = 0; i < size_t(B); ++i) {
        const size_t len = std::min(histories[start + (i < n ? i : 0)].size(), size_t(L));
        const size_t slot = left ? size_t(L - 1) : len - 1;
        std::copy_n(H + (i * L + slot) * d, d, last.data() + i * d);
      }
      cpu::Backend::gemm<float>(false, true, B, N, d, 1.f, last.data(), d, net_->item_table(params_.data()),
                                d, 0.f, scores.data(), N);
      for (size_t i = 0; i < n; ++i) {
        float* row = scores.data() + i * N;
        std::vector<char> banned(size_t(N), 0);
        banned[0] = 1;
        if (start + i < exclude.size())
          for (int32_t it : exclude[start + i])
            if (it > 0 && it < N) banned[size_t(it)] = 1;
        std::vector<int32_t> cand;
        for (int32_t j = 1; j < N; ++j)
          if (!banned[size_t(j)] && !std::isnan(row[j])) cand.push_back(j);
        const size_t kk = std::min(cand.size(), size_t(std::max(k, 0)));
        // Best first; equal scores by lower id, so the order is deterministic.
        std::partial_sort(cand.begin(), cand.begin() + long(kk), cand.end(), [&](int32_t a, int32_t b) {
          return row[a] > row[b] || (row[a] == row[b] && a < b);
        });
        for (size_t r = 0; r < kk; ++r) out[start + i].push_back({cand[r], row[cand[r]]});
      }
    }
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
    if (!net_) fail("SASRec: cannot ", what, " before the model is trained or its weights are loaded");
  }
  Net::Activations& acts() {
    if (!acts_) acts_ = std::make_unique<Net::Activations>(net_->make_activations(eval::kEvalBlock));
    return *acts_;
  }

  io::ExperimentConfig cfg_;
  std::optional<Net> net_;
  std::vector<float> params_;
  uint64_t item_hash_ = 0;
  std::unique_ptr<Net::Activations> acts_;
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
