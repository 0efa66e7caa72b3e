// recdistill/core/keys.hpp: how a component declares its config keys, once.
//
// A component's config struct lists its keys in one member template:
//
//   struct TrainingConfig {
//     int batch_size = 256;
//     template <class V> void keys(V& v) {
//       v(batch_size, Key("training", "batch_size", "sequences per batch").range(1, 1 << 20).resume());
//     }
//   };
//
// The visitor V decides what the list is used for (io/config_schema.hpp): describing the keys
// (KeyDoc: name, type, default, range or choices, doc, compatibility), binding resolved YAML
// values to the members with validation, printing the resolved config, writing the key table of
// docs/config.md, and collecting the settings a checkpoint, a prepared file or a weights file
// must share. A key is therefore written in exactly one place. This header has no YAML.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace recdistill::keys {

enum class Type { integer, real, boolean, string, int_list, real_list, string_list };

inline const char* type_name(Type t) {
  switch (t) {
    case Type::integer: return "integer";
    case Type::real: return "number";
    case Type::boolean: return "bool";
    case Type::string: return "string";
    case Type::int_list: return "list of integers";
    case Type::real_list: return "list of numbers";
    case Type::string_list: return "path or list of paths";
  }
  return "?";
}

// What a key's value must agree on between a file and the config that reads it.
enum Compat : unsigned {
  kNone = 0,
  kResume = 1,    // a checkpoint resumes only under the same value
  kWeights = 2,   // saved weights load only under the same value (it changes what a parameter means)
  kPrepared = 4,  // a prepared data file is used only under the same value
};

// One key: plain data, so it crosses the plugin edge and writes the docs. Built with the
// chained setters below; `type` and `default_text` are filled from the member by the visitor.
struct KeyDoc {
  std::string section;  // "" = top level
  std::string name;
  std::string doc;      // one line
  Type type = Type::string;
  std::string default_text;  // YAML flow text of the built-in default ("" for none)
  std::string derived;       // when set: the default is computed from other keys, as described
  bool has_lo = false, has_hi = false, hi_open = false;
  double lo = 0, hi = 0;     // for lists: of each element
  std::vector<std::string> choices;  // strings: the accepted values
  std::vector<std::pair<std::string, std::string>> value_aliases;  // other spellings of a choice
  unsigned compat = kNone;
  std::vector<std::string> deprecated;  // full paths accepted with a warning (old names)
  std::vector<std::string> spellings;   // full paths accepted silently (the specs' names)
  std::vector<std::pair<std::string, std::string>> presets;         // compat value -> default (YAML)
  std::vector<std::pair<std::string, std::string>> model_defaults;  // model.model_name -> default
  std::string ignored;      // accepted and ignored; the text says why (warns when non-empty
  bool warn_ignored = false;  //   and warn_ignored)
  std::string unsupported;  // declared but not implemented: setting it is an error saying this
  std::string refused;      // never accepted (a secret that belongs elsewhere): setting it is an error saying this
  size_t min_items = 0, max_items = SIZE_MAX;  // lists: allowed length

  std::string path() const { return section.empty() ? name : section + "." + name; }
};

// The builder a component writes its keys with.
struct Key : KeyDoc {
  Key(std::string section_, std::string name_, std::string doc_) {
    section = std::move(section_);
    name = std::move(name_);
    doc = std::move(doc_);
  }
  Key&& range(double l, double h) && { has_lo = has_hi = true; lo = l; hi = h; return std::move(*this); }
  // [l, h): an open upper end (a probability below 1).
  Key&& range_open(double l, double h) && { has_lo = has_hi = hi_open = true; lo = l; hi = h; return std::move(*this); }
  Key&& at_least(double l) && { has_lo = true; lo = l; return std::move(*this); }
  Key&& one_of(std::vector<std::string> c) && { choices = std::move(c); return std::move(*this); }
  Key&& value_alias(std::string from, std::string to) && {
    value_aliases.emplace_back(std::move(from), std::move(to));
    return std::move(*this);
  }
  Key&& resume() && { compat |= kResume; return std::move(*this); }
  Key&& weights() && { compat |= kWeights | kResume; return std::move(*this); }
  Key&& prepared() && { compat |= kPrepared; return std::move(*this); }
  Key&& deprecated_alias(std::string full_path) && { deprecated.push_back(std::move(full_path)); return std::move(*this); }
  Key&& spelling(std::string full_path) && { spellings.push_back(std::move(full_path)); return std::move(*this); }
  Key&& preset(std::string compat_value, std::string yaml) && {
    presets.emplace_back(std::move(compat_value), std::move(yaml));
    return std::move(*this);
  }
  Key&& for_model(std::string model_name, std::string yaml) && {
    model_defaults.emplace_back(std::move(model_name), std::move(yaml));
    return std::move(*this);
  }
  Key&& derived_default(std::string how) && { derived = std::move(how); return std::move(*this); }
  Key&& items(size_t lo_n, size_t hi_n) && { min_items = lo_n; max_items = hi_n; return std::move(*this); }
  Key&& ignore(std::string why, bool warn) && { ignored = std::move(why); warn_ignored = warn; return std::move(*this); }
  Key&& not_implemented(std::string why) && { unsupported = std::move(why); return std::move(*this); }
  Key&& refuse(std::string why) && { refused = std::move(why); return std::move(*this); }
};

// An enum member is a string key whose choices are its names: a component makes its enum
// bindable by declaring, next to the enum,
//   inline constexpr std::array<std::pair<std::string_view, E>, N> enum_names(E) { return {...}; }
// (found by argument-dependent lookup).
template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) { enum_names(e); };

template <NamedEnum E>
std::string_view name_of_enum(E e) {
  for (const auto& [n, v] : enum_names(E{}))
    if (v == e) return n;
  return "?";
}

}  // namespace recdistill::keys
