// recdistill/eval/per_case.hpp: per-case (per-user) ranks and metrics, and their dump as CSV
// or JSON lines, written atomically. One row per case: user (raw id through the IdMap when
// given), target (raw id likewise), rank (empty / null for a miss), every metric of every K,
// and the protocol ("full" or "sampled N uniform|popularity") and exclusion, so a dump of a
// sampled evaluation says so on every row. read_per_case_csv reads one metric of such a CSV
// back, for paired tests between two runs (`recdistill compare`).
#pragma once
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "recdistill/data/csv.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/ranking.hpp"
#include "recdistill/io/atomic_file.hpp"

namespace recdistill::eval {

// The per-case values of one metric ("NDCG@10", suffix ignored), in the order of the ranks:
// the input of paired tests and of any per-user analysis.
inline std::vector<double> per_case_values(const std::vector<int64_t>& ranks, const std::string& metric) {
  const MetricName m = parse_metric_name(metric);
  std::vector<double> v(ranks.size());
  for (size_t i = 0; i < ranks.size(); ++i) v[i] = metric_value(m.family, m.k, ranks[i]);
  return v;
}

namespace detail {

inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { out += '\\'; out += char(c); }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
    else out += char(c);
  }
  return out + "\"";
}

inline std::string id_text(int32_t id, const data::IdMap* map) {
  if (map && id >= 0 && id < map->size()) return map->token(id);
  return std::to_string(id);
}

}  // namespace detail

enum class DumpFormat { csv, jsonl };

// The per-case table as text. `ranks` must come from the same `cases` (same order).
inline std::string per_case_table(const std::vector<Case>& cases, const std::vector<int64_t>& ranks,
                                  const Options& o, DumpFormat fmt, const data::IdMap* users = nullptr,
                                  const data::IdMap* items = nullptr) {
  if (cases.size() != ranks.size())
    fail("per-case dump: ", cases.size(), " cases but ", ranks.size(), " ranks");
  const std::string protocol = protocol_label(o), exclude = name_of(o.exclude);
  std::ostringstream os;
  os.precision(17);
  if (fmt == DumpFormat::csv) {
    os << "user,target,rank";
    for (int k : o.ks)
      for (const auto& f : metric_families()) os << "," << f << "@" << k;
    os << ",protocol,exclude\n";
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const int64_t r = ranks[i];
    const std::string user = detail::id_text(cases[i].user, users);
    const std::string target = detail::id_text(cases[i].target, items);
    if (fmt == DumpFormat::csv) {
      os << detail::csv_field(user) << "," << detail::csv_field(target) << ",";
      if (r != kMissRank) os << r;
      for (int k : o.ks)
        for (const auto& f : metric_families()) os << "," << metric_value(f, k, r);
      os << "," << protocol << "," << exclude << "\n";
    } else {
      os << "{\"user\":" << detail::json_string(user) << ",\"target\":" << detail::json_string(target)
         << ",\"rank\":";
      if (r != kMissRank) os << r; else os << "null";
      for (int k : o.ks)
        for (const auto& f : metric_families())
          os << ",\"" << f << "@" << k << "\":" << metric_value(f, k, r);
      os << ",\"protocol\":\"" << protocol << "\",\"exclude\":\"" << exclude << "\"}\n";
    }
  }
  return os.str();
}

// Writes the per-case table to `path` (".csv" or ".jsonl" / ".json" picks the format),
// atomically: a crash leaves the old file or the new one, never half of one.
inline void write_per_case(const std::string& path, const std::vector<Case>& cases,
                           const std::vector<int64_t>& ranks, const Options& o,
                           const data::IdMap* users = nullptr, const data::IdMap* items = nullptr) {
  auto ends = [&](const std::string& e) {
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  DumpFormat fmt;
  if (ends(".csv")) fmt = DumpFormat::csv;
  else if (ends(".jsonl") || ends(".json")) fmt = DumpFormat::jsonl;
  else fail(path, ": per-case dump: expected a file name ending in .csv or .jsonl");
  io::write_file_atomic(path, per_case_table(cases, ranks, o, fmt, users, items));
}

// One metric of a per-case CSV dump, one value per case, keyed by user and target.
struct PerCaseColumn {
  std::vector<std::string> keys;  // "user<TAB>target", raw ids as written
  std::vector<double> values;
  std::string protocol, exclude;  // the same on every row (checked)
};

// `text` is the file's content, `path` its name for messages.
inline PerCaseColumn parse_per_case_csv(std::string_view text, const std::string& path, const std::string& metric) {
  namespace dd = data::detail;
  dd::CsvReader r(text, path);
  const auto names = dd::csv_header(r, path, {"user", "target", metric, "protocol", "exclude"});
  const int cu = dd::csv_column(names, "user"), ct = dd::csv_column(names, "target"),
            cm = dd::csv_column(names, metric), cp = dd::csv_column(names, "protocol"),
            ce = dd::csv_column(names, "exclude");
  PerCaseColumn out;
  std::unordered_map<std::string, size_t> line_of;
  std::vector<std::string_view> f;
  while (r.next(f)) {
    dd::check_field_count(r, path, names.size(), f.size(), f[0]);
    double v = 0;
    if (!dd::parse_number(f[size_t(cm)], v))
      fail(path, ":", r.lineno(), ": column '", metric, "': expected a number, found ", dd::printable(f[size_t(cm)]));
    std::string key = std::string(f[size_t(cu)]) + "\t" + std::string(f[size_t(ct)]);
    const auto [it, fresh] = line_of.try_emplace(key, r.lineno());
    if (!fresh)
      fail(path, ":", r.lineno(), ": user ", dd::printable(f[size_t(cu)]), " with target ",
           dd::printable(f[size_t(ct)]), " is also on line ", it->second, " (expected one row per case)");
    if (out.keys.empty()) {
      out.protocol = std::string(f[size_t(cp)]);
      out.exclude = std::string(f[size_t(ce)]);
    } else if (f[size_t(cp)] != out.protocol || f[size_t(ce)] != out.exclude) {
      fail(path, ":", r.lineno(), ": protocol '", std::string(f[size_t(cp)]), "', exclude '",
           std::string(f[size_t(ce)]), "' differ from the first row's ('", out.protocol, "', '", out.exclude, "')");
    }
    out.keys.push_back(std::move(key));
    out.values.push_back(v);
  }
  if (out.keys.empty()) fail(path, ": no cases (expected one row per evaluated case after the header)");
  return out;
}

inline PerCaseColumn read_per_case_csv(const std::string& path, const std::string& metric) {
  return parse_per_case_csv(data::detail::read_whole_file(path), path, metric);
}

}  // namespace recdistill::eval
