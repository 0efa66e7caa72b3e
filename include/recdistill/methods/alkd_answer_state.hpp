// recdistill/methods/alkd_answer_state.hpp: whether the LLM oracle has a session's answer
// (specs/active-llm-distillation.md §4.4, §5.1): usable (at least one valid item), unusable
// (answered but empty after validation: it still counts toward the budget) or missing (no
// answer and none can be had: the selection skips the session). Shared by the oracle
// (alkd_oracle.hpp) and the selection strategies (alkd_selection.hpp).
#pragma once

namespace recdistill::alkd {

enum class AnswerState { usable, unusable, missing };

}  // namespace recdistill::alkd
