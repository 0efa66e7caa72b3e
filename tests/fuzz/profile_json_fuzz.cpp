// Fuzz target: profile JSON parser (data/profiles.hpp), under both non-finite policies.
// recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/data/profiles.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::data;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto policy : {NonFiniteProfile::error, NonFiniteProfile::drop_user}) {
    try {
      const auto f = parse_profile_json(text, "fuzz.json", policy);
      // The reader's own invariants: one row of D values per key.
      if (f.values.size() != f.keys.size() * size_t(f.dim)) __builtin_trap();
    } catch (const recdistill::Error&) {
    }
  }
  return 0;
}
