// Fuzz target: RecBole atomic .inter parser (data/atomic.hpp), then the sequence and split
// code on whatever it accepts. recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "recdistill/data/atomic.hpp"
#include "recdistill/data/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto in = recdistill::data::parse_atomic_inter(text, "fuzz.inter");
    const auto split = recdistill::data::to_split(
        recdistill::data::split_leave_one_out(recdistill::data::to_sequences(in)));
    (void)split;
  } catch (const recdistill::Error&) {
  }
  return 0;
}
