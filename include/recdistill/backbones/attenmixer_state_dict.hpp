// recdistill/backbones/attenmixer_state_dict.hpp: Atten-Mixer's tensors under the reference
// module's state_dict names (backbones/state_dict.hpp does the conversion both ways).
//
//   alkdrec   kk97111/ALKDRec AttMix.py (and tools/torch_attenmixer.py): our tensor names are
//             its state_dict keys (LI.weight, item_emb.weight, mattn.linear_zero/one/two.*,
//             mattn.last_layernorm.*, linear_q.{i}.*, linear_transform.*), without its unused
//             mattn.linear_three/four/five.weight, which a file from AttMix itself still holds.
//   official  the same names with the one table E as `embedding.weight` (no LI / item_emb):
//             tools/torch_attenmixer.py's AttenMixerOfficial; not checked against a state_dict of
//             Peiyance/Atten-Mixer-torch's CCSGNN itself.
#pragma once
#include <string>
#include <utility>

#include "recdistill/backbones/attenmixer.hpp"
#include "recdistill/backbones/state_dict.hpp"

namespace recdistill {

template <class B, class T, class V>
std::pair<std::string, bool> torch_name(const AttenMixer<B, T, V>&, const std::string& ours) {
  return {ours, false};
}
template <class B, class T, class V>
std::string state_dict_model_text(const AttenMixer<B, T, V>& net) {
  const auto& c = net.config();
  return cat("Atten-Mixer (", V::name, " flavour, N = ", c.n_items, ", d = ", c.hidden, ", K = ", c.intent_levels, ")");
}
template <class B, class T, class V>
std::string state_dict_hint(const AttenMixer<B, T, V>& net, const io::SafeTensors& st) {
  if (st.find("mattn.linear_three.weight"))
    return " the file is AttMix's full state_dict: drop its unused mattn.linear_three/four/five.weight first;";
  if (st.find("w1.weight")) return " the file looks like a STAMP state_dict;";
  if (st.find("item_output")) return " the file looks like a STAMP or FPMC state_dict;";
  int levels = 0;
  while (st.find("linear_q." + std::to_string(levels) + ".weight")) ++levels;
  if (levels > 0 && levels != net.config().intent_levels)
    return cat(" the file has ", levels, " intent levels (linear_q.*): set model.intent_levels: ", levels, ";");
  return "";
}

}  // namespace recdistill
