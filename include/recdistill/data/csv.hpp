// recdistill/data/csv.hpp: the seed's raw CSV layout (users.csv, items.csv, interactions.csv).
//
// Comma-separated with a header line (RFC 4180): a field may be quoted with '"', a quote
// inside a quoted field is written twice, and a quoted field may hold commas and line ends.
// A quote inside an unquoted field is an error (RFC 4180 §2.5). interactions.csv needs the
// user, item and time columns (names configurable; extra columns are ignored), a rating
// column is read when present; users.csv / items.csv need the id column, every other column
// becomes Metadata. BOM and CRLF are accepted; every problem names file, line and column.
#pragma once
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/text.hpp"

namespace recdistill::data {

struct CsvColumns {
  std::string user = "user_id", item = "item_id", time = "timestamp";
  std::string rating = "rating";  // read when the header has it; "" = never
};

namespace detail {

// Records of an RFC 4180 buffer. Fields are views into the buffer, or into the reader's own
// storage for quoted fields with doubled quotes; both stay valid until the next record.
class CsvReader {
 public:
  CsvReader(std::string_view text, std::string path) : text_(text), path_(std::move(path)) {
    if (text_.size() >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
  }
  // Next record into `out`; false at the end. A blank line ends the file when only blank
  // lines follow it, and is an error otherwise.
  bool next(std::vector<std::string_view>& out) {
    out.clear();
    unescaped_.clear();
    if (pos_ >= text_.size()) return false;
    line_ = next_line_;
    if (text_[pos_] == '\n' || (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n')) {
      for (size_t i = pos_; i < text_.size(); ++i)
        if (text_[i] != '\n' && text_[i] != '\r') fail(path_, ":", line_, ": empty line in the middle of the file");
      pos_ = text_.size();
      return false;
    }
    while (true) {
      const char* b = text_.data();
      const size_t n = text_.size();
      if (pos_ < n && b[pos_] == '"') {
        const size_t open_line = next_line_;
        size_t i = pos_ + 1, start = i;
        bool doubled = false;
        while (true) {
          if (i >= n)
            fail(path_, ":", open_line, ": column ", out.size() + 1,
                 ": a quoted field is not closed (expected a closing '\"' before the end of the file)");
          if (b[i] == '"') {
            if (i + 1 < n && b[i + 1] == '"') {
              doubled = true;
              i += 2;
              continue;
            }
            break;
          }
          if (b[i] == '\n') ++next_line_;
          ++i;
        }
        std::string_view field(b + start, i - start);
        if (doubled) {
          std::string s;
          s.reserve(field.size());
          for (size_t k = 0; k < field.size(); ++k) {
            s.push_back(field[k]);
            if (field[k] == '"') ++k;
          }
          unescaped_.push_back(std::move(s));
          field = unescaped_.back();
        }
        out.push_back(field);
        pos_ = i + 1;
        if (pos_ >= n) { terminated_ = false; return true; }
        if (b[pos_] == ',') { ++pos_; continue; }
        if (b[pos_] == '\n') { ++pos_; ++next_line_; terminated_ = true; return true; }
        if (b[pos_] == '\r' && pos_ + 1 < n && b[pos_ + 1] == '\n') { pos_ += 2; ++next_line_; terminated_ = true; return true; }
        fail(path_, ":", next_line_, ": column ", out.size(),
             ": expected ',' or a line end after a closing quote, found ",
             printable(std::string_view(b + pos_, 1)));
      }
      // Unquoted field: up to the next comma or line end.
      size_t i = pos_;
      while (i < n && b[i] != ',' && b[i] != '\n') {
        if (b[i] == '"')
          fail(path_, ":", next_line_, ": column ", out.size() + 1,
               ": a '\"' inside an unquoted field (expected the whole field to be quoted, with inner quotes doubled)");
        ++i;
      }
      size_t end = i;
      if (i < n && b[i] == '\n' && end > pos_ && b[end - 1] == '\r') --end;
      else if (i >= n && end > pos_ && b[end - 1] == '\r') --end;
      out.push_back(std::string_view(b + pos_, end - pos_));
      if (i >= n) { pos_ = n; terminated_ = false; return true; }
      if (b[i] == ',') { pos_ = i + 1; continue; }
      pos_ = i + 1;  // '\n'
      ++next_line_;
      terminated_ = true;
      return true;
    }
  }
  size_t lineno() const { return line_; }  // line on which the last record started
  bool terminated() const { return terminated_; }
  bool at_start() const { return pos_ == 0 || (pos_ == 3 && text_.size() >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0); }

 private:
  std::string_view text_;
  std::string path_;
  size_t pos_ = 0, line_ = 0, next_line_ = 1;
  bool terminated_ = true;
  std::deque<std::string> unescaped_;
};

inline const char* truncation_hint(const CsvReader& r) {
  return r.terminated() ? "" : " (the last line has no line end: truncated file?)";
}

inline std::vector<std::string> csv_header(CsvReader& r, const std::string& path,
                                           const std::vector<std::string>& required) {
  std::vector<std::string_view> f;
  if (!r.next(f) || (f.size() == 1 && f[0].empty()))
    fail(path, ": the file is empty (expected a comma-separated header line)");
  std::string req;
  for (const auto& q : required) req += (req.empty() ? "'" : ", '") + q + "'";
  if (f.size() == 1) {
    for (char sep : {';', '\t', '|'})
      if (f[0].find(sep) != std::string_view::npos)
        fail(path, ":1: expected a comma-separated header naming ", req, ", found ", printable(f[0]),
             " (separator '", sep == '\t' ? std::string("\\t") : std::string(1, sep), "'?)");
  }
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> column;  // name -> 0-based column (a hostile header has 10^5 of them)
  for (size_t c = 0; c < f.size(); ++c) {
    if (f[c].empty()) fail(path, ":1: column ", c + 1, ": expected a column name, found an empty field");
    if (const auto [it, fresh] = column.try_emplace(std::string(f[c]), c); !fresh)
      fail(path, ":1: column ", c + 1, ": the name '", f[c], "' is also column ", it->second + 1);
    names.emplace_back(f[c]);
  }
  for (const auto& q : required) {
    bool found = false;
    for (const auto& n : names) found |= n == q;
    if (!found) {
      std::string have;
      for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
      fail(path, ":1: missing column '", q, "' (expected columns ", req, "; found: ", have, ")");
    }
  }
  return names;
}

inline int csv_column(const std::vector<std::string>& names, const std::string& n) {
  for (size_t c = 0; c < names.size(); ++c)
    if (names[c] == n) return int(c);
  return -1;
}

inline void check_field_count(const CsvReader& r, const std::string& path, size_t want, size_t got,
                              std::string_view first) {
  if (got != want)
    fail(path, ":", r.lineno(), ": expected ", want, " comma-separated fields, found ", got,
         got == 1 && (first.find(';') != std::string_view::npos || first.find('\t') != std::string_view::npos)
             ? " (wrong separator?)" : "",
         truncation_hint(r));
}

}  // namespace detail

// Reads users.csv or items.csv: ids interned in file order, every other column into `meta`.
inline void parse_csv_side(std::string_view text, const std::string& path, const std::string& id_field,
                           IdMap& ids, Metadata& meta) {
  detail::CsvReader r(text, path);
  const auto names = detail::csv_header(r, path, {id_field});
  const int id_col = detail::csv_column(names, id_field);
  std::vector<size_t> line_of = detail::start_side(names, id_col, ids, meta, path);
  std::vector<std::string_view> f;
  size_t rows = 0;
  while (r.next(f)) {
    ++rows;
    detail::check_field_count(r, path, names.size(), f.size(), f[0]);
    detail::add_side_row(f, id_col, id_field, r.lineno(), path, ids, meta, line_of);
  }
  if (rows == 0) fail(path, ": no rows after the header");
}

// Reads interactions.csv into `out` (whose id maps may already hold users.csv/items.csv).
inline void parse_csv_interactions_into(Interactions& out, std::string_view text, const std::string& path,
                                        const CsvColumns& cols = {}) {
  out.source = path;
  detail::CsvReader r(text, path);
  const auto names = detail::csv_header(r, path, {cols.user, cols.item, cols.time});
  const int ui = detail::csv_column(names, cols.user), ii = detail::csv_column(names, cols.item),
            ti = detail::csv_column(names, cols.time);
  const int ri = cols.rating.empty() ? -1 : detail::csv_column(names, cols.rating);
  const detail::InteractionColumns columns{ui, ii, ti, ri, cols.user, cols.item, cols.time, cols.rating};
  const size_t start = out.size();
  detail::reserve_rows(out, text, ri >= 0);
  std::vector<std::string_view> f;
  while (r.next(f)) {
    detail::check_field_count(r, path, names.size(), f.size(), f[0]);
    detail::add_interaction_row(out, f, columns, r.lineno(), path, detail::truncation_hint(r));
  }
  if (out.size() == start) fail(path, ": no interactions after the header");
  detail::pad_metadata(out.item_meta, out.items.size(), "item", path);
  detail::pad_metadata(out.user_meta, out.users.size(), "user", path);
  out.duplicates = detail::count_duplicates(out);
}

// Reads interactions.csv and, when their paths are not empty, items.csv and users.csv
// (whose rows are interned first, in file order).
inline Interactions read_csv(const std::string& interactions_path, const std::string& items_path = "",
                             const std::string& users_path = "", const CsvColumns& cols = {}) {
  Interactions out;
  if (!items_path.empty())
    parse_csv_side(detail::read_whole_file(items_path), items_path, cols.item, out.items, out.item_meta);
  if (!users_path.empty())
    parse_csv_side(detail::read_whole_file(users_path), users_path, cols.user, out.users, out.user_meta);
  parse_csv_interactions_into(out, detail::read_whole_file(interactions_path), interactions_path, cols);
  return out;
}

}  // namespace recdistill::data
