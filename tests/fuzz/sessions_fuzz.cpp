// Fuzz target: the alkdrec-ml session reader (data/sessions.hpp), as sessions.tsv (against a
// fixed 20-item catalogue) and as items.tsv, reading straight from the fuzzer's buffer;
// accepted sessions go on through the shipped-label split. recdistill::Error is the expected
// answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "recdistill/data/sessions.hpp"
#include "recdistill/data/split.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const std::string items = [] {
    std::string s = "item_index\traw_item_id\ttitle\n";
    for (int i = 0; i < 20; ++i) s += std::to_string(i) + "\t" + std::to_string(i + 1) + "\tmovie " + std::to_string(i) + "\n";
    return s;
  }();
  try {
    data::Interactions in;
    data::parse_session_items(items, "items.tsv", in.items, in.item_meta);
    data::parse_sessions_into(in, text, "fuzz_sessions.tsv");
    if (in.size() > 0) (void)data::split_sessions(in);
  } catch (const Error&) {
  }
  try {
    data::IdMap ids;
    data::Metadata meta;
    data::parse_session_items(text, "fuzz_items.tsv", ids, meta);
  } catch (const Error&) {
  }
  return 0;
}
