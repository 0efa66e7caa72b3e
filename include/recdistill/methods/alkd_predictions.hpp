// recdistill/methods/alkd_predictions.hpp: the prediction step's file of active LLM distillation
// (specs/active-llm-distillation.md §3; docs/alkd.md): for every training session, what the
// teacher and the student predict and how hard the session is.
//
// JSON lines, written atomically. Line 1 is the header:
//   {"format": "recdistill-alkd-predictions", "version": 1, "sessions": S, "items": n, "k": K,
//    "window": L, "teacher": "RUN", "student": "RUN"}
// then S records, one per training session in file order:
//   {"session_id": "17", "target": 4530, "window": [..], "teacher_rank": 3, "student_rank": 812,
//    "teacher_top": [K ids], "student_top": [K ids], "candidates": [K ids],
//    "difficulty": {"teacher_consistency": d, "student_consistency": d, "rank_agreement": d}}
// Items are item_index values of items.tsv (0-based, < n). `window` holds the session's last L
// inputs, oldest first, duplicates kept. Ranks are 0-based after the window's items are
// excluded, ties going to the lower index; a target inside the window has rank n. The top-K
// lists exclude the window's items. `candidates` is the teacher's list with the target forced
// into its last slot when absent (the prompt's candidates, §3). Each difficulty grows with
// hardness: -c_T and -c_S (c_M the mean of sigmoid(score) over the window's slots, §3.1) and
// -(1/4) sum_{k in 1,5,10,20} |C_T[:k] ∩ C_S[:k]|.
#pragma once
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/text.hpp"
#include "recdistill/io/log.hpp"

namespace recdistill::alkd {

inline constexpr const char* kPredictionsFormat = "recdistill-alkd-predictions";
inline constexpr int64_t kPredictionsVersion = 1;

struct PredictionsHeader {
  int64_t sessions = 0, items = 0, k = 0, window = 0;
  std::string teacher, student;
};

struct Difficulty {
  double teacher_consistency = 0, student_consistency = 0, rank_agreement = 0;
};

struct Prediction {
  std::string session_id;
  int32_t target = 0;
  std::vector<int32_t> window;
  int64_t teacher_rank = 0, student_rank = 0;
  std::vector<int32_t> teacher_top, student_top, candidates;
  Difficulty difficulty;
};

struct Predictions {
  PredictionsHeader header;
  std::vector<Prediction> records;
};

// c_M: the mean of sigmoid over the scores of the window's slots (0 for an empty window).
inline double consistency(const std::vector<float>& window_scores) {
  if (window_scores.empty()) return 0;
  double s = 0;
  for (float x : window_scores) s += 1.0 / (1.0 + std::exp(-double(x)));
  return s / double(window_scores.size());
}

// -(1/4) sum over k in {1, 5, 10, 20} of |a[:k] ∩ b[:k]|.
inline double rank_agreement_difficulty(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  double s = 0;
  for (size_t k : {size_t(1), size_t(5), size_t(10), size_t(20)}) {
    const size_t ka = std::min(k, a.size()), kb = std::min(k, b.size());
    for (size_t i = 0; i < ka; ++i)
      if (std::find(b.begin(), b.begin() + long(kb), a[i]) != b.begin() + long(kb)) s += 1;
  }
  return -s / 4.0;
}

// The prompt's candidates: the teacher's list, the target in its last slot when absent.
inline std::vector<int32_t> prompt_candidates(std::vector<int32_t> teacher_top, int32_t target) {
  if (!teacher_top.empty() && std::find(teacher_top.begin(), teacher_top.end(), target) == teacher_top.end())
    teacher_top.back() = target;
  return teacher_top;
}

namespace detail {

inline void ints(std::string& out, const std::vector<int32_t>& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(v[i]);
  }
  out += ']';
}

}  // namespace detail

// The file's text.
inline std::string predictions_text(const Predictions& p) {
  const auto& h = p.header;
  std::string out = cat("{\"format\": \"", kPredictionsFormat, "\", \"version\": ", kPredictionsVersion,
                        ", \"sessions\": ", h.sessions, ", \"items\": ", h.items, ", \"k\": ", h.k, ", \"window\": ", h.window,
                        ", \"teacher\": ", io::json_quote(h.teacher), ", \"student\": ", io::json_quote(h.student), "}\n");
  for (const auto& r : p.records) {
    out += cat("{\"session_id\": ", io::json_quote(r.session_id), ", \"target\": ", r.target, ", \"window\": ");
    detail::ints(out, r.window);
    out += cat(", \"teacher_rank\": ", r.teacher_rank, ", \"student_rank\": ", r.student_rank, ", \"teacher_top\": ");
    detail::ints(out, r.teacher_top);
    out += ", \"student_top\": ";
    detail::ints(out, r.student_top);
    out += ", \"candidates\": ";
    detail::ints(out, r.candidates);
    out += cat(", \"difficulty\": {\"teacher_consistency\": ", io::json_number(r.difficulty.teacher_consistency),
               ", \"student_consistency\": ", io::json_number(r.difficulty.student_consistency),
               ", \"rank_agreement\": ", io::json_number(r.difficulty.rank_agreement), "}}\n");
  }
  return out;
}

namespace detail {

namespace dom = simdjson::dom;

struct Line {
  const std::string& path;
  size_t no;
  template <class... A>
  [[noreturn]] void fail(A&&... a) const {
    recdistill::fail(path, ":", no, ": ", std::forward<A>(a)...);
  }
};

inline dom::element field(dom::object o, std::string_view key, const Line& at) {
  dom::element v;
  if (o[key].get(v)) at.fail("missing key '", key, "'");
  return v;
}

inline int64_t int_in(dom::element v, std::string_view key, int64_t lo, int64_t hi, const Line& at) {
  int64_t x = 0;
  if (v.type() != dom::element_type::INT64 || v.get_int64().get(x)) at.fail("key '", key, "': expected an integer");
  if (x < lo || x > hi) at.fail("key '", key, "': expected an integer in [", lo, ", ", hi, "], found ", x);
  return x;
}

inline double number(dom::element v, std::string_view key, const Line& at) {
  double x = 0;
  if (v.type() == dom::element_type::DOUBLE) x = v.get_double().value_unsafe();
  else if (v.type() == dom::element_type::INT64) x = double(v.get_int64().value_unsafe());
  else at.fail("key '", key, "': expected a number");
  if (!std::isfinite(x)) at.fail("key '", key, "': expected a finite number");
  return x;
}

inline std::string string(dom::element v, std::string_view key, const Line& at) {
  std::string_view s;
  if (v.get_string().get(s)) at.fail("key '", key, "': expected a string");
  return std::string(s);
}

// An array of item ids in [0, n), of length in [lo, hi].
inline std::vector<int32_t> items(dom::element v, std::string_view key, int64_t n, size_t lo, size_t hi, const Line& at) {
  dom::array a;
  if (v.get_array().get(a)) at.fail("key '", key, "': expected an array of item indexes");
  std::vector<int32_t> out;
  for (dom::element e : a) {
    if (out.size() == hi) at.fail("key '", key, "': more than ", hi, " items");
    out.push_back(int32_t(int_in(e, key, 0, n - 1, at)));
  }
  if (out.size() < lo) at.fail("key '", key, "': expected at least ", lo, " items, found ", out.size());
  return out;
}

}  // namespace detail

// Reads a predictions file's text strictly: every error names the file, the line and the key.
inline Predictions parse_predictions(std::string_view text, const std::string& path) {
  namespace d = detail;
  Predictions p;
  simdjson::dom::parser parser;
  size_t no = 0, pos = 0;
  bool header = false;
  while (pos < text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++no;
    const d::Line at{path, no};
    if (line.empty()) {
      if (pos < text.size()) at.fail("empty line inside the file");
      break;
    }
    const simdjson::padded_string padded(line);
    d::dom::element root;
    if (auto e = parser.parse(padded).get(root)) at.fail("invalid JSON: ", simdjson::error_message(e));
    d::dom::object o;
    if (root.get_object().get(o)) at.fail("expected a JSON object");
    if (!header) {
      if (d::string(d::field(o, "format", at), "format", at) != kPredictionsFormat)
        at.fail("key 'format': expected \"", kPredictionsFormat, "\" (not a predictions file)");
      const int64_t v = d::int_in(d::field(o, "version", at), "version", 0, 1 << 30, at);
      if (v != kPredictionsVersion) at.fail("key 'version': this build reads version ", kPredictionsVersion, ", found ", v);
      auto& h = p.header;
      h.sessions = d::int_in(d::field(o, "sessions", at), "sessions", 0, int64_t(1) << 31, at);
      h.items = d::int_in(d::field(o, "items", at), "items", 1, int64_t(1) << 31, at);
      h.k = d::int_in(d::field(o, "k", at), "k", 1, h.items, at);
      h.window = d::int_in(d::field(o, "window", at), "window", 1, 1 << 20, at);
      h.teacher = d::string(d::field(o, "teacher", at), "teacher", at);
      h.student = d::string(d::field(o, "student", at), "student", at);
      // Records are bounded by the text: a header promising more than it holds is refused below.
      header = true;
      continue;
    }
    const auto& h = p.header;
    if (int64_t(p.records.size()) == h.sessions) at.fail("more records than the header's ", h.sessions, " sessions");
    Prediction r;
    r.session_id = d::string(d::field(o, "session_id", at), "session_id", at);
    if (r.session_id.empty()) at.fail("key 'session_id': empty");
    r.target = int32_t(d::int_in(d::field(o, "target", at), "target", 0, h.items - 1, at));
    r.window = d::items(d::field(o, "window", at), "window", h.items, 1, size_t(h.window), at);
    r.teacher_rank = d::int_in(d::field(o, "teacher_rank", at), "teacher_rank", 0, h.items, at);
    r.student_rank = d::int_in(d::field(o, "student_rank", at), "student_rank", 0, h.items, at);
    const size_t k = size_t(h.k);
    r.teacher_top = d::items(d::field(o, "teacher_top", at), "teacher_top", h.items, 0, k, at);
    r.student_top = d::items(d::field(o, "student_top", at), "student_top", h.items, 0, k, at);
    r.candidates = d::items(d::field(o, "candidates", at), "candidates", h.items, 0, k, at);
    if (r.candidates.size() != r.teacher_top.size())
      at.fail("key 'candidates': expected as many items as teacher_top (", r.teacher_top.size(), "), found ", r.candidates.size());
    if (!r.candidates.empty() && std::find(r.candidates.begin(), r.candidates.end(), r.target) == r.candidates.end())
      at.fail("key 'candidates': the target ", r.target, " is not among them");
    d::dom::object df;
    if (d::field(o, "difficulty", at).get_object().get(df)) at.fail("key 'difficulty': expected an object");
    r.difficulty.teacher_consistency = d::number(d::field(df, "teacher_consistency", at), "difficulty.teacher_consistency", at);
    r.difficulty.student_consistency = d::number(d::field(df, "student_consistency", at), "difficulty.student_consistency", at);
    r.difficulty.rank_agreement = d::number(d::field(df, "rank_agreement", at), "difficulty.rank_agreement", at);
    p.records.push_back(std::move(r));
  }
  if (!header) fail(path, ": the file is empty (expected a predictions header line)");
  if (int64_t(p.records.size()) != p.header.sessions)
    fail(path, ": the header promises ", p.header.sessions, " sessions, the file holds ", p.records.size(),
         " (a truncated file?)");
  return p;
}

}  // namespace recdistill::alkd
