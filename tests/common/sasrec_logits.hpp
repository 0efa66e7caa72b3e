// Full item logits of a SASRec for given histories, computed the way evaluation scores them
// (net.query() at the last real item, then the scorer's table: eval::score_cases). Shared by
// the weights tests and tests/tools/sasrec_safetensors_tool.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/case.hpp"
#include "recdistill/eval/ranking.hpp"

namespace rdtest {

// logits (histories, N), row-major; histories hold item ids oldest first.
template <class Net>
std::vector<float> sasrec_full_logits(const Net& net, const std::vector<float>& params,
                                      const std::vector<std::vector<int32_t>>& histories) {
  using namespace recdistill;
  std::vector<eval::Case> cases;
  for (const auto& h : histories) cases.push_back({h.data(), h.size(), /*target=*/0});
  auto acts = net.make_activations(eval::kEvalBlock);
  const size_t N = size_t(net.scorer().n_items);
  std::vector<float> out(cases.size() * N);
  eval::score_cases<cpu::Backend>(net, params.data(), acts, cases, [&](size_t i, float* row) {
    std::copy(row, row + N, out.begin() + i * N);
  });
  return out;
}

}  // namespace rdtest
