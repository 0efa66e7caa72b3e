// Fuzz target: selection files of active distillation (methods/alkd_selection.hpp).
// recdistill::Error is the expected answer to bad input; what parses must hold the reader's
// promises (1 to 20 digits, no leading zero) and read back unchanged from its own text. The
// first byte picks n for the repeat checker, and the ids then drive a replay selection over a
// small pool, whose counts must add up.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "recdistill/methods/alkd_selection.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recdistill::alkd;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto ids = parse_selection_text(text, "selection.txt");
    std::string again;
    for (const auto& id : ids) {
      if (id.empty() || id.size() > kMaxSessionIdDigits) __builtin_trap();
      if (id.size() > 1 && id[0] == '0') __builtin_trap();
      for (char c : id)
        if (c < '0' || c > '9') __builtin_trap();
      again += id + "\n";
    }
    if (parse_selection_text(again, "again.txt") != ids) __builtin_trap();

    // Replay over the pool "0".."31": odd ids lack answers, multiples of 3 are unusable.
    std::vector<PoolEntry> pool;
    for (int i = 0; i < 32; ++i) pool.push_back({std::to_string(i), double(i % 5)});
    pool = order_hardest_first(pool);
    StrategyConfig cfg;
    cfg.name = "replay";
    cfg.replay_list = ids;
    const size_t budget = size ? data[0] % 40 : 0;
    const OracleView oracle = [](const std::string& id) {
      const int v = std::stoi(id);
      return v % 2 ? AnswerState::missing : v % 3 == 0 ? AnswerState::unusable : AnswerState::usable;
    };
    const auto sel = select(cfg, pool, budget, oracle, 1, nullptr);
    const auto& r = sel.report;
    if (sel.sessions.size() != r.answered || r.drawn != r.answered + r.skipped || r.skips.size() != r.skipped ||
        sel.sessions.size() > budget || sel.sessions.size() + r.shortfall != budget)
      __builtin_trap();
    check_distinct_prefix(ids, budget, "selection.txt");
  } catch (const recdistill::Error&) {
  }
  return 0;
}
