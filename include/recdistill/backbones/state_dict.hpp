// recdistill/backbones/state_dict.hpp: a model's flat parameter buffer as the reference
// PyTorch module's state_dict (names and shapes exactly as `module.state_dict()` has them), and
// back, for safetensors files (io/safetensors.hpp) that PyTorch loads with
// load_state_dict(strict=True). A model provides three functions found by argument-dependent
// lookup (backbones/sasrec_state_dict.hpp and bert4rec_state_dict.hpp have them):
//   torch_name(net, ours) -> {state_dict name, whether PyTorch adds a trailing 1 (Conv1d)}
//   state_dict_model_text(net) -> the model and its shape, for messages
//   state_dict_hint(net, safetensors) -> "" or what the file looks like instead (a mistake's hint)
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/params.hpp"
#include "recdistill/io/safetensors.hpp"

namespace recdistill {

// One tensor of the flat buffer and its state_dict entry.
struct StateDictEntry {
  const ParamInfo* param;      // our tensor (name, offset, size)
  std::string name;            // state_dict key
  std::vector<int64_t> shape;  // PyTorch shape
};

// Every tensor of the model, in our layout order, with its state_dict name and PyTorch shape.
template <class Net>
std::vector<StateDictEntry> state_dict_entries(const Net& net) {
  std::vector<StateDictEntry> out;
  for (const auto& p : net.layout().infos()) {
    auto [name, conv] = torch_name(net, p.name);
    std::vector<int64_t> shape(p.shape.begin(), p.shape.end());
    if (conv) shape.push_back(1);
    out.push_back({&p, std::move(name), std::move(shape)});
  }
  return out;
}

// The flat parameters (host memory, the model's layout order) as the reference's state_dict.
// Metadata is left empty for the caller (docs/weights.md lists the reserved keys).
template <class Net>
io::SafeTensors to_state_dict(const Net& net, const std::vector<float>& params) {
  if (params.size() != net.num_params())
    fail(state_dict_model_text(net), " state_dict: ", params.size(), " parameters given, the model has ", net.num_params());
  io::SafeTensors st;
  for (auto& e : state_dict_entries(net)) {
    const auto* p = e.param;
    st.tensors.push_back({std::move(e.name), std::move(e.shape),
                          std::vector<float>(params.begin() + p->offset, params.begin() + p->offset + p->size)});
  }
  return st;
}

// The flat parameters from a state_dict, as strict as PyTorch's load_state_dict(strict=True):
// every expected tensor present with exactly its shape and no other tensor; the error lists
// every missing and unexpected name and every shape mismatch. Values must be finite. `path`
// names the file in messages.
template <class Net>
std::vector<float> from_state_dict(const Net& net, const io::SafeTensors& st, const std::string& path) {
  const auto entries = state_dict_entries(net);
  std::map<std::string, const StateDictEntry*> expected;
  for (const auto& e : entries) expected[e.name] = &e;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& t : st.tensors) {
    const auto it = expected.find(t.name);
    if (it == expected.end()) unexpected.push_back("'" + t.name + "'");
    else if (t.shape != it->second->shape)
      mismatched.push_back(cat("'", t.name, "': expected ", io::detail::st_shape_text(it->second->shape),
                               ", found ", io::detail::st_shape_text(t.shape)));
  }
  for (const auto& e : entries)
    if (!st.find(e.name)) missing.push_back("'" + e.name + "'");
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 12; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 12) s += cat(" and ", v.size() - 12, " more");
      return s;
    };
    std::string msg = cat(path, ": not the state_dict of this ", state_dict_model_text(net), ":");
    if (!missing.empty()) msg += cat(" missing tensors (", missing.size(), "): ", list(missing), ";");
    if (!unexpected.empty()) msg += cat(" unexpected tensors (", unexpected.size(), "): ", list(unexpected), ";");
    if (!mismatched.empty()) msg += cat(" shape mismatches (", mismatched.size(), "): ", list(mismatched), ";");
    msg += state_dict_hint(net, st);
    msg.back() = ' ';
    msg += "(see docs/weights.md)";
    fail(msg);
  }
  std::vector<float> params(net.num_params());
  for (const auto& e : entries) {
    const io::SafeTensor& t = *st.find(e.name);
    for (size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i]))
        fail(path, ": tensor '", e.name, "' element ", i, " is ", t.data[i], ": weights must be finite");
    std::copy(t.data.begin(), t.data.end(), params.begin() + e.param->offset);
  }
  return params;
}

}  // namespace recdistill
