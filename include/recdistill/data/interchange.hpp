// recdistill/data/interchange.hpp: the profile-distillation seed's data files as JSON
// (specs/profile-distillation.md §9; docs/data.md, "The seed's data keys"). The seed pickles
// them; tools/seed_pickles_to_json.py converts, `recdistill prepare --export-json DIR` writes
// them for any dataset, and the data keys below read them.
//
//   data.profile_train_sequences  {"<user_idx>": [item_idx, ...], ...}   chronological
//   data.finetune_train_sequences the phase-2 sequences (every shipped config: the same file)
//   data.valid_sequences          case = the sequence minus its last item -> the last item
//   data.test_sequences           likewise
//   data.mappings                 {"users": {"<original id>": user_idx}, "items": {...}}
//   data.counts                   [num_users, num_items]
//
// Indices are 0-based as upstream writes them. Internally user u is u + 1 and item i is i + 1,
// since id 0 is the pad: the seed's item 0, which collides with its padding, is an ordinary
// item here (the spec's item_id_base 1). Original ids name users for profiles and output.
// A sequence with fewer than two items gives no evaluation case.
#pragma once
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/text.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/config.hpp"

namespace recdistill::data {

// Ids above this are refused: they index vectors sized from the counts.
inline constexpr int64_t kInterchangeMaxId = (int64_t(1) << 31) - 2;

namespace interchange_detail {

namespace dom = simdjson::dom;

inline const char* type_name(dom::element_type t) {
  using T = dom::element_type;
  switch (t) {
    case T::ARRAY: return "an array";
    case T::OBJECT: return "an object";
    case T::INT64:
    case T::UINT64: return "an integer";
    case T::DOUBLE: return "a number with a fraction or exponent";
    case T::STRING: return "a string";
    case T::BOOL: return "a boolean";
    default: return "null";
  }
}

inline std::string key_path(std::string_view parent, std::string_view key) {
  std::string out(parent);
  out += "[\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  }
  out += "\"]";
  return out;
}

inline dom::element parse(dom::parser& parser, const simdjson::padded_string& text, const std::string& path,
                          const char* expected) {
  dom::element root;
  if (text.size() == 0) fail(path, ": the file is empty (expected ", expected, ")");
  if (text.size() >= 3 && std::memcmp(text.data(), "\xEF\xBB\xBF", 3) == 0) {  // a UTF-8 BOM
    if (auto e = parser.parse(text.data() + 3, text.size() - 3).get(root))
      fail(path, ": invalid JSON: ", simdjson::error_message(e), " (expected ", expected, ")");
    return root;
  }
  if (auto e = parser.parse(text).get(root)) fail(path, ": invalid JSON: ", simdjson::error_message(e), " (expected ", expected, ")");
  return root;
}

// A non-negative integer below `limit` at `where`.
inline int64_t index_at(dom::element v, const std::string& path, const std::string& where, const char* what,
                        int64_t limit) {
  int64_t x = 0;
  if (v.type() == dom::element_type::INT64) {
    x = int64_t(v.get_int64().value_unsafe());
  } else if (v.type() == dom::element_type::UINT64) {
    x = limit;  // above any limit
  } else {
    fail(path, ": ", where, ": expected ", what, " (a non-negative integer), found ", type_name(v.type()));
  }
  if (x < 0 || x >= limit)
    fail(path, ": ", where, ": expected ", what, " in [0, ", limit, "), found ",
         v.type() == dom::element_type::UINT64 ? std::to_string(v.get_uint64().value_unsafe()) : std::to_string(x));
  return x;
}

// The string form of a JSON object key as an integer index ("12" -> 12); only plain decimal.
inline int64_t key_index(std::string_view k, const std::string& path, const std::string& where, int64_t limit) {
  const bool digits = !k.empty() && k.size() <= 10 && std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || (k.size() > 1 && k[0] == '0'))
    fail(path, ": ", where, ": expected a user index as a decimal string key such as \"12\", found ", detail::printable(k));
  const int64_t x = std::stoll(std::string(k));
  if (x >= limit) fail(path, ": ", where, ": user index ", x, " is not below num_users = ", limit, " (data.counts)");
  return x;
}

}  // namespace interchange_detail

struct InterchangeCounts {
  int64_t users = 0, items = 0;
};

// data.counts: [num_users, num_items].
inline InterchangeCounts parse_interchange_counts(std::string_view text, const std::string& path) {
  namespace dd = interchange_detail;
  dd::dom::parser parser;
  const simdjson::padded_string padded(text);
  const auto root = dd::parse(parser, padded, path, "[num_users, num_items]");
  if (root.type() != dd::dom::element_type::ARRAY)
    fail(path, ": $: expected [num_users, num_items], found ", dd::type_name(root.type()));
  std::vector<int64_t> v;
  size_t i = 0;
  const dd::dom::array arr = root.get_array().value_unsafe();  // a named copy: the result is a temporary
  for (auto x : arr) {
    v.push_back(dd::index_at(x, path, cat("$[", i, "]"), i == 0 ? "num_users" : "num_items", kInterchangeMaxId));
    ++i;
  }
  if (v.size() != 2) fail(path, ": $: expected two counts [num_users, num_items], found ", v.size());
  if (v[0] == 0 || v[1] == 0) fail(path, ": $: expected at least one user and one item, found [", v[0], ", ", v[1], "]");
  return {v[0], v[1]};
}

// data.mappings: original id of every user and item index (tokens[idx] = original id).
struct InterchangeMappings {
  std::vector<std::string> users, items;
};

inline InterchangeMappings parse_interchange_mappings(std::string_view text, const std::string& path,
                                                      const InterchangeCounts& counts) {
  namespace dd = interchange_detail;
  dd::dom::parser parser;
  const simdjson::padded_string padded(text);
  const auto root = dd::parse(parser, padded, path, R"({"users": {id: index}, "items": {id: index}})");
  if (root.type() != dd::dom::element_type::OBJECT)
    fail(path, ": $: expected {\"users\": {...}, \"items\": {...}}, found ", dd::type_name(root.type()));
  InterchangeMappings out;
  bool seen_users = false, seen_items = false;
  const dd::dom::object top = root.get_object().value_unsafe();
  for (auto [key, value] : top) {
    const bool users = key == "users";
    if (!users && key != "items")
      fail(path, ": $: unexpected key ", detail::printable(key), " (expected \"users\" and \"items\")");
    bool& seen = users ? seen_users : seen_items;
    if (seen) fail(path, ": $: duplicate key \"", key, "\"");
    seen = true;
    const std::string where = dd::key_path("$", key);
    if (value.type() != dd::dom::element_type::OBJECT)
      fail(path, ": ", where, ": expected an object of original id -> index, found ", dd::type_name(value.type()));
    const int64_t n = users ? counts.users : counts.items;
    // Each id takes at least 5 bytes ("a":0,): a count the file cannot hold is refused before
    // anything is sized from it.
    if (n > int64_t(text.size()) / 5 + 1)
      fail(path, ": ", where, ": data.counts says ", n, " ", key, ", more than this ", text.size(),
           "-byte file can hold (each index 0..", n - 1, " must have exactly one id)");
    const dd::dom::object obj = value.get_object().value_unsafe();
    std::vector<std::string>& tokens = users ? out.users : out.items;
    tokens.assign(size_t(n), std::string());
    std::vector<char> filled(size_t(n), 0);
    std::unordered_set<std::string_view> ids;
    for (auto [id, idx] : obj) {
      const std::string at = dd::key_path(where, id);
      if (id.empty()) fail(path, ": ", at, ": empty original id");
      if (!ids.insert(id).second) fail(path, ": ", at, ": duplicate original id");
      const int64_t i = dd::index_at(idx, path, at, users ? "a user index" : "an item index", n);
      if (filled[size_t(i)]) fail(path, ": ", at, ": index ", i, " is given to two ids");
      filled[size_t(i)] = 1;
      tokens[size_t(i)] = std::string(id);
    }
    const int64_t given = int64_t(ids.size());  // counted here: simdjson's size() saturates
    if (given != n)
      fail(path, ": ", where, ": ", given, " ids, but data.counts says ", n, " ", key,
           " (each index 0..", n - 1, " must have exactly one id)");
  }
  if (!seen_users || !seen_items)
    fail(path, ": $: missing key \"", seen_users ? "items" : "users", "\" (expected \"users\" and \"items\")");
  return out;
}

// One sequence file: (user index, item indices) in file order; every index below the counts.
inline std::vector<std::pair<int32_t, std::vector<int32_t>>> parse_interchange_sequences(
    std::string_view text, const std::string& path, const InterchangeCounts& counts) {
  namespace dd = interchange_detail;
  dd::dom::parser parser;
  const simdjson::padded_string padded(text);
  const auto root = dd::parse(parser, padded, path, R"({"<user index>": [item index, ...]})");
  if (root.type() != dd::dom::element_type::OBJECT)
    fail(path, ": $: expected an object of user index -> [item index, ...], found ", dd::type_name(root.type()));
  std::vector<std::pair<int32_t, std::vector<int32_t>>> out;
  std::vector<char> seen(size_t(counts.users), 0);
  const dd::dom::object top = root.get_object().value_unsafe();
  for (auto [key, value] : top) {
    const std::string where = dd::key_path("$", key);
    const int64_t u = dd::key_index(key, path, where, counts.users);
    if (seen[size_t(u)]) fail(path, ": ", where, ": duplicate user index");
    seen[size_t(u)] = 1;
    if (value.type() != dd::dom::element_type::ARRAY)
      fail(path, ": ", where, ": expected an array of item indices, found ", dd::type_name(value.type()));
    std::vector<int32_t> items;
    size_t j = 0;
    const dd::dom::array arr = value.get_array().value_unsafe();
    for (auto x : arr)
      items.push_back(int32_t(dd::index_at(x, path, cat(where, "[", j++, "]"), "an item index", counts.items)));
    out.emplace_back(int32_t(u), std::move(items));
  }
  return out;
}

// The JSON file paths of the data keys; `any()` when the config uses them.
struct InterchangePaths {
  std::string train, finetune, valid, test, mappings, counts;
  bool any() const {
    return !train.empty() || !finetune.empty() || !valid.empty() || !test.empty() || !mappings.empty() ||
           !counts.empty();
  }
};

inline InterchangePaths interchange_paths(const io::DataConfig& c) {
  return {c.profile_train_sequences, c.finetune_train_sequences, c.valid_sequences, c.test_sequences, c.mappings,
          c.counts};
}

// Every file the keys name (for the prepared file's input hash).
inline std::vector<std::string> interchange_files(const InterchangePaths& p) {
  std::vector<std::string> out;
  for (const auto* s : {&p.train, &p.finetune, &p.valid, &p.test, &p.mappings, &p.counts})
    if (!s->empty() && std::find(out.begin(), out.end(), *s) == out.end()) out.push_back(*s);
  return out;
}

// Refuses a missing key, a pickle, or phase-2 sequences other than the phase-1 ones.
inline void check_interchange_paths(const InterchangePaths& p) {
  const std::pair<const char*, const std::string*> keys[] = {
      {"data.profile_train_sequences", &p.train}, {"data.finetune_train_sequences", &p.finetune},
      {"data.valid_sequences", &p.valid},         {"data.test_sequences", &p.test},
      {"data.mappings", &p.mappings},             {"data.counts", &p.counts}};
  for (const auto& [key, value] : keys) {
    if (value->empty()) {
      if (value == &p.finetune) continue;  // defaults to the phase-1 sequences
      fail(key, ": missing; the seed's data keys go together (profile_train_sequences, valid_sequences, "
                "test_sequences, mappings, counts; finetune_train_sequences optional)");
    }
    const std::string ext = std::filesystem::path(*value).extension().string();
    if (ext == ".pkl" || ext == ".pickle")
      fail(key, ": '", *value, "' is a Python pickle, which recdistill does not read; convert the seed's files "
           "once with `python3 tools/seed_pickles_to_json.py --out DIR --sequences ... --mappings ... --counts "
           "...` and give the .json files (docs/data.md, \"The seed's data keys\")");
  }
}

struct InterchangeData {
  Dataset dataset;
  Split split;
};

// Builds the Dataset (ids from the mappings, one row per item of each user's longest
// sequence, timestamps = positions) and the Split from parsed files.
inline InterchangeData build_interchange(const InterchangeCounts& counts, const InterchangeMappings& maps,
                                         const std::vector<std::pair<int32_t, std::vector<int32_t>>>& train,
                                         const std::vector<std::pair<int32_t, std::vector<int32_t>>>& valid,
                                         const std::vector<std::pair<int32_t, std::vector<int32_t>>>& test,
                                         const std::string& source) {
  InterchangeData out;
  Dataset& d = out.dataset;
  d.source = source;
  for (const auto& t : maps.users) d.users.intern(t);
  for (const auto& t : maps.items) d.items.intern(t);
  RD_REQUIRE(d.users.size() == counts.users + 1 && d.items.size() == counts.items + 1, "interchange ids are unique");
  Split& s = out.split;
  s.protocol = "interchange";
  s.n_users = int32_t(counts.users + 1);
  s.n_items = int32_t(counts.items + 1);
  s.train.assign(size_t(s.n_users), {});
  std::vector<const std::vector<int32_t>*> longest(size_t(s.n_users), nullptr);
  auto note = [&](int32_t u, const std::vector<int32_t>& seq) {
    auto& l = longest[size_t(u) + 1];
    if (!l || seq.size() > l->size()) l = &seq;
  };
  for (const auto& [u, seq] : train) {
    auto& t = s.train[size_t(u) + 1];
    for (int32_t i : seq) t.push_back(i + 1);
    note(u, seq);
  }
  auto cases = [&](const std::vector<std::pair<int32_t, std::vector<int32_t>>>& in, std::vector<SplitCase>& to) {
    for (const auto& [u, seq] : in) {
      note(u, seq);
      if (seq.size() < 2) continue;
      SplitCase c{u + 1, {}, seq.back() + 1};
      for (size_t j = 0; j + 1 < seq.size(); ++j) c.history.push_back(seq[j] + 1);
      to.push_back(std::move(c));
    }
    std::sort(to.begin(), to.end(), [](const SplitCase& a, const SplitCase& b) { return a.user < b.user; });
  };
  cases(valid, s.valid);
  cases(test, s.test);
  for (size_t u = 1; u < longest.size(); ++u) {
    if (!longest[u]) continue;
    for (size_t j = 0; j < longest[u]->size(); ++j) {
      d.user.push_back(int32_t(u));
      d.item.push_back((*longest[u])[j] + 1);
      d.timestamp.push_back(double(j));
    }
  }
  return out;
}

// Reads the files of the data keys (check_interchange_paths first).
inline InterchangeData read_interchange(const InterchangePaths& p) {
  check_interchange_paths(p);
  const auto counts = parse_interchange_counts(detail::read_whole_file(p.counts), p.counts);
  const auto maps = parse_interchange_mappings(detail::read_whole_file(p.mappings), p.mappings, counts);
  const auto train = parse_interchange_sequences(detail::read_whole_file(p.train), p.train, counts);
  if (!p.finetune.empty() && p.finetune != p.train) {
    const auto ft = parse_interchange_sequences(detail::read_whole_file(p.finetune), p.finetune, counts);
    auto sorted = [](auto v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    if (sorted(ft) != sorted(train))
      fail("data.finetune_train_sequences: '", p.finetune, "' holds other sequences than "
           "data.profile_train_sequences '", p.train, "'; a different phase-2 training set is not supported "
           "(every shipped config of the seed uses the same file)");
  }
  const auto valid = parse_interchange_sequences(detail::read_whole_file(p.valid), p.valid, counts);
  const auto test = parse_interchange_sequences(detail::read_whole_file(p.test), p.test, counts);
  return build_interchange(counts, maps, train, valid, test, p.train);
}

// ---- Writing (recdistill prepare --export-json) ----

namespace interchange_detail {

inline void put_sequence(std::string& out, const std::vector<int32_t>& items, int32_t extra = -1) {
  out += '[';
  bool first = true;
  for (int32_t i : items) {
    if (!first) out += ',';
    first = false;
    out += std::to_string(i - 1);
  }
  if (extra >= 0) out += (first ? "" : ",") + std::to_string(extra - 1);
  out += ']';
}

inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

}  // namespace interchange_detail

// The interchange texts of a dataset and its split: train_sequences.json (phase 1 and 2),
// valid_sequences.json and test_sequences.json (history + target), mappings.json, counts.json.
inline std::vector<std::pair<std::string, std::string>> interchange_texts(const Dataset& d, const Split& s) {
  namespace dd = interchange_detail;
  std::string train = "{", valid = "{", test = "{";
  bool first = true;
  for (size_t u = 1; u < s.train.size(); ++u) {
    if (s.train[u].empty()) continue;
    train += (first ? "\"" : ",\"") + std::to_string(u - 1) + "\":";
    first = false;
    dd::put_sequence(train, s.train[u]);
  }
  auto cases = [](std::string& out, const std::vector<SplitCase>& cs) {
    bool f = true;
    for (const auto& c : cs) {
      out += (f ? "\"" : ",\"") + std::to_string(c.user - 1) + "\":";
      f = false;
      dd::put_sequence(out, c.history, c.target);
    }
  };
  cases(valid, s.valid);
  cases(test, s.test);
  std::string maps = "{\"users\":{";
  for (int32_t u = 1; u < d.users.size(); ++u)
    maps += (u > 1 ? "," : "") + dd::json_string(d.users.token(u)) + ":" + std::to_string(u - 1);
  maps += "},\"items\":{";
  for (int32_t i = 1; i < d.items.size(); ++i)
    maps += (i > 1 ? "," : "") + dd::json_string(d.items.token(i)) + ":" + std::to_string(i - 1);
  maps += "}}";
  return {{"train_sequences.json", train + "}\n"},
          {"valid_sequences.json", valid + "}\n"},
          {"test_sequences.json", test + "}\n"},
          {"mappings.json", maps + "\n"},
          {"counts.json", "[" + std::to_string(d.users.size() - 1) + "," + std::to_string(d.items.size() - 1) + "]\n"}};
}

// Writes the interchange files into `dir` (created if needed); an existing file is refused.
inline std::vector<std::string> write_interchange(const std::string& dir, const Dataset& d, const Split& s) {
  namespace fs = std::filesystem;
  const auto texts = interchange_texts(d, s);
  for (const auto& [name, text] : texts)
    if (fs::exists(fs::path(dir) / name))
      fail((fs::path(dir) / name).string(), ": already exists; --export-json never overwrites (choose another folder)");
  fs::create_directories(dir);
  std::vector<std::string> written;
  for (const auto& [name, text] : texts) {
    const std::string p = (fs::path(dir) / name).string();
    io::write_file_atomic(p, text);
    written.push_back(p);
  }
  return written;
}

}  // namespace recdistill::data
