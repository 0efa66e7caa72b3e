// Active distillation's rows and fine-tuning split (methods/alkd_distill.hpp, spec §6.1): the
// reference rows (one per validated item, alpha by raw position), upstream's duplicated rows,
// the teacher-only rows, and the split the student is fine-tuned on (one training sequence per
// row, its weight and session as annotations, the evaluation cases kept).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "recdistill/methods/alkd_distill.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::alkd;

namespace {

std::vector<int64_t> full_list() {
  std::vector<int64_t> v(25);
  std::iota(v.begin(), v.end(), 100);
  return v;
}

double units(const std::vector<DistillRow>& rows) {
  double u = 0;
  for (const auto& r : rows) u += r.weight;
  return u;
}

}  // namespace

TEST(AlkdDistill, ReferenceRowsCarryAlphaByRawPosition) {
  const auto raw = full_list();
  std::vector<DistillRow> rows;
  add_answer_rows(rows, 7, {3, 4}, validate_answer(raw, 200, -1), raw, 200, false);
  ASSERT_EQ(rows.size(), 25u);
  EXPECT_EQ(units(rows), 45.0);  // 5 x 3 + 10 x 2 + 10 x 1
  EXPECT_EQ(rows[0].weight, 3.0f);
  EXPECT_EQ(rows[4].weight, 3.0f);
  EXPECT_EQ(rows[5].weight, 2.0f);
  EXPECT_EQ(rows[14].weight, 2.0f);
  EXPECT_EQ(rows[15].weight, 1.0f);
  EXPECT_EQ(rows[0].item, 101);  // item index 100 -> internal id 101
  EXPECT_EQ(rows[0].window, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(rows[0].session, 7);
}

TEST(AlkdDistill, RepeatsAndOutOfRangeIdsGiveNoReferenceRowButKeepRawPositions) {
  auto raw = full_list();
  raw[1] = raw[0];   // a repeat: dropped, the later items keep their raw positions
  raw[6] = 9258;     // out of range for 200 items
  std::vector<DistillRow> rows;
  add_answer_rows(rows, 1, {0}, validate_answer(raw, 200, -1), raw, 200, false);
  ASSERT_EQ(rows.size(), 23u);
  EXPECT_EQ(rows[1].item, 103);     // raw position 2
  EXPECT_EQ(rows[1].weight, 3.0f);
  EXPECT_EQ(units(rows), 45.0 - 3 - 2);
}

TEST(AlkdDistill, LegacyRowsDuplicateByPositionWithoutDeduplication) {
  auto raw = full_list();
  std::vector<DistillRow> rows;
  add_answer_rows(rows, 1, {0}, validate_answer(raw, 200, -1), raw, 200, true);
  EXPECT_EQ(rows.size(), 47u);  // entries 0-5: 3 copies, 6-15: 2, 16-24: 1
  for (const auto& r : rows) EXPECT_EQ(r.weight, 1.0f);
  raw[1] = raw[0];
  rows.clear();
  add_answer_rows(rows, 1, {0}, validate_answer(raw, 200, -1), raw, 200, true);
  EXPECT_EQ(rows.size(), 47u);  // the repeat is kept
}

TEST(AlkdDistill, AnEmptyAnswerGivesNoRows) {
  std::vector<DistillRow> rows;
  add_answer_rows(rows, 1, {0}, validate_answer({}, 200, -1), {}, 200, false);
  EXPECT_TRUE(rows.empty());
}

TEST(AlkdDistill, TeacherOnlyRowsHaveWeightOne) {
  std::vector<DistillRow> rows;
  add_teacher_rows(rows, 2, {5}, {9, 8, 7});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].item, 8);
  EXPECT_EQ(units(rows), 3.0);
}

TEST(AlkdDistill, SplitHasOneSequencePerRowAndKeepsTheCases) {
  data::Split base;
  base.protocol = "session";
  base.n_items = 11;
  base.n_users = 4;
  base.train = {{}, {1, 2, 3}, {4, 5}, {6, 7}};
  base.valid = {{2, {4}, 5}};
  base.test = {{3, {6}, 7}};
  const std::vector<DistillRow> rows = {{1, {1, 2}, 9, 3}, {1, {1, 2}, 10, 2}, {2, {4}, 9, 1}};
  const auto masked = distill_split(base, rows, true);
  ASSERT_EQ(masked.train.size(), 4u);
  EXPECT_TRUE(masked.train[0].empty());
  EXPECT_EQ(masked.train[1], (std::vector<int32_t>{1, 2, 9}));
  EXPECT_EQ(masked.train[3], (std::vector<int32_t>{4, 9}));
  EXPECT_EQ(masked.train_weight, (std::vector<float>{0, 3, 2, 1}));
  EXPECT_EQ(masked.train_group, (std::vector<int32_t>{0, 1, 1, 2}));  // rows of one session share a group
  EXPECT_EQ(masked.valid, base.valid);
  EXPECT_EQ(masked.test, base.test);
  const auto unmasked = distill_split(base, rows, false);
  EXPECT_EQ(unmasked.train_group, (std::vector<int32_t>{0, 1, 2, 3}));  // every row its own group
  EXPECT_THROW(distill_split(base, {}, true), Error);
  EXPECT_THROW(distill_split(base, {{1, {1}, 11, 1}}, true), Error);  // item outside 1..10
  EXPECT_THROW(distill_split(base, {{1, {1}, 5, 0}}, true), Error);   // weight must be > 0
}

}  // namespace RD_TEST_FILE
