// Fuzz target: the Amazon 2018 JSON-lines importer (data/amazon.hpp), as a review dump and
// as a metadata file. The unpadded entry points read straight from the fuzzer's buffer (so a
// read past the end is caught); parse_amazon covers the padded path.
// recdistill::Error is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "recdistill/data/amazon.hpp"
#include "recdistill/data/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    data::Interactions in;
    data::parse_amazon_reviews_into(in, text, false, "fuzz.jsonl");
  } catch (const Error&) {
  }
  try {
    data::IdMap items;
    data::Metadata meta;
    (void)data::parse_amazon_meta(text, false, "fuzz_meta.jsonl", items, meta);
  } catch (const Error&) {
  }
  try {
    const auto in = data::parse_amazon(std::string(text), "fuzz.jsonl");
    if (in.size() > 0)
      (void)data::to_split(data::split_leave_one_out(data::to_sequences(in)));
  } catch (const Error&) {
  }
  try {
    const std::string review = "{\"reviewerID\": \"u\", \"asin\": \"a\", \"unixReviewTime\": 1, \"overall\": 5}\n";
    (void)data::parse_amazon(review, "r.jsonl", std::string(text), "fuzz_meta.jsonl");
  } catch (const Error&) {
  }
  return 0;
}
