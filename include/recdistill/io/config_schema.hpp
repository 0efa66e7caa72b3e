// recdistill/io/config_schema.hpp: from YAML layers to components' config structs, through the
// keys each component declares once (core/keys.hpp).
//
//   ConfigLayers   what crosses the plugin edge: each --config file (path and text), then the
//                  --set overrides, in order; later layers win key by key.
//   read_layers    parses the layers into entries (path "section.key", YAML value, file and line).
//   Schema         the keys of a set of components (KeyDoc), with their aliases.
//   resolve        maps aliases to keys, rejects keys no component declared (strict), applies
//                  preset and model-name defaults, validates every value: a resolved document.
//   bind           fills a component's members from a resolved document (the same validation).
//   emit / settings / markdown_table   the resolved config, compatibility settings, docs table.
//
// Every error names the file and line (or the --set override) a value came from, and the key.
#pragma once
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <utility>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"

namespace recdistill::io {

using keys::Key;
using keys::KeyDoc;

struct ConfigFile {
  std::string path;  // as the user gave it: errors name it
  std::string text;
};

// The ordered layers of a run's config (the plugin edge carries this, not C++ structs).
struct ConfigLayers {
  std::vector<ConfigFile> files;
  std::vector<std::string> sets;  // "section.key=value", value parsed as YAML
};

// Reads each file's text (errors name the file).
inline ConfigLayers config_layers(const std::vector<std::string>& files, const std::vector<std::string>& sets) {
  ConfigLayers l;
  for (const auto& f : files) {
    std::error_code ec;
    if (std::filesystem::is_directory(f, ec)) fail(f, ": is a folder, expected a config file");
    std::ifstream in(f, std::ios::binary);
    if (!in) fail(f, ": cannot open config file");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) fail(f, ": read error in config file");
    l.files.push_back({f, text.str()});
  }
  l.sets = sets;
  return l;
}

// One value as a layer gave it.
struct Entry {
  YAML::Node node;
  std::string origin;  // a file path, "--set 'k=v'", or what set a default ("compat: upstream")
  int line = -1;       // 0-based line of the key in `origin` (files only)
  int layer = -1;      // index of the layer (-1: a default, not given by the user)
  bool user() const { return layer >= 0; }
};

inline std::string where(const Entry& e) { return e.line >= 0 ? cat(e.origin, ":", e.line + 1) : e.origin; }
// The place of a node inside an entry's value (an element of a list); the entry's own value is
// at its key's line (a block list or mapping starts on the line after its key).
inline std::string where(const Entry& e, const YAML::Node& n) {
  if (n.is(e.node)) return where(e);
  const auto m = n.Mark();
  return e.line >= 0 && m.line >= 0 ? cat(e.origin, ":", m.line + 1) : where(e);
}

// Every key a layer set, in layer order: path ("seed", "model.maxlen") and value.
struct RawConfig {
  std::vector<std::pair<std::string, Entry>> entries;
  std::vector<std::string> origins;  // per layer
  std::string files;                 // the config files, "a.yaml + b.yaml" (for messages)
};

namespace detail {

// A node as short flow text for messages: at most 4 elements per level, 2 levels deep and 40
// characters per scalar, control characters shown as spaces. Bounded, so that an alias cycle
// (`&a [*a]`, which yaml-cpp builds as a cyclic node) or a huge key cannot blow up a message.
inline std::string short_text(const YAML::Node& n, int depth = 0) {
  if (!n || n.IsNull()) return "~";
  if (n.IsScalar()) {
    std::string s = n.Scalar().size() > 40 ? n.Scalar().substr(0, 37) + "..." : n.Scalar();
    for (char& c : s)
      if (static_cast<unsigned char>(c) < 32 || c == 127) c = ' ';
    return s;
  }
  const bool seq = n.IsSequence();
  if (depth >= 2) return seq ? "[...]" : "{...}";
  std::string out = seq ? "[" : "{";
  int i = 0;
  for (auto it = n.begin(); it != n.end(); ++it, ++i) {
    if (i > 0) out += ", ";
    if (i == 4) {
      out += "...";
      break;
    }
    if (seq) out += short_text(*it, depth + 1);
    else out += short_text(it->first, depth + 1) + ": " + short_text(it->second, depth + 1);
  }
  return out + (seq ? "]" : "}");
}

// A mapping key as a name; a complex key (a list or a mapping) or a null one is an error naming
// the place, the key and its section ("" at the top level).
inline std::string key_text(const YAML::Node& k, const std::string& where_, const std::string& section = "") {
  if (!k.IsScalar())
    fail(where_, ": key '", short_text(k), "'", section.empty() ? "" : cat(" in section '", section, "'"),
         ": a key must be a plain name, found ", k.IsSequence() ? "a list" : k.IsMap() ? "a mapping" : "null");
  return k.Scalar();
}

inline void read_root(RawConfig& raw, const YAML::Node& root, const std::string& origin, int layer) {
  if (!root || root.IsNull()) return;  // an empty file sets nothing
  if (!root.IsMap()) fail(origin, ":", root.Mark().line + 1, ": expected a mapping of sections at the top level");
  for (auto it = root.begin(); it != root.end(); ++it) {
    const int line = it->first.Mark().line;
    const std::string name = key_text(it->first, cat(origin, ":", line + 1));
    if (it->second.IsMap()) {
      for (auto kt = it->second.begin(); kt != it->second.end(); ++kt) {
        const int kline = kt->first.Mark().line;
        const std::string k = key_text(kt->first, cat(origin, ":", kline + 1), name);
        raw.entries.push_back({name + "." + k, Entry{kt->second, origin, kline, layer}});
      }
    } else {
      raw.entries.push_back({name, Entry{it->second, origin, line, layer}});
    }
  }
}

// Notes where each document of a YAML stream starts and where its root node is (yaml-cpp's
// event interface).
struct DocumentStarts : YAML::EventHandler {
  std::vector<YAML::Mark> starts, roots;
  void OnDocumentStart(const YAML::Mark& m) override {
    starts.push_back(m);
    roots.push_back(m);
    root_seen_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { node(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& m) {
    if (!root_seen_ && !roots.empty()) roots.back() = m;
    root_seen_ = true;
  }
  bool root_seen_ = false;
};

// The first YAML document of `text`; `second` gets where a second one starts, if any. Never
// YAML::LoadAll: yaml-cpp 0.7 parses a ',' where a document would start (`,`, `- a\n,`,
// `{a: 1},`) as an empty document without consuming it, so LoadAll never returned there and
// allocated without bound (found by the config fuzz target). Here the documents are counted up
// to two, and a document starting at a ',' (or where the previous one started) is a
// YAML::ParserException at its place.
inline YAML::Node load_document(const std::string& text, bool& has_second, YAML::Mark& second) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts d;
  const size_t bom = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // marks count from after a BOM
  while (d.starts.size() < 2 && parser.HandleNextDocument(d)) {
    const YAML::Mark& m = d.starts.back();
    const size_t at = bom + size_t(std::max(m.pos, 0));
    if (at < text.size() && text[at] == ',')
      throw YAML::ParserException(m, "unexpected ',' (a ',' separates the entries of a [...] list or a {...} mapping)");
    if (d.starts.size() == 2 && d.starts[0].pos == m.pos) throw YAML::ParserException(m, "unexpected content");
  }
  has_second = d.starts.size() > 1;
  if (has_second) second = d.roots[1];
  return YAML::Load(text);
}

}  // namespace detail

inline RawConfig read_layers(const ConfigLayers& layers) {
  RawConfig raw;
  int layer = 0;
  for (const auto& f : layers.files) {
    YAML::Node root;
    bool second = false;
    YAML::Mark at;
    try {
      root = detail::load_document(f.text, second, at);
    } catch (const YAML::ParserException& e) {
      fail(f.path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
    }
    if (second)
      fail(f.path, ":", at.line + 1, ": a second YAML document ('---'); a config file holds one "
           "(give more files with another --config)");
    raw.origins.push_back(f.path);
    raw.files += (raw.files.empty() ? "" : " + ") + f.path;
    detail::read_root(raw, root, f.path, layer++);
  }
  for (const auto& s : layers.sets) {
    const std::string origin = cat("--set '", s, "'");
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) fail(origin, ": expected section.key=value");
    const std::string path = s.substr(0, eq);
    YAML::Node v;
    bool second = false;
    YAML::Mark at;
    try {
      v = detail::load_document(s.substr(eq + 1), second, at);
    } catch (const YAML::Exception& e) {
      fail(origin, ": the value is not valid YAML: ", e.msg);
    }
    if (second) fail(origin, ": the value is not valid YAML: a second document ('---')");
    const auto dot = path.find('.');
    if (dot != std::string::npos && (dot == 0 || dot + 1 == path.size() || path.find('.', dot + 1) != std::string::npos))
      fail(origin, ": expected section.key=value or key=value");
    raw.origins.push_back(origin);
    if (dot == std::string::npos && v.IsMap()) {  // --set 'model={maxlen: 5}': a section's keys
      for (auto it = v.begin(); it != v.end(); ++it)
        raw.entries.push_back({path + "." + detail::key_text(it->first, origin, path), Entry{it->second, origin, -1, layer}});
      ++layer;
      continue;
    }
    raw.entries.push_back({path, Entry{v, origin, -1, layer++}});
  }
  return raw;
}

// ---- value conversion: the one validator of a value against its KeyDoc ----

namespace detail {

[[noreturn]] inline void bad(const Entry& e, const YAML::Node& n, const KeyDoc& k, const std::string& what) {
  fail(where(e, n), ": key '", k.path(), "': ", what);
}

inline std::string found_text(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  return n.IsSequence() ? "a list" : n.IsMap() ? "a mapping" : "no value";
}

inline void check_range(const Entry& e, const YAML::Node& n, const KeyDoc& k, double v, const char* what) {
  const bool lo_ok = !k.has_lo || v >= k.lo;
  const bool hi_ok = !k.has_hi || (k.hi_open ? v < k.hi : v <= k.hi);
  if (lo_ok && hi_ok) return;
  std::string range = k.has_lo && k.has_hi ? cat("in [", k.lo, ", ", k.hi, k.hi_open ? ")" : "]")
                      : k.has_lo          ? cat(">= ", k.lo)
                                          : cat("<= ", k.hi);
  bad(e, n, k, cat("expected ", what, " ", range, ", found ", n.Scalar()));
}

inline long long to_int(const Entry& e, const YAML::Node& n, const KeyDoc& k) {
  if (!n.IsScalar()) bad(e, n, k, "expected an integer, found " + found_text(n));
  const std::string& s = n.Scalar();
  long long v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) bad(e, n, k, "expected an integer, found '" + s + "'");
  check_range(e, n, k, double(v), "an integer");
  return v;
}

inline double to_real(const Entry& e, const YAML::Node& n, const KeyDoc& k) {
  if (!n.IsScalar()) bad(e, n, k, "expected a number, found " + found_text(n));
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    bad(e, n, k, "expected a number, found '" + n.Scalar() + "'");
  }
  if (!std::isfinite(v)) bad(e, n, k, "expected a finite number, found '" + n.Scalar() + "'");
  check_range(e, n, k, v, "a number");
  return v;
}

inline bool to_bool(const Entry& e, const YAML::Node& n, const KeyDoc& k) {
  if (!n.IsScalar()) bad(e, n, k, "expected true or false, found " + found_text(n));
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    bad(e, n, k, "expected true or false, found '" + n.Scalar() + "'");
  }
}

inline std::string to_string(const Entry& e, const YAML::Node& n, const KeyDoc& k) {
  if (!n.IsScalar()) bad(e, n, k, "expected a string, found " + found_text(n));
  std::string v = n.Scalar();
  for (const auto& [from, to] : k.value_aliases)
    if (v == from) v = to;
  if (!k.choices.empty() && std::find(k.choices.begin(), k.choices.end(), v) == k.choices.end()) {
    std::string list;
    for (const auto& c : k.choices) list += (list.empty() ? "" : ", ") + c;
    bad(e, n, k, cat("expected one of ", list, ", found '", n.Scalar(), "'"));
  }
  return v;
}

// A list (a scalar counts as a one-element list for path lists), its length checked.
inline std::vector<YAML::Node> to_list(const Entry& e, const YAML::Node& n, const KeyDoc& k, bool scalar_ok) {
  std::vector<YAML::Node> out;
  if (scalar_ok && n.IsScalar()) out.push_back(n);
  else if (n.IsSequence()) for (const auto& x : n) out.push_back(x);
  else bad(e, n, k, cat("expected a ", keys::type_name(k.type), ", found ", found_text(n)));
  if (out.size() < k.min_items || out.size() > k.max_items)
    bad(e, n, k, k.min_items == k.max_items ? cat("expected a list of ", k.min_items, " values, found ", out.size())
                 : out.size() < k.min_items ? cat("expected a list of ", k.min_items, " or more values, found ", out.size())
                                            : cat("expected a list of at most ", k.max_items, " values, found ", out.size()));
  return out;
}

}  // namespace detail

template <class T>
T convert(const KeyDoc& k, const Entry& e) {
  const YAML::Node& n = e.node;
  if constexpr (std::is_same_v<T, bool>) {
    return detail::to_bool(e, n, k);
  } else if constexpr (std::is_integral_v<T>) {
    const long long v = detail::to_int(e, n, k);
    if (!std::in_range<T>(v)) detail::bad(e, n, k, cat("value ", v, " does not fit"));
    return T(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    return T(detail::to_real(e, n, k));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return detail::to_string(e, n, k);
  } else if constexpr (keys::NamedEnum<T>) {
    const std::string v = detail::to_string(e, n, k);
    for (const auto& [name, val] : enum_names(T{}))
      if (name == v) return val;
    detail::bad(e, n, k, "unknown value '" + v + "'");
  } else {  // std::vector<X>
    using X = typename T::value_type;
    T out;
    for (const auto& x : detail::to_list(e, n, k, std::is_same_v<X, std::string>)) {
      // An element is at its own line (where(e, n) of the entry's value is the key's line).
      const int line = e.line >= 0 && x.Mark().line >= 0 && !x.is(n) ? x.Mark().line : e.line;
      out.push_back(convert<X>(k, Entry{x, e.origin, line, e.layer}));
    }
    return out;
  }
}

template <class T>
constexpr keys::Type type_of() {
  if constexpr (std::is_same_v<T, bool>) return keys::Type::boolean;
  else if constexpr (std::is_integral_v<T>) return keys::Type::integer;
  else if constexpr (std::is_floating_point_v<T>) return keys::Type::real;
  else if constexpr (std::is_same_v<T, std::string> || keys::NamedEnum<T>) return keys::Type::string;
  else if constexpr (std::is_same_v<typename T::value_type, std::string>) return keys::Type::string_list;
  else if constexpr (std::is_integral_v<typename T::value_type>) return keys::Type::int_list;
  else return keys::Type::real_list;
}

// Validates a value by its KeyDoc's type alone (the host checks keys a plugin owns this way).
inline void check_value(const KeyDoc& k, const Entry& e) {
  switch (k.type) {
    case keys::Type::integer: (void)convert<long long>(k, e); break;
    case keys::Type::real: (void)convert<double>(k, e); break;
    case keys::Type::boolean: (void)convert<bool>(k, e); break;
    case keys::Type::string: (void)convert<std::string>(k, e); break;
    case keys::Type::int_list: (void)convert<std::vector<long long>>(k, e); break;
    case keys::Type::real_list: (void)convert<std::vector<double>>(k, e); break;
    case keys::Type::string_list: (void)convert<std::vector<std::string>>(k, e); break;
  }
}

// A value as YAML: doubles as their shortest text that reads back to the same value.
template <class T>
YAML::Node to_yaml(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return YAML::Node(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, double(v));
    return YAML::Node(std::string(buf, r.ptr));
  } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
    return YAML::Node(v);
  } else if constexpr (keys::NamedEnum<T>) {
    return YAML::Node(std::string(keys::name_of_enum(v)));
  } else {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& x : v) n.push_back(to_yaml(x));
    n.SetStyle(YAML::EmitterStyle::Flow);
    return n;
  }
}

inline std::string flow_text(YAML::Node n) {
  n = YAML::Clone(n);
  n.SetStyle(YAML::EmitterStyle::Flow);
  YAML::Emitter em;
  em << n;
  return em.c_str();
}

// ---- visitors over a component's keys ----

// Collects KeyDocs with their defaults (visit a default-constructed component).
struct Describer {
  std::vector<KeyDoc> keys;
  template <class T>
  void operator()(const T& member, Key k) {
    k.type = type_of<T>();
    if constexpr (keys::NamedEnum<T>)
      if (k.choices.empty())
        for (const auto& [n, _] : enum_names(T{})) k.choices.emplace_back(n);
    k.default_text = flow_text(to_yaml(member));
    keys.push_back(std::move(k));
  }
  // A declared key without a member (ignored or not implemented); `type` as given.
  void declared(Key k, keys::Type t = keys::Type::string) {
    k.type = t;
    keys.push_back(std::move(k));
  }
};

template <class C>
std::vector<KeyDoc> describe() {
  C c{};
  Describer d;
  c.keys(d);
  return d.keys;
}

// ---- the schema and the resolved document ----

class Schema {
 public:
  Schema() = default;
  explicit Schema(const std::vector<KeyDoc>& ks) { add(ks); }

  // Adds keys; a key already declared (by another component sharing it) is kept once.
  void add(const std::vector<KeyDoc>& ks) {
    for (const auto& k : ks) {
      if (by_path_.count(k.path())) continue;
      by_path_[k.path()] = keys_.size();
      sections_.insert(k.section);
      keys_.push_back(k);
      for (const auto& a : k.deprecated) alias_[a] = {k.path(), true};
      for (const auto& a : k.spellings) alias_[a] = {k.path(), false};
    }
  }
  const std::vector<KeyDoc>& keys() const { return keys_; }
  const KeyDoc* find(const std::string& path) const {
    auto it = by_path_.find(path);
    return it == by_path_.end() ? nullptr : &keys_[it->second];
  }
  // The key a path names (itself or through an alias); "" if none. `deprecated` tells which.
  std::string canonical(const std::string& path, bool* deprecated = nullptr) const {
    if (by_path_.count(path)) return path;
    auto it = alias_.find(path);
    if (it == alias_.end()) return "";
    if (deprecated) *deprecated = it->second.second;
    return it->second.first;
  }
  bool has_section(const std::string& s) const { return sections_.count(s) > 0; }
  std::string keys_of(const std::string& section) const {
    std::string list;
    for (const auto& k : keys_)
      if (k.section == section) list += (list.empty() ? "" : ", ") + k.name;
    return list;
  }
  std::string sections() const {
    std::string list;
    for (const auto& k : keys_)
      if (k.section.empty()) list += (list.empty() ? "" : ", ") + k.name;
    for (const auto& s : sections_)
      if (!s.empty()) list += (list.empty() ? "" : ", ") + s;
    return list;
  }

 private:
  std::vector<KeyDoc> keys_;
  std::map<std::string, size_t> by_path_;
  std::map<std::string, std::pair<std::string, bool>> alias_;
  std::set<std::string> sections_;
};

// The value of every key that a layer, a preset or a model-name default set (canonical paths).
struct ResolvedConfig {
  std::map<std::string, Entry> values;
  std::string config_files;  // the config file(s), for messages about the config as a whole
  const Entry* find(const std::string& path) const {
    auto it = values.find(path);
    return it == values.end() ? nullptr : &it->second;
  }
  // Set by a layer (not by a preset or a model-name default).
  bool given(const std::string& path) const {
    const Entry* e = find(path);
    return e && e->user();
  }
  // Set by anything: a layer, a preset or a model-name default (derived defaults yield to these).
  bool has(const std::string& path) const { return find(path) != nullptr; }
  // The place to blame for a rule between keys: the one of `paths` set last (by layer and line),
  // or the config file(s) when none was given.
  std::string where_last(std::initializer_list<const char*> paths) const {
    const Entry* last = nullptr;
    for (const char* p : paths)
      if (const Entry* e = find(p); e && e->user() && (!last || std::pair(e->layer, e->line) > std::pair(last->layer, last->line)))
        last = e;
    return last ? io::where(*last) : config_files;
  }
};

struct ResolveOptions {
  bool strict = true;  // reject keys no component declared (the app; a plugin sees only its own)
  bool warn = true;    // print deprecation and ignored-key warnings (once: the app does)
  std::ostream* warnings = &std::cerr;
  std::set<std::string> open_sections;  // strict, except unknown keys of these sections pass
};

// How a plugin binds its structs from the layers the app passed: the app has already rejected
// the keys nobody declared and printed the warnings, so this pass is lenient and quiet.
inline ResolveOptions checked_by_the_app() {
  ResolveOptions o;
  o.strict = false;
  o.warn = false;
  return o;
}

// Strict, with warnings to `out` (tests).
inline ResolveOptions warning_to(std::ostream& out) {
  ResolveOptions o;
  o.warnings = &out;
  return o;
}

inline ResolvedConfig resolve(const Schema& schema, const RawConfig& raw, const ResolveOptions& opt = {}) {
  ResolvedConfig r;
  r.config_files = !raw.files.empty() ? raw.files : raw.origins.empty() ? "(no config)" : raw.origins.front();
  for (const auto& [path, e] : raw.entries) {
    bool deprecated = false;
    const std::string key = schema.canonical(path, &deprecated);
    if (key.empty()) {
      const auto dot = path.find('.');
      const std::string sec = dot == std::string::npos ? path : path.substr(0, dot);
      if (dot == std::string::npos && schema.has_section(path)) {
        if (e.node.IsNull()) continue;  // a section with every key commented out
        fail(where(e), ": section '", path, "' must be a mapping of keys, found ", detail::found_text(e.node));
      }
      if (dot != std::string::npos) {
        if (const KeyDoc* top = schema.find(sec); top && top->section.empty())
          fail(where(e), ": key '", sec, "': expected ", top->type == keys::Type::integer ? "an " : "a ",
               keys::type_name(top->type), ", found a mapping");
      }
      if (!opt.strict || opt.open_sections.count(sec)) continue;
      if (dot == std::string::npos)
        fail(where(e), ": unknown top-level key '", path, "' (expected ", schema.sections(), ")");
      if (!schema.has_section(sec))
        fail(where(e), ": unknown section '", sec, "' (expected ", schema.sections(), ")");
      fail(where(e), ": unknown key '", path, "' (known keys of '", sec, "': ", schema.keys_of(sec), ")");
    }
    if (deprecated && opt.warn && opt.warnings)
      *opt.warnings << "warning: " << where(e) << ": '" << path << "' is a deprecated name; use '" << key << "'\n";
    auto it = r.values.find(key);
    if (it != r.values.end() && it->second.layer == e.layer)
      fail(where(e), ": '", path, "' sets '", key, "', which ", where(it->second), " already sets");
    r.values[key] = e;
  }
  // Defaults that depend on the preset or on the model's name, for keys no layer set.
  auto value_of = [&](const char* path, const char* fallback) {
    const Entry* e = r.find(path);
    const KeyDoc* k = schema.find(path);
    return e && k ? convert<std::string>(*k, *e) : std::string(fallback);
  };
  const std::string compat = value_of("compat", "");
  const std::string model = value_of("model.model_name", "");
  for (const auto& k : schema.keys()) {
    if (r.given(k.path())) continue;
    for (const auto& [m, text] : k.model_defaults)
      if (m == model) r.values[k.path()] = Entry{YAML::Load(text), cat("the default for model '", model, "'"), -1, -1};
    for (const auto& [c, text] : k.presets)
      if (c == compat) r.values[k.path()] = Entry{YAML::Load(text), cat("the preset compat: ", compat), -1, -1};
  }
  // Every value is checked here, whoever binds it later, in the order the layers give them.
  std::vector<std::pair<std::string, const Entry*>> order;
  for (const auto& [path, e] : r.values) order.push_back({path, &e});
  std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
    return std::pair(x.second->layer, x.second->line) < std::pair(y.second->layer, y.second->line);
  });
  for (const auto& [path, ep] : order) {
    const Entry& e = *ep;
    const KeyDoc* k = schema.find(path);
    if (!k->unsupported.empty()) fail(where(e), ": key '", path, "' is not supported yet: ", k->unsupported);
    if (!k->refused.empty()) fail(where(e), ": key '", path, "': ", k->refused);
    check_value(*k, e);
    if (!k->ignored.empty() && k->warn_ignored && opt.warn && opt.warnings && e.user())
      *opt.warnings << "warning: " << where(e) << ": key '" << path << "' has no effect: " << k->ignored << "\n";
  }
  return r;
}

// Fills a component's members from a resolved document; keys left unset keep their defaults.
struct Binder {
  const ResolvedConfig& r;
  template <class T>
  void operator()(T& member, const Key& k) {
    if (const Entry* e = r.find(k.path())) member = convert<T>(k, *e);
  }
  void declared(const Key&, keys::Type = keys::Type::string) {}
};

// Writes a component's resolved values under their sections.
struct Emitter {
  YAML::Node& root;
  template <class T>
  void operator()(const T& member, const Key& k) {
    if (k.section.empty()) root[k.name] = to_yaml(member);
    else root[k.section][k.name] = to_yaml(member);
  }
  void declared(const Key&, keys::Type = keys::Type::string) {}
};

// "section.key" -> value (flow YAML) of every key whose compatibility has a bit of `mask`.
struct SettingsCollector {
  unsigned mask;
  std::map<std::string, std::string>& out;
  template <class T>
  void operator()(const T& member, const Key& k) {
    if (k.compat & mask) out[k.path()] = flow_text(to_yaml(member));
  }
  void declared(const Key&, keys::Type = keys::Type::string) {}
};

inline std::string yaml_text(const YAML::Node& root) {
  YAML::Emitter em;
  em << root;
  return std::string(em.c_str()) + "\n";
}

// ---- docs ----

// The key table of docs/config.md: one row per key, grouped by section in declaration order.
inline std::string markdown_table(const std::vector<KeyDoc>& ks) {
  auto esc = [](std::string s) {
    std::string o;
    for (char c : s) o += c == '|' ? std::string("\\|") : std::string(1, c);
    return o;
  };
  std::string out = "| key | type | default | allowed | must match | description |\n|---|---|---|---|---|---|\n";
  for (const auto& k : ks) {
    std::string allowed;
    if (!k.choices.empty()) {
      for (const auto& c : k.choices) allowed += (allowed.empty() ? "" : ", ") + ("`" + c + "`");
    } else if (k.has_lo || k.has_hi) {
      allowed = k.has_lo && k.has_hi ? cat("[", k.lo, ", ", k.hi, k.hi_open ? ")" : "]")
                : k.has_lo           ? cat(">= ", k.lo)
                                     : cat("<= ", k.hi);
    }
    if (k.min_items > 0 && k.min_items == k.max_items) allowed += cat(allowed.empty() ? "" : "; ", k.min_items, " values");
    std::string must;
    if (k.compat & keys::kWeights) must += "weights";
    if (k.compat & keys::kPrepared) must += std::string(must.empty() ? "" : ", ") + "prepared";
    if (k.compat & keys::kResume) must += std::string(must.empty() ? "" : ", ") + "resume";
    std::string doc;
    for (const auto& a : k.spellings) doc += " Also spelled `" + a + "`.";
    for (const auto& a : k.deprecated) doc += " Deprecated name: `" + a + "`.";
    for (const auto& [c, v] : k.presets) doc += " `compat: " + c + "` sets " + v + ".";
    for (const auto& [m, v] : k.model_defaults) doc += " Model `" + m + "`: " + v + ".";
    for (const auto& [from, to] : k.value_aliases) doc += " `" + from + "` means `" + to + "`.";
    if (!k.ignored.empty()) doc += " Ignored: " + k.ignored + ".";
    if (!k.unsupported.empty()) doc += " Not supported yet: " + k.unsupported + ".";
    if (!k.refused.empty()) doc += " Never accepted: " + k.refused + ".";
    doc = doc.empty() ? k.doc : k.doc + "." + doc;
    const std::string def = !k.derived.empty() ? k.derived : k.default_text.empty() ? "" : "`" + k.default_text + "`";
    out += cat("| `", k.path(), "` | ", keys::type_name(k.type), " | ", esc(def), " | ", esc(allowed), " | ", must,
               " | ", esc(doc), " |\n");
  }
  return out;
}

}  // namespace recdistill::io
