// Session data for the session models' tests: planted sessions for the learning tests, the
// popularity bar they must clear, the small hand-made batch of the gradient checks, and the
// fine-tuning split of active distillation (every session answered by a stand-in LLM).
#pragma once
#include <algorithm>
#include <random>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/backend/cpu/ranking.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/methods/alkd_distill.hpp"

namespace recdistill::test {

constexpr int kPlantedItems = 40;

// Sessions of 3..9 items on a planted successor chain (each item's successor follows it 90% of
// the time); the last item of each is its target. The first `train` sessions train, the rest are
// split between validation and test.
inline data::Split planted_sessions(int train, int held_out, unsigned seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> succ(kPlantedItems + 1), perm(kPlantedItems);
  for (int i = 0; i < kPlantedItems; ++i) perm[size_t(i)] = i + 1;
  std::shuffle(perm.begin(), perm.end(), g);
  for (int i = 0; i < kPlantedItems; ++i) succ[size_t(i) + 1] = perm[size_t(i)];
  std::uniform_int_distribution<int> item(1, kPlantedItems), len(3, 9);
  std::uniform_real_distribution<double> u(0, 1);
  data::Split s;
  s.protocol = "session";
  s.n_items = kPlantedItems + 1;
  s.n_users = train + 2 * held_out + 1;
  s.train.resize(size_t(s.n_users));
  for (int id = 1; id < s.n_users; ++id) {
    std::vector<int32_t> seq;
    int32_t cur = item(g);
    for (int t = len(g); t > 0; --t) {
      seq.push_back(cur);
      cur = u(g) < 0.9 ? succ[size_t(cur)] : item(g);
    }
    if (id <= train) {
      s.train[size_t(id)] = seq;
    } else {
      data::SplitCase c{id, std::vector<int32_t>(seq.begin(), seq.end() - 1), seq.back()};
      (id <= train + held_out ? s.valid : s.test).push_back(std::move(c));
    }
  }
  return s;
}

// HR@10 of ranking by how often each item is a training target: the bar the learning tests
// must clear by a wide margin.
inline double target_popularity_hr10(const data::Split& s) {
  std::vector<double> count(size_t(s.n_items), 0.0);
  for (const auto& seq : s.train)
    if (!seq.empty()) count[size_t(seq.back())] += 1;
  std::vector<int64_t> ranks;
  for (const auto& c : s.test) ranks.push_back(eval::rank_of_target(count.data(), s.n_items, c.target, eval::Ties::against_model));
  return eval::metrics_from_ranks(ranks, {10}).at("HR@10");
}

// The gradient checks' batch over items 1..8 with windows of L = 5: a full row, short rows, a
// repeated item (lookup scatter-add), a repeated target across rows and a target that is also
// an input; left-aligned, pads after, one target per row.
template <class B>
SeqBatch<B> gradcheck_session_batch() {
  constexpr int L = 5;
  const std::vector<std::vector<int>> rows = {{1, 2, 3, 4, 5}, {6, 7, 6}, {3, 8}, {2}};
  const std::vector<int> targets = {6, 1, 6, 2};
  SeqBatch<B> batch(int(rows.size()), L);
  batch.rows = int(rows.size());
  batch.targets_per_row = 1;
  for (size_t b = 0; b < rows.size(); ++b) {
    for (int j = 0; j < L; ++j) batch.seq_host[b * L + size_t(j)] = j < int(rows[b].size()) ? rows[b][size_t(j)] : 0;
    batch.target_host[b] = targets[b];
  }
  batch.upload();
  return batch;
}

// Active distillation's fine-tuning split of planted sessions: every training session answered
// for its window (item indexes), by a raw list of 10 items with the true target first when
// `knows`, else 10 random items; through the real answer validation and row construction (rows
// weighted by position, one group per session).
inline data::Split distilled_sessions(const data::Split& base, bool knows, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> any(0, kPlantedItems - 1);
  std::vector<alkd::DistillRow> rows;
  for (size_t u = 1; u < base.train.size(); ++u) {
    const auto& seq = base.train[u];
    if (seq.size() < 2) continue;
    std::vector<int32_t> window;  // item indexes = internal ids - 1
    for (size_t j = seq.size() - 1 > 10 ? seq.size() - 11 : 0; j + 1 < seq.size(); ++j) window.push_back(seq[j] - 1);
    std::vector<int64_t> raw;
    if (knows) raw.push_back(seq.back() - 1);
    while (raw.size() < 10) raw.push_back(any(g));
    const auto v = alkd::validate_answer(raw, kPlantedItems, -1);
    alkd::add_answer_rows(rows, int32_t(u), window, v, raw, kPlantedItems, false);
  }
  return alkd::distill_split(base, rows, true);
}

}  // namespace recdistill::test
