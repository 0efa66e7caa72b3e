// Tier 1 for BERT4Rec: both variants (recbole: tied softmax over E[0:N] with an output bias and
// the dense/GELU/LN head; hf: token-type row and a separate (N + 1)-column head) against
// central finite differences, with the cloze objective on a batch holding [mask] tokens,
// padded rows, dropout on and off, and taps at a block and at the output.
#include <gtest/gtest.h>

#include <vector>

#include "recdistill/backend/cpu/backend.hpp"
#include "bert4rec_gradcheck.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

TEST(BERT4RecGrad, Recbole) { rdtest::bert4rec_gradcheck<B, bert4rec::RecBole>(0.0); }
TEST(BERT4RecGrad, RecboleDropout) { rdtest::bert4rec_gradcheck<B, bert4rec::RecBole>(0.3); }
TEST(BERT4RecGrad, Hf) { rdtest::bert4rec_gradcheck<B, bert4rec::Hf>(0.0); }
TEST(BERT4RecGrad, HfDropout) { rdtest::bert4rec_gradcheck<B, bert4rec::Hf>(0.3); }
TEST(BERT4RecGrad, RecboleTapBlock0) { rdtest::bert4rec_gradcheck<B, bert4rec::RecBole>(0.0, 0); }
TEST(BERT4RecGrad, HfTapBlock1Dropout) { rdtest::bert4rec_gradcheck<B, bert4rec::Hf>(0.3, 1); }
TEST(BERT4RecGrad, RecboleTapFinalOutput) { rdtest::bert4rec_gradcheck<B, bert4rec::RecBole>(0.0, TapPoint::final_output); }
TEST(BERT4RecGrad, HfTapEmbeddingOutput) { rdtest::bert4rec_gradcheck<B, bert4rec::Hf>(0.0, TapPoint::embedding); }

}  // namespace RD_TEST_FILE
