// recdistill/data/text.hpp: what every text importer shares (docs/data.md).
//
// A whole file is read into one buffer and walked line by line without copies. A UTF-8 BOM
// at the start and CRLF line ends are accepted everywhere. Numbers are parsed strictly: the
// whole field must be one finite number. Messages quote at most 40 characters of a field.
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/io/alloc_limits.hpp"

namespace recdistill::data::detail {

// The file's bytes; `padding` zero bytes are appended (simdjson reads past the end). The size
// is checked against what this process can hold first (io/alloc_limits.hpp).
inline std::string read_whole_file(const std::string& path, size_t padding = 0) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open file");
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  if (size < 0) fail(path, ": cannot read file");
  io::check_file_read(uint64_t(size) + padding, path);
  std::string text;
  try {
    text.assign(size_t(size) + padding, '\0');
  } catch (const std::bad_alloc&) {
    fail(path, ": cannot allocate ", io::human_bytes(uint64_t(size)), " to read the file");
  }
  f.seekg(0);
  f.read(text.data(), size);
  if (!f) fail(path, ": cannot read file");
  return text;
}

inline std::string printable(std::string_view s) {
  std::string out(s.size() > 40 ? s.substr(0, 40) : s);
  if (s.size() > 40) out += "...";
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 32) c = '?';
  return "'" + out + "'";
}

// Lines of a buffer: strips a leading BOM and the '\r' of CRLF; remembers whether the last
// line read ended with a line end (a missing one hints at a truncated file).
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {
    if (text_.size() >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
  }
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const char* base = text_.data() + pos_;
    const void* nl = std::memchr(base, '\n', text_.size() - pos_);
    size_t len;
    if (nl) {
      len = size_t(static_cast<const char*>(nl) - base);
      pos_ += len + 1;
      terminated_ = true;
    } else {
      len = text_.size() - pos_;
      pos_ = text_.size();
      terminated_ = false;
    }
    if (len > 0 && base[len - 1] == '\r') --len;
    line = std::string_view(base, len);
    ++lineno_;
    return true;
  }
  size_t lineno() const { return lineno_; }
  bool terminated() const { return terminated_; }  // the last line read ended with '\n'
  bool at_end() const { return pos_ >= text_.size(); }
  // Whether everything after the current position is blank lines.
  bool rest_blank() const {
    for (size_t i = pos_; i < text_.size(); ++i)
      if (text_[i] != '\n' && text_[i] != '\r') return false;
    return true;
  }
  size_t pos() const { return pos_; }
  void set_pos(size_t p, size_t lineno) { pos_ = p; lineno_ = lineno; }
  std::string_view text() const { return text_; }

 private:
  std::string_view text_;
  size_t pos_ = 0, lineno_ = 0;
  bool terminated_ = true;
};

inline const char* truncation_hint(const LineReader& r) {
  return r.terminated() ? "" : " (the last line has no line end: truncated file?)";
}

// Splits on one separator character into `out` (views into `line`).
inline void split_on(std::string_view line, char sep, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = 0;
  while (true) {
    const size_t t = line.find(sep, start);
    if (t == std::string_view::npos) {
      out.push_back(line.substr(start));
      return;
    }
    out.push_back(line.substr(start, t - start));
    start = t + 1;
  }
}

// Parses the whole field as one finite number; false otherwise.
inline bool parse_number(std::string_view s, double& v) {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+') ++b;  // from_chars rejects a leading '+'
  const auto r = std::from_chars(b, e, v);
  return r.ec == std::errc() && r.ptr == e && std::isfinite(v);
}

// Marks the rows (among those with keep[r], or all when `keep` is empty) that repeat an
// earlier such row's (user, item, timestamp). Rows are bucketed by user (counting sort), and
// each user's (item, timestamp, row) triples sorted: a run of equal pairs is one event, its
// first row the original. O(n log k) for k rows per user, no per-row allocation.
inline std::vector<char> duplicate_rows(const Interactions& d, const std::vector<char>& keep = {}) {
  const size_t n = d.size();
  std::vector<char> dup(n, 0);
  std::vector<size_t> start(size_t(d.users.size()) + 1, 0);
  for (size_t r = 0; r < n; ++r)
    if (keep.empty() || keep[r]) ++start[size_t(d.user[r]) + 1];
  for (size_t u = 1; u < start.size(); ++u) start[u] += start[u - 1];
  std::vector<size_t> rows(start.back());
  std::vector<size_t> fill(start.begin(), start.end() - 1);
  for (size_t r = 0; r < n; ++r)
    if (keep.empty() || keep[r]) rows[fill[size_t(d.user[r])]++] = r;
  struct Key {
    int32_t item;
    double t;
    size_t row;
  };
  std::vector<Key> keys;
  for (size_t u = 0; u + 1 < start.size(); ++u) {
    if (start[u + 1] - start[u] < 2) continue;
    keys.clear();
    for (size_t k = start[u]; k < start[u + 1]; ++k) keys.push_back({d.item[rows[k]], d.timestamp[rows[k]], rows[k]});
    std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
      if (a.item != b.item) return a.item < b.item;
      if (a.t != b.t) return a.t < b.t;
      return a.row < b.row;
    });
    for (size_t k = 1; k < keys.size(); ++k)
      if (keys[k].item == keys[k - 1].item && keys[k].t == keys[k - 1].t) dup[keys[k].row] = 1;
  }
  return dup;
}

// Counts rows that repeat an earlier (user, item, timestamp) triple.
inline size_t count_duplicates(const Interactions& d) {
  size_t n = 0;
  for (char c : duplicate_rows(d)) n += size_t(c);
  return n;
}

// Reserves room for about one row per line of `text` (saves the regrowth copies).
inline void reserve_rows(Interactions& d, std::string_view text, bool rating) {
  const size_t lines = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  d.user.reserve(d.user.size() + lines);
  d.item.reserve(d.item.size() + lines);
  d.timestamp.reserve(d.timestamp.size() + lines);
  if (rating) d.rating.reserve(d.rating.size() + lines);
}

// Bytes of `rows` metadata rows of `columns` empty fields each.
inline std::optional<uint64_t> metadata_bytes(uint64_t rows, uint64_t columns) {
  const auto per_row = io::checked_mul(columns, sizeof(std::string));
  if (!per_row) return std::nullopt;
  return io::checked_mul(rows, *per_row + sizeof(std::vector<std::string>));
}

// Refuses to size `rows` metadata rows of `columns` fields when this process cannot hold them.
inline void check_metadata_rows(uint64_t rows, uint64_t columns, const char* side, const std::string& path) {
  const auto bytes = metadata_bytes(rows, columns);
  const std::string what = cat("the ", side, *side ? " " : "", "metadata table (", rows, " ids x ", columns, " columns)");
  if (!bytes) fail(path, ": ", what, " needs more than 2^64 bytes (docs/limits.md)");
  io::check_allocation(*bytes, what, path);
}

// Prepares `meta` for an item or user file (`path`) with header `names` (id column `id_col`):
// every other column becomes metadata, ids already interned get empty rows. Returns the
// line_of table add_side_row keeps (0 = the id did not come from this file). More than
// io::kMaxMetadataColumns columns are refused: every id of the dataset gets a row of them.
inline std::vector<size_t> start_side(const std::vector<std::string>& names, int id_col, const IdMap& ids,
                                      Metadata& meta, const std::string& path) {
  io::check_limit(names.size() > 0 ? names.size() - 1 : 0, io::kMaxMetadataColumns,
                  "the number of metadata columns in the header", path);
  meta.columns.clear();
  for (size_t c = 0; c < names.size(); ++c)
    if (int(c) != id_col) meta.columns.push_back(names[c]);
  check_metadata_rows(uint64_t(ids.size()), meta.columns.size(), "", path);
  meta.rows.assign(size_t(ids.size()), std::vector<std::string>(meta.columns.size()));
  return std::vector<size_t>(size_t(ids.size()), 0);
}

// One row of an item or user file (atomic .item/.user, users.csv/items.csv), already split
// into fields: interns its id (a repeated id is an error naming both lines) and keeps every
// other column as metadata. `line_of[id]` is the line each id came from (0 = not from this file).
inline void add_side_row(const std::vector<std::string_view>& f, int id_col, const std::string& id_field,
                         size_t lineno, const std::string& path, IdMap& ids, Metadata& meta,
                         std::vector<size_t>& line_of) {
  const auto idv = f[size_t(id_col)];
  if (idv.empty()) fail(path, ":", lineno, ": column '", id_field, "' is empty");
  const int32_t before = ids.size();
  const int32_t id = ids.intern(idv);
  if (id < before) {
    if (size_t(id) < line_of.size() && line_of[size_t(id)] > 0)
      fail(path, ":", lineno, ": duplicate row: '", id_field, "' ", printable(idv),
           " was already given on line ", line_of[size_t(id)], " (expected each id once)");
    fail(path, ":", lineno, ": duplicate id ", printable(idv), " in column '", id_field, "'");
  }
  line_of.push_back(lineno);
  std::vector<std::string> row;
  row.reserve(meta.columns.size());
  for (size_t c = 0; c < f.size(); ++c)
    if (int(c) != id_col) row.emplace_back(f[c]);
  meta.rows.push_back(std::move(row));
}

// Column positions and names of an interaction file (ri = -1: no rating column).
struct InteractionColumns {
  int ui, ii, ti, ri;
  const std::string &user, &item, &time, &rating;
};

// One interaction row, already split into fields: checks the ids are not empty and the
// timestamp (and rating) are numbers, then appends it. `hint` is added to number errors
// (a truncated last line shows up there).
inline void add_interaction_row(Interactions& out, const std::vector<std::string_view>& f,
                                const InteractionColumns& c, size_t lineno, const std::string& path,
                                const char* hint) {
  if (f[size_t(c.ui)].empty()) fail(path, ":", lineno, ": column '", c.user, "' is empty");
  if (f[size_t(c.ii)].empty()) fail(path, ":", lineno, ": column '", c.item, "' is empty");
  double t;
  if (!parse_number(f[size_t(c.ti)], t))
    fail(path, ":", lineno, ": column '", c.time, "': expected a number, found ", printable(f[size_t(c.ti)]), hint);
  if (c.ri >= 0) {
    double v;
    if (!parse_number(f[size_t(c.ri)], v))
      fail(path, ":", lineno, ": column '", c.rating, "': expected a number, found ", printable(f[size_t(c.ri)]),
           hint);
    out.rating.push_back(float(v));
  }
  out.user.push_back(out.users.intern(f[size_t(c.ui)]));
  out.item.push_back(out.items.intern(f[size_t(c.ii)]));
  out.timestamp.push_back(t);
}

// Pads metadata rows to one per id (ids interned from interactions but absent from the
// metadata file get empty fields). `side` ("item", "user") and `path` (the interaction file
// whose ids are padded) name them in messages.
inline void pad_metadata(Metadata& m, int32_t n_ids, const char* side, const std::string& path) {
  if (m.columns.empty()) return;
  if (size_t(n_ids) > m.rows.size()) check_metadata_rows(uint64_t(n_ids) - m.rows.size(), m.columns.size(), side, path);
  m.rows.resize(size_t(n_ids));
  for (auto& r : m.rows) r.resize(m.columns.size());
}

}  // namespace recdistill::data::detail
