#include <gtest/gtest.h>

#include "recdistill/core/random.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(Philox, KnownAnswers) {
  auto r = Philox::block({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
  r = Philox::block({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                    {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(r[0], 0x408f276du);
  EXPECT_EQ(r[1], 0x41c83b0eu);
  EXPECT_EQ(r[2], 0xa20bc7c6u);
  EXPECT_EQ(r[3], 0x6d5451fdu);
}

TEST(Philox, UniformsAreInRangeAndStreamsDiffer) {
  double sum = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    auto u = uniform4(7, Stream::dropout, 0, 0, i, 0);
    for (float v : u) {
      ASSERT_GE(v, 0.0f);
      ASSERT_LT(v, 1.0f);
      sum += v;
    }
  }
  EXPECT_NEAR(sum / 4000, 0.5, 0.02);
  EXPECT_NE(bits4(7, Stream::dropout, 0, 0, 0, 0), bits4(7, Stream::shuffling, 0, 0, 0, 0));
}

}  // namespace RD_TEST_FILE
