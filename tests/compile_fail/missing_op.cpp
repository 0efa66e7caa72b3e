// Compile-fail test (tests/compile_fail/run.cmake): the opaque test backend without its
// layer_norm_forward op. Instantiating SASRec's forward on it must fail to compile with the
// missing-op message naming the op, and the backend in the instantiation trace.
#define OPAQUE_WITHOUT_LAYER_NORM
#include "../opaque/opaque_backend.hpp"
#include "recdistill/backbones/sasrec.hpp"

int main() {
  using M = recdistill::SASRec<opaque::Backend>;
  recdistill::SASRecConfig cfg;
  cfg.n_items = 5;
  const M m(cfg);
  auto acts = m.make_activations(1);
  opaque::Buffer<float> params(m.num_params());
  opaque::Buffer<int32_t> seq(size_t(cfg.max_len));
  m.forward(params.data(), acts, seq.data(), 1, false);
  return 0;
}
