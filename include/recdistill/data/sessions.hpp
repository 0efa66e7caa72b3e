// recdistill/data/sessions.hpp: session files in the alkdrec-ml layout (data/alkdrec-ml/).
//
// items.tsv: tab-separated with a header naming `item_index` (0-based, row k holds index k),
// and any further columns (`raw_item_id`, `title`), which become the item Metadata.
// sessions.tsv: tab-separated with a header naming `session_id`, `split` (train | valid |
// test), `items` (space-separated item_index values, oldest first, at least one) and
// `target` (the held-out item_index); columns in any order.
//
// Each session becomes one Dataset "user" (ids in file order), its items followed by the
// target as interactions with timestamps 0, 1, ..., n (the position). Item ids are shifted by
// one so that 0 stays the pad: internal item id = item_index + 1, and the item token is the
// item_index as written. The `split` label of each session is kept in Dataset::session_split.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/atomic.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/text.hpp"

namespace recdistill::data {

namespace detail {

inline std::vector<std::string> plain_tsv_header(LineReader& r, const std::string& path,
                                                 const std::vector<std::string>& required) {
  std::string_view line;
  if (!r.next(line) || (line.empty() && r.rest_blank()))
    fail(path, ": the file is empty (expected a tab-separated header line)");
  std::vector<std::string_view> f;
  split_on(line, '\t', f);
  std::vector<std::string> names(f.begin(), f.end());
  for (const auto& q : required) {
    bool found = false;
    for (const auto& n : names) found |= n == q;
    if (!found) {
      std::string want, have;
      for (const auto& x : required) want += (want.empty() ? "" : ", ") + x;
      for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
      fail(path, ":1: missing column '", q, "' (expected tab-separated columns ", want, "; found: ",
           printable(have), f.size() == 1 && line.find(',') != std::string_view::npos ? ", comma-separated?" : "",
           ")");
    }
  }
  return names;
}

inline int32_t parse_index(std::string_view s, int32_t n_items, const std::string& path, size_t line,
                           const char* column) {
  int64_t v = -1;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0)
    fail(path, ":", line, ": column '", column, "': expected a non-negative integer item_index, found ", printable(s));
  if (v >= n_items)
    fail(path, ":", line, ": column '", column, "': expected an item_index below ", n_items,
         " (the rows of the items file), found ", v);
  return int32_t(v);
}

}  // namespace detail

// Reads items.tsv into `items` (token = item_index, internal id = item_index + 1) and `meta`.
inline void parse_session_items(std::string_view text, const std::string& path, IdMap& items, Metadata& meta) {
  RD_REQUIRE(items.size() == 1, "parse_session_items needs an empty item map");
  detail::LineReader r(text);
  const auto names = detail::plain_tsv_header(r, path, {"item_index"});
  const int idx = detail::column_of(names, "item_index");
  meta.columns.clear();
  for (size_t c = 0; c < names.size(); ++c)
    if (int(c) != idx) meta.columns.push_back(names[c]);
  meta.rows.assign(1, std::vector<std::string>(meta.columns.size()));
  std::string_view line;
  std::vector<std::string_view> f;
  while (r.next(line)) {
    if (line.empty()) {
      detail::check_blank_line(r, path);
      break;
    }
    detail::split_on(line, '\t', f);
    if (f.size() != names.size())
      fail(path, ":", r.lineno(), ": expected ", names.size(), " tab-separated fields, found ", f.size(),
           detail::truncation_hint(r));
    const std::string want = std::to_string(items.size() - 1);
    if (f[size_t(idx)] != want)
      fail(path, ":", r.lineno(), ": column 'item_index': expected ", want,
           " (rows numbered 0, 1, ... in order), found ", detail::printable(f[size_t(idx)]));
    items.intern(f[size_t(idx)]);
    std::vector<std::string> row;
    for (size_t c = 0; c < f.size(); ++c)
      if (int(c) != idx) row.emplace_back(f[c]);
    meta.rows.push_back(std::move(row));
  }
  if (items.size() == 1) fail(path, ": no rows after the header");
}

// Reads sessions.tsv into `out`, whose item map holds items.tsv.
inline void parse_sessions_into(Interactions& out, std::string_view text, const std::string& path) {
  out.source = path;
  const int32_t n_items = out.items.size() - 1;
  detail::LineReader r(text);
  const auto names = detail::plain_tsv_header(r, path, {"session_id", "split", "items", "target"});
  const int si = detail::column_of(names, "session_id"), li = detail::column_of(names, "split"),
            ii = detail::column_of(names, "items"), ti = detail::column_of(names, "target");
  out.session_split.assign(size_t(out.users.size()), std::string());
  std::vector<size_t> line_of(size_t(out.users.size()), 0);
  std::string_view line;
  std::vector<std::string_view> f, seq;
  while (r.next(line)) {
    if (line.empty()) {
      detail::check_blank_line(r, path);
      break;
    }
    detail::split_on(line, '\t', f);
    if (f.size() != names.size())
      fail(path, ":", r.lineno(), ": expected ", names.size(), " tab-separated fields, found ", f.size(),
           detail::truncation_hint(r));
    const auto sid = f[size_t(si)], label = f[size_t(li)];
    if (sid.empty()) fail(path, ":", r.lineno(), ": column 'session_id' is empty");
    if (label != "train" && label != "valid" && label != "test")
      fail(path, ":", r.lineno(), ": column 'split': expected train, valid or test, found ", detail::printable(label));
    const int32_t before = out.users.size();
    const int32_t u = out.users.intern(sid);
    if (u < before)
      fail(path, ":", r.lineno(), ": duplicate row: session_id ", detail::printable(sid),
           " was already given on line ", line_of[size_t(u)], " (expected each session once)");
    line_of.push_back(r.lineno());
    out.session_split.emplace_back(label);
    detail::split_on(f[size_t(ii)], ' ', seq);
    if (seq.size() == 1 && seq[0].empty())
      fail(path, ":", r.lineno(), ": column 'items': expected at least one item_index, found none");
    double pos = 0;
    for (const auto s : seq) {
      out.user.push_back(u);
      out.item.push_back(detail::parse_index(s, n_items, path, r.lineno(), "items") + 1);
      out.timestamp.push_back(pos++);
    }
    out.user.push_back(u);
    out.item.push_back(detail::parse_index(f[size_t(ti)], n_items, path, r.lineno(), "target") + 1);
    out.timestamp.push_back(pos);
  }
  if (out.users.size() == 1) fail(path, ": no sessions after the header");
  out.duplicates = detail::count_duplicates(out);
}

// Reads sessions.tsv and its items.tsv.
inline Interactions read_sessions(const std::string& sessions_path, const std::string& items_path) {
  Interactions out;
  parse_session_items(detail::read_whole_file(items_path), items_path, out.items, out.item_meta);
  parse_sessions_into(out, detail::read_whole_file(sessions_path), sessions_path);
  return out;
}

}  // namespace recdistill::data
