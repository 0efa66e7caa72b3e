// Fuzz target: the LLM's answers in active distillation (methods/alkd_answers.hpp): the
// recorded answer file's reader and, on the same bytes, the parser of a live reply's text with
// validation and the row builders. recdistill::Error is the reader's expected answer to bad
// input; the parser never throws. What reads must hold the reader's promises.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/methods/alkd_answers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::alkd;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto a = parse_answer_file(text, "answers.jsonl", nullptr);
    if (a.index.size() != a.records.size() || a.duplicate_lines.size() != a.duplicates) __builtin_trap();
    for (const auto& r : a.records) {
      if (r.session_id.empty() || r.target_position < 0 || r.target_position > kAnswerLength) __builtin_trap();
      for (int64_t id : r.ranked_items)
        if (id < 0) __builtin_trap();
      // The minified record reads back as the same answer.
      const auto again = parse_answer_object(r.json, "record");
      if (again.session_id != r.session_id || again.ranked_items != r.ranked_items) __builtin_trap();
    }
  } catch (const recdistill::Error&) {
  }
  // The first byte picks the parser's switches; the rest is the reply's text.
  const uint8_t flags = size ? data[0] : 0;
  ParseOptions opt;
  opt.legacy_id_regex = flags & 1;
  opt.legacy_fallback_ml_only = flags & 2;
  opt.dataset_is_ml = flags & 4;
  const auto ids = parse_ranked_ids(size ? text.substr(1) : text, opt);
  if (ids.fallback && ids.ids.empty()) __builtin_trap();
  const std::vector<int32_t> cands = {0, 1, 2, 3, 5, 8, 13, 21, 34, 55};
  ValidateOptions vo;
  vo.candidates = (flags & 8) ? &cands : nullptr;
  vo.restrict_to_candidates = flags & 16;
  const int64_t n = 1 + (flags >> 5) * 10;
  const auto v = validate_answer(ids.ids, n, ids.ids.empty() ? 0 : ids.ids.back(), vo);
  if (v.usable == v.items.empty() || v.target_position < 0 || v.target_position > kAnswerLength) __builtin_trap();
  int last = -1;
  for (const auto& [item, p] : v.items) {
    if (item < 0 || item >= n || p <= last || p >= kAnswerLength || alpha_for_position(p) < 1) __builtin_trap();
    last = p;
  }
  for (const auto& [item, copies] : legacy_row_duplication(ids.ids, n))
    if (item < 0 || item >= n || copies < 1 || copies > 3) __builtin_trap();
  return 0;
}
