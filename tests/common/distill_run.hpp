// A short profile-distillation run (SASRec, attention aggregation, cosine loss, beta, a
// fine-tuning phase; a profile for three users in four), the same on every backend: the
// backend tests compare its weights across backends.
#pragma once
#include <cmath>
#include <memory>
#include <vector>

#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/methods/profile_distillation.hpp"
#include "recdistill/train/trainer.hpp"

namespace rdtest {

using namespace recdistill;

template <class Bk>
std::vector<float> distill_train(const data::Split& split) {
  using M = ProfileDistillation<SASRec<Bk>, aggregators::Attention, losses::Cosine>;
  auto prof = std::make_shared<ProfileTargets>();
  prof->K = 1;
  prof->D = 5;
  for (size_t u = 0; u < split.train.size(); ++u) {
    prof->available.push_back(u % 4 != 0);
    for (int j = 0; j < 5; ++j) prof->values.push_back(float(std::cos(0.7 * double(u) + j)));
  }
  SASRecConfig sc;
  sc.n_items = split.n_items;
  sc.max_len = 8;
  sc.hidden = 16;
  sc.heads = 2;
  sc.layers = 2;
  sc.inner = 16;
  DistillationConfig dc;
  dc.alpha = 0.4;
  dc.scale_guide_loss = true;
  dc.fine_tune_epoch = 2;
  dc.reconstruction_layer = 0;
  TrainerConfig tc;
  tc.batch_size = 16;
  tc.epochs = 3;
  eval::Options eo;
  eo.ks = {10};
  Trainer<M, DistillObjective> t(M(SASRec<Bk>(sc), dc, aggregators::Attention{}, prof), tc, eo, split, 5);
  add_distillation_phases(t);
  t.fit();
  return t.host_params();
}

}  // namespace rdtest
