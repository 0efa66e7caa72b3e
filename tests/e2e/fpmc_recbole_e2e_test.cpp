// Tier 4 for FPMC's `recbole` variant: through SequentialTrainer<FPMCFamily> with RecBole's
// protocol (leave-one-out, every prefix a training row, bpr with one uniform negative), it learns
// a planted Markov chain (the last-item term) and planted user tastes (the user term: without
// the user factor the tastes are lost); training is deterministic for a seed, evaluation does
// not depend on how cases are batched, and a run resumed from its checkpoint ends bit for bit
// where an uninterrupted one does.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "../common/resume.hpp"
#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

io::FPMCExperimentConfig recbole_config(const data::Split& split) {
  io::FPMCExperimentConfig c;
  c.seed = 5;
  c.session.variant = FPMCVariant::recbole;
  c.session.n_users = split.n_users;
  c.session.max_len = 1;
  c.session.rows = SessionRows::prefixes;
  c.session.loss = FPMCLoss::bpr;
  c.session.hidden = 16;
  c.training.batch_size = 64;
  c.training.epochs = 30;
  c.training.learning_rate = 1e-2;
  c.training.patience = 5;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
  return c;
}

// Users with a taste: each draws `length` items uniformly (in random order) from its own random
// set of `taste` items out of `n_items`, so the last item says little and the user a lot.
data::Split taste_split(int n_users, int n_items, int taste, int length, unsigned seed) {
  std::mt19937 g(seed);
  data::UserSequences s;
  s.n_items = n_items + 1;
  s.n_users = n_users + 1;
  s.items.resize(size_t(n_users) + 1);
  std::vector<int32_t> all(static_cast<size_t>(n_items));
  for (int i = 0; i < n_items; ++i) all[size_t(i)] = i + 1;
  for (int u = 1; u <= n_users; ++u) {
    std::shuffle(all.begin(), all.end(), g);
    std::uniform_int_distribution<int> pick(0, taste - 1);
    for (int t = 0; t < length; ++t) s.items[size_t(u)].push_back(all[size_t(pick(g))]);
  }
  return data::to_split(data::split_leave_one_out(s));
}

double popularity_hr10(const data::Split& s) {
  std::vector<double> count(size_t(s.n_items), 0.0);
  for (const auto& seq : s.train)
    for (int32_t j : seq) count[size_t(j)] += 1;
  std::vector<int64_t> ranks;
  for (const auto& c : s.test)
    ranks.push_back(eval::rank_of_target(count.data(), s.n_items, c.target, eval::Ties::against_model));
  return eval::metrics_from_ranks(ranks, {10}).at("HR@10");
}

}  // namespace

// The successor of each user's last item follows it 80% of the time (test_util's synthetic
// data): the last-item term LI . IL learns the chain.
TEST(FpmcRecboleLearns, APlantedMarkovChain) {
  const auto split = data::to_split(test::synthetic(300, 40, 20, 11));
  const double pop = popularity_hr10(split);
  SequentialTrainer<B, float, FPMCFamily> t(recbole_config(split), split);
  EXPECT_EQ(t.num_params(), size_t(split.n_users + 3 * split.n_items) * 16);
  EXPECT_EQ(t.windows(), size_t(300 * 17));  // 18 training items a user: 17 prefix rows
  const auto res = t.fit();
  const double hr = res.test.at("HR@10");
  std::cout << "FPMC recbole, Markov chain: HR@10 " << hr << " (popularity " << pop << ", epoch " << res.best_epoch
            << ")\n";
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, 0.6);
}

// Tastes: the user term UI . IU carries them; with the user table zeroed the model ranks worse.
TEST(FpmcRecboleLearns, PlantedUserTastes) {
  const auto split = taste_split(300, 60, 8, 20, 7);
  const double pop = popularity_hr10(split);
  SequentialTrainer<B, float, FPMCFamily> t(recbole_config(split), split);
  const auto res = t.fit();
  const double hr = res.test.at("HR@10");
  double hr_no_user = 0;
  t.visit([&](auto& tr) {
    if constexpr (std::is_same_v<std::decay_t<decltype(tr.model())>, FPMCRecBole<B>>) {
      std::vector<float> p(tr.params().size());
      B::to_host<float>(p.data(), tr.params().data(), p.size());
      const auto& ui = tr.model().layout().infos()[0];
      ASSERT_EQ(ui.name, "UI_emb.weight");
      std::fill(p.begin() + long(ui.offset), p.begin() + long(ui.offset + ui.size), 0.0f);
      auto acts = tr.model().make_activations(eval::kEvalBlock);
      const auto ranks = eval::rank_cases<B>(tr.model(), p.data(), acts, eval_cases(split.test));
      hr_no_user = eval::metrics_from_ranks(ranks, {10}).at("HR@10");
    } else {
      FAIL() << "the recbole variant's trainer was not chosen";
    }
  });
  std::cout << "FPMC recbole, user tastes: HR@10 " << hr << " (without the user factor " << hr_no_user
            << ", popularity " << pop << ")\n";
  EXPECT_GT(hr, 2.0 * pop);
  EXPECT_GT(hr, hr_no_user + 0.1);
}

TEST(FpmcRecboleTraining, IsDeterministicForAFixedSeed) {
  const auto split = data::to_split(test::synthetic(100, 30, 12, 3));
  auto cfg = recbole_config(split);
  cfg.training.epochs = 2;
  SequentialTrainer<B, float, FPMCFamily> a(cfg, split), b(cfg, split);
  a.fit();
  b.fit();
  EXPECT_EQ(a.params(), b.params());
  cfg.seed = 6;
  SequentialTrainer<B, float, FPMCFamily> c(cfg, split);
  c.fit();
  EXPECT_NE(a.params(), c.params());
}

TEST(FpmcRecboleTraining, TheUserTableMustBeTheData) {
  const auto split = data::to_split(test::synthetic(100, 30, 12, 3));
  auto cfg = recbole_config(split);
  cfg.session.n_users = 944;
  EXPECT_NE(test::error_of([&] { SequentialTrainer<B, float, FPMCFamily> t(cfg, split); })
                .find("the data has 100 users, so model.n_users must be 101"),
            std::string::npos);
}

TEST(FpmcRecboleEvaluation, RanksDoNotDependOnBatching) {
  const auto split = data::to_split(test::synthetic(400, 30, 12, 5));
  auto cfg = recbole_config(split);
  cfg.training.epochs = 1;
  SequentialTrainer<B, float, FPMCFamily> t(cfg, split);
  t.fit();
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

// An interrupted run resumed from latest.ckpt ends with the same weights, bit for bit, as an
// uninterrupted one (the negatives are drawn per step, so the resume point must not matter).
TEST(FpmcRecboleResume, BitForBit) {
  B::set_threads(1);
  const auto split = data::to_split(test::synthetic(150, 30, 12, 4));
  auto cfg = recbole_config(split);
  cfg.training.epochs = 5;
  cfg.training.eval_every = 2;
  cfg.training.patience = 100;
  test::expect_resume_bit_for_bit([&] { return SequentialTrainer<B, float, FPMCFamily>(cfg, split); }, 3);
}

}  // namespace RD_TEST_FILE
