// Fuzz target: io::parse_experiment_events (an experiment's experiment.jsonl, read by
// `recdistill experiment --resume`). Every input either parses or throws recdistill::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/io/experiment_events.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)recdistill::io::parse_experiment_events(std::string_view(reinterpret_cast<const char*>(data), size),
                                                  "experiment.jsonl");
  } catch (const recdistill::Error&) {
  }
  return 0;
}
