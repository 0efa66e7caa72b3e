// Fuzz target: profile JSON parser (data/profiles.hpp), under both non-finite policies, and the
// integer form of its keys (data.profile_key_normalize: integer), and the sidecar's profile_kind.
// recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "recdistill/data/profiles.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::data;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;  // the same bytes as a sidecar (.meta.json): never throws
  (void)profile_kind_from_json(text, why);
  for (auto policy : {NonFiniteProfile::error, NonFiniteProfile::drop_user}) {
    try {
      const auto f = parse_profile_json(text, "fuzz.json", policy);
      // The reader's own invariants: one row of D values per key.
      if (f.values.size() != f.keys.size() * size_t(f.dim)) __builtin_trap();
      // data.profile_key_normalize: integer's canonical form is a fixed point.
      std::string canon, again;
      for (const auto& key : f.keys)
        if (integer_key(key, canon) && (!integer_key(canon, again) || again != canon)) __builtin_trap();
    } catch (const recdistill::Error&) {
    }
  }
  return 0;
}
