// BERT4Rec's gradient check on any backend: rows with 5, 3 and 1 real items on the model's
// padding side, some masked (the targets), a repeated item and an item masked twice.
#pragma once
#include <vector>

#include "recdistill/backbones/bert4rec.hpp"
#include "recdistill/losses/cloze.hpp"
#include "sasrec_gradcheck.hpp"

namespace rdtest {

using namespace recdistill;

template <class B, class V>
double bert4rec_gradcheck(double dropout, int tap_block = kNoTap) {
  using M = BERT4Rec<B, double, V>;
  BERT4RecConfig cfg;
  cfg.variant = V::id;
  cfg.n_items = 9;  // items 1..8, [mask] = 9
  cfg.max_len = 5;
  cfg.hidden = 6;
  cfg.heads = 2;
  cfg.layers = 2;
  cfg.inner = 8;
  cfg.hidden_dropout = cfg.attn_dropout = dropout;
  const M m(cfg);
  const int Bn = 3, L = cfg.max_len, mask = m.mask_id();
  // Rows with 5, 3 and 1 real items on the model's padding side; a few become [mask] (the
  // targets); item 5 repeats (lookup scatter-add), item 4 is masked twice.
  const std::vector<std::vector<int>> rows = {{1, 4, 3, 4, 5}, {6, 5, 8}, {3}};
  const std::vector<std::vector<bool>> masked = {{false, true, false, true, false}, {true, false, true}, {true}};
  SeqBatch<B> batch(Bn, L);
  batch.rows = Bn;
  for (size_t b = 0; b < rows.size(); ++b) {
    const int pad = L - int(rows[b].size());
    for (int j = 0; j < L; ++j) {
      const int k = M::padding_side() == PaddingSide::right ? j : j - pad;
      const bool real = k >= 0 && k < int(rows[b].size());
      const bool m_ = real && masked[b][size_t(k)];
      batch.seq_host[b * L + size_t(j)] = !real ? 0 : m_ ? mask : rows[b][size_t(k)];
      batch.target_host[b * L + size_t(j)] = m_ ? rows[b][size_t(k)] : 0;
    }
  }
  batch.upload();
  return model_gradcheck<M, ClozeCE>(m, batch, dropout, tap_block, 1e-6);
}

}  // namespace rdtest
