// recdistill/data/profiles.hpp: user-profile embeddings (specs/profile-distillation.md §7, §10).
//
// Two file formats, both mapping an original user id to a vector of D numbers:
//   JSON  one object, key = user id as a string, value = array of D numbers
//         (`{"A1B2": [0.12, -0.40, ...], ...}`), read with simdjson On-Demand so files of
//         hundreds of MB stream through without a DOM;
//   .npy  a 2-D float32/float64 array (U, D) plus a sidecar text file `<file>.npy.ids`
//         (the .npy path with ".ids" appended) holding the user id of each row, one per line.
// A path ending in ".npy" is read as .npy, anything else as JSON.
//
// K files (multi-profile, K >= 1) with equal D are loaded into one table E (U, K, D) float32
// with availability flags a (U, K); U counts the dataset's users including the pad (row 0),
// so E is indexed by internal user id. Validation (DESIGN.md Decisions, spec §10):
//   - the top level is a non-empty object; every value a non-empty array of numbers, all of
//     the same length D in every file (errors name the file, the JSON path `$["A1B2"][3]`,
//     the expected D and what was found);
//   - D is at most io::kMaxProfileDim (65536), and the (U, K, D) table must fit in what this
//     process can hold (io/alloc_limits.hpp, docs/limits.md), both checked before it is sized;
//   - every value is finite after conversion to float32: the tokens NaN / Infinity that
//     Python writes, 1e400 and 1e39 are errors naming the key and index
//     (`data.on_nonfinite: drop_user` drops such a user from that file instead);
//   - duplicate keys (duplicate ids in a sidecar) are errors;
//   - keys that are not users of the dataset are counted and warned about
//     (`data.profile_unknown_users: error` makes them an error);
//   - dataset users without a profile are counted in the returned summary, and so are the
//     split's training users (ProfileOptions::training_users), warned about when more than
//     half of them have none (spec §10.6).
// Keys are matched exactly against the dataset's raw user tokens ("123.0" is not "123"), unless
// `data.profile_key_normalize: integer` (spec §10.8): then a key and a user id that both read as
// the same integer match ("123.0", "0123" and "+123" all name user "123"); other keys stay exact.
#pragma once
#include <simdjson.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/io/alloc_limits.hpp"
#include "recdistill/io/npy.hpp"

namespace recdistill::data {

enum class UnknownProfileUsers { warn, error };
enum class NonFiniteProfile { error, drop_user };
enum class ProfileKeyNormalize { none, integer };

struct ProfileOptions {
  UnknownProfileUsers unknown_users = UnknownProfileUsers::warn;
  NonFiniteProfile on_nonfinite = NonFiniteProfile::error;
  ProfileKeyNormalize key_normalize = ProfileKeyNormalize::none;
  // (U) 1 for the users the split trains on (spec §10.6 counts them: only they enter L_distil);
  // empty: every dataset user is counted as one.
  std::vector<uint8_t> training_users;
  std::ostream* log = &std::cerr;  // warnings; nullptr = silent
};

// One profile file as read, before mapping to the dataset: rows in file order.
struct ProfileFile {
  std::string path;
  int64_t dim = 0;                 // D
  std::vector<std::string> keys;   // (R) original user ids
  std::vector<float> values;       // (R, D)
  int64_t dropped_nonfinite = 0;   // rows dropped under NonFiniteProfile::drop_user
  size_t rows() const { return keys.size(); }
};

struct ProfileFileSummary {
  std::string path;
  int64_t rows = 0;               // entries kept from the file
  int64_t matched = 0;            // rows that are users of the dataset
  int64_t unknown = 0;            // rows whose key is not a user of the dataset
  int64_t dropped_nonfinite = 0;  // rows dropped under on_nonfinite: drop_user
  int64_t normalized = 0;         // matched rows whose key is not the user id as written (integer)
  std::string first_unknown;      // one unknown key, for messages
};

struct ProfileSummary {
  std::vector<ProfileFileSummary> files;  // (K)
  int64_t dim = 0;                        // D
  int32_t dataset_users = 0;              // excluding the pad
  int32_t users_with_profile = 0;         // in at least one file
  int32_t users_without_profile = 0;      // in none of the files
  int32_t users_partial = 0;              // in some but not all files (K > 1)
  int32_t training_users = 0;             // ProfileOptions::training_users (or every dataset user)
  int32_t training_users_without_profile = 0;
  int64_t unknown_keys = 0;               // summed over files
  int64_t normalized_keys = 0;            // summed over files (data.profile_key_normalize: integer)
};

// E (U, K, D) and a (U, K); rows of users without a profile in file k are zero.
struct ProfileTable {
  int32_t n_users = 0;             // U, including the pad (row 0, never available)
  int32_t n_profiles = 0;          // K
  int64_t dim = 0;                 // D
  std::vector<float> values;       // (U, K, D)
  std::vector<uint8_t> available;  // (U, K)
  ProfileSummary summary;

  const float* row(int32_t user, int32_t k) const {
    return values.data() + (size_t(user) * size_t(n_profiles) + size_t(k)) * size_t(dim);
  }
  bool has(int32_t user, int32_t k) const {
    return available[size_t(user) * size_t(n_profiles) + size_t(k)] != 0;
  }
  // True when the user has a profile in at least one file.
  bool has_any(int32_t user) const {
    for (int32_t k = 0; k < n_profiles; ++k)
      if (has(user, k)) return true;
    return false;
  }
};

// Options from the config's strings (data.profile_unknown_users: warn|error,
// data.on_nonfinite: error|drop_user, data.profile_key_normalize: none|integer; io::DataConfig
// keeps them as validated strings).
inline ProfileOptions profile_options(const std::string& unknown_users, const std::string& on_nonfinite,
                                      const std::string& key_normalize = "none") {
  ProfileOptions o;
  if (unknown_users != "warn" && unknown_users != "error")
    fail("data.profile_unknown_users: expected warn or error, found '", unknown_users, "'");
  if (on_nonfinite != "error" && on_nonfinite != "drop_user")
    fail("data.on_nonfinite: expected error or drop_user, found '", on_nonfinite, "'");
  if (key_normalize != "none" && key_normalize != "integer")
    fail("data.profile_key_normalize: expected none or integer, found '", key_normalize, "'");
  o.unknown_users = unknown_users == "error" ? UnknownProfileUsers::error : UnknownProfileUsers::warn;
  o.on_nonfinite = on_nonfinite == "drop_user" ? NonFiniteProfile::drop_user : NonFiniteProfile::error;
  o.key_normalize = key_normalize == "integer" ? ProfileKeyNormalize::integer : ProfileKeyNormalize::none;
  return o;
}

// The canonical form of a user id that reads as an integer in decimal: an optional sign, digits,
// then optionally a point and only zeros ("123", "0123", "+123", "123.0", "123." -> "123";
// "-0" -> "0"). Writes it to `out` and returns true; returns false (out unspecified) for
// anything else ("12.5", "1e3", "", "u7"), which data.profile_key_normalize: integer matches
// exactly. Python and pandas write integer ids that passed through a float column as "123.0".
inline bool integer_key(std::string_view s, std::string& out) {
  size_t i = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) ++i;
  const size_t digits_begin = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  const size_t digits_end = i;
  if (digits_end == digits_begin) return false;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && s[i] == '0'; ++i) {
    }
  }
  if (i != s.size()) return false;
  size_t first = digits_begin;
  while (first + 1 < digits_end && s[first] == '0') ++first;  // keep one digit of "000"
  out.clear();
  if (negative && !(digits_end - first == 1 && s[first] == '0')) out += '-';
  out.append(s.substr(first, digits_end - first));
  return true;
}

namespace detail {

// `$["key"]` or `$["key"][index]`, the key escaped and shortened for messages.
inline std::string profile_json_path(std::string_view key, int64_t index = -1) {
  std::string out = "$[\"";
  size_t n = 0;
  for (unsigned char c : key) {
    if (++n > 60) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 32) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  out += "\"]";
  if (index >= 0) out += cat("[", index, "]");
  return out;
}

inline std::string profile_token(std::string_view tok) {
  while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\n' || tok.back() == '\r' ||
                          tok.back() == '\t'))
    tok.remove_suffix(1);
  std::string out(tok.substr(0, 40));
  if (tok.size() > 40) out += "...";
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 32) c = '?';
  return "'" + out + "'";
}

// Largest magnitude that rounds to a finite float32: FLT_MAX plus half an ulp (2^128 - 2^103);
// anything at or above it becomes infinity (the tie rounds to even, which is infinity).
inline constexpr double kFloat32Overflow = 3.4028235677973366e38;

inline bool finite_as_float32(double v) { return std::fabs(v) < kFloat32Overflow; }

// Sink for parsed rows: on_row(key, row (D), D) is called once per kept row.
struct ProfileParseResult {
  int64_t dim = 0;
  int64_t rows = 0;
  int64_t dropped_nonfinite = 0;
};

// Parses a profile JSON document. `data` must be readable up to `capacity` >= len +
// SIMDJSON_PADDING bytes (simdjson reads ahead). `path` is used in messages only.
template <class OnRow>
ProfileParseResult parse_profile_json(const char* data, size_t len, size_t capacity,
                                      const std::string& path, NonFiniteProfile on_nonfinite,
                                      OnRow&& on_row) {
  namespace od = simdjson::ondemand;
  if (len >= 3 && std::memcmp(data, "\xEF\xBB\xBF", 3) == 0) {  // UTF-8 BOM
    data += 3;
    len -= 3;
    capacity -= 3;
  }
  size_t first = 0;
  while (first < len && (data[first] == ' ' || data[first] == '\n' || data[first] == '\r' ||
                         data[first] == '\t'))
    ++first;
  if (first == len)
    fail(path, ": the file is empty (expected a JSON object of user id -> array of numbers)");
  if (data[first] != '{')
    fail(path, ": expected a JSON object of user id -> array of numbers at the top level ($), found ",
         data[first] == '[' ? "an array" : profile_token(std::string_view(data + first, len - first)));
  const char* base = data;
  std::string where = "$";  // the last place that parsed, for syntax errors
  auto json_error = [&](simdjson::error_code e, od::document* doc) -> void {
    std::string at;
    if (doc) {
      const char* loc = nullptr;
      if (!doc->current_location().get(loc) && loc > base && loc <= base + len)
        at = cat(" near byte ", size_t(loc - base));
    }
    fail(path, ": invalid JSON", where == "$" ? std::string() : " after " + where, at, ": ",
         simdjson::error_message(e));
  };

  od::parser parser;
  od::document doc;
  if (auto e = parser.iterate(simdjson::padded_string_view(data, len, capacity)).get(doc))
    json_error(e, nullptr);
  od::object obj;
  if (auto e = doc.get_object().get(obj)) json_error(e, &doc);

  std::unordered_set<std::string> seen;
  std::vector<float> row;
  ProfileParseResult res;
  std::string key;
  for (auto field_result : obj) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) json_error(e, &doc);
    std::string_view k;
    if (auto e = field.unescaped_key().get(k)) json_error(e, &doc);
    key.assign(k);
    if (!seen.insert(key).second)
      fail(path, ": duplicate key at ", profile_json_path(key), ": each user may have one profile per file");
    od::array arr;
    if (auto e = field.value().get_array().get(arr)) {
      od::json_type t;
      if (e == simdjson::INCORRECT_TYPE && !field.value().type().get(t))
        fail(path, ": ", profile_json_path(key), ": expected an array of numbers, found ",
             t == od::json_type::object ? "an object" : t == od::json_type::string ? "a string"
             : t == od::json_type::number ? "a number" : t == od::json_type::boolean ? "a boolean"
             : "null");
      json_error(e, &doc);
    }
    row.clear();
    bool nonfinite = false;
    int64_t index = 0;
    for (auto elem_result : arr) {
      if (index == int64_t(io::kMaxProfileDim))  // before the table is sized from this row
        fail(path, ": ", profile_json_path(key), ": more than ", io::kMaxProfileDim,
             " numbers, the limit of a profile's dimension D (docs/limits.md)");
      od::value v;
      if (auto e = std::move(elem_result).get(v)) json_error(e, &doc);
      double d = 0;
      if (auto e = v.get_double().get(d)) {
        // Not a number simdjson accepts: Python's NaN/Infinity, an out-of-range literal such
        // as 1e400, another JSON type, or malformed text.
        const std::string_view tok = v.raw_json_token();
        std::string t(tok.substr(0, 64));
        while (!t.empty() && (t.back() == ' ' || t.back() == '\n' || t.back() == '\r' || t.back() == '\t'))
          t.pop_back();
        const bool python_nonfinite = t == "NaN" || t == "-NaN" || t == "Infinity" ||
                                      t == "-Infinity" || t == "+Infinity" || t == "nan" ||
                                      t == "inf" || t == "-inf";
        bool overflow = false;
        if (!python_nonfinite && !t.empty() && (t[0] == '-' || (t[0] >= '0' && t[0] <= '9'))) {
          errno = 0;
          char* end = nullptr;
          const double x = std::strtod(t.c_str(), &end);
          overflow = end == t.c_str() + t.size() && !std::isfinite(x);
        }
        if (!python_nonfinite && !overflow) {
          od::json_type jt;
          const bool typed = !v.type().get(jt) && jt != od::json_type::number;
          fail(path, ": ", profile_json_path(key, index), ": expected a number, found ",
               typed ? (jt == od::json_type::array ? "an array" : jt == od::json_type::object ? "an object"
                        : jt == od::json_type::string ? "a string" : jt == od::json_type::boolean ? "a boolean"
                        : "null")
                     : profile_token(tok));
        }
        if (on_nonfinite == NonFiniteProfile::error)
          fail(path, ": ", profile_json_path(key, index), ": profile values must be finite as float32, found ",
               profile_token(tok), " (data.on_nonfinite: drop_user drops such users)");
        nonfinite = true;
        ++index;
        continue;  // the array iterator skips the unconsumed value
      }
      if (!finite_as_float32(d)) {
        if (on_nonfinite == NonFiniteProfile::error) {
          fail(path, ": ", profile_json_path(key, index),
               ": profile values must be finite as float32, found ", d, " (overflows float32)",
               " (data.on_nonfinite: drop_user drops such users)");
        }
        nonfinite = true;
      }
      row.push_back(float(nonfinite ? 0.0 : d));
      ++index;
    }
    if (index == 0) fail(path, ": ", profile_json_path(key), ": expected a non-empty array of numbers, found []");
    if (res.dim == 0) res.dim = index;
    if (index != res.dim)
      fail(path, ": ", profile_json_path(key), ": expected ", res.dim, " numbers (the dimension of ",
           "the first profile in the file), found ", index);
    where = profile_json_path(key);
    if (nonfinite) {
      ++res.dropped_nonfinite;
      continue;
    }
    ++res.rows;
    on_row(std::string_view(key), row.data(), res.dim);
  }
  // current_location() is an error exactly when the iterator is at the end of the input.
  if (const char* loc = nullptr; !doc.current_location().get(loc))
    fail(path, ": unexpected content after the top-level object",
         loc >= base && loc <= base + len ? cat(" at byte ", size_t(loc - base)) : std::string());
  if (res.rows == 0 && res.dropped_nonfinite == 0)
    fail(path, ": the top-level object is empty (expected user id -> array of numbers)");
  return res;
}

// Reads the ids of a .npy sidecar: one id per line; BOM, CRLF and a final newline accepted.
inline std::vector<std::string> parse_profile_ids(const std::string& text, const std::string& path) {
  std::vector<std::string> ids;
  std::unordered_map<std::string, size_t> line_of;
  size_t pos = 0, lineno = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const bool last = nl == std::string::npos;
    if (last) nl = text.size();
    std::string id = text.substr(pos, nl - pos);
    ++lineno;
    if (!id.empty() && id.back() == '\r') id.pop_back();
    if (id.empty()) fail(path, ":", lineno, ": empty user id (expected one user id per line)");
    auto [it, inserted] = line_of.try_emplace(id, lineno);
    if (!inserted)
      fail(path, ":", lineno, ": duplicate user id ", profile_token(id), " (first on line ", it->second, ")");
    ids.push_back(std::move(id));
    pos = nl + 1;
  }
  if (ids.empty()) fail(path, ": the ids file is empty (expected one user id per line)");
  return ids;
}

// Validates a parsed (U, D) array against its ids and calls on_row per kept row.
template <class OnRow>
ProfileParseResult profile_rows_from_npy(const io::NpyArray& a, const std::vector<std::string>& ids,
                                         const std::string& path, const std::string& ids_path,
                                         NonFiniteProfile on_nonfinite, OnRow&& on_row) {
  if (a.dtype != "<f4" && a.dtype != "<f8")
    fail(path, ": profile arrays must be float32 or float64, found dtype ", a.dtype);
  if (a.shape.size() != 2)
    fail(path, ": expected a 2-D array (users, D), found ", a.shape.size(), " dimensions");
  const int64_t U = a.shape[0], D = a.shape[1];
  if (U == 0 || D == 0) fail(path, ": expected a non-empty (users, D) array, found shape (", U, ", ", D, ")");
  io::check_limit(uint64_t(D), io::kMaxProfileDim, "the profile dimension D (the array's second axis)", path);
  if (int64_t(ids.size()) != U)
    fail(ids_path, ": has ", ids.size(), " user ids, but ", path, " has ", U, " rows (expected one id per row)");
  ProfileParseResult res;
  res.dim = D;
  std::vector<float> row(size_t(D), 0.0f);
  const bool f8 = a.dtype == "<f8";
  for (int64_t u = 0; u < U; ++u) {
    bool nonfinite = false;
    for (int64_t j = 0; j < D; ++j) {
      const size_t i = size_t(u * D + j);
      double v;
      if (f8) {
        std::memcpy(&v, a.bytes.data() + 8 * i, 8);
      } else {
        float f;
        std::memcpy(&f, a.bytes.data() + 4 * i, 4);
        v = f;
      }
      if (!finite_as_float32(v)) {
        if (on_nonfinite == NonFiniteProfile::error)
          fail(path, ": row ", u, " (user ", profile_token(ids[size_t(u)]), "), index ", j,
               ": profile values must be finite as float32, found ", v,
               " (data.on_nonfinite: drop_user drops such users)");
        nonfinite = true;
        break;
      }
      row[size_t(j)] = float(v);
    }
    if (nonfinite) {
      ++res.dropped_nonfinite;
      continue;
    }
    ++res.rows;
    on_row(std::string_view(ids[size_t(u)]), row.data(), D);
  }
  return res;
}

inline std::string read_text_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected a file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(path, ": cannot open ", what);
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, ": cannot determine the size of ", what);
  io::check_file_read(uint64_t(size), path);
  std::string text;
  try {
    text.assign(size_t(size), '\0');
  } catch (const std::bad_alloc&) {
    fail(path, ": cannot allocate ", io::human_bytes(uint64_t(size)), " to read ", what);
  }
  f.seekg(0);
  if (!f.read(text.data(), size)) fail(path, ": read error in ", what);
  return text;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads one profile file of either format and streams its rows to on_row.
template <class OnRow>
ProfileParseResult read_profile_rows(const std::string& path, NonFiniteProfile on_nonfinite,
                                     OnRow&& on_row) {
  if (ends_with(path, ".pkl") || ends_with(path, ".pickle"))
    fail(path, ": a Python pickle, which is never read (unpickling runs code); save the profiles as JSON "
         "({\"<user id>\": [numbers, ...]}) or as .npy with a .npy.ids sidecar of user ids (docs/profiles.md)");
  if (ends_with(path, ".npy")) {
    const io::NpyArray a = io::read_npy(path);
    const std::string ids_path = path + ".ids";  // profile_ids_path()
    std::error_code ec;
    if (!std::filesystem::is_regular_file(ids_path, ec))
      fail(path, ": .npy profiles need a sidecar file of user ids, one per row, at ", ids_path,
           " (not found)");
    const auto ids = parse_profile_ids(read_text_file(ids_path, "the ids file"), ids_path);
    return profile_rows_from_npy(a, ids, path, ids_path, on_nonfinite, on_row);
  }
  std::error_code size_ec;  // (simdjson reads the whole file: its size is checked first)
  if (const auto size = std::filesystem::file_size(path, size_ec); !size_ec)
    io::check_file_read(uint64_t(size), path);
  simdjson::padded_string json;
  if (auto e = simdjson::padded_string::load(path).get(json))
    fail(path, ": cannot read profile file: ", simdjson::error_message(e));
  return parse_profile_json(json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING, path,
                            on_nonfinite, on_row);
}

}  // namespace detail

// Parses profile JSON held in memory (copied into a padded buffer); `path` names it in messages.
inline ProfileFile parse_profile_json(std::string_view text, const std::string& path,
                                      NonFiniteProfile on_nonfinite = NonFiniteProfile::error) {
  simdjson::padded_string json(text.data(), text.size());
  ProfileFile f;
  f.path = path;
  auto res = detail::parse_profile_json(json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING,
                                        path, on_nonfinite,
                                        [&](std::string_view key, const float* row, int64_t D) {
                                          f.keys.emplace_back(key);
                                          f.values.insert(f.values.end(), row, row + D);
                                        });
  f.dim = res.dim;
  f.dropped_nonfinite = res.dropped_nonfinite;
  return f;
}

// Parses a .npy profile held in memory with the text of its ids sidecar.
inline ProfileFile parse_profile_npy(const std::string& npy_bytes, const std::string& ids_text,
                                     const std::string& path, const std::string& ids_path,
                                     NonFiniteProfile on_nonfinite = NonFiniteProfile::error) {
  const io::NpyArray a = io::parse_npy(npy_bytes, path);
  const auto ids = detail::parse_profile_ids(ids_text, ids_path);
  ProfileFile f;
  f.path = path;
  auto res = detail::profile_rows_from_npy(a, ids, path, ids_path, on_nonfinite,
                                           [&](std::string_view key, const float* row, int64_t D) {
                                             f.keys.emplace_back(key);
                                             f.values.insert(f.values.end(), row, row + D);
                                           });
  f.dim = res.dim;
  f.dropped_nonfinite = res.dropped_nonfinite;
  return f;
}

// Parses the text of a .npy sidecar: one user id per line (BOM, CRLF, final newline accepted).
inline std::vector<std::string> parse_profile_ids(const std::string& text, const std::string& path) {
  return detail::parse_profile_ids(text, path);
}

// The kind of profile a sidecar's JSON text records (spec §16: "llm" from `recdistill profiles`,
// "metadata" from tools/metadata_profiles.py): its top-level string `profile_kind`. "" when the
// text is not such a JSON object, with the reason in `why`.
inline std::string profile_kind_from_json(std::string_view text, std::string& why) {
  simdjson::padded_string json(text.data(), text.size());
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  std::string_view kind;
  if (parser.iterate(json).get(doc) || doc.get_object().get(obj)) {
    why = "not a JSON object";
    return "";
  }
  if (auto e = obj["profile_kind"].get_string().get(kind)) {
    why = e == simdjson::NO_SUCH_FIELD ? "no profile_kind" : "profile_kind is not a string";
    return "";
  }
  return std::string(kind);
}

// The sidecar of a profile file, written beside it by the tools that make profiles.
inline std::string profile_meta_path(const std::string& profile_path) { return profile_path + ".meta.json"; }

// Sidecar path of a .npy profile file.
inline std::string profile_ids_path(const std::string& npy_path) { return npy_path + ".ids"; }

// Reads one profile file (".npy" -> .npy + sidecar, else JSON) without a dataset.
inline ProfileFile read_profile_file(const std::string& path,
                                     NonFiniteProfile on_nonfinite = NonFiniteProfile::error) {
  ProfileFile f;
  f.path = path;
  auto res = detail::read_profile_rows(path, on_nonfinite,
                                       [&](std::string_view key, const float* row, int64_t D) {
                                         f.keys.emplace_back(key);
                                         f.values.insert(f.values.end(), row, row + D);
                                       });
  f.dim = res.dim;
  f.dropped_nonfinite = res.dropped_nonfinite;
  return f;
}

// Loads K profile files into a table indexed by the internal ids of `users` (the dataset's
// IdMap). Rows are written straight into the table as they are parsed.
inline ProfileTable load_profiles(const std::vector<std::string>& paths, const IdMap& users,
                                  const ProfileOptions& opt = {}) {
  if (paths.empty()) fail("no profile files given (data.user_profile_embeddings_files is empty)");
  ProfileTable t;
  t.n_users = users.size();
  t.n_profiles = int32_t(paths.size());
  const size_t K = paths.size();
  t.available.assign(size_t(t.n_users) * K, 0);
  std::string lookup, canonical;
  // data.profile_key_normalize: integer: the users whose ids read as integers, by canonical form
  // (the user, and a second user of the same integer, such as "7" and "007", or 0).
  const bool by_integer = opt.key_normalize == ProfileKeyNormalize::integer;
  std::unordered_map<std::string, std::pair<int32_t, int32_t>> integer_users;
  if (by_integer)
    for (int32_t id = 1; id < users.size(); ++id)
      if (integer_key(users.token(id), canonical)) {
        auto [it, fresh] = integer_users.try_emplace(canonical, id, 0);
        if (!fresh && it->second.second == 0) it->second.second = id;
      }
  for (size_t k = 0; k < K; ++k) {
    ProfileFileSummary fs;
    fs.path = paths[k];
    std::unordered_map<int32_t, std::string> key_of_user;  // by_integer: this file's key of each user
    auto on_row = [&](std::string_view key, const float* row, int64_t D) {
      if (t.dim == 0) {  // the first row of the first file fixes D and sizes the table
        t.dim = D;
        const double gb = double(t.n_users) * double(K) * double(D) * 4 / 1e9;
        // D is at most io::kMaxProfileDim (the parsers refuse more), but U x K x D floats can
        // still be more than this process can hold: refuse that before allocating.
        const auto cells = io::checked_mul(uint64_t(t.n_users) * K, uint64_t(D));
        io::check_allocation(cells.value_or(UINT64_MAX), sizeof(float),
                             cat("the profile table of ", t.n_users, " users x ", K, " files x ", D, " dimensions"),
                             paths[k]);
        try {
          t.values.assign(size_t(t.n_users) * K * size_t(D), 0.0f);
        } catch (const std::bad_alloc&) {
          fail(paths[k], ": cannot allocate the profile table of ", t.n_users, " users x ", K,
               " files x ", D, " dimensions (", gb, " GB of float32)");
        }
      }
      if (D != t.dim)
        fail(paths[k], ": ", detail::profile_json_path(key), ": expected ", t.dim,
             " numbers (the dimension of ", paths[0], "), found ", D,
             " (all profile files must share one dimension)");
      lookup.assign(key);
      int32_t id = users.find(lookup);  // an exact match wins; normalisation only for the others
      if (id <= 0 && by_integer && integer_key(key, canonical)) {
        if (const auto it = integer_users.find(canonical); it != integer_users.end()) {
          const auto [first, second] = it->second;
          if (second != 0)
            fail(paths[k], ": ", detail::profile_json_path(key), ": the dataset's users ",
                 detail::profile_token(users.token(first)), " and ", detail::profile_token(users.token(second)),
                 " read as the same integer, so data.profile_key_normalize: integer cannot tell which this "
                 "key names (use none to match keys exactly)");
          id = first;
        }
      }
      if (id <= 0) {  // id 0 is the pad token, never a user
        if (fs.unknown == 0) fs.first_unknown = lookup;
        ++fs.unknown;
        return;
      }
      if (by_integer) {  // (exact duplicates are refused by the parsers, "7" and "7.0" here)
        auto [it, fresh] = key_of_user.try_emplace(id, lookup);
        if (!fresh)
          fail(paths[k], ": ", detail::profile_json_path(key), " and ", detail::profile_json_path(it->second),
               " are both user ", detail::profile_token(users.token(id)),
               " under data.profile_key_normalize: integer (a duplicate profile)");
        fs.normalized += users.token(id) != lookup;
      }
      ++fs.matched;
      std::memcpy(t.values.data() + (size_t(id) * K + k) * size_t(D), row, sizeof(float) * size_t(D));
      t.available[size_t(id) * K + k] = 1;
    };
    const auto res = detail::read_profile_rows(paths[k], opt.on_nonfinite, on_row);
    fs.rows = res.rows;
    fs.dropped_nonfinite = res.dropped_nonfinite;
    if (fs.unknown > 0 && opt.unknown_users == UnknownProfileUsers::error)
      fail(paths[k], ": ", fs.unknown, " of ", fs.rows + fs.dropped_nonfinite,
           " profile keys are not users of the dataset (first: ",
           detail::profile_json_path(fs.first_unknown), "); data.profile_unknown_users: warn ignores them");
    if (fs.unknown > 0 && opt.log)
      *opt.log << "warning: " << paths[k] << ": " << fs.unknown << " of " << fs.rows
               << " profiles belong to users that are not in the dataset (ignored; first: "
               << detail::profile_json_path(fs.first_unknown) << ")\n";
    if (fs.dropped_nonfinite > 0 && opt.log)
      *opt.log << "warning: " << paths[k] << ": dropped " << fs.dropped_nonfinite
               << " profiles with non-finite values (data.on_nonfinite: drop_user)\n";
    t.summary.unknown_keys += fs.unknown;
    t.summary.normalized_keys += fs.normalized;
    t.summary.files.push_back(std::move(fs));
  }
  if (t.dim == 0) fail(paths[0], ": no usable profiles (every profile was dropped as non-finite)");
  const bool by_split = !opt.training_users.empty();
  if (by_split && opt.training_users.size() != size_t(t.n_users))
    fail("ProfileOptions::training_users: expected one flag per user id (", t.n_users, "), found ",
         opt.training_users.size());
  auto& s = t.summary;
  s.dim = t.dim;
  s.dataset_users = t.n_users - 1;
  for (int32_t u = 1; u < t.n_users; ++u) {
    int32_t n = 0;
    for (size_t k = 0; k < K; ++k) n += t.available[size_t(u) * K + k];
    if (n == 0) ++s.users_without_profile;
    else ++s.users_with_profile;
    if (n > 0 && size_t(n) < K) ++s.users_partial;
    if (!by_split || opt.training_users[size_t(u)]) {
      ++s.training_users;
      s.training_users_without_profile += n == 0;
    }
  }
  // The warning counts the users that enter L_distil: the training users when they are known.
  if (opt.log && s.training_users > 0 && 2 * int64_t(s.training_users_without_profile) > s.training_users)
    *opt.log << "warning: " << s.training_users_without_profile << " of " << s.training_users
             << (by_split ? " training users" : " dataset users") << " have no profile in "
             << (K == 1 ? "the profile file" : "any profile file") << " (" << paths[0] << (K > 1 ? ", ..." : "")
             << ")\n";
  return t;
}

}  // namespace recdistill::data
