// One short SASRec training run (2 layers, dropout, clipping, 3 epochs, full-ranking test),
// the same on every backend: the CUDA tests compare its weights and metrics across backends.
#pragma once
#include <utility>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/losses/next_item.hpp"
#include "recdistill/train/trainer.hpp"

namespace cudahost {

template <class B>
std::pair<std::vector<float>, recdistill::TrainResult> train_small_sasrec(const recdistill::data::Split& split) {
  using namespace recdistill;
  SASRecConfig mc;
  mc.max_len = 10;
  mc.hidden = 16;
  mc.layers = 2;
  mc.heads = 2;
  mc.inner = 32;
  mc.hidden_dropout = mc.attn_dropout = 0.2;
  mc.n_items = split.n_items;
  TrainerConfig tc;
  tc.batch_size = 16;
  tc.epochs = 3;
  tc.eval_every = 1;
  tc.patience = 5;
  tc.adam.lr = 3e-3;
  tc.clip_grad_norm = 1.0;
  eval::Options eo;
  eo.ks = {10};
  eo.exclude = eval::Exclude::history;
  Trainer<SASRec<B>, NextItemCE> t(SASRec<B>(mc), tc, eo, split, 5);
  TrainResult r = t.fit();
  return {t.host_params(), r};
}

}  // namespace cudahost
