// Fuzz target: the prepared-dataset reader (data/prepared.hpp over io/container.hpp).
// An input that starts with the prepared file's magic is read as a whole file (container
// checks first); any other input is taken as a payload and framed with a valid header and
// checksum first, so that the header reader and the Boost.Serialization body decoder see
// arbitrary bytes too (the checksum guards against corruption, not against crafted files).
// read_prepared takes a path, so the bytes go through one per-process temporary file.
// recdistill::Error is the expected answer to bad input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include "recdistill/data/prepared.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  static const std::string path = "/tmp/recdistill_prepared_fuzz_" + std::to_string(getpid()) + ".bin";
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const bool whole_file = input.substr(0, 8) == data::kPreparedFile.magic;
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (whole_file) f.write(input.data(), std::streamsize(input.size()));
    else {
      const std::string framed = io::frame(data::kPreparedFile, input);
      f.write(framed.data(), std::streamsize(framed.size()));
    }
  }
  try {
    const auto p = data::read_prepared(path);
    (void)p;
  } catch (const Error&) {
  }
  return 0;
}
