// Fuzz target: the per-user dump reader of `recdistill compare` (eval/per_case.hpp), straight
// from the fuzzer's buffer. recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/eval/per_case.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)eval::parse_per_case_csv(text, "fuzz_per_user.csv", "NDCG@10");
  } catch (const Error&) {
  }
  return 0;
}
