// recdistill/methods/alkd_config.hpp: the `alkd` section of an active-distillation config
// (`recdistill alkd`, docs/alkd.md): how the teacher and the student differ. Both are the
// config's model (model.model_name, its variant and keys); the teacher and student get these
// hidden sizes and patiences (specs/active-llm-distillation.md §0, §2), and the prediction
// step keeps each session's top `top_k` items.
#pragma once
#include "recdistill/core/keys.hpp"

namespace recdistill::alkd {

struct AlkdConfig {
  int teacher_hidden = 100, student_hidden = 10;
  int teacher_patience = 21, student_patience = 11;
  int top_k = 50;
  int teacher_bce_negatives = 0, student_bce_negatives = 0;  // 0 = the model's own training.bce_negatives

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(teacher_hidden, Key("alkd", "teacher_hidden_units", "the teacher's model.hidden_units").range(1, 8192));
    v(student_hidden, Key("alkd", "student_hidden_units", "the student's model.hidden_units").range(1, 8192));
    v(teacher_patience, Key("alkd", "teacher_patience", "the teacher's training.patience (non-improving validations "
                                                        "before stopping; upstream's \"20\" is 21)").range(1, 1 << 20));
    v(student_patience, Key("alkd", "student_patience", "the student's training.patience").range(1, 1 << 20));
    v(teacher_bce_negatives, Key("alkd", "teacher_bce_negatives", "> 0: the teacher's training.bce_negatives (Atten-Mixer on ML: 10)")
                                 .range(0, 1 << 20));
    v(student_bce_negatives, Key("alkd", "student_bce_negatives", "> 0: the student's training.bce_negatives (Atten-Mixer on ML: 1)")
                                 .range(0, 1 << 20));
    v(top_k, Key("alkd", "top_k", "the prediction step's list length per model (the prompt's candidates)").range(1, 1 << 20));
  }
};

}  // namespace recdistill::alkd
