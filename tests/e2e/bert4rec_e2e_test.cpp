// Tier 4 for BERT4Rec: both variants learn planted sequential structure through the cloze
// objective, training is deterministic for a seed, evaluation does not depend on how cases are
// batched; and the cloze batching draws its masks as docs/training.md says.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;
using Bert4RecTrainer = SequentialTrainer<B, float, BERT4RecFamily>;

namespace {

using test::popularity_hr10;
using test::synthetic;

io::BERT4RecExperimentConfig small_config(BERT4RecVariant v) {
  io::BERT4RecExperimentConfig c;
  c.seed = 7;
  c.bert4rec.variant = v;
  c.bert4rec.max_len = 20;
  c.bert4rec.hidden = 32;
  c.bert4rec.layers = 2;
  c.bert4rec.heads = 2;
  c.bert4rec.inner = 64;
  c.bert4rec.hidden_dropout = c.bert4rec.attn_dropout = 0.1;
  // Mask-last rows teach next-item prediction directly; hf's seed default has none (ft 0).
  c.bert4rec.mask_ratio = 0.2;
  c.bert4rec.ft_ratio = v == BERT4RecVariant::hf ? 0.0 : 0.5;
  c.training.batch_size = 16;
  c.training.epochs = 60;
  c.training.learning_rate = 3e-3;
  c.training.eval_every = 5;
  c.training.patience = 3;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
  return c;
}

}  // namespace

class Bert4RecLearns : public ::testing::TestWithParam<BERT4RecVariant> {};

TEST_P(Bert4RecLearns, BeatsPopularityByAWideMargin) {
  const auto data = synthetic(300, 50, 30, 11);
  const double pop = popularity_hr10(data);
  Bert4RecTrainer t(small_config(GetParam()), data::to_split(data));
  const auto res = t.fit();
  const double hr = res.test.at("HR@10");
  std::cout << "popularity HR@10 " << pop << ", BERT4Rec HR@10 " << hr << ", MRR@10 " << res.test.at("MRR@10")
            << " (epoch " << res.best_epoch << ", " << t.num_params() << " parameters, " << t.windows()
            << " windows)\n";
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.5);  // the chain is followed 80% of the time
}

INSTANTIATE_TEST_SUITE_P(Variants, Bert4RecLearns, ::testing::Values(BERT4RecVariant::recbole, BERT4RecVariant::hf));

TEST(Bert4RecTraining, IsDeterministicForAFixedSeed) {
  const auto data = synthetic(60, 30, 15, 3);
  auto cfg = small_config(BERT4RecVariant::recbole);
  cfg.training.epochs = 2;
  Bert4RecTrainer a(cfg, data::to_split(data)), b(cfg, data::to_split(data));
  a.fit();
  b.fit();
  EXPECT_EQ(a.params(), b.params());
  cfg.seed = 8;
  Bert4RecTrainer c(cfg, data::to_split(data));
  c.fit();
  EXPECT_NE(a.params(), c.params());
}

TEST(Bert4RecEvaluation, RanksDoNotDependOnBatching) {
  const auto data = synthetic(300, 40, 12, 5);
  auto cfg = small_config(BERT4RecVariant::hf);
  cfg.training.epochs = 1;
  Bert4RecTrainer t(cfg, data::to_split(data));
  t.fit();
  const auto split = data::to_split(data);  // the cases point into its sequences
  const auto cases = eval_cases(split.test);
  ASSERT_GT(cases.size(), size_t(eval::kEvalBlock) + 10);
  t.visit([&](auto& tr) {
    auto acts = tr.model().make_activations(eval::kEvalBlock);
    const auto all = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, cases);
    const std::vector<eval::Case> slice(cases.begin() + 37, cases.end());
    const auto part = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, slice);
    for (size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << i;
  });
}

// ---- the cloze batching policy ----------------------------------------------------------

namespace {
std::vector<std::vector<int32_t>> sequences(int users, int len) {
  std::vector<std::vector<int32_t>> t(size_t(users) + 1);
  for (int u = 1; u <= users; ++u)
    for (int j = 0; j < len; ++j) t[size_t(u)].push_back(1 + (u * 7 + j) % 40);
  return t;
}
}  // namespace

TEST(ClozeBatching, WindowsCoverEachSequenceFromTheEnd) {
  ClozeBatching::Masking m;
  const auto train = sequences(2, 23);
  const auto w10 = ClozeBatching(10, 0, false, m).rows(train);  // stride L
  ASSERT_EQ(w10.size(), 6u);
  EXPECT_EQ(w10[0].begin, 13);
  EXPECT_EQ(w10[0].len, 10);
  EXPECT_EQ(w10[2].begin, 0);
  EXPECT_EQ(w10[2].len, 3);
  const auto w1 = ClozeBatching(10, 1, false, m).rows(train);  // a window ending at every item
  EXPECT_EQ(w1.size(), 2u * 23);
}

TEST(ClozeBatching, MasksFollowTheRatiosAndRecBolesRules) {
  const int L = 50;
  ClozeBatching::Masking m;
  m.mask_id = 99;
  m.mask_ratio = 0.2;
  m.ft_ratio = 0.5;
  m.max_targets = 10;
  m.first_slot_untargeted = true;
  const ClozeBatching cb(L, 0, false, m);
  const auto train = sequences(400, 60);
  const auto rows = cb.rows(train);
  std::vector<int32_t> seq(L), tgt(L);
  int mask_last = 0, cloze = 0;
  double masked = 0, real = 0;
  for (uint32_t r = 0; r < rows.size(); ++r) {
    cb.layout(seq.data(), tgt.data(), train[size_t(rows[r].user)], rows[r], cb.mask_last(42, 3, 0, r), 42, 3, r);
    int n_mask = 0, n_tgt = 0;
    for (int j = 0; j < L; ++j) {
      if (seq[size_t(j)] == 99) ++n_mask;
      if (tgt[size_t(j)] != 0) {
        ++n_tgt;
        EXPECT_EQ(seq[size_t(j)], 99) << "a target sits on a [mask]";
        EXPECT_EQ(tgt[size_t(j)], train[size_t(rows[r].user)][size_t(rows[r].begin + j)]);
      }
    }
    EXPECT_EQ(tgt[0], 0) << "slot 0 never carries a target";
    EXPECT_LE(n_tgt, 10);
    const int len = rows[r].len;
    if (n_mask == 1 && seq[size_t(len - 1)] == 99 && tgt[size_t(len - 1)] != 0 && n_tgt == 1) ++mask_last;
    else {
      ++cloze;
      masked += n_mask;
      real += len;
    }
    for (int j = len; j < L; ++j) EXPECT_EQ(seq[size_t(j)], 0) << "pads stay pads";
  }
  // ~half the rows mask-last; ~20% of cloze slots masked (800 rows: loose bounds, 5+ sigma).
  EXPECT_NEAR(double(mask_last) / double(rows.size()), 0.5, 0.1);
  EXPECT_NEAR(masked / real, 0.2, 0.02);
  // Masks are a function of (seed, epoch, row): the same call gives the same row, another epoch another.
  std::vector<int32_t> a(L), b(L), ta(L), tb(L);
  cb.layout(a.data(), ta.data(), train[1], rows[0], cb.mask_last(42, 3, 0, 0), 42, 3, 0);
  cb.layout(b.data(), tb.data(), train[1], rows[0], cb.mask_last(42, 3, 0, 0), 42, 3, 0);
  EXPECT_EQ(a, b);
  int differ = 0;
  for (uint32_t e = 4; e < 14; ++e) {
    cb.layout(b.data(), tb.data(), train[1], rows[0], cb.mask_last(42, e, 0, 0), 42, e, 0);
    differ += a != b;
  }
  EXPECT_GT(differ, 5);
}

// model.mask_last_draw: batch (RecBole's MaskItemSequence) makes every row of a step the same
// kind, mask-last in about ft_ratio of the steps; row draws each row on its own.
TEST(ClozeBatching, MaskLastDrawnPerBatchMakesWholeStepsOneKind) {
  const auto train = sequences(64, 30);
  const auto kinds_of_steps = [&](MaskLastDraw draw) {
    BERT4RecConfig c = small_config(BERT4RecVariant::recbole).bert4rec;  // L 20, ft_ratio 0.5
    c.n_items = 41;
    c.mask_ratio = 0.9;  // so no cloze row looks like a mask-last one (one [mask], on its newest item)
    c.mask_last_draw = draw;
    const BERT4Rec<B, float> model(c);
    const ClozeBatching cb = model.batching(0);
    const auto rows = cb.rows(train);
    std::vector<uint32_t> ids(rows.size());
    for (uint32_t i = 0; i < ids.size(); ++i) ids[i] = i;
    SeqBatch<B> batch(16, c.max_len);
    int all_last = 0, none_last = 0, mixed = 0;
    const int steps = 200;
    for (uint32_t step = 0; step < uint32_t(steps); ++step) {
      cb.fill(batch, train, rows, ids.data() + (step * 16) % (ids.size() - 16), 16, StepContext{9, 2, step, 0});
      int last = 0;  // rows whose only [mask] is on their newest item
      for (int i = 0; i < 16; ++i) {
        const int32_t* s = batch.seq_host.data() + size_t(i) * size_t(c.max_len);
        int newest = c.max_len - 1;
        while (newest > 0 && s[newest] == 0) --newest;
        last += std::count(s, s + c.max_len, 41) == 1 && s[newest] == 41;
      }
      (last == 16 ? all_last : last == 0 ? none_last : mixed) += 1;
    }
    return std::array<int, 3>{all_last, none_last, mixed};
  };
  const auto per_batch = kinds_of_steps(MaskLastDraw::batch);
  EXPECT_EQ(per_batch[2], 0) << "a step mixes mask-last and cloze rows";
  EXPECT_NEAR(per_batch[0] / 200.0, 0.5, 0.15);  // 200 steps: > 4 sigma
  const auto per_row = kinds_of_steps(MaskLastDraw::row);
  EXPECT_GT(per_row[2], 190) << "per-row draws should mix kinds in nearly every step of 16 rows";
}

}  // namespace RD_TEST_FILE
