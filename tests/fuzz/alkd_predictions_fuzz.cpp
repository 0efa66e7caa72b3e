// Fuzz target: the prediction file of active distillation (methods/alkd_predictions.hpp).
// recdistill::Error is the expected answer to bad input; what parses must hold the reader's
// promises and write back to text that parses to the same records.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/methods/alkd_predictions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::alkd;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto p = parse_predictions(text, "predictions.jsonl");
    if (int64_t(p.records.size()) != p.header.sessions) __builtin_trap();
    for (const auto& r : p.records) {
      if (r.target < 0 || r.target >= p.header.items) __builtin_trap();
      if (r.window.empty() || int64_t(r.window.size()) > p.header.window) __builtin_trap();
      if (r.teacher_rank < 0 || r.teacher_rank > p.header.items) __builtin_trap();
      if (int64_t(r.teacher_top.size()) > p.header.k || r.candidates.size() != r.teacher_top.size()) __builtin_trap();
    }
    const auto q = parse_predictions(predictions_text(p), "again.jsonl");
    if (q.records.size() != p.records.size()) __builtin_trap();
  } catch (const recdistill::Error&) {
  }
  return 0;
}
