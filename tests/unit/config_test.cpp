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

// The effective config lists every settable key with its resolved value and reads back to the
// same config (so a saved config.yaml reproduces the run), defaults included.
TEST(Config, EffectiveConfigReadsBackToTheSameConfig) {
  for (const std::string& text :
       {std::string("seed: 3\n"),
        std::string("seed: 9\nmodel: {variant: pmixer, hidden_units: 48, num_heads: 3, dropout_rate: 0.2}\n"
                    "training: {grad_clip_norm: 0.5, valid_metric: HR@5, learning_rate: 0.0007}\n"
                    "data: {format: csv, split: temporal, min_rating: 3.5, split_ratios: [0.7, 0.2, 0.1],\n"
                    "       user_profile_embeddings_files: [a.json, b.npy]}\n"
                    "eval: {ks: [5, 50], sampled_negatives: 100, sampling: popularity, exclude: seen}\n")}) {
    const auto c = parse(text);
    const std::string once = io::effective_config_text(c);
    const auto back = io::parse_config(YAML::Load(once), "effective.yaml");
    EXPECT_EQ(io::effective_config_text(back), once) << once;
    EXPECT_EQ(back.training.valid_metric, c.training.valid_metric);
    EXPECT_EQ(back.sasrec.inner, c.sasrec.inner);
    EXPECT_EQ(back.sasrec.ln_eps, c.sasrec.ln_eps);
    EXPECT_EQ(back.data.user_profile_embeddings_files, c.data.user_profile_embeddings_files);
  }
  // Defaults are written out: a one-line config gives every section.
  const std::string text = io::effective_config_text(parse("seed: 3\n"));
  for (const char* key : {"maxlen: 50", "batch_size: 256", "patience: 10", "split: loo", "ties: against_model",
                          "threads: 1", "clip_grad_norm: 0", "exclude: none"})
    EXPECT_NE(text.find(key), std::string::npos) << key << " missing in\n" << text;
  // The pmixer default layer-norm epsilon and the sampled suffix are resolved, not restated.
  const std::string p = io::effective_config_text(parse("model: {variant: pmixer}\neval: {sampled_negatives: 10}\n"));
  EXPECT_NE(p.find("layer_norm_eps: 1e-08"), std::string::npos) << p;
  EXPECT_NE(p.find("valid_metric: NDCG@10\n"), std::string::npos) << p;
}
