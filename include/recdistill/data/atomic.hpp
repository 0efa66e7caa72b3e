// recdistill/data/atomic.hpp: reader for RecBole atomic files (.inter, .item, .user).
//
// Format: tab-separated, first line a header of `name:type` fields (type one of token,
// token_seq, float, float_seq), any column order. A UTF-8 BOM and CRLF line ends are
// accepted. Every problem is an error naming file, line and column and saying what was
// expected and what was found; nothing is skipped silently. The .inter file needs the user,
// item and time columns (names configurable); a rating column is read when present. Columns
// of .item/.user files other than the id become Metadata (as text; docs/data.md).
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/text.hpp"

namespace recdistill::data {

struct AtomicColumns {
  std::string user = "user_id", item = "item_id", time = "timestamp";
  std::string rating = "rating";  // read when the .inter header has it; "" = never
};

namespace detail {

inline std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t t = line.find('\t', start);
    out.push_back(line.substr(start, t == std::string::npos ? std::string::npos : t - start));
    if (t == std::string::npos) break;
    start = t + 1;
  }
  return out;
}

// The header's column names (types checked, then dropped: every value is read as text or,
// for the time and rating columns, as a number).
inline std::vector<std::string> atomic_header(std::string_view line, const std::string& path) {
  std::vector<std::string_view> fields;
  split_on(line, '\t', fields);
  if (fields.size() < 2)
    fail(path, ":1: expected a tab-separated header of name:type fields, found ", printable(line),
         line.find(',') != std::string_view::npos ? " (comma-separated? atomic files use tabs)" : "");
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> column;  // name -> 0-based column (a hostile header has 10^5 of them)
  for (size_t c = 0; c < fields.size(); ++c) {
    const auto colon = fields[c].find(':');
    if (colon == std::string_view::npos || colon == 0)
      fail(path, ":1: column ", c + 1, ": expected a 'name:type' header, found ", printable(fields[c]));
    const std::string name(fields[c].substr(0, colon));
    const std::string_view type = fields[c].substr(colon + 1);
    if (type != "token" && type != "token_seq" && type != "float" && type != "float_seq")
      fail(path, ":1: column ", c + 1, " ('", name,
           "'): expected type token, token_seq, float or float_seq, found '", type, "'");
    if (const auto [it, fresh] = column.try_emplace(name, c); !fresh)
      fail(path, ":1: column ", c + 1, ": the name '", name, "' is also column ", it->second + 1);
    names.push_back(name);
  }
  return names;
}

inline int column_of(const std::vector<std::string>& names, const std::string& name) {
  for (size_t c = 0; c < names.size(); ++c)
    if (names[c] == name) return int(c);
  return -1;
}

// A blank line is only allowed at the very end of the file.
inline void check_blank_line(const LineReader& r, const std::string& path) {
  if (!r.rest_blank()) fail(path, ":", r.lineno(), ": empty line in the middle of the file");
}

}  // namespace detail

// Reads the rows of an .item or .user file into `ids` (interned in file order) and `meta`
// (every column but `id_field`, one row per id). A repeated id is an error.
inline void parse_atomic_side(std::string_view text, const std::string& path,
                              const std::string& id_field, IdMap& ids, Metadata& meta) {
  detail::LineReader r(text);
  std::string_view line;
  if (!r.next(line) || (line.empty() && r.rest_blank()))
    fail(path, ": the file is empty (expected a name:type header line)");
  const auto names = detail::atomic_header(line, path);
  const int id_col = detail::column_of(names, id_field);
  if (id_col < 0) fail(path, ":1: the header must name the column '", id_field, "'; missing: ", id_field);
  std::vector<size_t> line_of = detail::start_side(names, id_col, ids, meta, path);
  std::vector<std::string_view> f;
  size_t rows = 0;
  while (r.next(line)) {
    if (line.empty()) {
      detail::check_blank_line(r, path);
      break;
    }
    ++rows;
    detail::split_on(line, '\t', f);
    if (f.size() != names.size())
      fail(path, ":", r.lineno(), ": expected ", names.size(), " tab-separated fields, found ", f.size(),
           f.size() == 1 && line.find(',') != std::string_view::npos ? " (comma-separated?)" : "",
           detail::truncation_hint(r));
    detail::add_side_row(f, id_col, id_field, r.lineno(), path, ids, meta, line_of);
  }
  if (rows == 0) fail(path, ": no rows after the header");
}

// Parses the text of an .inter file into `out`, whose id maps may already hold the rows of
// .item/.user files; `path` is used in messages only.
inline void parse_atomic_inter_into(Interactions& out, std::string_view text, const std::string& path,
                                    const AtomicColumns& cols = {}) {
  out.source = path;
  detail::LineReader r(text);
  std::string_view line;
  if (!r.next(line) || (line.empty() && r.rest_blank()))
    fail(path, ": the file is empty (expected a name:type header line)");
  const auto names = detail::atomic_header(line, path);
  const int ui = detail::column_of(names, cols.user), ii = detail::column_of(names, cols.item),
            ti = detail::column_of(names, cols.time);
  const int ri = cols.rating.empty() ? -1 : detail::column_of(names, cols.rating);
  if (ui < 0 || ii < 0 || ti < 0)
    fail(path, ":1: the header must name the columns '", cols.user, "', '", cols.item, "' and '",
         cols.time, "'; missing: ", ui < 0 ? cols.user + " " : "", ii < 0 ? cols.item + " " : "",
         ti < 0 ? cols.time : "");
  const detail::InteractionColumns columns{ui, ii, ti, ri, cols.user, cols.item, cols.time, cols.rating};
  const size_t ncols = names.size();
  const size_t start = out.size();
  detail::reserve_rows(out, text, ri >= 0);
  std::vector<std::string_view> f;
  while (r.next(line)) {
    if (line.empty()) {
      detail::check_blank_line(r, path);
      break;
    }
    detail::split_on(line, '\t', f);
    if (f.size() != ncols)
      fail(path, ":", r.lineno(), ": expected ", ncols, " tab-separated fields, found ", f.size(),
           f.size() == 1 && line.find(',') != std::string_view::npos ? " (comma-separated?)" : "",
           detail::truncation_hint(r));
    detail::add_interaction_row(out, f, columns, r.lineno(), path, detail::truncation_hint(r));
  }
  if (out.size() == start) fail(path, ": no interactions after the header");
  detail::pad_metadata(out.item_meta, out.items.size(), "item", path);
  detail::pad_metadata(out.user_meta, out.users.size(), "user", path);
  out.duplicates = detail::count_duplicates(out);
}

inline Interactions parse_atomic_inter(std::string_view text, const std::string& path,
                                       const AtomicColumns& cols = {}) {
  Interactions out;
  parse_atomic_inter_into(out, text, path, cols);
  return out;
}

// Reads an .inter file and, when their paths are not empty, the .item and .user files
// (whose rows are interned first, in file order).
inline Interactions read_atomic(const std::string& inter_path, const std::string& item_path = "",
                                const std::string& user_path = "", const AtomicColumns& cols = {}) {
  Interactions out;
  if (!item_path.empty())
    parse_atomic_side(detail::read_whole_file(item_path), item_path, cols.item, out.items, out.item_meta);
  if (!user_path.empty())
    parse_atomic_side(detail::read_whole_file(user_path), user_path, cols.user, out.users, out.user_meta);
  parse_atomic_inter_into(out, detail::read_whole_file(inter_path), inter_path, cols);
  return out;
}

inline Interactions read_atomic_inter(const std::string& path, const AtomicColumns& cols = {}) {
  return read_atomic(path, "", "", cols);
}

}  // namespace recdistill::data
