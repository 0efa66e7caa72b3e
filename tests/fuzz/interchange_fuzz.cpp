// Fuzz target: the seed's JSON data files (data/interchange.hpp). The first byte picks the
// reader (counts, mappings, sequences), the rest is the file. recdistill::Error is the
// expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/data/interchange.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::data;
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const InterchangeCounts counts{3, 4};
  try {
    switch (data[0] % 3) {
      case 0: {
        const auto c = parse_interchange_counts(text, "counts.json");
        if (c.users <= 0 || c.items <= 0 || c.users > kInterchangeMaxId || c.items > kInterchangeMaxId) __builtin_trap();
        break;
      }
      case 1: {
        const auto m = parse_interchange_mappings(text, "mappings.json", counts);
        if (m.users.size() != 3 || m.items.size() != 4) __builtin_trap();
        for (const auto& t : m.users)
          if (t.empty()) __builtin_trap();  // every index has an id
        break;
      }
      default: {
        const auto s = parse_interchange_sequences(text, "sequences.json", counts);
        for (const auto& [u, items] : s) {
          if (u < 0 || u >= 3) __builtin_trap();
          for (int32_t i : items)
            if (i < 0 || i >= 4) __builtin_trap();
        }
        // Building the split from them must hold too.
        InterchangeMappings maps{{"a", "b", "c"}, {"w", "x", "y", "z"}};
        const auto x = build_interchange(counts, maps, s, s, s, "sequences.json");
        if (x.split.n_users != 4 || x.split.n_items != 5) __builtin_trap();
      }
    }
  } catch (const recdistill::Error&) {
  }
  return 0;
}
