// The prediction file of active distillation (methods/alkd_predictions.hpp): what the writer
// writes, the reader reads back; malformed files get an error naming file, line and key; and
// the difficulty and candidate rules of specs/active-llm-distillation.md §3.
#include <gtest/gtest.h>

#include <string>

#include "../common/test_util.hpp"
#include "recdistill/methods/alkd_predictions.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using namespace recdistill::alkd;

namespace {

using test::expect_error;

Predictions sample() {
  Predictions p;
  p.header = {2, 6, 3, 4, "teacher/run-1", "student/run-1"};
  Prediction a;
  a.session_id = "17";
  a.target = 5;
  a.window = {0, 1, 1};
  a.teacher_rank = 0;
  a.student_rank = 6;  // the target was in the window: rank n
  a.teacher_top = {5, 2, 3};
  a.student_top = {2, 4, 3};
  a.candidates = prompt_candidates(a.teacher_top, a.target);
  a.difficulty = {-0.25, -0.5, -1.0};
  Prediction b = a;
  b.session_id = "18 \"quoted\"";
  b.target = 4;
  b.candidates = prompt_candidates(b.teacher_top, b.target);
  p.records = {a, b};
  return p;
}

}  // namespace

TEST(AlkdPredictions, WhatIsWrittenReadsBack) {
  const auto p = sample();
  const std::string text = predictions_text(p);
  const auto q = parse_predictions(text, "predictions.jsonl");
  EXPECT_EQ(q.header.sessions, 2);
  EXPECT_EQ(q.header.teacher, "teacher/run-1");
  ASSERT_EQ(q.records.size(), 2u);
  EXPECT_EQ(q.records[1].session_id, "18 \"quoted\"");
  EXPECT_EQ(q.records[0].window, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(q.records[0].student_rank, 6);
  EXPECT_EQ(q.records[1].candidates, (std::vector<int32_t>{5, 2, 4}));  // the target forced into the last slot
  EXPECT_EQ(q.records[0].difficulty.rank_agreement, -1.0);
  EXPECT_EQ(predictions_text(q), text);
}

TEST(AlkdPredictions, MalformedFilesNameFileLineAndKey) {
  const std::string text = predictions_text(sample());
  const auto header_end = text.find('\n') + 1;
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const auto at = t.find(from, header_end);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  expect_error([&] { parse_predictions("", "p.jsonl"); }, {"p.jsonl", "empty"});
  expect_error([&] { parse_predictions("{\"format\": \"x\"}\n", "p.jsonl"); }, {"p.jsonl:1", "key 'format'", "not a predictions file"});
  expect_error([&] { parse_predictions(replace("\"target\": 5", "\"target\": 9"), "p.jsonl"); },
               {"p.jsonl:2", "key 'target'", "[0, 5]", "found 9"});
  expect_error([&] { parse_predictions(replace("\"window\": [0, 1, 1]", "\"window\": []"), "p.jsonl"); },
               {"p.jsonl:2", "key 'window'", "at least 1"});
  expect_error([&] { parse_predictions(replace("\"teacher_rank\": 0, ", ""), "p.jsonl"); },
               {"p.jsonl:2", "missing key 'teacher_rank'"});
  expect_error([&] { parse_predictions(replace("\"candidates\": [5, 2, 3]", "\"candidates\": [1, 2, 3]"), "p.jsonl"); },
               {"p.jsonl:2", "key 'candidates'", "target 5 is not among them"});
  expect_error([&] { parse_predictions(replace("\"rank_agreement\": -1", "\"rank_agreement\": \"x\""), "p.jsonl"); },
               {"p.jsonl:2", "difficulty.rank_agreement", "expected a number"});
  expect_error([&] { parse_predictions(text.substr(0, text.rfind('\n', text.size() - 2) + 1), "p.jsonl"); },
               {"p.jsonl", "promises 2 sessions", "holds 1", "truncated"});
  expect_error([&] { parse_predictions(text + text.substr(header_end, text.find('\n', header_end) + 1 - header_end), "p.jsonl"); },
               {"p.jsonl:4", "more records than the header's 2 sessions"});
  expect_error([&] { parse_predictions(text.substr(0, text.size() - 5), "p.jsonl"); }, {"p.jsonl:3", "invalid JSON"});
}

TEST(AlkdPredictions, DifficultiesAndCandidates) {
  // c_M is the mean of sigmoid over the window's scores; difficulty is its negative.
  EXPECT_DOUBLE_EQ(consistency({0.0f, 0.0f}), 0.5);
  EXPECT_NEAR(consistency({100.0f, -100.0f, 0.0f}), 0.5, 1e-12);
  EXPECT_EQ(consistency({}), 0.0);
  // Overlaps of the prefixes 1, 5, 10, 20: identical lists of 20 give -(1 + 5 + 10 + 20) / 4.
  std::vector<int32_t> a(20);
  for (int i = 0; i < 20; ++i) a[size_t(i)] = i;
  EXPECT_DOUBLE_EQ(rank_agreement_difficulty(a, a), -9.0);
  std::vector<int32_t> b(a.rbegin(), a.rend());  // reversed: overlaps 0, 0, 0, 20
  EXPECT_DOUBLE_EQ(rank_agreement_difficulty(a, b), -5.0);
  EXPECT_EQ(prompt_candidates({3, 4, 5}, 4), (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(prompt_candidates({3, 4, 5}, 9), (std::vector<int32_t>{3, 4, 9}));
}

}  // namespace RD_TEST_FILE
