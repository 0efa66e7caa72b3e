// Tier 1 for BERT4Rec: both variants (recbole: tied softmax over E[0:N] with an output bias and
// the dense/GELU/LN head; hf: token-type row and a separate (N + 1)-column head) against
// central finite differences, with the cloze objective on a batch holding [mask] tokens,
// padded rows, dropout on and off, and taps at a block and at the output.
#include <gtest/gtest.h>

#include <vector>

#include "recdistill/backbones/bert4rec.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/losses/cloze.hpp"
#include "sasrec_gradcheck.hpp"

using namespace recdistill;
using B = cpu::Backend;

namespace {

template <class V>
double bert4rec_gradcheck(double dropout, int tap_block = rdtest::kNoTap) {
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
  return rdtest::model_gradcheck<M, ClozeCE>(m, batch, dropout, tap_block, 1e-6);
}

}  // namespace

TEST(BERT4RecGrad, Recbole) { bert4rec_gradcheck<bert4rec::RecBole>(0.0); }
TEST(BERT4RecGrad, RecboleDropout) { bert4rec_gradcheck<bert4rec::RecBole>(0.3); }
TEST(BERT4RecGrad, Hf) { bert4rec_gradcheck<bert4rec::Hf>(0.0); }
TEST(BERT4RecGrad, HfDropout) { bert4rec_gradcheck<bert4rec::Hf>(0.3); }
TEST(BERT4RecGrad, RecboleTapBlock0) { bert4rec_gradcheck<bert4rec::RecBole>(0.0, 0); }
TEST(BERT4RecGrad, HfTapBlock1Dropout) { bert4rec_gradcheck<bert4rec::Hf>(0.3, 1); }
TEST(BERT4RecGrad, RecboleTapFinalOutput) { bert4rec_gradcheck<bert4rec::RecBole>(0.0, TapPoint::final_output); }
TEST(BERT4RecGrad, HfTapEmbeddingOutput) { bert4rec_gradcheck<bert4rec::Hf>(0.0, TapPoint::embedding); }
