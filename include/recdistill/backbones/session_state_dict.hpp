// recdistill/backbones/session_state_dict.hpp: the session models' tensors under the reference
// modules' state_dict names (backbones/state_dict.hpp does the conversion both ways).
//
//   STAMP recbole             RecBole 1.2.1 recbole/model/sequential_recommender/stamp.py:
//                               item_embedding.weight (N, d), w1/w2/w3.weight (d, d),
//                               w0.weight (1, d), b_a (d), mlp_a/mlp_b.{weight,bias}
//   STAMP alkdrec_simplified  tools/torch_session.py's StampAlkdrec: item_embedding, item_output
//                               (N, d) tables, w1/w2/w3/w0.weight, b_a
//   FPMC session              tools/torch_session.py's FpmcSession: item_embedding, item_output
// (The tensors keep our names but for RecBole's nn.Embedding table, `item_embedding.weight`.)
// Atten-Mixer's are in backbones/attenmixer_state_dict.hpp.
#pragma once
#include <string>
#include <utility>

#include "recdistill/backbones/attenmixer_state_dict.hpp"
#include "recdistill/backbones/fpmc.hpp"
#include "recdistill/backbones/stamp.hpp"
#include "recdistill/backbones/state_dict.hpp"

namespace recdistill {

template <class B, class T, class V>
std::pair<std::string, bool> torch_name(const STAMP<B, T, V>&, const std::string& ours) {
  if (V::id == STAMPVariant::recbole && ours == "item_embedding") return {"item_embedding.weight", false};
  return {ours, false};
}
template <class B, class T, class V>
std::string state_dict_model_text(const STAMP<B, T, V>& net) {
  const auto& c = net.config();
  return cat("STAMP (", V::name, " variant, N = ", c.n_items, ", d = ", c.hidden, ")");
}
template <class B, class T, class V>
std::string state_dict_hint(const STAMP<B, T, V>&, const io::SafeTensors& st) {
  const bool recbole = V::id == STAMPVariant::recbole;
  if (recbole && st.find("item_output")) return " the file looks like the 'alkdrec_simplified' variant's state_dict;";
  if (!recbole && st.find("mlp_a.weight")) return " the file looks like the 'recbole' variant's state_dict;";
  return "";
}

template <class B, class T>
std::pair<std::string, bool> torch_name(const FPMCSession<B, T>&, const std::string& ours) {
  return {ours, false};
}
template <class B, class T>
std::string state_dict_model_text(const FPMCSession<B, T>& net) {
  const auto& c = net.config();
  return cat("FPMC (session variant, N = ", c.n_items, ", d = ", c.hidden, ")");
}
template <class B, class T>
std::string state_dict_hint(const FPMCSession<B, T>&, const io::SafeTensors& st) {
  return st.find("w1.weight") ? " the file looks like a STAMP state_dict;" : "";
}

}  // namespace recdistill
