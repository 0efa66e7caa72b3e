// recdistill/io/experiment_events.hpp: what an experiment's experiment.jsonl (docs/experiments.md,
// "JSON-lines logs") says of its runs, for `recdistill experiment --resume`: each finished run's
// record (the `run_end` event, with its curve) and the run folder of each interrupted one
// (`run_interrupted`). Other events are skipped; a line that is not JSON, or a run event without
// the fields this build writes, is an error naming the file and line. Fuzzed:
// tests/fuzz/experiment_events_fuzz.cpp.
#pragma once
#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/io/report.hpp"

namespace recdistill::io {

struct ExperimentEvents {
  std::map<std::string, RunRecord> finished;           // by experiment_job_key
  std::map<std::string, std::string> interrupted;      // key -> its run folder
  std::map<std::string, std::string> valid_metric, selection;  // of each finished run
};

inline std::string experiment_job_key(const std::string& variant, uint64_t seed) {
  return variant + "/" + std::to_string(seed);
}

// [[epoch, loss, valid], ...] (null where a value is missing): RunRecord::curve in a run_end event.
inline std::string curve_json(const std::vector<CurvePoint>& curve) {
  std::string s = "[";
  for (const auto& p : curve)
    s += (s.size() > 1 ? ", [" : "[") + std::to_string(p.epoch) + ", " + json_number(p.loss) + ", " +
         json_number(p.valid) + "]";
  return s + "]";
}

// The fields of a finished run's `run_end` event, as parse_experiment_events reads them back.
inline JsonFields run_end_fields(const RunRecord& r, const std::string& valid_metric, const std::string& selection) {
  return JsonFields()
      .add("variant", r.variant)
      .add("seed", r.seed)
      .add("run_dir", r.run_dir)
      .add("best_epoch", r.best_epoch)
      .add("epochs_run", r.epochs_run)
      .add("train_seconds", r.train_seconds)
      .add("valid", r.valid)
      .add("test", r.test)
      .raw("curve", curve_json(r.curve))
      .add("valid_metric", valid_metric)
      .add("selection", selection);
}

namespace detail {
inline double number_or_nan(simdjson::dom::element e) { return e.is_null() ? NAN : double(e.get_double()); }
inline std::map<std::string, double> metrics_of(simdjson::dom::element e) {
  std::map<std::string, double> m;
  for (auto [k, v] : e.get_object()) m[std::string(k)] = number_or_nan(v);
  return m;
}
inline int small_int(simdjson::dom::element e) {  // an epoch count
  const int64_t v = e.get_int64();
  if (v < 0 || v > (int64_t(1) << 30)) throw simdjson::simdjson_error(simdjson::NUMBER_OUT_OF_RANGE);
  return int(v);
}
}  // namespace detail

// The events of `text` (the file's content; `path` names it in messages).
inline ExperimentEvents parse_experiment_events(std::string_view text, const std::string& path) {
  ExperimentEvents ev;
  simdjson::dom::parser parser;
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    try {
      const simdjson::dom::element e = parser.parse(line.data(), line.size());
      const std::string_view event = e["event"].get_string();
      if (event != "run_end" && event != "run_interrupted") continue;
      const std::string variant(e["variant"].get_string().value());
      const uint64_t seed = e["seed"].get_uint64();
      const std::string key = experiment_job_key(variant, seed);
      if (event == "run_interrupted") {
        ev.interrupted[key] = std::string(e["run_dir"].get_string().value());
        continue;
      }
      RunRecord r;
      r.variant = variant;
      r.seed = seed;
      r.run_dir = std::string(e["run_dir"].get_string().value());
      r.best_epoch = detail::small_int(e["best_epoch"]);
      r.epochs_run = detail::small_int(e["epochs_run"]);
      r.train_seconds = detail::number_or_nan(e["train_seconds"]);
      r.valid = detail::metrics_of(e["valid"]);
      r.test = detail::metrics_of(e["test"]);
      for (simdjson::dom::element p : e["curve"].get_array()) {
        CurvePoint c;
        c.epoch = detail::small_int(p.at(0));
        c.loss = detail::number_or_nan(p.at(1));
        c.valid = detail::number_or_nan(p.at(2));
        r.curve.push_back(c);
      }
      ev.valid_metric[key] = std::string(e["valid_metric"].get_string().value());
      ev.selection[key] = std::string(e["selection"].get_string().value());
      ev.finished[key] = std::move(r);
      ev.interrupted.erase(key);
    } catch (const simdjson::simdjson_error& x) {
      fail(path, ":", line_no, ": expected an experiment event (a JSON object with the fields this build writes, "
           "docs/experiments.md): ", x.what());
    }
  }
  return ev;
}

inline ExperimentEvents read_experiment_events(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) fail(file.string(), ": not found (is this an experiment folder?)");
  return parse_experiment_events(read_file_bytes(file.string()), file.string());
}

}  // namespace recdistill::io
