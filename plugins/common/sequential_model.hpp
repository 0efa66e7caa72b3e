// plugins/common/sequential_model.hpp: a sequential transformer family (SASRecFamily,
// BERT4RecFamily in train/sequential_trainer.hpp) behind the plugin edge
// (include/recdistill/plugin/interface.hpp): training through SequentialTrainer, ranking,
// safetensors weights under the reference module's names (backbones/state_dict.hpp) and
// recommend. Each plugin instantiates it for its family.
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <tuple>
#include <variant>

#include "recdistill/backbones/bert4rec_state_dict.hpp"
#include "recdistill/backbones/sasrec_state_dict.hpp"
#include "recdistill/backbones/session_state_dict.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/topk.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/data/profiles.hpp"
#include "recdistill/dist/device_comm.hpp"
#include "recdistill/io/safetensors.hpp"
#include "recdistill/plugin/interface.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace recdistill::plugins {

// The trainer's options from the app's: callbacks, checkpoints (train/checkpoint.hpp), resume,
// and under mpirun the job's ranks, with backend B's device communicator where it has one
// (dist/device_comm.hpp; made by every rank together, before the first step).
template <class B, class Trainer>
TrainResult run_fit(Trainer& t, const plugin::RunOptions& r, const data::Dataset& data, double dist_timeout_s) {
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
  o.stop_requested = r.stop_requested;
  o.comm = r.comm;
  std::unique_ptr<dist::Comm> device_comm;
  if (dist::parallel(r.comm)) device_comm = dist::DeviceComm<B>::make(*r.comm, dist_timeout_s);
  o.device_comm = device_comm.get();
  if (device_comm && r.log) r.log("gradients: summed on the device (" + std::string(B::name) + ")");
  o.mapping_hash = data::mapping_hash(data);
  return t.fit(o);
}

// Weights: safetensors (docs/weights.md), tensors named as the reference module's state_dict
// (RecBole's SASRec for `recbole`), metadata holding what load() checks.
constexpr const char* kWeightsFormatVersion = "1";

// B: the backend the model trains and ranks on (cpu::Backend; cuda::Backend in the CUDA plugin).
// The weights between calls stay on the host (params_), copied to the backend's memory where
// a trainer or recommend() uses them.
template <class Family, class B = cpu::Backend>
class SequentialModel final : public plugin::Model {
  using Trainer = SequentialTrainer<B, float, Family>;
  using Config = typename Family::Config;
  using ModelConfig = typename Family::ModelConfig;
  template <class V>
  using Net = typename Family::template Model<B, float, V>;
  template <class V>
  Net<V> net(const ModelConfig& mc) const {
    return Family::template make<B, float, V>(cfg_, mc, profiles_);
  }
  // Host weights into a backend buffer of the same size, and back.
  static void put(Buffer<B, float>& dst, const std::vector<float>& src) {
    RD_REQUIRE(dst.size() == src.size(), "weights of ", src.size(), " values into a buffer of ", dst.size());
    B::template to_device<float>(dst.data(), src.data(), src.size());
  }
  static std::vector<float> get(const Buffer<B, float>& src) {
    std::vector<float> h(src.size());
    B::template to_host<float>(h.data(), src.data(), h.size());
    return h;
  }

 public:
  explicit SequentialModel(const Config& cfg) : cfg_(cfg) {
    cpu::Backend::set_threads(cfg_.runtime.threads);  // the host's share (data, and all of it on cpu)
  }

  std::string resolved_config() const override { return io::effective_config_text(cfg_); }

  std::string name() const override { return Family::name; }

  std::string summary() const override {
    return mc_ ? describe_model(*mc_, params_.size()) : describe_model(Family::model_config(cfg_), 0);
  }

  TrainResult train(const data::Dataset& data, const data::Split& split,
                    const plugin::RunOptions& opt) override {
    if constexpr (Family::distils) profiles_ = load_targets(data);
    Trainer trainer(cfg_, split, profiles_);
    if (!cfg_.training.init_weights.empty()) {
      // Fine-tuning: the weights pass load()'s checks (same model settings and items); a resumed
      // run's checkpoint still takes precedence (run_fit), and the optimiser starts fresh.
      load(cfg_.training.init_weights, data);
      put(trainer.params(), params_);
      if (opt.log) opt.log("initial weights: " + cfg_.training.init_weights);
    }
    if (opt.on_start) opt.on_start({cfg_.training.epochs, cfg_.valid_metric()});
    if (opt.log) {
      opt.log("model: " + describe_model(trainer.model_config(), trainer.num_params()));
      opt.log(cat("training: ", trainer.windows(), " windows, batch ", cfg_.training.batch_size, ", lr ",
                  cfg_.training.learning_rate, " (", cfg_.training.optimizer, "), up to ",
                  cfg_.training.epochs, " epochs, early stop on ", cfg_.valid_metric(),
                  " (patience ", cfg_.training.patience, "), threads ", cfg_.runtime.threads,
                  ", seed ", cfg_.seed));
    }
    // A distilling model logs its terms before each epoch's line (SequentialTrainer::distillation_line).
    plugin::RunOptions ro = opt;
    if constexpr (Family::distils)
      ro.on_epoch = [&trainer, &opt](const EpochLog& e) {
        if (opt.log)
          if (const std::string line = trainer.distillation_line(e.epoch); !line.empty()) opt.log(line);
        if (opt.on_epoch) opt.on_epoch(e);
      };
    TrainResult res = run_fit<B>(trainer, ro, data, cfg_.runtime.dist_timeout_s);
    // Keep the selected weights; the trainer's buffers and activations go with it.
    mc_ = trainer.model_config();
    serving_ = std::monostate{};
    params_ = get(trainer.params());
    item_hash_ = data::item_mapping_hash(data);
    return res;
  }

  std::vector<int64_t> rank(const data::Split& split, const std::vector<data::SplitCase>& cases) override {
    require_weights("rank cases");
    if (split.n_items != mc_->n_items)
      fail(Family::name, ": the split has ", split.n_items - 1, " items, the weights ", mc_->n_items - 1);
    for (size_t i = 0; i < cases.size(); ++i)
      if (cases[i].target == 0 || cases[i].history.empty())
        fail(Family::name, ": case ", i, " (user ", cases[i].user, ") has no target or an empty history");
    // Through the trainer's own evaluation, so saved weights score exactly as in training.
    Trainer t(cfg_, split, profiles_);
    put(t.params(), params_);
    return t.rank(eval_cases(cases, &split.train));
  }

  plugin::CasePredictions predict_cases(const data::Split& split, const std::vector<data::SplitCase>& cases, int k,
                                        const std::vector<std::vector<int32_t>>& items) override {
    require_weights("predict cases");
    if (split.n_items != mc_->n_items)
      fail(Family::name, ": the split has ", split.n_items - 1, " items, the weights ", mc_->n_items - 1);
    if (k < 1 || k >= mc_->n_items) fail(Family::name, ": top-k needs 1 <= k < ", mc_->n_items, ", got ", k);
    if (items.size() != cases.size()) fail(Family::name, ": ", items.size(), " item lists for ", cases.size(), " cases");
    for (size_t i = 0; i < cases.size(); ++i) {
      if (cases[i].target == 0 || cases[i].history.empty())
        fail(Family::name, ": case ", i, " (user ", cases[i].user, ") has no target or an empty history");
      for (int32_t it : items[i])
        if (it < 1 || it >= mc_->n_items) fail(Family::name, ": case ", i, ": item id ", it, " is outside 1..", mc_->n_items - 1);
    }
    Trainer t(cfg_, split, profiles_);
    put(t.params(), params_);
    const auto ec = eval_cases(cases, &split.train);
    plugin::CasePredictions out;
    t.visit([&](auto& tr) {
      // A scored row that is no item (STAMP's legacy_stamp_tables, Q4) competes in the ranks as
      // upstream's does, but the lists hold items only: one more is drawn to stand in for it.
      const int extra = scored_rows() - mc_->n_items, kk = k + extra;
      auto [ranks, top] = tr.rank_and_topk(ec, kk, WindowUse::prediction);
      out.ranks = std::move(ranks);
      out.top.resize(cases.size());
      for (size_t i = 0; i < cases.size(); ++i)
        for (int r = 0; r < kk && int(out.top[i].size()) < k; ++r)
          if (const int32_t it = top.items_of(i)[r]; it != 0 && it < mc_->n_items)
            out.top[i].push_back({it, float(top.scores_of(i)[r])});
      for (auto& row : tr.item_scores(ec, items)) out.item_scores.emplace_back(row.begin(), row.end());
    });
    return out;
  }

  void save(const std::string& path) const override {
    if (!mc_) fail(path, ": ", Family::name, " has no weights to save (neither trained nor loaded)");
    io::SafeTensors st = Family::with_variant(mc_->variant, [&]<class V>() { return to_state_dict(net<V>(*mc_), params_); });
    st.metadata["format_version"] = kWeightsFormatVersion;
    st.metadata["model"] = Family::name;
    st.metadata["model_config"] = io::effective_config_text(cfg_);  // the resolved config, every key
    st.metadata["n_items"] = std::to_string(mc_->n_items);
    st.metadata["item_mapping_hash"] = io::hex64(item_hash_);
    st.metadata["tensors_fnv1a64"] = io::hex64(tensors_hash(st));
    io::write_safetensors(path, st);
  }

  // The serving weights: a distilled model exports its backbone alone, as a plain model of the
  // backbone's family (its weights file says so, and `export` names that model in its config),
  // which `evaluate` and `recommend` load with the backbone's plugin. Others export what they save.
  void export_model(const std::string& path) const override {
    if constexpr (Family::distils) {
      require_weights("export");
      auto plain = cfg_;
      plain.model_name = Family::base_name();
      Family::with_variant(mc_->variant, [&]<class V>() {
        const auto n = net<V>(*mc_);
        const std::vector<float> backbone(params_.begin(), params_.begin() + long(n.backbone().num_params()));
        io::SafeTensors st = to_state_dict(n.backbone(), backbone);
        st.metadata["format_version"] = kWeightsFormatVersion;
        st.metadata["model"] = Family::base_name();
        st.metadata["model_config"] = io::effective_config_text(plain);
        st.metadata["n_items"] = std::to_string(mc_->n_items);
        st.metadata["item_mapping_hash"] = io::hex64(item_hash_);
        st.metadata["tensors_fnv1a64"] = io::hex64(tensors_hash(st));
        st.metadata["exported_from"] = Family::name;
        io::write_safetensors(path, st);
      });
    } else {
      save(path);  // nothing is training-only
    }
  }

  void load(const std::string& path, const data::Dataset& data) override {
    {  // The old framed format starts with its magic bytes; say so instead of a JSON error.
      std::ifstream f(path, std::ios::binary);
      char magic[6] = {};
      if (f.read(magic, 6) && std::string_view(magic, 6) == "RDWGHT")
        fail(path, ": weights in the old recdistill format (before safetensors), which this build does not "
                   "read; train the run again with `recdistill train` (its results stay valid)");
    }
    const io::SafeTensors st = io::read_safetensors(path);
    auto meta = [&](const char* key) -> const std::string& {
      auto it = st.metadata.find(key);
      if (it == st.metadata.end())
        fail(path, ": the metadata has no '", key, "': not a recdistill ", Family::name, " weights file (docs/weights.md)");
      return it->second;
    };
    if (meta("format_version") != kWeightsFormatVersion)
      fail(path, ": weights format version ", meta("format_version"), ", this build reads version ", kWeightsFormatVersion);
    if (meta("model") != Family::name) fail(path, ": weights of model '", meta("model"), "', not ", Family::name);
    // safetensors has no checksum of its own: ours (of the tensors' bytes) catches a flipped bit.
    if (meta("tensors_fnv1a64") != io::hex64(tensors_hash(st)))
      fail(path, ": the weights are corrupted: tensor checksum ", io::hex64(tensors_hash(st)), ", metadata says ",
           meta("tensors_fnv1a64"), " (FNV-1a 64 of the tensors' bytes)");
    // The weights must fit the configured model: the keys that change a parameter's meaning,
    // read back from the saved config by the same parser as any config.
    io::ConfigLayers saved_layers{{{path + " (metadata model_config)", meta("model_config")}}, {}};
    // A file saved before model.seed_window existed trained SASRec on maxlen slots: say so, so
    // that today's default (SASRecLLM's seed window) is refused instead of silently applied.
    if constexpr (requires { cfg_.sasrec.seed_window; })
      if (meta("model_config").find("seed_window") == std::string::npos)
        saved_layers.sets.push_back("model.seed_window=false");
    const auto saved = io::parse_config<Config>(saved_layers, {}, io::checked_by_the_app());
    const auto had = io::compat_settings(saved, keys::kWeights);
    std::string diffs;
    for (const auto& [k, v] : io::compat_settings(cfg_, keys::kWeights))
      if (had.at(k) != v) diffs += cat("\n  ", k, ": weights ", had.at(k), ", config ", v);
    if (!diffs.empty()) fail(path, ": the weights do not fit the configured model:", diffs);
    int32_t n_items = 0;
    const std::string& nt = meta("n_items");
    if (const auto r = std::from_chars(nt.data(), nt.data() + nt.size(), n_items);
        r.ec != std::errc() || r.ptr != nt.data() + nt.size() || n_items < 2)
      fail(path, ": the metadata's n_items is not an item count: '", nt, "'");
    if (n_items != data.items.size())
      fail(path, ": the weights are for ", n_items - 1, " items but the data (", data.source, ") has ",
           data.items.size() - 1);
    const uint64_t hash = data::item_mapping_hash(data);
    if (meta("item_mapping_hash") != io::hex64(hash))
      fail(path, ": the weights were trained on a different item mapping than ", data.source,
           "'s (same number of items, different ids or order)");
    ModelConfig mc = Family::model_config(cfg_);
    mc.n_items = n_items;
    if constexpr (Family::distils) profiles_ = load_targets(data);  // the head's shapes come from them
    Family::with_variant(mc.variant, [&]<class V>() {
      const Net<V> n = net<V>(mc);
      params_ = from_state_dict(n, st, path);
      mc_ = backbone_config(n);
      serving_ = std::monostate{};
    });
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
      // Scored rows that are no item (STAMP's legacy_stamp_tables) are never recommended.
      for (int32_t extra = N; extra < scored_rows(); ++extra) banned[i].push_back(extra);
      cases[i] = eval::Case{h.data(), h.size(), 0, int32_t(i), banned[i].data(), banned[i].size()};
    }
    std::vector<std::vector<plugin::Recommendation>> out(histories.size());
    if (histories.empty() || k <= 0) return out;
    Family::with_variant(mc_->variant, [&]<class V>() {
      // The network and its activations for one evaluation block (about 100 MB at d=64, L=50)
      // are made once and kept: allocating them per request cost more than the forward pass.
      if (!std::holds_alternative<Serving<V>>(serving_)) serving_.template emplace<Serving<V>>(net<V>(*mc_), params_);
      auto& sv = std::get<Serving<V>>(serving_);
      const auto top = eval::topk_cases<B>(sv.net, sv.weights(), sv.acts, cases, k,
                                           eval::Exclude::listed);
      for (size_t i = 0; i < histories.size(); ++i)
        for (int r = 0; r < k; ++r)
          if (top.items_of(i)[r] != 0) out[i].push_back({top.items_of(i)[r], top.scores_of(i)[r]});
    });
    return out;
  }

 private:
  // Columns of the model's scores: its ids, or more where a row that is no item is scored too.
  int scored_rows() const {
    if constexpr (requires(const ModelConfig& c) { c.scored_rows(); }) return mc_->scored_rows();
    else return mc_->n_items;
  }

  // "SASRec variant=recbole d=64 ...", with the parameter count when known (n_params > 0).
  std::string describe_model(const ModelConfig& mc, size_t n_params) const {
    std::string s = cat(Family::name, " variant=", Family::variant_name(mc.variant), " d=", mc.hidden);
    if constexpr (requires { mc.layers; }) {
      int L = mc.max_len;  // the slots the model sees (SASRec's seed window: maxlen - 1)
      if constexpr (requires { mc.slots(); }) L = mc.slots();
      s += cat(" layers=", mc.layers, " heads=", mc.heads, " inner=", mc.inner, " L=", L,
               L != mc.max_len ? cat(" (maxlen ", mc.max_len, ", seed window)") : std::string(),
               " dropout=", mc.hidden_dropout, "/", mc.attn_dropout);
    } else {
      s += cat(" L=", mc.max_len, " rows=", keys::name_of_enum(mc.rows));
      if constexpr (requires { mc.bce_negatives; })
        if (mc.bce_negatives > 0) return s + cat(" loss=bce_multi (", mc.bce_negatives, " negatives)", n_params > 0 ? cat(", ", n_params, " parameters") : "");
      s += cat(" loss=", keys::name_of_enum(mc.loss));
    }
    if constexpr (Family::distils) {
      const auto& k = cfg_.distill;
      s += cat(" + profile distillation (layer ", k.reconstruction_layer, ", ", k.weighting_scheme, ", ", k.reconstruct_loss,
               ", alpha ", k.alpha, k.scale_guide_loss ? ", beta" : "", ", fine-tuning from epoch ", k.fine_tune_epoch, ")");
    }
    if (n_params > 0) s += cat(", ", n_params, " parameters");
    return s;
  }
  // FNV-1a 64 over each tensor's name and float bytes, in file order.
  static uint64_t tensors_hash(const io::SafeTensors& st) {
    uint64_t h = io::kFnvOffset;
    for (const auto& t : st.tensors) {
      h = io::fnv1a64(t.name, h);
      h = io::fnv1a64_bytes(t.data.data(), t.data.size() * sizeof(float), h);
    }
    return h;
  }
  void require_weights(const char* what) const {
    if (!mc_) fail(Family::name, ": cannot ", what, " before the model is trained or its weights are loaded");
  }

  // The users' profile embeddings (distilling families): data.user_profile_embeddings_files,
  // checked against the dataset's users (docs/profiles.md).
  std::shared_ptr<const ProfileTargets> load_targets(const data::Dataset& d) const {
    const auto& files = cfg_.data.user_profile_embeddings_files;
    if (files.empty())
      fail(Family::name, " distils user profiles: set data.user_profile_embeddings_files (docs/profiles.md)");
    if (files.size() > 1 && !cfg_.distill.multi_profile)
      fail("data.user_profile_embeddings_files lists ", files.size(),
           " files: set model.multi_profile: true to combine them, or give one file");
    data::ProfileOptions po = data::profile_options(cfg_.data.profile_unknown_users, cfg_.data.on_nonfinite,
                                                    cfg_.data.profile_key_normalize);
    po.log = nullptr;
    // (The app has printed what the files hold; docs/profiles.md.)
    return std::make_shared<const ProfileTargets>(ProfileTargets::from(data::load_profiles(files, d.users, po)));
  }

  Config cfg_;
  std::shared_ptr<const ProfileTargets> profiles_;  // distilling families
  std::optional<ModelConfig> mc_;  // the trained or loaded model's settings
  std::vector<float> params_;
  uint64_t item_hash_ = 0;
  // recommend()'s network and activations, kept between calls; reset when the weights change.
  template <class V>
  struct Serving {
    Serving(Net<V> n, const std::vector<float>& w)
        : net(std::move(n)), acts(net.make_activations(eval::kEvalBlock)), host(w) {
      if constexpr (!B::host_memory) {
        params = Buffer<B, float>(w.size());
        put(params, w);
      }
    }
    // The weights where the backend reads them: the host's (params_, kept while this lives) or
    // a copy in device memory.
    CPtr<B, float> weights() const {
      if constexpr (B::host_memory) return host.data();
      else return params.data();
    }
    Net<V> net;
    typename Net<V>::Activations acts;
    const std::vector<float>& host;
    Buffer<B, float> params;
  };
  template <class Tuple>
  struct ServingOf;
  template <class... V>
  struct ServingOf<std::tuple<V...>> {
    using type = std::variant<std::monostate, Serving<V>...>;
  };
  typename ServingOf<typename Family::Variants>::type serving_;
};

}  // namespace recdistill::plugins
