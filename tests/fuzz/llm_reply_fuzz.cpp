// Fuzz target: the LLM reply parsers (llm/protocol.hpp): chat-completions and embeddings
// replies, HTTP error bodies, the usage of any body and Retry-After values, straight from the
// fuzzer's buffer. A ReplyError is the expected answer to a bad reply; nothing may throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/llm/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::llm;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)parse_chat_reply(body);
  // The number of inputs the embeddings reply must answer: 1 to 4, from the first byte.
  (void)parse_embedding_reply(body, size ? 1 + data[0] % 4 : 1);
  (void)error_text(body);
  (void)usage_of(body);
  (void)retry_after_seconds(body.substr(0, 64), 1e9, [](const std::string&) { return -1.0; });
  return 0;
}
