// recdistill/methods/alkd_config.hpp: the `alkd` section of an active-distillation config
// (`recdistill alkd`, docs/alkd.md). Pre-training: the teacher and the student are both the
// config's model (model.model_name, its variant and keys) with these hidden sizes and patiences
// (specs/active-llm-distillation.md §0, §2); the prediction step keeps each session's top
// `top_k` items. Then the oracle (recorded answers, §4), the selection strategies (§5) and the
// distillation (§6), each switch of §9 a key whose `compat: upstream_compat` value restores the
// release's behaviour.
#pragma once
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"

namespace recdistill::alkd {

// The keys of the stages after the prediction step (oracle, select, distill); the others shape
// the pre-trained models and the predictions.
inline bool is_later_stage_key(const std::string& key) {
  static const char* const pretrain[] = {"teacher_hidden_units", "student_hidden_units", "teacher_patience",
                                         "student_patience", "teacher_bce_negatives", "student_bce_negatives", "top_k",
                                         "attmix_prediction_forward_scores"};
  for (const char* k : pretrain)
    if (key == k) return false;
  return true;
}

struct AlkdConfig {
  int teacher_hidden = 100, student_hidden = 10;
  int teacher_patience = 21, student_patience = 11;
  int top_k = 50;
  int teacher_bce_negatives = 0, student_bce_negatives = 0;  // 0 = the model's own training.bce_negatives
  // Q5: the prediction step ranks Atten-Mixer (alkdrec) with its train-mode forward scores.
  bool attmix_prediction_forward_scores = false;

  // Oracle (§4): the recorded answers, and whether they must be the shipped ML file (§1.1).
  std::string answers = "data/alkdrec-ml/llm_answers.jsonl";
  bool check_shipped_answers = false;
  bool restrict_to_candidates = false;
  // Live queries only (§4.2, §4.4, §3): the domain's hints and wording, and the release's quirks.
  std::string domain = "ml";
  std::string hints = "static";  // static | llm_summarised (§4.1)
  std::string hints_file;        // "" = the domain's static hints; else one hint per line (§4.1)
  std::string candidate_order = "shuffled";  // shuffled | teacher_rank (§4.2)
  bool force_target_in_candidates = true;
  bool legacy_prompt_order = false, legacy_assistant_role = false;
  bool legacy_id_regex = false, legacy_fallback_ml_only = false;
  // Selection (§5).
  std::vector<std::string> strategies = {"teacher_only", "random", "easiest", "hardest", "rad_bc", "alkdrec"};
  std::vector<std::string> selection_sources = {"regenerated"};  // regenerated | replay
  std::string selections_dir = "data/alkdrec-ml/selections";
  int budget = 500;
  std::string difficulty = "teacher_consistency";
  double rho_ef = 0.1, rho_si = 0.5, rho_in = 0.4, mu = 10, rad_bc_correct = 0.6;
  std::string sampling = "fixed";
  bool legacy_maxmin_support = false;
  // Distillation (§6).
  bool mask_same_session_negatives = true;
  bool legacy_row_duplication = false;
  std::string distill_valid_metric = "HR@15";
  int distill_patience = 21;
  double distill_learning_rate = 1e-3;
  int distill_bce_negatives = 0;  // > 0: bce_multi with this many negatives instead of the pairwise loss

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
    v(attmix_prediction_forward_scores, Key("alkd", "attmix_prediction_forward_scores", "Atten-Mixer (alkdrec): the "
                                                "prediction step ranks with train-mode forward scores, dropout on, "
                                                "against the normalised output rows (upstream, Q5; model.train_mode_queries)")
                                            .preset("upstream_compat", "true"));
    v(top_k, Key("alkd", "top_k", "the prediction step's list length per model (the prompt's candidates)").range(1, 1 << 20));
    v(answers, Key("alkd", "answers", "the recorded LLM answers (JSON lines: session_id, ranked_items, "
                                      "target_position), imported into the run's answer cache"));
    v(check_shipped_answers, Key("alkd", "check_shipped_answers", "verify the facts of the shipped ML answers (spec §1.1) "
                                                                  "when importing them"));
    v(restrict_to_candidates, Key("alkd", "restrict_to_candidates", "drop answer items that were not prompt candidates "
                                                                    "(default: keep and count them)"));
    v(domain, Key("alkd", "domain", "live prompts: the static hints and wording of this domain; ml also enables the "
                                    "parser's digit fallback under legacy_fallback_ml_only")
                  .one_of({"ml", "games"}));
    v(hints, Key("alkd", "hints", "live prompts: static (the domain's hints) or llm_summarised (one cached LLM call "
                                  "generalises 20 training instances into hints, written to hints.txt for review; "
                                  "without llm.base_url the reply must be cached)")
                 .one_of({"static", "llm_summarised"}));
    v(hints_file, Key("alkd", "hints_file", "live prompts: the hints of this file, one per line, instead of the domain's "
                                            "static ones (alkd.hints: static)"));
    v(candidate_order, Key("alkd", "candidate_order", "live prompts: the candidates `shuffled` (seeded per session) or in "
                                                      "`teacher_rank` order (offered but flagged, spec §4.2: a target "
                                                      "forced into the candidates then sits last)")
                           .one_of({"shuffled", "teacher_rank"}));
    v(force_target_in_candidates, Key("alkd", "force_target_in_candidates", "live prompts: the target replaces the 50th "
                                                                            "candidate when absent (every recorded answer "
                                                                            "had it; false = the paper's candidates)"));
    v(legacy_prompt_order, Key("alkd", "legacy_prompt_order", "live prompts: the session's items in ascending index, "
                                                              "not in order (upstream, Q14)")
                               .preset("upstream_compat", "true"));
    v(legacy_assistant_role, Key("alkd", "legacy_assistant_role", "live prompts: sent as the assistant role (upstream, Q15)")
                                 .preset("upstream_compat", "true"));
    v(legacy_id_regex, Key("alkd", "legacy_id_regex", "live answers: an id needs \"ID_\" with the underscore (upstream, Q17)")
                           .preset("upstream_compat", "true"));
    v(legacy_fallback_ml_only, Key("alkd", "legacy_fallback_ml_only", "live answers: the digit-run fallback only on ML "
                                                                      "(upstream, Q17)")
                                   .preset("upstream_compat", "true"));
    v(strategies, Key("alkd", "strategies", "the selection strategies to distil with, each a fine-tuned student: "
                                            "teacher_only (TR), random, easiest, hardest, rad_bc, alkdrec, "
                                            "or another plugin's strategy")
                      .items(1, 64));
    v(selection_sources, Key("alkd", "selection_sources", "regenerated: our strategies on our difficulties; replay: "
                                                          "the released selection files (selections_dir/<name>.txt)")
                             .items(1, 2));
    v(selections_dir, Key("alkd", "selections_dir", "the released selection files, one per strategy"));
    v(budget, Key("alkd", "budget", "tau: answered sessions to distil from (unusable answers count)").range(1, 1 << 30));
    v(difficulty, Key("alkd", "difficulty", "the difficulty scorer ordering the pool, hardest first (spec §3.1)")
                      .one_of({"teacher_consistency", "student_consistency", "rank_agreement"}));
    v(rho_ef, Key("alkd", "rho_ef", "the max-min policy's share of effective instances").range(0, 1));
    v(rho_si, Key("alkd", "rho_si", "the max-min policy's share of similar instances").range(0, 1));
    v(rho_in, Key("alkd", "rho_in", "the max-min policy's share of incorrect instances").range(0, 1));
    v(mu, Key("alkd", "mu", "the gain exponent: g_i = i^-mu").range(0, 1000));
    v(rad_bc_correct, Key("alkd", "rad_bc_correct", "RAD-BC's assumed correct fraction").range(0, 1));
    v(sampling, Key("alkd", "sampling", "fixed: p* once, successive draws (Alg. 1); sequential: p* recomputed on the "
                                        "remaining pool before each draw (upstream)")
                    .one_of({"fixed", "sequential"}).preset("upstream_compat", "sequential"));
    v(legacy_maxmin_support, Key("alkd", "legacy_maxmin_support", "also zero the policy at k* itself (upstream)")
                                 .preset("upstream_compat", "true"));
    v(mask_same_session_negatives, Key("alkd", "mask_same_session_negatives", "no row is a negative of a row of its own "
                                                                              "session (spec §6.2)")
                                       .preset("upstream_compat", "false"));
    v(legacy_row_duplication, Key("alkd", "legacy_row_duplication", "weights by row copies, positions 0-25, no de-duplication, "
                                                                    "trained with in-batch BPR (upstream, spec §6.1)")
                                  .preset("upstream_compat", "true"));
    v(distill_valid_metric, Key("alkd", "distill_valid_metric", "the fine-tuning's selection metric (upstream: HR@50 "
                                                                "FPMC, HR@15 STAMP and Atten-Mixer); its K is added to "
                                                                "the fine-tunings' eval.ks"));
    v(distill_patience, Key("alkd", "distill_patience", "the fine-tuning's training.patience").range(1, 1 << 20));
    v(distill_learning_rate, Key("alkd", "distill_learning_rate", "the fine-tuning's Adam learning rate (upstream: 1e-4 "
                                                                  "for Atten-Mixer)").range(0, 10));
    v(distill_bce_negatives, Key("alkd", "distill_bce_negatives", "> 0: fine-tune with bce_multi and this many "
                                                                  "negatives (Atten-Mixer on ML under upstream_compat: 1)")
                                 .range(0, 1 << 20));
  }

  void validate() const {
    if (!hints_file.empty() && hints != "static")
      fail("alkd.hints_file: the hints come from the file or from the LLM (alkd.hints: ", hints, "), not both");
    for (const auto& s : selection_sources)
      if (s != "regenerated" && s != "replay")
        fail("alkd.selection_sources: expected regenerated or replay, found '", s, "'");
    // The names themselves are checked by `recdistill alkd` against the loaded plugins' strategies.
    for (size_t i = 0; i < strategies.size(); ++i) {
      if (strategies[i] == "replay")
        fail("alkd.strategies: 'replay' is a selection source (alkd.selection_sources: [replay]), not a strategy");
      for (size_t j = 0; j < i; ++j)
        if (strategies[j] == strategies[i]) fail("alkd.strategies: '", strategies[i], "' is listed twice");
    }
  }
};

}  // namespace recdistill::alkd
