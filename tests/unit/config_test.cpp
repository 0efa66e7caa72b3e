// The YAML config: keys of the seed README, strict checking, overrides.
#include <gtest/gtest.h>

#include "recdistill/io/config.hpp"

using namespace recdistill;

namespace {
io::ExperimentConfig parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  YAML::Node root = YAML::Load(text);
  for (const auto& s : sets) io::apply_override(root, s);
  return io::parse_config(root, "exp.yaml");
}
std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    parse(text, sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, ReadsTheSeedKeys) {
  const auto c = parse(
      "seed: 42\nexperiment_name: x\nmodel:\n  model_name: SASRec\n  maxlen: 50\n"
      "  hidden_units: 128\n  num_blocks: 4\n  num_heads: 2\n  dropout_rate: 0.3\n"
      "  initializer_range: 0.02\n  add_head: true\n  item_num: 0\n  user_num: 0\n"
      "training:\n  batch_size: 256\n  epochs: 25\n  learning_rate: 0.0005\n  eval_every: 1\n"
      "  model_dir: models/\n");
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.sasrec.hidden, 128);
  EXPECT_EQ(c.sasrec.layers, 4);
  EXPECT_EQ(c.sasrec.inner, 512);  // 4d unless model.inner_size is given
  EXPECT_DOUBLE_EQ(c.sasrec.hidden_dropout, 0.3);
  EXPECT_DOUBLE_EQ(c.sasrec.attn_dropout, 0.3);
  EXPECT_EQ(c.training.batch_size, 256);
  EXPECT_DOUBLE_EQ(c.training.learning_rate, 0.0005);
}

TEST(Config, UnknownKeysAndBadValuesNameFileLineAndKey) {
  auto msg = error_of("model:\n  hiden_units: 64\n");
  EXPECT_NE(msg.find("exp.yaml:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key 'model.hiden_units'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_units"), std::string::npos) << msg;  // lists the known keys
  msg = error_of("trainig:\n  epochs: 3\n");
  EXPECT_NE(msg.find("unknown top-level key 'trainig'"), std::string::npos) << msg;
  msg = error_of("training:\n  epochs: many\n");
  EXPECT_NE(msg.find("training.epochs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'many'"), std::string::npos) << msg;
  msg = error_of("model:\n  dropout_rate: 1.5\n");
  EXPECT_NE(msg.find("model.dropout_rate"), std::string::npos) << msg;
  msg = error_of("model:\n  variant: bert\n");
  EXPECT_NE(msg.find("recbole, pmixer"), std::string::npos) << msg;
  msg = error_of("training:\n  valid_metric: NDCG@50\n");
  EXPECT_NE(msg.find("NDCG@50"), std::string::npos) << msg;
  msg = error_of("model:\n  hidden_units: 30\n  num_heads: 4\n");
  EXPECT_NE(msg.find("divisible"), std::string::npos) << msg;
  msg = error_of("model:\n  weighting_scheme: mean\n");
  EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
}

TEST(Config, OverridesWinOverTheFile) {
  const auto c = parse("training:\n  epochs: 25\n", {"training.epochs=3", "model.variant=pmixer"});
  EXPECT_EQ(c.training.epochs, 3);
  EXPECT_EQ(c.sasrec.variant, SASRecVariant::pmixer);
  EXPECT_DOUBLE_EQ(c.sasrec.ln_eps, 1e-8);  // pmixer's default eps
  EXPECT_NE(error_of("", {"training.epochz=3"}).find("training.epochz"), std::string::npos);
  EXPECT_THROW(io::apply_override(*new YAML::Node(), "noequals"), Error);
}
