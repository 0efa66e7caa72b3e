// recdistill/methods/alkd_answers.hpp: the LLM's answers in active LLM distillation
// (specs/active-llm-distillation.md §1.1, §4.4, §6.1; docs/alkd.md): the strict reader of a
// recorded answer file, the parser of a live reply's text, validation, and the weights.
//
// Recorded answer file (data/alkdrec-ml/llm_answers.jsonl), one JSON object per line:
//   {"session_id": 2604, "ranked_items": [217, 2058, ...], "target_position": 25}
// session_id is an integer or a digit string (stored as text), ranked_items the raw parsed
// list (non-negative integers; out-of-range ids and repeats are kept: validation drops them),
// target_position the first index of the target or 25. Exactly these three keys. A UTF-8 BOM
// and CRLF line ends are accepted; a blank line inside the file, a torn last line, invalid
// UTF-8 or any other defect is an error naming the file and the 1-based line. A repeated
// session_id is a warning (counted; the first record is kept, as the cache's lookup does).
//
// Raw positions and ranks are 0-based: hit@K means target_position < K.
#pragma once
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/text.hpp"

namespace recdistill::alkd {

// The answer length the prompt asks for (κ = 50 candidates, 25 answers: spec §0).
inline constexpr int kAnswerLength = 25;

struct RecordedAnswer {
  std::string session_id;
  std::vector<int64_t> ranked_items;  // as recorded: out-of-range ids and repeats included
  int target_position = kAnswerLength;
  size_t line = 0;                     // 1-based line in the file
  std::string json;                    // the record minified (what the answer cache stores)
};

struct RecordedAnswers {
  std::string path;
  std::vector<RecordedAnswer> records;              // the first record of each session, in file order
  std::unordered_map<std::string, size_t> index;    // session_id -> records[i]
  size_t duplicates = 0;                            // records after a session's first (dropped)
  std::vector<size_t> duplicate_lines;              // their 1-based lines

  const RecordedAnswer* find(const std::string& session_id) const {
    const auto it = index.find(session_id);
    return it == index.end() ? nullptr : &records[it->second];
  }
};

namespace answers_detail {

namespace dom = simdjson::dom;

struct At {
  const std::string& path;
  size_t line;
  template <class... A>
  [[noreturn]] void fail(A&&... a) const {
    recdistill::fail(path, ":", line, ": ", std::forward<A>(a)...);
  }
};

inline const char* type_name(dom::element e) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64: return "an integer";
    case dom::element_type::UINT64: return "an integer above 2^63 - 1";
    case dom::element_type::DOUBLE: return "a non-integer number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "?";
}

inline dom::element need(dom::object o, std::string_view key, const char* expected, const At& at) {
  dom::element e;
  if (o.at_key(key).get(e)) at.fail("key '", key, "': expected ", expected, ", found no such key");
  return e;
}

// One answer object (a line of the file, or the `answer` of a recorded cache record).
inline RecordedAnswer parse_object(dom::element doc, const At& at) {
  dom::object o;
  if (doc.get_object().get(o)) at.fail("expected a JSON object, found ", type_name(doc));
  for (auto field : o) {
    if (field.key != "session_id" && field.key != "ranked_items" && field.key != "target_position")
      at.fail("unexpected key ", data::detail::printable(field.key),
              " (expected only session_id, ranked_items, target_position)");
  }
  RecordedAnswer r;
  r.line = at.line;
  const dom::element sid = need(o, "session_id", "an integer or a digit string", at);
  std::string_view s;
  int64_t i = 0;
  if (sid.type() == dom::element_type::INT64 && !sid.get_int64().get(i)) {
    if (i < 0) at.fail("key 'session_id': expected a non-negative integer, found ", i);
    r.session_id = std::to_string(i);
  } else if (!sid.get_string().get(s)) {
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      at.fail("key 'session_id': expected a digit string of 1 to 19 digits, found ", data::detail::printable(s));
    r.session_id = std::string(s);
  } else {
    at.fail("key 'session_id': expected an integer or a digit string, found ", type_name(sid));
  }
  const dom::element items = need(o, "ranked_items", "an array of item ids", at);
  dom::array a;
  if (items.get_array().get(a)) at.fail("key 'ranked_items': expected an array of item ids, found ", type_name(items));
  size_t k = 0;
  for (dom::element e : a) {
    int64_t v = 0;
    if (e.type() != dom::element_type::INT64 || e.get_int64().get(v))
      at.fail("key 'ranked_items': entry ", k, ": expected a non-negative integer id, found ", type_name(e));
    if (v < 0) at.fail("key 'ranked_items': entry ", k, ": expected a non-negative integer id, found ", v);
    r.ranked_items.push_back(v);
    ++k;
  }
  const dom::element tp = need(o, "target_position", "an integer", at);
  int64_t t = 0;
  if (tp.type() != dom::element_type::INT64 || tp.get_int64().get(t))
    at.fail("key 'target_position': expected an integer, found ", type_name(tp));
  if (t < 0 || t > kAnswerLength) at.fail("key 'target_position': expected an integer in [0, ", kAnswerLength, "], found ", t);
  if (t < kAnswerLength && size_t(t) >= r.ranked_items.size())
    at.fail("key 'target_position': ", t, " is past the end of ranked_items (", r.ranked_items.size(),
            " entries; absent targets are recorded as ", kAnswerLength, ")");
  r.target_position = int(t);
  r.json = simdjson::minify(doc);
  return r;
}

}  // namespace answers_detail

// One answer object's text (a cache record's `answer`); `where` names it in errors.
inline RecordedAnswer parse_answer_object(std::string_view json, const std::string& where, size_t line = 0) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  const answers_detail::At at{where, line};
  if (const auto e = parser.parse(padded).get(doc)) at.fail("expected a JSON object, found invalid JSON (", simdjson::error_message(e), ")");
  return answers_detail::parse_object(doc, at);
}

// Reads a recorded answer file's text strictly (see the top of this file). `warn` gets one
// line when sessions repeat.
inline RecordedAnswers parse_answer_file(std::string_view text, const std::string& path, std::ostream* warn = &std::cerr) {
  RecordedAnswers out;
  out.path = path;
  simdjson::dom::parser parser;
  size_t pos = 0, line = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  while (pos < text.size()) {
    ++line;
    size_t nl = text.find('\n', pos);
    const bool complete = nl != std::string_view::npos;
    if (!complete) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    const answers_detail::At at{path, line};
    if (l.empty()) {
      if (text.find_first_not_of("\r\n", std::min(pos, text.size())) == std::string_view::npos) break;  // trailing blank lines
      at.fail("an empty line (expected one JSON object per line)");
    }
    const simdjson::padded_string padded(l);
    simdjson::dom::element doc;
    if (const auto e = parser.parse(padded).get(doc)) {
      if (!complete)
        at.fail("the last line is cut off (invalid JSON: ", simdjson::error_message(e), "; a truncated file?)");
      at.fail("expected one JSON object per line, found invalid JSON (", simdjson::error_message(e), ")");
    }
    RecordedAnswer r = answers_detail::parse_object(doc, at);
    const auto [it, fresh] = out.index.emplace(r.session_id, out.records.size());
    if (!fresh) {
      ++out.duplicates;
      out.duplicate_lines.push_back(line);
      continue;
    }
    out.records.push_back(std::move(r));
  }
  if (line == 0) fail(path, ": the file is empty (expected one JSON answer per line)");
  if (out.duplicates && warn)
    *warn << "warning: " << path << ": " << out.duplicates << " records repeat an earlier session_id (first at line "
          << out.duplicate_lines.front() << "); the first record of each session is used\n";
  return out;
}

inline RecordedAnswers read_answer_file(const std::string& path, std::ostream* warn = &std::cerr) {
  return parse_answer_file(data::detail::read_whole_file(path), path, warn);
}

// ---- the live reply's text (§4.4 Parse) ----

struct ParseOptions {
  bool legacy_id_regex = false;          // "ID_<digits>" only (upstream); default "ID" + optional "_" + digits
  bool legacy_fallback_ml_only = false;  // the digit-run fallback only when dataset_is_ml (upstream)
  bool dataset_is_ml = false;
};

struct ParsedIds {
  std::vector<int64_t> ids;  // in order of appearance; a run too long for int64 saturates (out of range)
  bool fallback = false;     // the ids came from the digit-run fallback
};

namespace answers_detail {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The value of the digit run at [b, e), saturated at INT64_MAX.
inline int64_t digits_value(std::string_view s, size_t b, size_t e) {
  int64_t v = 0;
  for (size_t i = b; i < e; ++i) {
    const int d = s[i] - '0';
    if (v > (INT64_MAX - d) / 10) return INT64_MAX;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace answers_detail

// The item ids of a reply's text: every "ID", an optional '_' ('_' required with
// legacy_id_regex), then one or more ASCII digits, leftmost first, matches not overlapping
// (what a regex search would find). When none match, every maximal ASCII digit run (the
// fallback; with legacy_fallback_ml_only only on ML).
inline ParsedIds parse_ranked_ids(std::string_view text, const ParseOptions& opt = {}) {
  namespace ad = answers_detail;
  ParsedIds out;
  size_t i = 0;
  while (i + 1 < text.size()) {
    if (text[i] != 'I' || text[i + 1] != 'D') {
      ++i;
      continue;
    }
    size_t j = i + 2;
    if (j < text.size() && text[j] == '_') ++j;
    else if (opt.legacy_id_regex) {
      ++i;
      continue;
    }
    size_t e = j;
    while (e < text.size() && ad::is_digit(text[e])) ++e;
    if (e == j) {
      ++i;
      continue;
    }
    out.ids.push_back(ad::digits_value(text, j, e));
    i = e;
  }
  if (!out.ids.empty()) return out;
  if (opt.legacy_fallback_ml_only && !opt.dataset_is_ml) return out;
  for (size_t b = 0; b < text.size();) {
    if (!ad::is_digit(text[b])) {
      ++b;
      continue;
    }
    size_t e = b;
    while (e < text.size() && ad::is_digit(text[e])) ++e;
    out.ids.push_back(ad::digits_value(text, b, e));
    b = e;
  }
  out.fallback = !out.ids.empty();
  return out;
}

// ---- validation (§4.4 Validate) ----

// Per-rule counts; summed over a run with +=.
struct ValidationCounts {
  int64_t out_of_range = 0;    // ids outside [0, n) at raw positions 0-24, dropped
  int64_t repeats = 0;         // later occurrences of an id at raw positions 0-24, dropped
  int64_t truncated = 0;       // entries at raw positions >= 25, not used
  int64_t non_candidates = 0;  // valid first occurrences not among the prompt's candidates
  int64_t dropped_non_candidates = 0;  // of those, dropped (restrict_to_candidates)
  int64_t unusable = 0;        // answers with no usable item (set by validate_answer: 0 or 1)

  ValidationCounts& operator+=(const ValidationCounts& o) {
    out_of_range += o.out_of_range;
    repeats += o.repeats;
    truncated += o.truncated;
    non_candidates += o.non_candidates;
    dropped_non_candidates += o.dropped_non_candidates;
    unusable += o.unusable;
    return *this;
  }
};

struct ValidateOptions {
  const std::vector<int32_t>* candidates = nullptr;  // the prompt's candidates (live answers); nullptr = unknown
  bool restrict_to_candidates = false;               // drop non-candidates instead of only counting them
};

struct ValidatedAnswer {
  std::vector<std::pair<int32_t, int>> items;  // (item, raw position): first occurrences, raw positions 0-24
  bool usable = false;                         // at least one item; an empty answer still counts toward τ
  int target_position = kAnswerLength;         // first raw index of the target below 25, else 25
  ValidationCounts counts;
};

// Applies §4.4's rules to a raw list. Each raw position p < 25 is, in this order: out of range
// (dropped), a repeat of an id seen at an earlier position (dropped), a non-candidate (counted;
// dropped with restrict_to_candidates), or kept at p. target_item < 0 = unknown (position 25).
inline ValidatedAnswer validate_answer(const std::vector<int64_t>& raw_items, int64_t n_items, int64_t target_item,
                                       const ValidateOptions& options = {}) {
  ValidatedAnswer v;
  std::unordered_set<int64_t> seen, candidates;
  if (options.candidates)
    for (int32_t c : *options.candidates) candidates.insert(c);
  for (size_t p = 0; p < raw_items.size(); ++p) {
    const int64_t id = raw_items[p];
    if (p >= size_t(kAnswerLength)) {
      ++v.counts.truncated;
      continue;
    }
    if (target_item >= 0 && id == target_item && v.target_position == kAnswerLength) v.target_position = int(p);
    if (id < 0 || id >= n_items) {
      ++v.counts.out_of_range;
      continue;
    }
    if (!seen.insert(id).second) {
      ++v.counts.repeats;
      continue;
    }
    if (options.candidates && !candidates.count(id)) {
      ++v.counts.non_candidates;
      if (options.restrict_to_candidates) {
        ++v.counts.dropped_non_candidates;
        continue;
      }
    }
    v.items.emplace_back(int32_t(id), int(p));
  }
  v.usable = !v.items.empty();
  v.counts.unusable = v.usable ? 0 : 1;
  return v;
}

// ---- weights (§6.1) ----

// α by raw position (paper Eq. 1, ranks 1-5 / 6-15 / 16-25): 3 for p <= 4, 2 for 5..14, 1 for
// 15..24, 0 elsewhere. The one place this formula lives.
inline int alpha_for_position(int raw_position) {
  if (raw_position < 0 || raw_position >= kAnswerLength) return 0;
  if (raw_position <= 4) return 3;
  if (raw_position <= 14) return 2;
  return 1;
}

// The reference rows of one answer: (item, α) per kept item, in raw order.
inline std::vector<std::pair<int32_t, int>> weighted_items(const ValidatedAnswer& v) {
  std::vector<std::pair<int32_t, int>> out;
  out.reserve(v.items.size());
  for (const auto& [item, p] : v.items) out.emplace_back(item, alpha_for_position(p));
  return out;
}

// Upstream's rows (legacy_row_duplication, Q18/Q20): raw entry j (0-based, j <= 25) is emitted
// once for each of j <= 5, j <= 15 and j <= 25, so entries 0-5 get 3 copies, 6-15 get 2 and
// 16-25 get 1; no de-duplication. Out-of-range ids are skipped (Q19). Returns (item, copies)
// per entry in raw order: a full 25-list gives 47 rows.
inline std::vector<std::pair<int32_t, int>> legacy_row_duplication(const std::vector<int64_t>& raw_items, int64_t n_items) {
  std::vector<std::pair<int32_t, int>> out;
  for (size_t j = 0; j < raw_items.size() && j <= size_t(kAnswerLength); ++j) {
    const int64_t id = raw_items[j];
    if (id < 0 || id >= n_items) continue;
    out.emplace_back(int32_t(id), int(j <= 5) + int(j <= 15) + int(j <= 25));
  }
  return out;
}

// ---- hit rates (§1.1, §5.4) ----

struct HitRates {
  size_t sessions = 0;
  double at5 = 0, at10 = 0, at25 = 0;  // fraction with target_position < K
};

inline HitRates llm_hit_rates(const std::vector<int>& target_positions) {
  HitRates h;
  h.sessions = target_positions.size();
  if (h.sessions == 0) return h;
  size_t a5 = 0, a10 = 0, a25 = 0;
  for (int t : target_positions) {
    a5 += t >= 0 && t < 5;
    a10 += t >= 0 && t < 10;
    a25 += t >= 0 && t < 25;
  }
  h.at5 = double(a5) / double(h.sessions);
  h.at10 = double(a10) / double(h.sessions);
  h.at25 = double(a25) / double(h.sessions);
  return h;
}

// ---- the shipped ML answers' load-time facts (§1.1) ----

struct OutOfRangeId {
  std::string session_id;
  int position = 0;
  int64_t id = 0;
};

struct MlAnswerFacts {
  size_t records = 0, duplicate_records = 0, not_train = 0;
  size_t empty_lists = 0, lists_not_25 = 0, lists_with_duplicates = 0;
  std::vector<std::string> not_25_sessions;  // the sessions whose list length is not 25
  std::vector<OutOfRangeId> out_of_range;
  HitRates hits;
  std::vector<std::string> failures;  // each fact that does not hold, one line each

  bool ok() const { return failures.empty(); }
  std::string report() const {
    std::string s = cat(records, " records (", duplicate_records, " repeated, ", not_train, " not for train sessions); ",
                        empty_lists, " empty lists, ", lists_not_25, " of length other than 25, ", lists_with_duplicates,
                        " with duplicates, ", out_of_range.size(), " out-of-range ids");
    for (const auto& o : out_of_range) s += cat(" (session ", o.session_id, " position ", o.position, ": ", o.id, ")");
    const auto r3 = [](double x) { return std::round(x * 1000) / 1000; };
    return s + cat("; hit rates @25/@10/@5 ", r3(hits.at25), "/", r3(hits.at10), "/", r3(hits.at5));
  }
};

// Checks the §1.1 facts of data/alkdrec-ml/llm_answers.jsonl: 4,992 records, all for train
// sessions and unique; exactly one empty list, the only one whose length is not 25; 509 lists
// with duplicates; one out-of-range id (session 3296, position 15, id 9258); hit rates
// @25/@10/@5 = 0.529/0.253/0.152 (3 decimals). Call only for the shipped ML data (n = 8,475).
inline MlAnswerFacts check_ml_answer_facts(const RecordedAnswers& a, const std::unordered_set<std::string>& train_sessions,
                                           int64_t n_items) {
  MlAnswerFacts f;
  f.records = a.records.size() + a.duplicates;
  f.duplicate_records = a.duplicates;
  std::vector<int> positions;
  for (const auto& r : a.records) {
    f.not_train += !train_sessions.count(r.session_id);
    if (r.ranked_items.empty()) ++f.empty_lists;
    if (r.ranked_items.size() != size_t(kAnswerLength)) {
      ++f.lists_not_25;
      f.not_25_sessions.push_back(r.session_id);
    }
    std::unordered_set<int64_t> seen;
    bool dup = false;
    for (size_t p = 0; p < r.ranked_items.size(); ++p) {
      const int64_t id = r.ranked_items[p];
      dup = !seen.insert(id).second || dup;
      if (id < 0 || id >= n_items) f.out_of_range.push_back({r.session_id, int(p), id});
    }
    f.lists_with_duplicates += dup;
    positions.push_back(r.target_position);
  }
  f.hits = llm_hit_rates(positions);
  const auto expect = [&](bool ok, auto&&... what) {
    if (!ok) f.failures.push_back(cat(std::forward<decltype(what)>(what)...));
  };
  expect(f.records == 4992, "expected 4992 records, found ", f.records);
  expect(f.duplicate_records == 0, "expected one record per session, found ", f.duplicate_records, " repeated");
  expect(f.not_train == 0, "expected every record to be for a train session, found ", f.not_train, " that are not");
  expect(f.empty_lists == 1, "expected exactly one empty list, found ", f.empty_lists);
  expect(f.lists_not_25 == 1 && f.empty_lists == 1, "expected the empty list to be the only one whose length is not 25, found ",
         f.lists_not_25, " such lists");
  expect(f.lists_with_duplicates == 509, "expected 509 lists with duplicates, found ", f.lists_with_duplicates);
  expect(f.out_of_range.size() == 1 && f.out_of_range[0].session_id == "3296" && f.out_of_range[0].position == 15 &&
             f.out_of_range[0].id == 9258,
         "expected one out-of-range id (session 3296, position 15, id 9258), found ", f.out_of_range.size());
  const auto r3 = [](double x) { return std::lround(x * 1000); };
  expect(r3(f.hits.at25) == 529 && r3(f.hits.at10) == 253 && r3(f.hits.at5) == 152,
         "expected hit rates @25/@10/@5 = 0.529/0.253/0.152, found ", f.hits.at25, "/", f.hits.at10, "/", f.hits.at5);
  return f;
}

// Throws one error listing every failed fact, naming the file.
inline void require_ml_answer_facts(const MlAnswerFacts& f, const std::string& path) {
  if (f.ok()) return;
  std::string s;
  for (const auto& x : f.failures) s += (s.empty() ? "" : "; ") + x;
  fail(path, ": not the shipped ML answers (spec §1.1): ", s);
}

}  // namespace recdistill::alkd
