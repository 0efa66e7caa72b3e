// recdistill/backbones/session_config.hpp: the settings every session model shares (STAMP,
// FPMC): item count, window length, hidden size, how training rows are cut and the objective,
// with their config keys (core/keys.hpp). Defaults that depend on the variant are filled by
// resolve_defaults unless the key was given.
#pragma once
#include <array>
#include <string_view>
#include <utility>

#include "recdistill/backbones/session_batching.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"

namespace recdistill {

inline constexpr std::array<std::pair<std::string_view, SessionRows>, 2> enum_names(SessionRows) {
  return {{{"last", SessionRows::last}, {"prefixes", SessionRows::prefixes}}};
}

// The training objective of a session model (specs/backbones.md §1).
// `weighted_pairwise` is active distillation's (losses/weighted_pairwise.hpp).
enum class SessionLoss { ce, inbatch_bpr, weighted_pairwise };
inline constexpr std::array<std::pair<std::string_view, SessionLoss>, 3> enum_names(SessionLoss) {
  return {{{"ce", SessionLoss::ce}, {"inbatch_bpr", SessionLoss::inbatch_bpr},
           {"weighted_pairwise", SessionLoss::weighted_pairwise}}};
}

struct SessionDims {
  int n_items = 0;   // N: item ids including the pad id 0 (from the data)
  int max_len = 10;  // window length L
  int hidden = 64;   // d
  SessionRows rows = SessionRows::last;
  SessionLoss loss = SessionLoss::inbatch_bpr;
  // bce_multi (specs/backbones.md §1): > 0 trains with this many uniform negatives per row
  // instead of training.loss (`bce` is one negative; ALKDRec's AttMix on ML: teacher 10,
  // student 1); 0 = off.
  int bce_negatives = 0;
  // Upstream ALKDRec pads with id 0, which is also its item 0 (specs/active-llm-distillation.md
  // §1.2, §9 Q1): true makes item 0's input row the pad row's (equal at init, never trained), so
  // its real slots read what upstream's do; evaluation and the prediction step (trainer.hpp
  // window_cases) follow upstream's exclusions (Q2, Q3). ALKDRec's variants only.
  bool legacy_pad_zero = false;

  // model.legacy_pad_zero, declared here once for every session model.
  template <class V>
  void legacy_pad_zero_key(V& v) {
    v(legacy_pad_zero, keys::Key("model", "legacy_pad_zero", "ALKDRec's variants: upstream's pad/item-0 collision "
                                                             "(spec §9 Q1-Q3): item 0's input row is the pad row "
                                                             "(equal at init, never trained), item 0 is excluded from "
                                                             "evaluation when the window is padded, and the prediction "
                                                             "step never excludes it and drops it from stored windows")
                           .weights().preset("upstream_compat", "true"));
  }

  // training.bce_negatives, declared here once for every session model.
  template <class V>
  void bce_key(V& v) {
    v(bce_negatives, keys::Key("training", "bce_negatives", "> 0: train with bce_multi and this many uniform negatives "
                                                            "per row (1 = bce) instead of training.loss (ALKDRec's "
                                                            "Atten-Mixer on ML: 10 teacher, 1 student); 0 = off")
                         .range(0, 1 << 20).resume());
  }

  template <class V>
  void keys(V& v) {
    using keys::Key;
    v(max_len, Key("model", "maxlen", "window length L: a row reads the last L items before its target")
                   .range(1, 4096).weights()
                   .derived_default("50 (recbole, Atten-Mixer official), 10 (ALKDRec's variants)"));
    v(hidden, Key("model", "hidden_units", "hidden size d (ALKDRec: teacher 100, student 10)").range(1, 8192).weights()
                  .derived_default("64; 256 for Atten-Mixer official"));
    v(rows, Key("training", "session_rows", "`last`: one row per training sequence, its last item the target "
                                            "(ALKDRec's instances); `prefixes`: one row per target (RecBole's augmentation)")
                .resume().derived_default("prefixes (recbole, Atten-Mixer official), last (ALKDRec's variants)"));
    v(loss, Key("training", "loss", "`ce`: full softmax; `inbatch_bpr`: the batch's other targets are the negatives; "
                                    "`weighted_pairwise`: active distillation's rows (`recdistill alkd`)")
                .resume().derived_default("ce (recbole STAMP, Atten-Mixer official), inbatch_bpr (ALKDRec's variants)"));
    bce_key(v);
    legacy_pad_zero_key(v);
  }

  // `upstream`: the variant is one of the ALKDRec method's (not RecBole's).
  template <class Given>
  void resolve_session_defaults(const Given& given, bool alkdrec) {
    if (!given("model.maxlen")) max_len = alkdrec ? 10 : 50;
    if (!given("training.session_rows")) rows = alkdrec ? SessionRows::last : SessionRows::prefixes;
    if (!given("training.loss")) loss = alkdrec ? SessionLoss::inbatch_bpr : SessionLoss::ce;
  }

  // The upstream_compat preset sets model.legacy_pad_zero for every session model, but RecBole's
  // variants (and Atten-Mixer's official) have no such quirk: unless the user wrote the key
  // (`user_given`: set by a config file or --set, not by a preset), it is off for them.
  template <class UserGiven>
  void drop_preset_legacy_pad_zero(const UserGiven& user_given, bool alkdrec) {
    if (!alkdrec && !user_given("model.legacy_pad_zero")) legacy_pad_zero = false;
  }

  // model.legacy_pad_zero given for a variant that is not ALKDRec's.
  void validate_legacy_pad_zero(bool alkdrec, const char* variant) const {
    if (legacy_pad_zero && !alkdrec)
      fail("model.legacy_pad_zero: upstream's pad/item-0 collision belongs to ALKDRec's variants, not to '", variant,
           "' (set model.variant to ALKDRec's, or drop the key)");
  }

  void validate() const {
    if (n_items < 2) fail("model: need at least one item besides the pad id, got n_items=", n_items);
    if (max_len < 1) fail("model.maxlen: expected >= 1, found ", max_len);
    if (hidden < 1) fail("model.hidden_units: expected >= 1, found ", hidden);
    if (bce_negatives < 0) fail("training.bce_negatives: expected >= 0, found ", bce_negatives);
  }
};

}  // namespace recdistill
