// Fuzz target: the checkpoint reader (train/checkpoint.hpp over io/container.hpp), as a resume
// reads a file (load_checkpoint = checkpoint_from_bytes of the file's bytes); the input format
// and what is checked are described in tests/fuzz/checkpoint_input.hpp. recdistill::Error is
// the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "checkpoint_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  recdistill::fuzz::run_checkpoint_input(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
