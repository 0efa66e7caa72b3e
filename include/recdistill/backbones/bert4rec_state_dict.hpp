// recdistill/backbones/bert4rec_state_dict.hpp: BERT4Rec's tensors under the reference module's
// state_dict names (backbones/state_dict.hpp does the conversion both ways).
//
//   recbole  RecBole 1.2.1 recbole/model/sequential_recommender/bert4rec.py (BERT4Rec):
//              item_embedding.weight (N + 1, d), position_embedding.weight (L, d),
//              LayerNorm.{weight,bias}, trm_encoder.layer.{i}.* (as SASRec's, layers.py),
//              output_ffn.{weight,bias}, output_ln.{weight,bias}, output_bias (N).
//   hf       HuggingFace BertModel's names under `bert.` plus the head (the seed's model wraps
//            a BertModel and a Linear head, specs/backbones.md §3.2):
//              bert.embeddings.{word,position,token_type}_embeddings.weight,
//              bert.embeddings.LayerNorm.{weight,bias},
//              bert.encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias},
//              bert.encoder.layer.{i}.attention.output.{dense,LayerNorm}.{weight,bias},
//              bert.encoder.layer.{i}.intermediate.dense.{weight,bias},
//              bert.encoder.layer.{i}.output.{dense,LayerNorm}.{weight,bias},
//              head.{weight,bias} (N + 1 rows). BertModel's pooler is unused and not stored,
//            so load such a file into a BertModel-based module with strict=False.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recdistill/backbones/bert4rec.hpp"
#include "recdistill/backbones/sasrec_state_dict.hpp"
#include "recdistill/backbones/state_dict.hpp"

namespace recdistill {

namespace detail {

inline const std::map<std::string, std::string>& hf_block_names() {
  static const std::map<std::string, std::string> t = {
      {"attn.q.weight", "attention.self.query.weight"},   {"attn.q.bias", "attention.self.query.bias"},
      {"attn.k.weight", "attention.self.key.weight"},     {"attn.k.bias", "attention.self.key.bias"},
      {"attn.v.weight", "attention.self.value.weight"},   {"attn.v.bias", "attention.self.value.bias"},
      {"attn.o.weight", "attention.output.dense.weight"}, {"attn.o.bias", "attention.output.dense.bias"},
      {"attn_ln.weight", "attention.output.LayerNorm.weight"},
      {"attn_ln.bias", "attention.output.LayerNorm.bias"},
      {"ffn.w1.weight", "intermediate.dense.weight"},     {"ffn.w1.bias", "intermediate.dense.bias"},
      {"ffn.w2.weight", "output.dense.weight"},           {"ffn.w2.bias", "output.dense.bias"},
      {"ffn_ln.weight", "output.LayerNorm.weight"},       {"ffn_ln.bias", "output.LayerNorm.bias"},
  };
  return t;
}

template <class V>
std::string bert4rec_torch_name(const std::string& ours) {
  constexpr bool hf = V::id == BERT4RecVariant::hf;
  static const std::map<std::string, std::string> top =
      hf ? std::map<std::string, std::string>{{"item_embedding", "bert.embeddings.word_embeddings.weight"},
                                              {"position_embedding", "bert.embeddings.position_embeddings.weight"},
                                              {"token_type_embedding", "bert.embeddings.token_type_embeddings.weight"},
                                              {"ln_in.weight", "bert.embeddings.LayerNorm.weight"},
                                              {"ln_in.bias", "bert.embeddings.LayerNorm.bias"},
                                              {"head.weight", "head.weight"},
                                              {"head.bias", "head.bias"}}
         : std::map<std::string, std::string>{{"item_embedding", "item_embedding.weight"},
                                              {"position_embedding", "position_embedding.weight"},
                                              {"ln_in.weight", "LayerNorm.weight"},
                                              {"ln_in.bias", "LayerNorm.bias"},
                                              {"head.dense.weight", "output_ffn.weight"},
                                              {"head.dense.bias", "output_ffn.bias"},
                                              {"head.ln.weight", "output_ln.weight"},
                                              {"head.ln.bias", "output_ln.bias"},
                                              {"output_bias", "output_bias"}};
  if (auto it = top.find(ours); it != top.end()) return it->second;
  const auto dot = ours.find('.');
  if (ours.rfind("layer", 0) == 0 && dot != std::string::npos && dot > 5) {
    const std::string index = ours.substr(5, dot - 5), rest = ours.substr(dot + 1);
    if (hf) {
      if (auto it = hf_block_names().find(rest); it != hf_block_names().end())
        return "bert.encoder.layer." + index + "." + it->second;
    } else {
      for (const auto& b : recbole_block_names())
        if (rest == b.ours) return "trm_encoder.layer." + index + "." + b.theirs;
    }
  }
  fail("BERT4Rec state_dict: no reference name for our tensor '", ours, "' (", V::name, " variant)");
}

}  // namespace detail

template <class B, class T, class V>
std::pair<std::string, bool> torch_name(const BERT4Rec<B, T, V>&, const std::string& ours) {
  return {detail::bert4rec_torch_name<V>(ours), false};
}
template <class B, class T, class V>
std::string state_dict_model_text(const BERT4Rec<B, T, V>& net) {
  const auto& c = net.config();
  return cat("BERT4Rec (", V::name, " variant, N = ", c.n_items, ", L = ", c.max_len, ", d = ", c.hidden, ", ",
             c.layers, " layers, inner = ", c.inner, ")");
}
template <class B, class T, class V>
std::string state_dict_hint(const BERT4Rec<B, T, V>&, const io::SafeTensors& st) {
  const bool hf = V::id == BERT4RecVariant::hf;
  const bool other = hf ? st.find("output_ffn.weight") != nullptr
                        : st.find("bert.embeddings.word_embeddings.weight") != nullptr;
  if (other) return cat(" the file looks like the '", hf ? "recbole" : "hf", "' variant's state_dict;");
  if (st.find("trm_encoder.layer.0.multi_head_attention.query.weight") || st.find("item_emb.weight"))
    return " the file looks like a SASRec state_dict;";
  return "";
}

}  // namespace recdistill
