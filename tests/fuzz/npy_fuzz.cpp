// Fuzz target: .npy reader (io/npy.hpp) and the profile checks on top of it
// (data/profiles.hpp). An input that does not start with the .npy magic is read as an ids
// sidecar instead. recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "recdistill/data/profiles.hpp"
#include "recdistill/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.compare(0, 6, "\x93NUMPY") != 0) {
    try {
      (void)data::parse_profile_ids(bytes, "fuzz.npy.ids");
    } catch (const Error&) {
    }
    return 0;
  }
  try {
    const io::NpyArray a = io::parse_npy(bytes, "fuzz.npy");
    if (a.bytes.size() != size_t(a.count()) * (a.dtype[2] == '8' ? 8 : 4)) __builtin_trap();
    (void)a.as<double>();
    // A profile table needs one id per row; give it exactly that many (small arrays only).
    if (a.shape.size() == 2 && a.shape[0] <= 4096) {
      std::string ids;
      for (int64_t r = 0; r < a.shape[0]; ++r) ids += "u" + std::to_string(r) + "\n";
      for (auto policy : {data::NonFiniteProfile::error, data::NonFiniteProfile::drop_user}) {
        try {
          (void)data::parse_profile_npy(bytes, ids, "fuzz.npy", "fuzz.npy.ids", policy);
        } catch (const Error&) {
        }
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
