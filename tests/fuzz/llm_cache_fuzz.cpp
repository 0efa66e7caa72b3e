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
    if (used > text.size()) __builtin_trap();
  } catch (const Error&) {
  }
  try {
    (void)llm::parse_recorded_answers(text, "fuzz_answers.jsonl", {"rank", "t", "m", ""}, "session_id", "session:");
  } catch (const Error&) {
  }
  // Whatever bytes a reply holds, the record written for it reads back, with its key.
  {
    llm::CacheRecord r;
    r.key = {"p", std::string(text.substr(0, 8)), "m", "sha256:x"};
    r.status = "unparseable";
    r.url = "http://127.0.0.1:1/v1/chat/completions";
    r.request = std::string(text.substr(0, size / 2));
    r.response = std::string(text);
    r.error = std::string(text.substr(size / 2));
    llm::CacheState st;
    bool torn = false;
    try {
      llm::parse_cache_lines(st, llm::answer_line(r), 1, "roundtrip.jsonl", torn);
    } catch (const Error&) {
      __builtin_trap();
    }
    if (torn || st.records.size() != 1) __builtin_trap();
  }
  for (bool embeddings : {false, true}) try {
      (void)llm::parse_batch_input(text, "fuzz_requests.jsonl", embeddings);
    } catch (const Error&) {
    }
  return 0;
}
