// Builds a SASRec from the installed headers and runs one forward pass.
#include <cstdio>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backend/cpu/backend.hpp"

int main() {
  recdistill::SASRecConfig cfg;
  cfg.n_items = 10;
  cfg.max_len = 4;
  cfg.hidden = 8;
  cfg.inner = 16;
  recdistill::SASRec<recdistill::cpu::Backend, float> model(cfg);
  std::vector<float> params(model.num_params());
  model.init(params.data(), 1);
  auto acts = model.make_activations(1);
  const int seq[4] = {1, 2, 3, 0};
  model.forward(params.data(), acts, seq, 1, false);
  std::printf("consumer ok: %zu parameters, h[0] = %f\n", model.num_params(), model.hidden(acts)[0]);
  return 0;
}
