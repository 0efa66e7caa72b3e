// recdistill/core/params.hpp: the named layout of a model's one flat parameter buffer.
//
// A model owns no parameter memory; it describes its tensors (name, PyTorch shape) in
// order, and the trainer allocates one buffer for parameters and one for gradients. The
// optimiser, clipping, checkpoints and fixtures all see that single span.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"

namespace recdistill {

struct ParamInfo {
  std::string name;
  std::vector<int> shape;  // PyTorch layout, e.g. Linear weight (out, in)
  size_t offset = 0;       // elements from the start of the buffer
  size_t size = 0;         // elements
};

class ParamLayout {
 public:
  // Appends a tensor and returns its offset.
  size_t add(std::string name, std::vector<int> shape) {
    size_t n = 1;
    for (int s : shape) n *= size_t(s);
    infos_.push_back({std::move(name), std::move(shape), total_, n});
    total_ += n;
    return infos_.back().offset;
  }
  // Appends every tensor of `inner` (a nested model's layout) with names prefixed by `prefix`,
  // keeping their order; returns the offset of the first. A method nests its backbone this way:
  // the backbone then reads its weights at params + that offset.
  size_t add_nested(const std::string& prefix, const ParamLayout& inner) {
    const size_t base = total_;
    for (const auto& p : inner.infos()) add(prefix + p.name, p.shape);
    return base;
  }
  size_t size() const { return total_; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  const ParamInfo& find(const std::string& name) const {
    for (const auto& p : infos_)
      if (p.name == name) return p;
    fail("no parameter named '", name, "'");
  }

 private:
  std::vector<ParamInfo> infos_;
  size_t total_ = 0;
};

}  // namespace recdistill
