// The checkpoint fuzz target's input format and run (tests/fuzz/checkpoint_fuzz.cpp), shared
// with the regression test (tests/unit/fuzz_regressions_test.cpp) so that a kept reproducer is
// run exactly as the fuzzer ran it.
//
// Input: an input that starts with the checkpoint magic ("RDCKPT\0\1") is a whole file, read as
// a resume reads one (checkpoint_from_bytes = load_checkpoint without the file), straight from
// the fuzzer's buffer. Any other input is a payload: it is framed with a valid header and
// checksum first, so that the decoder sees arbitrary bytes too (the checksum guards against
// corruption, not against crafted files). The weights are float, as the trainers use, or
// double where the payload's scalar size field says 8.
//
// Checked: only recdistill::Error escapes the reader; an accepted checkpoint is consistent
// (what decode_checkpoint promises the resumed trainer), encodes back to the same payload, and
// check_resumable accepts it against its own settings and hashes and refuses other settings.
#pragma once
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "recdistill/train/checkpoint.hpp"

namespace recdistill::fuzz {

namespace detail {

template <class T>
void check_accepted(const Checkpoint<T>& c, std::string_view payload) {
  const size_t n = c.params.size();
  if (c.best_params.size() != n || c.adam_m.size() != n || c.adam_v.size() != n) std::abort();
  if (c.epoch < 0 || size_t(c.epoch) != c.epochs.size() || c.step < 0) std::abort();
  for (int64_t t : c.tensor_steps)
    if (t < 0 || t > c.step) std::abort();
  if (c.best_epoch < 0 || c.best_epoch > c.epoch || c.bad_evals < 0 || c.step > kMaxCheckpointSteps) std::abort();
  // Every field was read: encoding gives the payload back, byte for byte (uint8 flags other
  // than 0/1 and the order of repeated setting or metric names aside: compare decoded again).
  const std::string again = encode_checkpoint(c);
  if (again != payload) {
    const Checkpoint<T> d = decode_checkpoint<T>(again, "re-encoded");
    if (encode_checkpoint(d) != again) std::abort();
  }
  // Resuming under the checkpoint's own settings and hashes is accepted ...
  try {
    check_resumable(c, "fuzz.ckpt", c.settings, c.mapping_hash, c.split_hash);
  } catch (const Error&) {
    std::abort();
  }
  // ... and under other settings refused.
  std::map<std::string, std::string> other = c.settings;
  other["model.hidden_units"] += "x";
  try {
    check_resumable(c, "fuzz.ckpt", other, c.mapping_hash, c.split_hash);
    std::abort();
  } catch (const Error&) {
  }
}

template <class T>
void decode_payload(std::string_view payload) {
  const Checkpoint<T> c = decode_checkpoint<T>(payload, "fuzz.ckpt");
  check_accepted(c, payload);
}

}  // namespace detail

inline void run_checkpoint_input(std::string_view input) {
  try {
    if (input.substr(0, 8) == kCheckpointFile.magic) {
      const Checkpoint<float> c = checkpoint_from_bytes<float>(input, "fuzz.ckpt");
      detail::check_accepted(c, input.substr(io::kContainerHeader));
      return;
    }
    const std::string framed = io::frame(kCheckpointFile, input);
    const std::string_view payload = io::unframe(framed, kCheckpointFile, "fuzz.ckpt");
    uint32_t scalar = 0;
    if (payload.size() >= 4) std::memcpy(&scalar, payload.data(), 4);
    if (scalar == 8) detail::decode_payload<double>(payload);
    else detail::decode_payload<float>(payload);
  } catch (const Error&) {
  }
}

}  // namespace recdistill::fuzz
