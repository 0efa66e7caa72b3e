// recdistill/data/atomic.hpp: reader for RecBole atomic .inter files.
//
// Format: tab-separated, first line a header of `name:type` fields (type one of token,
// token_seq, float, float_seq), any column order. A UTF-8 BOM and CRLF line ends are
// accepted. Every problem is an error naming file, line and column and saying what was
// expected and what was found; nothing is skipped silently.
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"

namespace recdistill::data {

struct AtomicColumns {
  std::string user = "user_id", item = "item_id", time = "timestamp";
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

inline std::string printable(const std::string& s) {
  std::string out = s.size() > 40 ? s.substr(0, 40) + "..." : s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 32) c = '?';
  return "'" + out + "'";
}

}  // namespace detail

// Parses the text of an .inter file; `path` is used in messages only.
inline Interactions parse_atomic_inter(const std::string& text, const std::string& path,
                                       const AtomicColumns& cols = {}) {
  Interactions out;
  out.source = path;
  std::istringstream in(text);
  std::string line;
  size_t lineno = 0;
  int ui = -1, ii = -1, ti = -1;
  size_t ncols = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1) {
      const auto fields = detail::split_tabs(line);
      if (fields.size() < 2)
        fail(path, ":1: expected a tab-separated header of name:type fields, found ",
             detail::printable(line),
             line.find(',') != std::string::npos ? " (comma-separated? atomic files use tabs)" : "");
      for (size_t c = 0; c < fields.size(); ++c) {
        const auto colon = fields[c].find(':');
        if (colon == std::string::npos || colon == 0)
          fail(path, ":1: column ", c + 1, ": expected a 'name:type' header, found ",
               detail::printable(fields[c]));
        const std::string name = fields[c].substr(0, colon), type = fields[c].substr(colon + 1);
        if (type != "token" && type != "token_seq" && type != "float" && type != "float_seq")
          fail(path, ":1: column ", c + 1, " ('", name,
               "'): expected type token, token_seq, float or float_seq, found '", type, "'");
        if (name == cols.user) ui = int(c);
        if (name == cols.item) ii = int(c);
        if (name == cols.time) ti = int(c);
      }
      ncols = fields.size();
      if (ui < 0 || ii < 0 || ti < 0)
        fail(path, ":1: the header must name the columns '", cols.user, "', '", cols.item,
             "' and '", cols.time, "'; missing: ", ui < 0 ? cols.user + " " : "",
             ii < 0 ? cols.item + " " : "", ti < 0 ? cols.time : "");
      continue;
    }
    if (line.empty()) {
      // A blank line is only allowed at the very end of the file.
      std::string rest;
      while (std::getline(in, rest))
        if (!rest.empty() && rest != "\r")
          fail(path, ":", lineno, ": empty line in the middle of the file");
      break;
    }
    const auto f = detail::split_tabs(line);
    if (f.size() != ncols)
      fail(path, ":", lineno, ": expected ", ncols, " tab-separated fields, found ", f.size(),
           f.size() == 1 && line.find(',') != std::string::npos ? " (comma-separated?)" : "");
    if (f[size_t(ui)].empty()) fail(path, ":", lineno, ": column '", cols.user, "' is empty");
    if (f[size_t(ii)].empty()) fail(path, ":", lineno, ": column '", cols.item, "' is empty");
    const std::string& ts = f[size_t(ti)];
    errno = 0;
    char* end = nullptr;
    const double t = std::strtod(ts.c_str(), &end);
    if (ts.empty() || end != ts.c_str() + ts.size() || errno == ERANGE || !std::isfinite(t))
      fail(path, ":", lineno, ": column '", cols.time, "': expected a number, found ",
           detail::printable(ts));
    out.user.push_back(out.users.intern(f[size_t(ui)]));
    out.item.push_back(out.items.intern(f[size_t(ii)]));
    out.timestamp.push_back(t);
  }
  if (lineno == 0) fail(path, ": the file is empty (expected a name:type header line)");
  if (out.size() == 0) fail(path, ": no interactions after the header");
  return out;
}

inline Interactions read_atomic_inter(const std::string& path, const AtomicColumns& cols = {}) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open file");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_atomic_inter(text, path, cols);
}

}  // namespace recdistill::data
