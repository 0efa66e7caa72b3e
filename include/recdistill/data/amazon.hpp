// recdistill/data/amazon.hpp: Amazon 2018 review dumps (JSON lines), with optional metadata.
//
// Reviews: one JSON object per line with `reviewerID` (string, the user), `asin` (string,
// the item), `unixReviewTime` (number, the timestamp) and `overall` (number, the rating);
// other keys are ignored. Metadata: one JSON object per line with `asin` (string) and the
// optional `title` (string) and `category` (list of strings, joined with " | "); they become
// the item Metadata columns `title` and `category`, and their asins are interned first, in
// file order. The 2018 metadata dumps repeat some records: a repeated asin keeps its first
// record and the count of repeats is printed as a warning. Parsed with simdjson (DOM, one
// line at a time, in place: the file is read once into a padded buffer).
#pragma once
#include <simdjson.h>

#include <iostream>
#include <string>
#include <string_view>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/text.hpp"

namespace recdistill::data {

namespace detail {

inline const char* json_type_name(simdjson::dom::element_type t) {
  using T = simdjson::dom::element_type;
  switch (t) {
    case T::ARRAY: return "an array";
    case T::OBJECT: return "an object";
    case T::INT64: case T::UINT64: case T::DOUBLE: return "a number";
    case T::STRING: return "a string";
    case T::BOOL: return "a boolean";
    case T::NULL_VALUE: return "null";
  }
  return "a value";
}

// Walks the JSON lines of `text`; `padded` says that SIMDJSON_PADDING bytes after the end
// of `text` may be read. Calls `row(object, line number)` for each line.
template <class Row>
void for_each_json_line(std::string_view text, bool padded, const std::string& path, Row&& row) {
  simdjson::dom::parser parser;
  LineReader r(text);
  std::string_view line;
  size_t rows = 0;
  while (r.next(line)) {
    if (line.empty()) {
      if (!r.rest_blank()) fail(path, ":", r.lineno(), ": empty line in the middle of the file");
      break;
    }
    ++rows;
    simdjson::dom::element doc;
    // In place when the buffer is padded: every line is followed by the rest of the file
    // and the padding, so reading SIMDJSON_PADDING bytes past its end is safe.
    const auto err = parser.parse(line.data(), line.size(), !padded).get(doc);
    if (err)
      fail(path, ":", r.lineno(), ": expected one JSON object per line, found invalid JSON (",
           simdjson::error_message(err), ")", truncation_hint(r));
    simdjson::dom::object obj;
    if (doc.get_object().get(obj))
      fail(path, ":", r.lineno(), ": expected a JSON object, found ", json_type_name(doc.type()));
    row(obj, r.lineno());
  }
  if (rows == 0) fail(path, ": the file is empty (expected one JSON object per line)");
}

inline std::string_view json_string(simdjson::dom::object obj, const char* key, const std::string& path,
                                    size_t line, bool required = true) {
  simdjson::dom::element e;
  if (obj.at_key(key).get(e)) {
    if (!required) return {};
    fail(path, ":", line, ": key '", key, "': expected a string, found no such key");
  }
  std::string_view s;
  if (e.get_string().get(s)) fail(path, ":", line, ": key '", key, "': expected a string, found ", json_type_name(e.type()));
  return s;
}

inline double json_number(simdjson::dom::object obj, const char* key, const std::string& path, size_t line) {
  simdjson::dom::element e;
  if (obj.at_key(key).get(e)) fail(path, ":", line, ": key '", key, "': expected a number, found no such key");
  double v;
  if (e.get_double().get(v)) fail(path, ":", line, ": key '", key, "': expected a number, found ", json_type_name(e.type()));
  if (!std::isfinite(v)) fail(path, ":", line, ": key '", key, "': expected a finite number, found ", v);
  return v;
}

}  // namespace detail

// Reads a metadata file's asins into `items` (file order) and title/category into `meta`.
// Returns the number of repeated asins (kept: the first record).
inline size_t parse_amazon_meta(std::string_view text, bool padded, const std::string& path, IdMap& items,
                                Metadata& meta) {
  meta.columns = {"title", "category"};
  meta.rows.assign(size_t(items.size()), std::vector<std::string>(2));
  size_t repeats = 0;
  detail::for_each_json_line(text, padded, path, [&](simdjson::dom::object obj, size_t line) {
    const auto asin = detail::json_string(obj, "asin", path, line);
    if (asin.empty()) fail(path, ":", line, ": key 'asin': expected a non-empty string, found \"\"");
    const int32_t before = items.size();
    if (items.intern(asin) < before) {
      ++repeats;
      return;
    }
    std::vector<std::string> row(2);
    row[0] = std::string(detail::json_string(obj, "title", path, line, false));
    simdjson::dom::element cat;
    if (!obj.at_key("category").get(cat)) {
      simdjson::dom::array arr;
      if (cat.get_array().get(arr))
        fail(path, ":", line, ": key 'category': expected a list of strings, found ", detail::json_type_name(cat.type()));
      size_t k = 0;
      for (auto x : arr) {
        std::string_view s;
        if (x.get_string().get(s))
          fail(path, ":", line, ": key 'category', element ", k, ": expected a string, found ",
               detail::json_type_name(x.type()));
        if (k++ > 0) row[1] += " | ";
        row[1] += s;
      }
    }
    meta.rows.push_back(std::move(row));
  });
  return repeats;
}

// Reads review lines into `out` (whose item map may already hold the metadata's asins).
inline void parse_amazon_reviews_into(Interactions& out, std::string_view text, bool padded,
                                      const std::string& path) {
  out.source = path;
  detail::reserve_rows(out, text, true);
  detail::for_each_json_line(text, padded, path, [&](simdjson::dom::object obj, size_t line) {
    const auto user = detail::json_string(obj, "reviewerID", path, line);
    const auto item = detail::json_string(obj, "asin", path, line);
    if (user.empty()) fail(path, ":", line, ": key 'reviewerID': expected a non-empty string, found \"\"");
    if (item.empty()) fail(path, ":", line, ": key 'asin': expected a non-empty string, found \"\"");
    const double t = detail::json_number(obj, "unixReviewTime", path, line);
    const double rating = detail::json_number(obj, "overall", path, line);
    out.user.push_back(out.users.intern(user));
    out.item.push_back(out.items.intern(item));
    out.timestamp.push_back(t);
    out.rating.push_back(float(rating));
  });
  detail::pad_metadata(out.item_meta, out.items.size(), "item", path);
  out.duplicates = detail::count_duplicates(out);
}

// Parses review text (and optional metadata text) held in strings; `path`s are for messages.
inline Interactions parse_amazon(std::string reviews, const std::string& path, std::string meta = {},
                                 const std::string& meta_path = {}) {
  Interactions out;
  if (!meta_path.empty()) {
    const size_t n = meta.size();
    meta.append(simdjson::SIMDJSON_PADDING, '\0');
    parse_amazon_meta(std::string_view(meta.data(), n), true, meta_path, out.items, out.item_meta);
  }
  const size_t n = reviews.size();
  reviews.append(simdjson::SIMDJSON_PADDING, '\0');
  parse_amazon_reviews_into(out, std::string_view(reviews.data(), n), true, path);
  return out;
}

// Reads a review dump and, when `meta_path` is not empty, its metadata file.
inline Interactions read_amazon(const std::string& reviews_path, const std::string& meta_path = "") {
  Interactions out;
  if (!meta_path.empty()) {
    const std::string meta = detail::read_whole_file(meta_path, simdjson::SIMDJSON_PADDING);
    const size_t repeats =
        parse_amazon_meta(std::string_view(meta.data(), meta.size() - simdjson::SIMDJSON_PADDING), true,
                          meta_path, out.items, out.item_meta);
    if (repeats > 0)
      std::cerr << "warning: " << meta_path << ": " << repeats
                << " records repeat an earlier asin; the first record of each is kept\n";
  }
  const std::string text = detail::read_whole_file(reviews_path, simdjson::SIMDJSON_PADDING);
  parse_amazon_reviews_into(out, std::string_view(text.data(), text.size() - simdjson::SIMDJSON_PADDING),
                            true, reviews_path);
  return out;
}

}  // namespace recdistill::data
