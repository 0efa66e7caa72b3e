// An example recdistill plugin: the model "Popularity" ranks items by how often they occur in
// the training sequences, and the strategy "Alternate" picks the hardest and the easiest sessions in turn. Built out of tree against the installed package (CMakeLists.txt
// beside this file); docs/plugins.md explains each part.
#include <algorithm>

#include "recdistill/io/config.hpp"
#include "recdistill/io/safetensors.hpp"
#include "recdistill/plugin/interface.hpp"
#include "recdistill/train/checkpoint.hpp"  // data::item_mapping_hash

namespace {

using namespace recdistill;

// The model's config: the app's keys (data, eval, ...: it reads eval.ks) plus one of its own,
// declared once; the app then accepts `model.popularity_window` in a config file.
struct PopularityConfig : io::CommonConfig {
  int window = 0;
  template <class V>
  void keys(V& v) {
    CommonConfig::keys(v);
    v(window, io::Key("model", "popularity_window", "count only the last N items of each training sequence; 0 = all")
                  .range(0, 1 << 30).resume());
  }
};

class Popularity final : public plugin::Model {
 public:
  explicit Popularity(const PopularityConfig& cfg) : cfg_(cfg) {}
  std::string resolved_config() const override { return io::effective_config_text(cfg_); }
  std::string name() const override { return "Popularity"; }
  std::string summary() const override {
    return cat("Popularity over ", counts_.empty() ? 0 : counts_.size() - 1, " items");
  }

  TrainResult train(const data::Dataset& data, const data::Split& split, const plugin::RunOptions& opt) override {
    if (opt.on_start) opt.on_start({1, ""});  // one pass, no model selection
    item_hash_ = data::item_mapping_hash(data);
    counts_.assign(size_t(split.n_items), 0.0f);
    for (const auto& seq : split.train) {
      const size_t from = cfg_.window > 0 && seq.size() > size_t(cfg_.window) ? seq.size() - size_t(cfg_.window) : 0;
      for (size_t i = from; i < seq.size(); ++i) counts_[size_t(seq[i])] += 1;
    }
    if (opt.log) opt.log(cat("model: ", summary()));
    TrainResult res;
    res.epochs_run = res.best_epoch = 1;
    res.best_valid = eval::metrics_from_ranks(rank(split, usable(split.valid)), cfg_.eval);
    res.test = eval::metrics_from_ranks(rank(split, usable(split.test)), cfg_.eval);
    return res;
  }

  // Full ranking only: this example ignores eval.exclude and sampled negatives.
  std::vector<int64_t> rank(const data::Split&, const std::vector<data::SplitCase>& cases) override {
    std::vector<int64_t> ranks;
    for (const auto& c : cases) {
      int64_t better = 0;  // ties ranked against the model
      for (size_t j = 1; j < counts_.size(); ++j)
        if (int32_t(j) != c.target && counts_[j] >= counts_[size_t(c.target)]) ++better;
      ranks.push_back(better + 1);
    }
    return ranks;
  }

  static std::vector<data::SplitCase> usable(const std::vector<data::SplitCase>& cases) {
    std::vector<data::SplitCase> out;
    for (const auto& c : cases)
      if (c.target != 0 && !c.history.empty()) out.push_back(c);
    return out;
  }

  // The counts as one safetensors tensor (docs/weights.md), readable from Python, with the
  // item mapping's hash: load() must never pair the counts with another dataset's item ids.
  void save(const std::string& path) const override {
    io::SafeTensors st;
    st.metadata["model"] = "Popularity";
    st.metadata["item_mapping_hash"] = io::hex64(item_hash_);
    st.tensors.push_back({"counts", {int64_t(counts_.size())}, counts_});
    io::write_safetensors(path, st);
  }
  void load(const std::string& path, const data::Dataset& data) override {
    const io::SafeTensors st = io::read_safetensors(path);
    auto meta = [&](const char* k) { return st.metadata.count(k) ? st.metadata.at(k) : std::string("(none)"); };
    if (meta("model") != "Popularity") fail(path, ": weights of model '", meta("model"), "', not Popularity");
    if (meta("item_mapping_hash") != io::hex64(data::item_mapping_hash(data)))
      fail(path, ": the counts were made on a different item mapping than ", data.source, "'s");
    const io::SafeTensor* t = st.find("counts");
    if (!t || t->shape.size() != 1) fail(path, ": no 1-d tensor 'counts': not Popularity weights");
    if (t->data.size() != size_t(data.items.size()))
      fail(path, ": ", t->data.size(), " counts for ", data.items.size(), " item ids");
    counts_ = t->data;
    item_hash_ = data::item_mapping_hash(data);
  }
  void export_model(const std::string& path) const override { save(path); }
  int32_t num_items() const override { return int32_t(counts_.size()); }

  std::vector<std::vector<plugin::Recommendation>> recommend(
      const std::vector<std::vector<int32_t>>& histories, int k,
      const std::vector<std::vector<int32_t>>& exclude) override {
    std::vector<std::vector<plugin::Recommendation>> out;
    for (size_t i = 0; i < histories.size(); ++i) {
      std::vector<int32_t> cand;
      for (int32_t j = 1; j < int32_t(counts_.size()); ++j)
        if (i >= exclude.size() || std::find(exclude[i].begin(), exclude[i].end(), j) == exclude[i].end())
          cand.push_back(j);
      std::stable_sort(cand.begin(), cand.end(), [&](int32_t a, int32_t b) { return counts_[size_t(a)] > counts_[size_t(b)]; });
      out.emplace_back();
      for (size_t r = 0; r < cand.size() && r < size_t(k); ++r) out.back().push_back({cand[r], counts_[size_t(cand[r])]});
    }
    return out;
  }

  // Ranks as rank(), the top k of every case (nothing excluded: this example ignores
  // eval.exclude) and the counts of the asked items.
  plugin::CasePredictions predict_cases(const data::Split& split, const std::vector<data::SplitCase>& cases, int k,
                                        const std::vector<std::vector<int32_t>>& items) override {
    plugin::CasePredictions out;
    out.ranks = rank(split, cases);
    std::vector<std::vector<int32_t>> histories(cases.size());
    out.top = recommend(histories, k, {});
    for (const auto& list : items) {
      out.item_scores.emplace_back();
      for (int32_t j : list) out.item_scores.back().push_back(counts_.at(size_t(j)));
    }
    return out;
  }

 private:
  PopularityConfig cfg_;
  uint64_t item_hash_ = 0;
  std::vector<float> counts_;  // (N,) training occurrences per item id; [0] the pad
};

// A selection strategy: alternately the hardest and the easiest session left in the pool,
// skipping those the oracle cannot answer, until the budget of answered sessions is met.
class Alternate final : public plugin::Strategy {
 public:
  std::string name() const override { return "Alternate"; }
  std::string summary() const override { return "hardest and easiest sessions in turn"; }
  alkd::Selection select(const plugin::SelectionRequest& r) override {
    alkd::Selection sel;
    sel.report.strategy = name();
    sel.report.budget = r.budget;
    sel.report.pool_size = r.pool.size();
    size_t lo = 0, hi = r.pool.size();
    for (bool hard = true; lo < hi && sel.sessions.size() < r.budget; hard = !hard) {
      const std::string& id = hard ? r.pool[lo++].session_id : r.pool[--hi].session_id;
      ++sel.report.drawn;
      const alkd::AnswerState st = r.oracle(id);
      if (st == alkd::AnswerState::missing) {
        sel.report.skips.push_back({id, "no answer"});
        continue;
      }
      sel.report.unusable += st == alkd::AnswerState::unusable;
      sel.sessions.push_back(id);
    }
    sel.report.answered = sel.sessions.size();
    sel.report.skipped = sel.report.skips.size();
    sel.report.coverage = sel.report.drawn ? double(sel.report.answered) / double(sel.report.drawn) : 0.0;
    sel.report.shortfall = r.budget - sel.sessions.size();
    return sel;
  }
};

plugin::PluginInfo describe() {
  return {"example", "1.0",
          {{"Popularity", "items ranked by training frequency (example plugin)", io::describe<PopularityConfig>()}},
          {{"Alternate", "the hardest and the easiest sessions in turn (example plugin)", {}}}};
}

// The config arrives as YAML layers; the app has already rejected keys nobody declared.
std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ConfigLayers& layers) {
  if (name != "Popularity") return nullptr;
  return std::make_unique<Popularity>(io::parse_config<PopularityConfig>(layers, {}, io::checked_by_the_app()));
}

}  // namespace

std::unique_ptr<plugin::Strategy> create_strategy(const std::string& name, const io::ConfigLayers&) {
  if (name != "Alternate") return nullptr;
  return std::make_unique<Alternate>();
}

RECDISTILL_PLUGIN(describe, create_model, create_strategy)
