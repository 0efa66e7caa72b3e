// Fuzz target: safetensors reader (io/safetensors.hpp), from the fuzzer's buffer. A file it
// accepts must be consistent (every tensor's values match its shape) and must survive a
// write/read round trip unchanged. recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "recdistill/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  try {
    const io::SafeTensors st = io::parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size),
                                                     "fuzz.safetensors");
    for (const auto& t : st.tensors) {
      uint64_t n = 1;
      for (auto d : t.shape) n *= uint64_t(d);
      if (n != t.data.size()) __builtin_trap();
    }
    const io::SafeTensors again = io::parse_safetensors(io::encode_safetensors(st), "fuzz.safetensors");
    if (again.metadata != st.metadata || again.tensors.size() != st.tensors.size()) __builtin_trap();
    for (size_t i = 0; i < st.tensors.size(); ++i)
      if (again.tensors[i].name != st.tensors[i].name || again.tensors[i].shape != st.tensors[i].shape ||
          (!st.tensors[i].data.empty() &&
           std::memcmp(again.tensors[i].data.data(), st.tensors[i].data.data(), st.tensors[i].data.size() * 4) != 0))
        __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
