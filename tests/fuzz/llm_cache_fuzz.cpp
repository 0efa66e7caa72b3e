// Fuzz target: the LLM answer cache reader and the two user files around the client
// (llm/cache.hpp, llm/files.hpp): cache lines (a torn last line is dropped, any other bad
// line is an Error naming file and line), recorded answers and `recdistill llm batch` input,
// straight from the fuzzer's buffer. recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/llm/cache.hpp"
#include "recdistill/llm/files.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    llm::CacheState st;
    bool torn = false;
    const size_t used = llm::parse_cache_lines(st, text, 1, "fuzz_cache.jsonl", torn);
    if (used > text.size() || (torn && used == text.size())) __builtin_trap();  // a torn line is never consumed
  } catch (const Error&) {
  }
  try {
    (void)llm::parse_recorded_answers(text, "fuzz_answers.jsonl", {"rank", "t", "m", ""}, "session_id", "session:");
  } catch (const Error&) {
  }
  for (bool embeddings : {false, true}) try {
      (void)llm::parse_batch_input(text, "fuzz_requests.jsonl", embeddings);
    } catch (const Error&) {
    }
  return 0;
}
