// Ranks and metrics against hand-computed examples.
#include <gtest/gtest.h>

#include <cmath>

#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/eval/ranking.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill::eval;

TEST(Rank, TiesAreRankedAgainstTheModelByDefault) {
  // Column 0 is the pad and never counts.
  const std::vector<float> s = {100.f, 0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
  EXPECT_EQ(rank_of_target(s.data(), 6, 2, Ties::against_model), 1);
  EXPECT_EQ(rank_of_target(s.data(), 6, 4, Ties::against_model), 5);
  // Items 1, 3, 5 tie at 0.5: against the model each sees the two others as better.
  EXPECT_EQ(rank_of_target(s.data(), 6, 3, Ties::against_model), 4);
  // With index ties, a lower id wins: item 3 is beaten by item 2 and item 1 only.
  EXPECT_EQ(rank_of_target(s.data(), 6, 3, Ties::index), 3);
  EXPECT_EQ(rank_of_target(s.data(), 6, 1, Ties::index), 2);
  const std::vector<float> nan = {0.f, NAN, 1.f};
  EXPECT_EQ(rank_of_target(nan.data(), 3, 1, Ties::against_model), kMissRank);  // a miss
  EXPECT_EQ(rank_of_target(nan.data(), 3, 1, Ties::index), kMissRank);
  // NaN scores of other items (masked items) never count as better.
  const std::vector<float> masked = {0.f, NAN, 0.2f, NAN, 0.1f};
  EXPECT_EQ(rank_of_target(masked.data(), 5, 4, Ties::against_model), 2);
  EXPECT_EQ(rank_of_target(masked.data(), 5, 2, Ties::index), 1);
}

TEST(Rank, AmongSampledNegativesUsesTheSameTieRules) {
  const std::vector<float> s = {0.f, 0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
  EXPECT_EQ(rank_among(s.data(), {1, 4}, 3, Ties::against_model), 2);  // item 1 ties
  EXPECT_EQ(rank_among(s.data(), {1, 4}, 3, Ties::index), 2);          // 1 < 3 wins the tie
  EXPECT_EQ(rank_among(s.data(), {5, 4}, 3, Ties::index), 1);          // 5 > 3 loses it
  EXPECT_EQ(rank_among(s.data(), {2, 5, 4}, 3, Ties::against_model), 3);
}

TEST(Metrics, MatchHandComputedValues) {
  const std::vector<int64_t> ranks = {1, 3, 10, 11};
  const auto m = metrics_from_ranks(ranks, {1, 5, 10});
  EXPECT_DOUBLE_EQ(m.at("HR@1"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("HR@5"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("HR@10"), 0.75);
  EXPECT_NEAR(m.at("NDCG@5"), (1.0 + 1.0 / 2.0) / 4, 1e-15);  // log2(4) = 2
  EXPECT_NEAR(m.at("NDCG@10"), (1.0 + 0.5 + 1.0 / std::log2(11.0)) / 4, 1e-15);
  EXPECT_NEAR(m.at("MRR@10"), (1.0 + 1.0 / 3 + 0.1) / 4, 1e-15);
  EXPECT_DOUBLE_EQ(m.at("MRR@1"), 0.25);
  // One target per case: Recall@K = HR@K, Precision@K = HR@K / K.
  EXPECT_DOUBLE_EQ(m.at("Recall@5"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("Precision@5"), 0.1);
  EXPECT_DOUBLE_EQ(m.at("Precision@10"), 0.075);
  EXPECT_DOUBLE_EQ(m.at("Precision@1"), 0.25);
  EXPECT_EQ(m.size(), 15u);
}

TEST(Metrics, AMissCountsAsZeroForEveryK) {
  const auto m = metrics_from_ranks({kMissRank, 2}, {1000000});
  EXPECT_DOUBLE_EQ(m.at("HR@1000000"), 0.5);
  EXPECT_NEAR(m.at("NDCG@1000000"), 0.5 / std::log2(3.0), 1e-15);
  EXPECT_DOUBLE_EQ(m.at("MRR@1000000"), 0.25);
}

TEST(Metrics, SampledEvaluationRenamesEveryMetric) {
  Options o;
  o.ks = {10};
  EXPECT_EQ(metric_suffix(o), "");
  EXPECT_EQ(protocol_label(o), "full");
  o.sampled_negatives = 100;
  EXPECT_EQ(protocol_label(o), "sampled 100 uniform");
  const auto m = metrics_from_ranks({1, 50}, o);
  EXPECT_EQ(m.count("NDCG@10"), 0u);
  for (const auto& [name, v] : m)
    EXPECT_NE(name.find(" (sampled 100 uniform)"), std::string::npos) << name;
  EXPECT_DOUBLE_EQ(m.at("HR@10 (sampled 100 uniform)"), 0.5);
  o.sampling = Sampling::popularity;
  EXPECT_EQ(metric_suffix(o), " (sampled 100 popularity)");
}

}  // namespace RD_TEST_FILE
