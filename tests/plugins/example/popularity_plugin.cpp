// An example recdistill plugin: the model "Popularity" ranks items by how often they occur in
// the training sequences, and the strategy "Longest" picks the longest sessions. Built out of tree against the installed package (CMakeLists.txt
// beside this file); docs/plugins.md explains each part.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "recdistill/plugin/interface.hpp"

namespace {

using namespace recdistill;

class Popularity final : public plugin::Model {
 public:
  explicit Popularity(const io::ExperimentConfig& cfg) : cfg_(cfg) {}
  std::string name() const override { return "Popularity"; }
  std::string summary() const override {
    return cat("Popularity over ", counts_.empty() ? 0 : counts_.size() - 1, " items");
  }

  TrainResult train(const data::Dataset&, const data::Split& split, const plugin::RunOptions& opt) override {
    counts_.assign(size_t(split.n_items), 0.0f);
    for (const auto& seq : split.train)
      for (int32_t it : seq) counts_[size_t(it)] += 1;
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

  // A plain text file is enough for an example (the bundled plugins add a checksum).
  void save(const std::string& path) const override {
    std::ofstream out(path);
    for (float c : counts_) out << c << "\n";
    if (!out) fail(path, ": cannot write the popularity counts");
  }
  void load(const std::string& path, const data::Dataset& data) override {
    std::ifstream in(path);
    if (!in) fail(path, ": cannot open the popularity counts");
    counts_.clear();
    for (float c; in >> c;) counts_.push_back(c);
    if (counts_.size() != size_t(data.items.size()))
      fail(path, ": ", counts_.size(), " counts for ", data.items.size(), " item ids");
  }
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

 private:
  io::ExperimentConfig cfg_;
  std::vector<float> counts_;  // (N,) training occurrences per item id; [0] the pad
};

// A selection strategy: the sessions with the longest histories first (ties: earlier first).
class Longest final : public plugin::Strategy {
 public:
  std::string name() const override { return "Longest"; }
  std::string summary() const override { return "longest histories first"; }
  std::vector<size_t> select(const std::vector<data::SplitCase>& candidates, size_t budget) override {
    std::vector<size_t> order(candidates.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return candidates[a].history.size() > candidates[b].history.size();
    });
    order.resize(std::min(budget, order.size()));
    return order;
  }
};

plugin::PluginInfo describe() {
  return {"example", "1.0", {{"Popularity", "items ranked by training frequency (example plugin)"}},
          {{"Longest", "sessions with the longest histories first (example plugin)"}}};
}

std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ExperimentConfig& cfg) {
  if (name != "Popularity") return nullptr;
  return std::make_unique<Popularity>(cfg);
}

}  // namespace

std::unique_ptr<plugin::Strategy> create_strategy(const std::string& name, const io::ExperimentConfig&) {
  if (name != "Longest") return nullptr;
  return std::make_unique<Longest>();
}

RECDISTILL_PLUGIN(describe, create_model, create_strategy)
