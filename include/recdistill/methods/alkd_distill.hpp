// recdistill/methods/alkd_distill.hpp: the distillation rows of active LLM distillation and the
// split the student is fine-tuned on (specs/active-llm-distillation.md §6; docs/alkd.md).
//
// A row is (window w_s, item v, weight alpha, session s): for a selected session, one row per
// item of the LLM's validated answer (weight by its raw position, methods/alkd_answers.hpp), or,
// for the teacher-only baseline (TR, §5.3), one per item of the teacher's unforced top list
// (weight 1). The fine-tuning split keeps the base split's validation and test cases and
// replaces its training sequences by one sequence per row, [w_s..., v], whose last item is the
// row's target (the session models' `last` rows), with the row's weight and session as the
// split's annotations (data::Split::train_weight / train_group, read by
// losses/weighted_pairwise.hpp). Item ids here are internal ids (item_index + 1).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/methods/alkd_answers.hpp"

namespace recdistill::alkd {

struct DistillRow {
  int32_t session = 0;            // the session's number (> 0, one per session): its rows' group
  std::vector<int32_t> window;    // internal ids, oldest first (the prediction step's window)
  int32_t item = 0;               // internal id of the item to rank high
  float weight = 1;               // alpha (1 for duplicated or TR rows)
};

// Item indexes (0-based rows of items.tsv) as internal ids.
inline std::vector<int32_t> internal_ids(const std::vector<int32_t>& item_indexes) {
  std::vector<int32_t> out;
  out.reserve(item_indexes.size());
  for (int32_t i : item_indexes) out.push_back(i + 1);
  return out;
}

// The rows of one answered session (window and answers as item indexes): one per validated item
// with alpha by raw position (reference, §6.1), or upstream's duplicated rows, weight 1 each
// (legacy_row_duplication: raw entries 0-25, out-of-range ids skipped, no de-duplication).
inline void add_answer_rows(std::vector<DistillRow>& rows, int32_t session, const std::vector<int32_t>& window,
                            const ValidatedAnswer& validated, const std::vector<int64_t>& raw_items, int64_t n_items,
                            bool legacy) {
  const auto w = internal_ids(window);
  if (legacy) {
    for (const auto& [item, copies] : alkd::legacy_row_duplication(raw_items, n_items))
      for (int c = 0; c < copies; ++c) rows.push_back({session, w, item + 1, 1.0f});
  } else {
    for (const auto& [item, alpha] : weighted_items(validated)) rows.push_back({session, w, item + 1, float(alpha)});
  }
}

// The teacher-only baseline's rows of one session (TR, §5.3): each item of the teacher's
// unforced top list, weight 1.
inline void add_teacher_rows(std::vector<DistillRow>& rows, int32_t session, const std::vector<int32_t>& window,
                             const std::vector<int32_t>& teacher_top) {
  const auto w = internal_ids(window);
  for (int32_t it : teacher_top) rows.push_back({session, w, it + 1, 1.0f});
}

// The fine-tuning split: the base split's evaluation cases, one training sequence per row
// (sequence 0 stays empty, as in every split). `mask_same_session`: rows of one session share a
// group, so none is another's negative (§6.2); otherwise every row is its own group and only
// rows with the same item are masked.
inline data::Split distill_split(const data::Split& base, const std::vector<DistillRow>& rows, bool mask_same_session) {
  if (rows.empty()) fail("distill: no distillation rows (every selected answer was unusable?)");
  data::Split s;
  s.protocol = base.protocol;
  s.n_items = base.n_items;
  s.n_users = int32_t(rows.size()) + 1;
  s.valid = base.valid;
  s.test = base.test;
  s.train.reserve(rows.size() + 1);
  s.train.emplace_back();
  s.train_weight.assign(1, 0.0f);
  s.train_group.assign(1, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    const DistillRow& r = rows[i];
    if (r.window.empty()) fail("distill: row ", i, " (session ", r.session, ") has an empty window");
    if (r.item < 1 || r.item >= base.n_items)
      fail("distill: row ", i, " (session ", r.session, "): item id ", r.item, " is outside 1..", base.n_items - 1);
    if (!(r.weight > 0)) fail("distill: row ", i, " (session ", r.session, ") has weight ", r.weight, " (expected > 0)");
    std::vector<int32_t> seq = r.window;
    seq.push_back(r.item);
    s.train.push_back(std::move(seq));
    s.train_weight.push_back(r.weight);
    s.train_group.push_back(mask_same_session ? r.session : int32_t(i + 1));
  }
  return s;
}

// Rows and weight units of a row set (reports).
struct RowStats {
  size_t rows = 0, sessions = 0;
  double weight_units = 0;
};
inline RowStats row_stats(const std::vector<DistillRow>& rows) {
  RowStats st;
  std::unordered_map<int32_t, int> seen;
  for (const auto& r : rows) {
    ++st.rows;
    st.weight_units += r.weight;
    st.sessions += seen[r.session]++ == 0;
  }
  return st;
}

}  // namespace recdistill::alkd
