// recdistill/backbones/session_state_dict.hpp: the session models' tensors under the reference
// modules' state_dict names (backbones/state_dict.hpp does the conversion both ways).
//
//   STAMP recbole             RecBole 1.2.1 recbole/model/sequential_recommender/stamp.py:
//                               item_embedding.weight (N, d), w1/w2/w3.weight (d, d),
//                               w0.weight (1, d), b_a (d), mlp_a/mlp_b.{weight,bias}
//   STAMP alkdrec_simplified  tools/torch_session.py's StampAlkdrec: item_embedding, item_output
//                               (N, d) tables, w1/w2/w3/w0.weight, b_a
//   FPMC session              tools/torch_session.py's FpmcSession: item_embedding, item_output
//   FPMC recbole              RecBole 1.2.1 recbole/model/sequential_recommender/fpmc.py:
//                               UI_emb.weight (U, d), IU_emb.weight, LI_emb.weight,
//                               IL_emb.weight (N, d)
// (The tensors keep our names but for RecBole's nn.Embedding table, `item_embedding.weight`.)
// FPMC recbole's layout is not RecBole's tensor for tensor (our item_factors (N, 2d) holds IU and
// IL interleaved by row, backbones/fpmc.hpp), so it has its own to_state_dict / from_state_dict
// overloads: they convert through FPMCRecBole::to_reference / from_reference and let the generic
// functions check and write RecBole's four tensors (fpmc::RecBoleStateDict is their stand-in
// model). It deliberately has no torch_name, so the generic path cannot take it by mistake.
// Atten-Mixer's are in backbones/attenmixer_state_dict.hpp.
#pragma once
#include <string>
#include <utility>
#include <vector>

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
  if (st.find("UI_emb.weight")) return " the file looks like the FPMC 'recbole' variant's state_dict;";
  return st.find("w1.weight") ? " the file looks like a STAMP state_dict;" : "";
}

namespace fpmc {

// RecBole's FPMC state_dict as a model of four tensors, named and shaped as RecBole's
// (FPMCRecBole::reference_tensors()), for the generic conversion.
struct RecBoleStateDict {
  FPMCConfig cfg;
  ParamLayout layout_;
  template <class B, class T>
  explicit RecBoleStateDict(const FPMCRecBole<B, T>& net) : cfg(net.config()) {
    for (const auto& t : net.reference_tensors()) layout_.add(t.name, {t.rows, t.cols});
  }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.size(); }
};
inline std::pair<std::string, bool> torch_name(const RecBoleStateDict&, const std::string& ours) { return {ours, false}; }
inline std::string state_dict_model_text(const RecBoleStateDict& v) {
  return cat("FPMC (recbole variant, U = ", v.cfg.n_users, ", N = ", v.cfg.n_items, ", d = ", v.cfg.hidden, ")");
}
inline std::string state_dict_hint(const RecBoleStateDict&, const io::SafeTensors& st) {
  if (st.find("item_output")) return " the file looks like the FPMC 'session' variant's state_dict (or STAMP's);";
  return "";
}

}  // namespace fpmc

template <class B, class T>
io::SafeTensors to_state_dict(const FPMCRecBole<B, T>& net, const std::vector<float>& params) {
  const fpmc::RecBoleStateDict ref_net(net);
  if (params.size() != net.num_params())
    fail(state_dict_model_text(ref_net), " state_dict: ", params.size(), " parameters given, the model has ",
         net.num_params());
  std::vector<float> ref(ref_net.num_params());
  net.to_reference(params.data(), ref.data());
  return to_state_dict(ref_net, ref);
}

template <class B, class T>
std::vector<float> from_state_dict(const FPMCRecBole<B, T>& net, const io::SafeTensors& st, const std::string& path) {
  const fpmc::RecBoleStateDict ref_net(net);
  const std::vector<float> ref = from_state_dict(ref_net, st, path);
  std::vector<float> params(net.num_params());
  net.from_reference(ref.data(), params.data());
  return params;
}

}  // namespace recdistill
