// The config fuzz target's input format and run (tests/fuzz/config_fuzz.cpp), shared with the
// regression test (tests/unit/fuzz_regressions_test.cpp) so that a kept reproducer is run
// exactly as the fuzzer ran it.
//
// Input: the text of one or more config files, then `--set` overrides, one per line:
//
//   seed: 1                  <- fuzz1.yaml (the first --config)
//   model: {maxlen: 5}
//   #%config                 <- a line starting with "#%config": the next --config (fuzz2.yaml, ...)
//   training: {epochs: 2}
//   #%set                    <- a line starting with "#%set": every later line is one --set
//   model.hidden_units=16
//   model={num_heads: 2}
//
// (Separator lines are YAML comments, so a file alone is a plain YAML config; a CR before a
// line end is kept, as the reader accepts CRLF files; an empty --set line is skipped.)
//
// Run: what `recdistill train --config ... --set ...` does with the layers (apps/cmd_train.cpp
// load_configs, then the model plugin's parse_config), without the plugin registry: the app's
// keys decide model.model_name; the model's keys are those its bundled plugin declares
// (io::describe of its config struct), with the `alkd` section; the app's strict resolve, then
// the plugin's lenient bind of its own struct, then the alkd section as `recdistill alkd` binds
// it. An accepted config must print (io::effective_config_text, a run's config.yaml) as text
// that parses back to the same config. recdistill::Error is the expected answer to bad input;
// any other exception escapes (a finding).
#pragma once
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "recdistill/io/config.hpp"
#include "recdistill/methods/alkd_config.hpp"

namespace recdistill::fuzz {

inline io::ConfigLayers config_fuzz_layers(std::string_view input) {
  io::ConfigLayers layers;
  layers.files.push_back({"fuzz1.yaml", ""});
  bool sets = false;
  size_t pos = 0;
  while (pos < input.size()) {
    size_t end = input.find('\n', pos);
    const bool last = end == std::string_view::npos;
    if (last) end = input.size();
    const std::string_view line = input.substr(pos, end - pos);
    pos = last ? end : end + 1;
    if (!sets && line.substr(0, 8) == "#%config") {
      layers.files.push_back({"fuzz" + std::to_string(layers.files.size() + 1) + ".yaml", ""});
    } else if (!sets && line.substr(0, 5) == "#%set") {
      sets = true;
    } else if (sets) {
      if (!line.empty()) layers.sets.emplace_back(line);
    } else {
      layers.files.back().text.append(line);
      if (!last) layers.files.back().text += '\n';
    }
  }
  return layers;
}

namespace detail {

inline io::ResolveOptions quiet_strict() {
  io::ResolveOptions o;
  o.warn = false;
  o.warnings = nullptr;
  return o;
}

// io::parse_config<C>(layers, extra, opt) is bind_config<C>(resolve(schema_of<C>() + extra,
// read_layers(layers), opt)); the schemas are built once here and the layers read once.
template <class C>
C parse_with(const io::Schema& s, const io::RawConfig& raw, const io::ResolveOptions& opt) {
  return io::bind_config<C>(io::resolve(s, raw, opt));
}

// The schemas of one model: its keys (what its plugin declares), the app's strict schema (the
// app's keys, the model's and the alkd section's), the plugin's own and alkd's beside the model.
struct ModelSchemas {
  std::vector<keys::KeyDoc> model_keys;
  io::Schema app, plugin, alkd;
};

template <class C>
const ModelSchemas& schemas_of() {
  static const ModelSchemas s = [] {
    ModelSchemas m;
    m.model_keys = io::describe<C>();
    m.app = io::schema_of<io::CommonConfig>();
    m.app.add(m.model_keys);
    m.app.add(io::describe<alkd::AlkdConfig>());
    m.plugin = io::schema_of<C>();
    m.alkd = io::schema_of<alkd::AlkdConfig>();
    m.alkd.add(m.model_keys);
    return m;
  }();
  return s;
}

// After the app picked the model C: the app's strict resolve, the plugin's lenient bind of its
// struct (whose printed config must read back the same), the alkd section's bind.
template <class C>
void run_model(const io::RawConfig& raw) {
  const ModelSchemas& s = schemas_of<C>();
  (void)parse_with<io::CommonConfig>(s.app, raw, quiet_strict());
  const C c = parse_with<C>(s.plugin, raw, io::checked_by_the_app());
  const std::string text = io::effective_config_text(c);
  C again;
  try {
    again = parse_with<C>(s.plugin, io::read_layers(io::ConfigLayers{{{"config.yaml", text}}, {}}), quiet_strict());
  } catch (const Error&) {
    std::abort();  // the printed config of an accepted run must parse
  }
  if (io::effective_config_text(again) != text) std::abort();  // ... to the same config
  const auto ac = parse_with<alkd::AlkdConfig>(s.alkd, raw, io::checked_by_the_app());
  ac.validate();
}

}  // namespace detail

inline void run_config_input(std::string_view input) {
  const io::ConfigLayers layers = config_fuzz_layers(input);
  try {
    const io::RawConfig raw = io::read_layers(layers);
    // The model's name first, from the app's keys alone (lenient).
    static const io::Schema app_schema = io::schema_of<io::CommonConfig>();
    const auto first = detail::parse_with<io::CommonConfig>(app_schema, raw, io::checked_by_the_app());
    const std::string& m = first.model_name;
    if (m == "SASRec" || m == "SASRecLLM") detail::run_model<io::ExperimentConfig>(raw);
    else if (m == "BERT4Rec" || m == "BERT4RecLLM") detail::run_model<io::BERT4RecExperimentConfig>(raw);
    else if (m == "STAMP") detail::run_model<io::STAMPExperimentConfig>(raw);
    else if (m == "FPMC") detail::run_model<io::FPMCExperimentConfig>(raw);
    else if (m == "AttenMixer") detail::run_model<io::AttenMixerExperimentConfig>(raw);
    // else `train` fails: no plugin offers the model
  } catch (const Error&) {
  }
}

}  // namespace recdistill::fuzz
