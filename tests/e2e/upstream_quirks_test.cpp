// The model-level switches of upstream ALKDRec's quirks (specs/active-llm-distillation.md §9):
//   Q1 model.legacy_pad_zero: item 0's input row is the pad row (equal at init, never trained)
//   Q2 the same key: evaluation also excludes item 0 when the window is padded
//   Q3 the same key: the prediction step never excludes item 0
//   Q4 model.legacy_stamp_tables: STAMP scores one extra row that is no item, and item 0's
//      output row is never trained
//   Q5 model.train_mode_queries: Atten-Mixer's queries run in train mode against the
//      dropped-out, normalised output rows
// Each test shows the switch changes what it names and, off, leaves today's behaviour.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../common/sessions.hpp"
#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

using test::error_of;
using test::planted_sessions;
constexpr int32_t kItemZero = 1;  // item_index 0 (data/sessions.hpp: id = item_index + 1)

template <class C>
void quick_training(C& c) {
  c.seed = 3;
  c.session.hidden = 8;
  c.session.max_len = 10;
  c.session.rows = SessionRows::last;
  c.training.batch_size = 64;
  c.training.schedule = "iterations";
  c.training.steps_per_epoch = 5;
  c.training.epochs = 3;
  c.training.learning_rate = 1e-2;
  c.training.patience = 100;
  c.eval.ks = {10};
  c.training.valid_metric = "HR@10";
}

io::FPMCExperimentConfig fpmc_cfg(bool legacy) {
  io::FPMCExperimentConfig c;
  c.session.variant = FPMCVariant::session;
  c.session.legacy_pad_zero = legacy;
  quick_training(c);
  return c;
}
io::STAMPExperimentConfig stamp_cfg(bool legacy_pad, bool legacy_tables) {
  io::STAMPExperimentConfig c;
  c.session.variant = STAMPVariant::alkdrec_simplified;
  c.session.loss = SessionLoss::inbatch_bpr;
  c.session.legacy_pad_zero = legacy_pad;
  c.session.legacy_stamp_tables = legacy_tables;
  quick_training(c);
  return c;
}
io::AttenMixerExperimentConfig attmix_cfg(bool legacy, bool train_mode_queries = false) {
  io::AttenMixerExperimentConfig c;
  c.session.variant = AttenMixerVariant::alkdrec;
  c.session.intent_levels = 10;
  c.session.heads = 2;
  c.session.lp_exponent = 1;
  c.session.legacy_pad_zero = legacy;
  c.session.train_mode_queries = train_mode_queries;
  quick_training(c);
  return c;
}

// Row r of the named tensor (d wide) of a trainer's parameters.
template <class Tr>
std::vector<float> row_of(Tr& t, const char* tensor, int r) {
  const auto& info = t.visit([](auto& tr) -> const ParamLayout& { return tr.model().layout(); }).find(tensor);
  const int d = info.shape[1];
  const float* p = t.params().data() + info.offset + size_t(r) * size_t(d);
  return std::vector<float>(p, p + d);
}

// Q1: with the switch, item 0's input row starts as the pad row and neither ever moves, though
// item 0 occurs in the training sessions; without it, item 0's row trains.
template <class Family, class Config>
void item_zero_reads_the_frozen_pad_row(const Config& on, const Config& off, const char* table) {
  const auto split = planted_sessions(400, 50, 7);
  size_t uses = 0;
  for (const auto& s : split.train)
    for (int32_t it : s) uses += it == kItemZero;
  ASSERT_GT(uses, 20u) << "the planted sessions must use item 0";

  SequentialTrainer<B, float, Family> t(on, split);
  const auto pad0 = row_of(t, table, 0), item0 = row_of(t, table, kItemZero), item1 = row_of(t, table, 2);
  EXPECT_EQ(pad0, item0);
  t.fit();
  EXPECT_EQ(row_of(t, table, 0), pad0);
  EXPECT_EQ(row_of(t, table, kItemZero), item0);
  EXPECT_NE(row_of(t, table, 2), item1) << "the other items' rows train";

  SequentialTrainer<B, float, Family> u(off, split);
  const auto before = row_of(u, table, kItemZero);
  u.fit();
  EXPECT_NE(row_of(u, table, kItemZero), before) << "without the switch item 0's input row trains";
}

}  // namespace

TEST(LegacyPadZero, FpmcItemZeroReadsTheZeroFrozenPadRow) {
  item_zero_reads_the_frozen_pad_row<FPMCFamily>(fpmc_cfg(true), fpmc_cfg(false), "item_embedding");
  SequentialTrainer<B, float, FPMCFamily> t(fpmc_cfg(true), planted_sessions(50, 10, 1));
  for (float x : row_of(t, "item_embedding", kItemZero)) EXPECT_EQ(x, 0.0f);
}
TEST(LegacyPadZero, StampItemZeroReadsTheRandomFrozenPadRow) {
  item_zero_reads_the_frozen_pad_row<STAMPFamily>(stamp_cfg(true, false), stamp_cfg(false, false), "item_embedding");
}
TEST(LegacyPadZero, AttenMixerItemZeroReadsTheRandomFrozenPadRow) {
  item_zero_reads_the_frozen_pad_row<AttenMixerFamily>(attmix_cfg(true), attmix_cfg(false), "LI.weight");
}

// Q2 and Q3: which cases count item 0 as excluded. Target item 0 after a short window without
// it (padded), after a full window without it, and after a window holding it.
TEST(LegacyPadZero, EvaluationExcludesItemZeroWhenPaddedAndPredictionNever) {
  auto split = planted_sessions(200, 20, 5);
  const std::vector<int32_t> shorter = {5, 6, 7}, full = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, holding = {5, kItemZero, 6};
  std::vector<eval::Case> cases;
  for (const auto* h : {&shorter, &full, &holding}) cases.push_back({h->data(), h->size(), kItemZero, 1});
  const auto miss = [](int64_t r) { return r == eval::kMissRank; };

  for (bool legacy : {false, true}) {
    auto c = stamp_cfg(legacy, false);
    c.eval.exclude = eval::Exclude::window;
    SequentialTrainer<B, float, STAMPFamily> t(c, split);
    const auto ranks = t.rank(cases);
    EXPECT_EQ(miss(ranks[0]), legacy) << "padded window, legacy " << legacy;
    EXPECT_FALSE(miss(ranks[1])) << "full window, legacy " << legacy;
    EXPECT_TRUE(miss(ranks[2])) << "the target in the window, legacy " << legacy;
    const auto [pranks, top] = t.visit([&](auto& tr) { return tr.rank_and_topk(cases, 5, WindowUse::prediction); });
    EXPECT_FALSE(miss(pranks[0]));
    EXPECT_FALSE(miss(pranks[1]));
    EXPECT_EQ(miss(pranks[2]), !legacy) << "the prediction step never excludes item 0 under legacy";
  }
}

// Q4: one more scored row than ids, never trained, and it competes in the ranks: set equal to
// the target's row it ties with it (ties count against the target); set to NaN (a score that
// never counts as better) it does not.
TEST(LegacyStampTables, AnExtraScoredRowThatCompetesAndFrozenItemZeroOutput) {
  const auto split = planted_sessions(400, 50, 7);
  SequentialTrainer<B, float, STAMPFamily> plain(stamp_cfg(false, false), split);
  SequentialTrainer<B, float, STAMPFamily> t(stamp_cfg(false, true), split);
  const int N = split.n_items, d = 8;
  EXPECT_EQ(t.num_params(), plain.num_params() + size_t(d));
  const Scorer s = t.visit([](auto& tr) { return tr.model().scorer(); });
  EXPECT_EQ(s.n_items, N + 1);
  const auto extra = row_of(t, "item_output", N), out0 = row_of(t, "item_output", kItemZero);
  t.fit();
  EXPECT_EQ(row_of(t, "item_output", N), extra) << "in-batch BPR never trains the extra row";
  EXPECT_EQ(row_of(t, "item_output", kItemZero), out0) << "item 0's output row is upstream's padding_idx row";

  const std::vector<int32_t> h = {3, 4, 5};
  const int32_t target = 9;
  const std::vector<eval::Case> one = {{h.data(), h.size(), target, 1}};
  float* table = t.params().data() + s.table;
  std::copy(table + size_t(target) * d, table + size_t(target + 1) * d, table + size_t(N) * d);
  const int64_t tied = t.rank(one)[0];
  std::fill(table + size_t(N) * d, table + size_t(N + 1) * d, std::numeric_limits<float>::quiet_NaN());
  const int64_t below = t.rank(one)[0];
  EXPECT_EQ(tied, below + 1);
}

// Q5: train-mode queries score differently from eval mode, the same way every time.
TEST(TrainModeQueries, AttenMixerRanksWithDroppedOutNormalisedScoresDeterministically) {
  const auto split = planted_sessions(300, 50, 9);
  SequentialTrainer<B, float, AttenMixerFamily> eval_mode(attmix_cfg(false, false), split);
  eval_mode.fit();
  SequentialTrainer<B, float, AttenMixerFamily> train_mode(attmix_cfg(false, true), split);
  train_mode.params() = eval_mode.params();
  const Scorer s = train_mode.visit([](auto& tr) { return tr.model().scorer(); });
  EXPECT_TRUE(s.normalise_rows);
  EXPECT_DOUBLE_EQ(s.row_dropout, 0.1);
  const auto cases = eval_cases(split.test, &split.train);
  const auto a = eval_mode.rank(cases), b = train_mode.rank(cases), b2 = train_mode.rank(cases);
  EXPECT_EQ(b, b2);
  EXPECT_NE(a, b);
}

// compat: upstream_compat sets the switches for ALKDRec's variants only; a RecBole variant under
// the preset keeps them off (the preset is not the user's choice), and one the user wrote is kept.
TEST(UpstreamQuirkKeys, ThePresetSetsThemForAlkdrecsVariantsOnly) {
  auto parse = [](const std::string& text) {
    STAMPConfig c = io::parse_config<io::STAMPExperimentConfig>(io::ConfigLayers{{{"stamp.yaml", text}}, {}}).session;
    c.n_items = 10;  // from the data, in a run
    return c;
  };
  const auto alkd = parse("compat: upstream_compat\nmodel: {model_name: STAMP}\n");
  EXPECT_EQ(alkd.variant, STAMPVariant::alkdrec_simplified);
  EXPECT_TRUE(alkd.legacy_pad_zero);
  EXPECT_TRUE(alkd.legacy_stamp_tables);
  const auto rb = parse("compat: upstream_compat\nmodel: {model_name: STAMP, variant: recbole}\n");
  EXPECT_FALSE(rb.legacy_pad_zero);
  EXPECT_FALSE(rb.legacy_stamp_tables);
  EXPECT_NO_THROW(rb.validate());
  const auto ref = parse("model: {model_name: STAMP, variant: alkdrec_simplified}\n");
  EXPECT_FALSE(ref.legacy_pad_zero);
  EXPECT_FALSE(ref.legacy_stamp_tables);
  const auto asked = parse("model: {model_name: STAMP, variant: recbole, legacy_pad_zero: true}\n");
  EXPECT_TRUE(asked.legacy_pad_zero);
  EXPECT_NE(error_of([&] { asked.validate(); }).find("model.legacy_pad_zero: upstream's pad/item-0 collision belongs"),
            std::string::npos);
  const auto am = io::parse_config<io::AttenMixerExperimentConfig>(
      io::ConfigLayers{{{"am.yaml", "compat: upstream_compat\nmodel: {model_name: AttenMixer, variant: official}\n"}}, {}});
  EXPECT_FALSE(am.session.legacy_pad_zero);
  const auto fp = io::parse_config<io::FPMCExperimentConfig>(
      io::ConfigLayers{{{"fpmc.yaml", "compat: upstream_compat\nmodel: {model_name: FPMC}\n"}}, {}});
  EXPECT_EQ(fp.session.variant, FPMCVariant::session);
  EXPECT_TRUE(fp.session.legacy_pad_zero);
}

// The switches belong to ALKDRec's variants: given for RecBole's (or official) they are refused.
TEST(UpstreamQuirkKeys, RefusedForVariantsThatAreNotAlkdrecs) {
  FPMCConfig f;
  f.variant = FPMCVariant::recbole;
  f.n_users = 10;
  f.max_len = 1;
  f.loss = FPMCLoss::bpr;
  f.n_items = 10;
  f.legacy_pad_zero = true;
  EXPECT_NE(error_of([&] { f.validate(); }).find("model.legacy_pad_zero: upstream's"), std::string::npos);
  STAMPConfig s;
  s.n_items = 10;
  s.legacy_stamp_tables = true;
  EXPECT_NE(error_of([&] { s.validate(); }).find("model.legacy_stamp_tables: upstream's extra output row"), std::string::npos);
  s.variant = STAMPVariant::alkdrec_simplified;
  s.loss = SessionLoss::ce;
  EXPECT_NE(error_of([&] { s.validate(); }).find("would train its extra row"), std::string::npos);
  s.loss = SessionLoss::inbatch_bpr;
  EXPECT_NO_THROW(s.validate());
  AttenMixerConfig a;
  a.n_items = 10;
  a.train_mode_queries = true;
  EXPECT_NE(error_of([&] { a.validate(); }).find("model.train_mode_queries: upstream's"), std::string::npos);
}

}  // namespace RD_TEST_FILE
