// Tier 4: SASRec learns planted sequential structure, training is deterministic, and
// evaluation does not depend on how cases are batched.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

using test::popularity_hr10;
using test::synthetic;

io::ExperimentConfig small_config(SASRecVariant v) {
  io::ExperimentConfig c;
  c.seed = 7;
  c.sasrec.variant = v;
  c.sasrec.max_len = 20;
  c.sasrec.hidden = 32;
  c.sasrec.layers = 2;
  c.sasrec.heads = 2;
  c.sasrec.inner = 64;
  c.sasrec.hidden_dropout = c.sasrec.attn_dropout = 0.1;
  c.sasrec.ln_eps = v == SASRecVariant::pmixer ? 1e-8 : 1e-12;
  c.training.batch_size = 32;
  c.training.epochs = 20;
  c.training.learning_rate = 3e-3;
  c.training.eval_every = 5;
  c.training.patience = 3;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
  return c;
}

}  // namespace

class Learns : public ::testing::TestWithParam<SASRecVariant> {};

TEST_P(Learns, BeatsPopularityByAWideMargin) {
  const auto data = synthetic(300, 50, 30, 11);
  const double pop = popularity_hr10(data);
  SequentialTrainer<B, float> t(small_config(GetParam()), data::to_split(data));
  const auto res = t.fit();
  const double hr = res.test.at("HR@10");
  std::cout << "popularity HR@10 " << pop << ", SASRec HR@10 " << hr << ", MRR@10 "
            << res.test.at("MRR@10") << " (epoch " << res.best_epoch << ", " << t.num_params()
            << " parameters)\n";
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);  // the chain is followed 80% of the time
}

INSTANTIATE_TEST_SUITE_P(Variants, Learns,
                         ::testing::Values(SASRecVariant::recbole, SASRecVariant::pmixer));

TEST(Training, IsDeterministicForAFixedSeed) {
  const auto data = synthetic(60, 30, 15, 3);
  auto cfg = small_config(SASRecVariant::recbole);
  cfg.training.epochs = 2;
  SequentialTrainer<B, float> a(cfg, data::to_split(data)), b(cfg, data::to_split(data));
  a.fit();
  b.fit();
  EXPECT_EQ(a.params(), b.params());
  // Another thread count draws the same dropout masks and shuffles; only Eigen's
  // multi-threaded GEMM blocks its sums differently, so weights agree to rounding.
  B::set_threads(2);
  SequentialTrainer<B, float> two(cfg, data::to_split(data));
  two.fit();
  B::set_threads(1);
  double worst = 0;
  for (size_t i = 0; i < a.params().size(); ++i)
    worst = std::max(worst, double(std::abs(a.params()[i] - two.params()[i])));
  EXPECT_LT(worst, 1e-5);
  cfg.seed = 8;
  SequentialTrainer<B, float> c(cfg, data::to_split(data));
  c.fit();
  EXPECT_NE(a.params(), c.params());
}

TEST(Evaluation, RanksDoNotDependOnBatching) {
  const auto data = synthetic(300, 40, 12, 5);
  auto cfg = small_config(SASRecVariant::recbole);
  cfg.training.epochs = 1;
  SequentialTrainer<B, float> t(cfg, data::to_split(data));
  t.fit();
  const auto split = data::to_split(data);
  const auto cases = eval_cases(split.test);
  ASSERT_GT(cases.size(), size_t(eval::kEvalBlock) + 10);
  t.visit([&](auto& tr) {
    auto acts = tr.model().make_activations(eval::kEvalBlock);
    const auto all = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, cases);
    // The same cases evaluated in other groupings: a shifted slice and one at a time.
    const std::vector<eval::Case> slice(cases.begin() + 37, cases.end());
    const auto part = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, slice);
    for (size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << i;
    for (size_t i = 0; i < 5; ++i) {
      const auto one = eval::rank_cases<B>(tr.model(), tr.params().data(), acts, {cases[i * 50]});
      EXPECT_EQ(one[0], all[i * 50]);
    }
  });
}

}  // namespace RD_TEST_FILE
