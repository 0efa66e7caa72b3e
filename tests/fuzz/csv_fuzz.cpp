// Fuzz target: the seed's CSV importer (data/csv.hpp), as interactions.csv and as
// items.csv, reading straight from the fuzzer's buffer (so a read past the end is caught);
// accepted interactions go on through the sequence and split code.
// recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recdistill/data/csv.hpp"
#include "recdistill/data/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    data::Interactions in;
    data::parse_csv_interactions_into(in, text, "fuzz.csv");
    if (in.size() > 0)
      (void)data::to_split(data::split_leave_one_out(data::to_sequences(in)));
  } catch (const Error&) {
  }
  try {
    data::IdMap ids;
    data::Metadata meta;
    data::parse_csv_side(text, "fuzz_items.csv", "item_id", ids, meta);
  } catch (const Error&) {
  }
  return 0;
}
