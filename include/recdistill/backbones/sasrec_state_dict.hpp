// recdistill/backbones/sasrec_state_dict.hpp: SASRec's flat parameter buffer as the reference
// PyTorch module's state_dict (names and shapes exactly as `module.state_dict()` has them), and
// back, for safetensors files (io/safetensors.hpp) that PyTorch loads with
// load_state_dict(strict=True).
//
//   recbole  RecBole 1.2.1 recbole/model/sequential_recommender/sasrec.py (SASRec) with
//            recbole/model/layers.py TransformerEncoder:
//              item_embedding.weight (N, d), position_embedding.weight (L, d),
//              trm_encoder.layer.{i}.multi_head_attention.{query,key,value,dense}.{weight,bias},
//              trm_encoder.layer.{i}.multi_head_attention.LayerNorm.{weight,bias},
//              trm_encoder.layer.{i}.feed_forward.{dense_1,dense_2,LayerNorm}.{weight,bias},
//              LayerNorm.{weight,bias} (the input LayerNorm). The module has no buffers.
//   pmixer   the `legacy` layout's reference (pmixer/SASRec.pytorch python/model.py, the
//            profile-distillation seed's knowledge_transfer/src/models/sasrec.py):
//              item_emb.weight (N, d), pos_emb.weight (L, d),
//              attention_layernorms.{i}.{weight,bias},
//              attention_layers.{i}.{in_proj_weight (3d, d), in_proj_bias, out_proj.weight, out_proj.bias},
//              forward_layernorms.{i}.{weight,bias},
//              forward_layers.{i}.conv{1,2}.weight (d, d, 1), forward_layers.{i}.conv{1,2}.bias,
//              last_layernorm.{weight,bias}.
//
// No tensor needs a transpose: our Linear weights are stored (out, in) as PyTorch's, the MHA
// in_proj stacks q; k; v by rows as PyTorch's, and a Conv1d weight (out, in, 1) has the bytes of
// the (out, in) matrix. Only names and (for the convolutions) shapes change.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backbones/state_dict.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/io/safetensors.hpp"

namespace recdistill {

namespace detail {

// Our per-block tensor name (after "layer{i}.") -> the reference's name inside block i, and
// whether PyTorch's shape has a trailing kernel dimension 1 (Conv1d weights).
struct BlockName {
  const char* ours;
  const char* theirs;
  bool conv = false;
};

inline const std::vector<BlockName>& recbole_block_names() {
  static const std::vector<BlockName> t = {
      {"attn.q.weight", "multi_head_attention.query.weight"},
      {"attn.q.bias", "multi_head_attention.query.bias"},
      {"attn.k.weight", "multi_head_attention.key.weight"},
      {"attn.k.bias", "multi_head_attention.key.bias"},
      {"attn.v.weight", "multi_head_attention.value.weight"},
      {"attn.v.bias", "multi_head_attention.value.bias"},
      {"attn.o.weight", "multi_head_attention.dense.weight"},
      {"attn.o.bias", "multi_head_attention.dense.bias"},
      {"attn_ln.weight", "multi_head_attention.LayerNorm.weight"},
      {"attn_ln.bias", "multi_head_attention.LayerNorm.bias"},
      {"ffn.w1.weight", "feed_forward.dense_1.weight"},
      {"ffn.w1.bias", "feed_forward.dense_1.bias"},
      {"ffn.w2.weight", "feed_forward.dense_2.weight"},
      {"ffn.w2.bias", "feed_forward.dense_2.bias"},
      {"ffn_ln.weight", "feed_forward.LayerNorm.weight"},
      {"ffn_ln.bias", "feed_forward.LayerNorm.bias"},
  };
  return t;
}

// pmixer's blocks are four ModuleLists: the name is "<list>.{i}.<rest>".
inline const std::vector<BlockName>& pmixer_block_names() {
  static const std::vector<BlockName> t = {
      {"attn_ln.weight", "attention_layernorms.#.weight"},
      {"attn_ln.bias", "attention_layernorms.#.bias"},
      {"attn.in_proj_weight", "attention_layers.#.in_proj_weight"},
      {"attn.in_proj_bias", "attention_layers.#.in_proj_bias"},
      {"attn.out_proj.weight", "attention_layers.#.out_proj.weight"},
      {"attn.out_proj.bias", "attention_layers.#.out_proj.bias"},
      {"ffn_ln.weight", "forward_layernorms.#.weight"},
      {"ffn_ln.bias", "forward_layernorms.#.bias"},
      {"ffn.conv1.weight", "forward_layers.#.conv1.weight", true},
      {"ffn.conv1.bias", "forward_layers.#.conv1.bias"},
      {"ffn.conv2.weight", "forward_layers.#.conv2.weight", true},
      {"ffn.conv2.bias", "forward_layers.#.conv2.bias"},
  };
  return t;
}

// The reference name of one of our tensors (and whether it is a Conv1d weight).
template <class V>
std::pair<std::string, bool> sasrec_torch_name(const std::string& ours) {
  constexpr bool pmixer = V::id == SASRecVariant::pmixer;
  static const std::map<std::string, std::string> top =
      pmixer ? std::map<std::string, std::string>{{"item_embedding", "item_emb.weight"},
                                                  {"position_embedding", "pos_emb.weight"},
                                                  {"last_ln.weight", "last_layernorm.weight"},
                                                  {"last_ln.bias", "last_layernorm.bias"}}
             : std::map<std::string, std::string>{{"item_embedding", "item_embedding.weight"},
                                                  {"position_embedding", "position_embedding.weight"},
                                                  {"ln_in.weight", "LayerNorm.weight"},
                                                  {"ln_in.bias", "LayerNorm.bias"}};
  if (auto it = top.find(ours); it != top.end()) return {it->second, false};
  // "layer{i}.<rest>"
  const auto dot = ours.find('.');
  if (ours.rfind("layer", 0) == 0 && dot != std::string::npos && dot > 5) {
    const std::string index = ours.substr(5, dot - 5), rest = ours.substr(dot + 1);
    for (const auto& b : pmixer ? pmixer_block_names() : recbole_block_names()) {
      if (rest != b.ours) continue;
      std::string name = b.theirs;
      if (pmixer) name.replace(name.find('#'), 1, index);
      else name = "trm_encoder.layer." + index + "." + name;
      return {name, b.conv};
    }
  }
  fail("SASRec state_dict: no reference name for our tensor '", ours, "' (", V::name, " variant)");
}

}  // namespace detail

// The hooks backbones/state_dict.hpp calls for a SASRec (found by argument-dependent lookup).
template <class B, class T, class V>
std::pair<std::string, bool> torch_name(const SASRec<B, T, V>&, const std::string& ours) {
  return detail::sasrec_torch_name<V>(ours);
}
template <class B, class T, class V>
std::string state_dict_model_text(const SASRec<B, T, V>& net) {
  const auto& c = net.config();
  return cat("SASRec (", V::name, " variant, N = ", c.n_items, ", L = ", c.slots(),
             c.seed_window ? cat(" of maxlen ", c.max_len) : std::string(), ", d = ", c.hidden, ", ",
             c.layers, " layers", V::id == SASRecVariant::recbole ? cat(", inner = ", c.inner) : std::string(), ")");
}
// A file of the other variant is the likely mistake: say so.
template <class B, class T, class V>
std::string state_dict_hint(const SASRec<B, T, V>&, const io::SafeTensors& st) {
  const bool recbole = V::id == SASRecVariant::recbole;
  const bool other = recbole ? st.find("item_emb.weight") != nullptr
                             : st.find("trm_encoder.layer.0.multi_head_attention.query.weight") != nullptr;
  return other ? cat(" the file looks like the '", recbole ? "pmixer" : "recbole", "' variant's state_dict;") : "";
}

template <class Net>
io::SafeTensors sasrec_state_dict(const Net& net, const std::vector<float>& params) {
  return to_state_dict(net, params);
}
template <class Net>
std::vector<float> sasrec_from_state_dict(const Net& net, const io::SafeTensors& st, const std::string& path) {
  return from_state_dict(net, st, path);
}

}  // namespace recdistill
