// recdistill/eval/case.hpp: what evaluation ranks (a case: history and target) and how (the
// `eval.*` options), shared by eval/ranking.hpp and the backends' ranking ops.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"

namespace recdistill::eval {

enum class Ties { against_model, index };

// Items masked out of the ranking. `history`: the case's own history (under loo the user's
// seen items, under session splits the session's own items). `seen`: the history plus the
// case's `seen` list (the caller's record of the user's other items, e.g. Split::train[user]).
// `listed`: the case's `seen` list only (recommend's explicit exclusions).
// window: the distinct items of the model's input window, the last model.maxlen history items
// (ALKDRec's evaluation; the trainer turns it into `history` over truncated histories).
enum class Exclude { none, history, seen, listed, window };

enum class Sampling { uniform, popularity };

constexpr int kEvalBlock = 128;

// Items per score product when the catalogue is larger: a (kEvalBlock, kItemChunk) float block
// is 1 MiB and stays in L2 while its rows are ranked and scanned.
constexpr int kItemChunk = 2048;

// The rank of a miss: worse than any real rank, so it is outside every cut-off.
constexpr int64_t kMissRank = std::numeric_limits<int64_t>::max();

// One evaluation case: a history (oldest first) and the held-out target. `user` keys the
// sampled negatives (and names the row of per-case dumps); `seen` is an optional extra list of
// items excluded under Exclude::seen.
struct Case {
  const int32_t* history;
  size_t length;
  int32_t target;
  int32_t user = 0;
  const int32_t* seen = nullptr;
  size_t n_seen = 0;
};

// How cases are ranked and which metrics are reported (the `eval.*` config section).
struct Options {
  std::vector<int> ks = {5, 10, 20};
  Ties ties = Ties::against_model;
  Exclude exclude = Exclude::none;
  int sampled_negatives = 0;  // 0 = full ranking (the default)
  Sampling sampling = Sampling::uniform;

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(ks, Key("eval", "ks", "cut-offs K of every metric").at_least(1).items(1, 64).resume()
              .spelling("training.eval_ks"));
    v(ties, Key("eval", "ties", "`against_model`: a tie ranks the target below the tied items; `index`: lower id wins (docs/metrics.md)").resume());
    v(exclude, Key("eval", "exclude", "items masked out: `none`, `history` (the case's history), `window` (the last model.maxlen history items, the model's input: ALKDRec's) or `seen` (history plus the user's training items); an excluded target is a miss")
                   .resume());
    v(sampled_negatives, Key("eval", "sampled_negatives", "0 = full ranking; N > 0 ranks the target among N sampled negatives and every metric name gets the suffix ` (sampled N uniform|popularity)`")
                             .range(0, 1 << 24).resume());
    v(sampling, Key("eval", "sampling", "negatives for eval.sampled_negatives: `uniform` or `popularity` (training counts)").resume());
  }
};

inline constexpr std::array<std::pair<std::string_view, Ties>, 2> enum_names(Ties) {
  return {{{"against_model", Ties::against_model}, {"index", Ties::index}}};
}
// `listed` is recommend's own exclusion, not a config value.
inline constexpr std::array<std::pair<std::string_view, Exclude>, 4> enum_names(Exclude) {
  return {{{"none", Exclude::none}, {"history", Exclude::history}, {"seen", Exclude::seen}, {"window", Exclude::window}}};
}
inline constexpr std::array<std::pair<std::string_view, Sampling>, 2> enum_names(Sampling) {
  return {{{"uniform", Sampling::uniform}, {"popularity", Sampling::popularity}}};
}

inline const char* name_of(Exclude e) {
  return e == Exclude::none ? "none" : e == Exclude::history ? "history" : e == Exclude::window ? "window" : "seen";
}
inline const char* name_of(Sampling s) { return s == Sampling::uniform ? "uniform" : "popularity"; }

// "full" or "sampled 100 uniform": printed in every per-case row.
inline std::string protocol_label(const Options& o) {
  if (o.sampled_negatives <= 0) return "full";
  return "sampled " + std::to_string(o.sampled_negatives) + " " + name_of(o.sampling);
}

// "" for full ranking, " (sampled 100 uniform)" otherwise: appended to every metric name.
inline std::string metric_suffix(const Options& o) {
  return o.sampled_negatives <= 0 ? std::string() : " (" + protocol_label(o) + ")";
}

// Checks that every id of a case lies in [1, N) (case i of the caller's list).
inline void check_case(const Case& c, size_t i, int N, bool need_target) {
  if (c.length == 0 || c.history == nullptr) fail("evaluation case ", i, ": empty history");
  if (need_target && (c.target < 1 || c.target >= N))
    fail("evaluation case ", i, ": target item id ", c.target, " outside [1, ", N - 1, "]");
  for (size_t k = 0; k < c.length; ++k)
    if (c.history[k] < 0 || c.history[k] >= N)
      fail("evaluation case ", i, ": history item id ", c.history[k], " outside [0, ", N - 1, "]");
  for (size_t k = 0; k < c.n_seen; ++k)
    if (c.seen[k] < 0 || c.seen[k] >= N)
      fail("evaluation case ", i, ": seen item id ", c.seen[k], " outside [0, ", N - 1, "]");
}

// The state of ranking one block of up to kEvalBlock cases (eval/ranking.hpp rank_full): the
// cases, what to compute, where the results go (host arrays), and the ranking ops' scratch.
template <class T>
struct RankBlock {
  const Case* cases = nullptr;  // (n) this block's cases
  Options o;
  bool want_ranks = false;
  int K = 0;                    // top-K length, 0 = none
  int64_t* ranks = nullptr;     // (n) when want_ranks
  int32_t* top_items = nullptr; // (n, K) when K > 0
  T* top_scores = nullptr;      // (n, K)
  std::shared_ptr<void> backend_state;  // the backend's own per-block state (its rank ops' scratch)
};

}  // namespace recdistill::eval
