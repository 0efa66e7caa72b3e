// Fuzz target: the YAML experiment config with `--set` overrides (io/config_schema.hpp,
// io/config.hpp) as `recdistill train --config F ... --set k=v ...` reads it: the input's
// format (config files, then `--set` lines after a "#%set" line) and what is run are described
// in tests/fuzz/config_input.hpp. recdistill::Error is the expected answer to bad input; an
// accepted config must print as text that parses back to the same config.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  recdistill::fuzz::run_config_input(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
