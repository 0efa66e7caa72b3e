// The YAML config: keys of the seed README, strict checking, overrides.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "recdistill/io/config.hpp"
#include "recdistill/methods/alkd_config.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {
io::ExperimentConfig parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  return io::parse_config_text(text, "exp.yaml", sets);
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
  EXPECT_NE(msg.find("exp.yaml:2: unknown section 'trainig'"), std::string::npos) << msg;
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
  msg = error_of("model:\n  variant: pmixer\n  hidden_units: 32\n  inner_size: 64\n");
  EXPECT_NE(msg.find("exp.yaml:4: model.inner_size (64) must equal model.hidden_units (32) under model.variant pmixer"),
            std::string::npos)
      << msg;
  msg = error_of("model:\n  weighting_scheme: exponential\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'model.weight_scale': required with model.weighting_scheme exponential"),
            std::string::npos) << msg;
  msg = error_of("model:\n  use_distillation: true\n");
  EXPECT_NE(msg.find("profile distillation is chosen by model.model_name: SASRecLLM or BERT4RecLLM"), std::string::npos) << msg;
}

// The profile-distillation keys (specs/profile-distillation.md §11): the seed's names, its
// defaults for its model names, and the derived fine_tune_epoch.
TEST(Config, DistillationKeys) {
  const auto c = parse("model:\n  model_name: SASRecLLM\n  weighting_scheme: exp_weight\n  weight_scale: 0.1\n"
                       "training:\n  epochs: 25\n  reconstruct_loss: cosine\n  alpha: 0.4\n");
  EXPECT_EQ(c.distill.weighting_scheme, "exponential");
  EXPECT_DOUBLE_EQ(c.distill.weight_scale, 0.1);
  EXPECT_EQ(c.distill.reconstruct_loss, "CosSim");
  EXPECT_DOUBLE_EQ(c.distill.alpha, 0.4);
  EXPECT_EQ(c.distill.fine_tune_epoch, 12);  // epochs // 2
  // A value given is kept, -1 too (<= 1: no distillation), never replaced by the derived default.
  EXPECT_EQ(parse("training:\n  epochs: 25\n  fine_tune_epoch: -1\n").distill.fine_tune_epoch, -1);
  EXPECT_EQ(parse("training:\n  epochs: 25\n  fine_tune_epoch: 0\n").distill.fine_tune_epoch, 0);
  EXPECT_EQ(c.sasrec.variant, SASRecVariant::pmixer);  // the seed's model, optimiser and clipping
  EXPECT_TRUE(c.sasrec.seed_window);                    // ... and its window of maxlen - 1 slots
  EXPECT_EQ(c.training.optimizer, "adamw");
  EXPECT_DOUBLE_EQ(c.training.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.training.clip_grad_norm, 0.5);
  const auto base = parse("training:\n  epochs: 25\n");  // SASRec keeps the library's defaults
  EXPECT_EQ(base.sasrec.variant, SASRecVariant::recbole);
  EXPECT_FALSE(base.sasrec.seed_window);
  // SASRecLLM on the recbole variant (the leave-one-out experiments) keeps RecBole's window.
  EXPECT_FALSE(parse("model:\n  model_name: SASRecLLM\n  variant: recbole\n").sasrec.seed_window);
  EXPECT_FALSE(parse("model:\n  model_name: SASRecLLM\n  seed_window: false\n").sasrec.seed_window);
  EXPECT_NE(error_of("model:\n  variant: recbole\n  seed_window: true\n").find("exp.yaml:3: model.seed_window: ECIR's window"),
            std::string::npos);
  EXPECT_EQ(base.training.optimizer, "adam");
  const auto up = parse("compat: upstream\n");
  EXPECT_TRUE(up.sasrec.seed_window);
  EXPECT_FALSE(up.distill.mask_padding);
  EXPECT_EQ(up.distill.null_profile_mode, "upstream_copy");
  EXPECT_EQ(up.distill.multi_profile_missing, "upstream_zero");
  EXPECT_NE(error_of("training:\n  alpha: 1.5\n").find("exp.yaml:2: key 'training.alpha'"), std::string::npos);
  EXPECT_NE(error_of("model:\n  reconstruction_layer: -2\n").find("model.reconstruction_layer"), std::string::npos);
}

TEST(Config, OverridesWinOverTheFile) {
  const auto c = parse("training:\n  epochs: 25\n", {"training.epochs=3", "model.variant=pmixer"});
  EXPECT_EQ(c.training.epochs, 3);
  EXPECT_EQ(c.sasrec.variant, SASRecVariant::pmixer);
  EXPECT_DOUBLE_EQ(c.sasrec.ln_eps, 1e-8);  // pmixer's default eps
  EXPECT_NE(error_of("", {"training.epochz=3"}).find("training.epochz"), std::string::npos);
  EXPECT_NE(error_of("", {"noequals"}).find("--set 'noequals'"), std::string::npos);
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
    const auto back = io::parse_config_text(once, "effective.yaml");
    EXPECT_EQ(io::effective_config_text(back), once) << once;
    EXPECT_EQ(back.valid_metric(), c.valid_metric());
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

// Layers: each --config file and each --set override keeps its own name and line in errors.
TEST(Config, LayersNameTheFileAndLineEachKeyCameFrom) {
  const io::ConfigLayers layers{{{"base.yaml", "seed: 1\nmodel:\n  maxlen: 20\n"},
                                 {"second.yaml", "training:\n  epochs: 4\n\n  batch_siz: 8\n"}},
                                {}};
  std::string msg;
  try {
    io::parse_config(layers);
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("second.yaml:4: unknown key 'training.batch_siz'"), std::string::npos) << msg;
  msg = error_of("", {"training.epochs=3", "training.learning_rate=fast"});
  EXPECT_NE(msg.find("--set 'training.learning_rate=fast': key 'training.learning_rate'"), std::string::npos) << msg;
  // Later layers win key by key; sections merge.
  const io::ConfigLayers two{{{"a.yaml", "model: {maxlen: 20, hidden_units: 32}\n"}, {"b.yaml", "model: {maxlen: 30}\n"}},
                             {"model.num_blocks=3"}};
  const auto c = io::parse_config(two);
  EXPECT_EQ(c.sasrec.max_len, 30);
  EXPECT_EQ(c.sasrec.hidden, 32);
  EXPECT_EQ(c.sasrec.layers, 3);
  EXPECT_EQ(c.source, "a.yaml + b.yaml");
  // A value error inside a list names the element's line.
  msg = error_of("eval:\n  ks:\n    - 5\n    - 0\n");
  EXPECT_NE(msg.find("exp.yaml:4: key 'eval.ks'"), std::string::npos) << msg;
}

TEST(Config, AliasesPresetsAndModelDefaults) {
  // The seed README's prose names are deprecated aliases, with a warning naming file and line.
  io::Schema s = io::schema_of<io::ExperimentConfig>();
  std::ostringstream warn;
  const auto r = io::resolve(s, io::read_layers({{{"p.yaml", "model:\n  embedding_dim: 48\n  num_heads: 4\n"}}, {}}),
                             io::warning_to(warn));
  const auto c = io::bind_config<io::ExperimentConfig>(r);
  EXPECT_EQ(c.sasrec.hidden, 48);
  EXPECT_NE(warn.str().find("p.yaml:2: 'model.embedding_dim' is a deprecated name; use 'model.hidden_units'"),
            std::string::npos)
      << warn.str();
  // BERT4Rec accepts the same prose names (spec §11.1), besides RecBole's.
  warn.str("");
  io::ResolveOptions quiet_opt = io::warning_to(warn);
  const auto b4 = io::parse_config<BERT4RecConfig>(
      io::ConfigLayers{{{"b.yaml", "model:\n  embedding_dim: 48\n  num_layers: 3\n  num_heads: 4\n"}}, {}}, {},
      quiet_opt);
  EXPECT_EQ(b4.hidden, 48);
  EXPECT_EQ(b4.layers, 3);
  EXPECT_NE(warn.str().find("b.yaml:3: 'model.num_layers' is a deprecated name; use 'model.num_blocks'"),
            std::string::npos)
      << warn.str();
  // The specs' spellings are silent aliases: of a key (even in another section) or of a value.
  warn.str("");
  const auto c2 = io::bind_config<io::ExperimentConfig>(io::resolve(
      s, io::read_layers({{{"q.yaml", "training: {eval_ks: [10, 20], selection: best_valid, grad_clip_norm: 0.5}\n"}}, {}}),
      io::warning_to(warn)));
  EXPECT_EQ(c2.eval.ks, (std::vector<int>{10, 20}));
  EXPECT_EQ(c2.training.selection, "best");
  EXPECT_DOUBLE_EQ(c2.training.clip_grad_norm, 0.5);
  EXPECT_EQ(warn.str(), "");
  // Every prose name of spec §11.1 is known: a deprecated name warns and is read as its key.
  warn.str("");
  std::string msg;
  try {
    io::resolve(s, io::read_layers({{{"r.yaml", "training:\n  distillation_alpha: 0.3\n"}}, {}}), io::warning_to(warn));
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(warn.str().find("'training.distillation_alpha' is a deprecated name; use 'training.alpha'"), std::string::npos)
      << warn.str();
  EXPECT_EQ(msg, "");  // accepted under its canonical name
  for (const char* name : {"model_type", "embedding_dim", "num_layers", "weight_decay", "use_distillation",
                           "distillation_alpha", "use_dynamic_scaling", "aggregation_method", "distillation_layer",
                           "profile_embeddings_path"}) {
    const bool known = !s.canonical(cat("model.", name)).empty() || !s.canonical(cat("training.", name)).empty() ||
                       !s.canonical(cat("data.", name)).empty();
    EXPECT_TRUE(known) << name;
  }
  // A key and its alias in the same file is ambiguous.
  EXPECT_NE(error_of("model:\n  hidden_units: 32\n  embedding_dim: 48\n").find("exp.yaml:3"), std::string::npos);
  // compat: upstream sets model.variant's default (the profile seed's SASRec), not a given value.
  EXPECT_EQ(parse("compat: upstream\n").sasrec.variant, SASRecVariant::pmixer);
  EXPECT_DOUBLE_EQ(parse("compat: upstream\n").sasrec.ln_eps, 1e-8);
  EXPECT_EQ(parse("compat: upstream\nmodel: {variant: recbole}\n").sasrec.variant, SASRecVariant::recbole);
  EXPECT_EQ(parse("compat: recommended\n").sasrec.variant, SASRecVariant::recbole);
  EXPECT_NE(io::effective_config_text(parse("compat: upstream\n")).find("variant: pmixer"), std::string::npos);
}

namespace {
// A component as a method would write it: one line per key.
struct TestComponent {
  int answer = 42;
  std::string flavour = "plain";
  template <class V>
  void keys(V& v) {
    v(answer, io::Key("test", "answer", "the answer").range(0, 100).weights().for_model("Oracle", "7"));
    v(flavour, io::Key("test", "flavour", "a choice").one_of({"plain", "spicy"}));
  }
};
}  // namespace

// One line of a component declares a key: parsing, validation, the resolved config, the docs
// table and the compatibility settings all follow from it.
TEST(Config, OneLineDeclaresAKeyEverywhere) {
  auto layers = [](const std::string& text) { return io::ConfigLayers{{{"t.yaml", text}}, {}}; };
  EXPECT_EQ(io::parse_config<TestComponent>(layers("test:\n  answer: 9\n")).answer, 9);
  std::string msg;
  try {
    io::parse_config<TestComponent>(layers("test:\n  flavour: x\n  answer: 101\n"));
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("t.yaml:2: key 'test.flavour': expected one of plain, spicy"), std::string::npos) << msg;
  try {
    io::parse_config<TestComponent>(layers("test:\n  answer: 101\n"));
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("t.yaml:2: key 'test.answer': expected an integer in [0, 100], found 101"), std::string::npos) << msg;
  EXPECT_THROW(io::parse_config<TestComponent>(layers("test:\n  answr: 1\n")), Error);
  // The model-name default applies when the model is named (here by a key another component owns).
  io::Schema s = io::schema_of<TestComponent>();
  s.add({io::KeyDoc(io::Key("model", "model_name", "which model"))});
  const auto oracle = io::bind_config<TestComponent>(io::resolve(s, io::read_layers(layers("model: {model_name: Oracle}\n"))));
  EXPECT_EQ(oracle.answer, 7);
  const TestComponent c = io::parse_config<TestComponent>(layers("test: {answer: 5}\n"));
  EXPECT_NE(io::effective_config_text(c).find("answer: 5"), std::string::npos);
  const auto table = io::markdown_table(io::describe<TestComponent>());
  EXPECT_NE(table.find("| `test.answer` | integer | `42` | [0, 100] | weights, resume | the answer. Model `Oracle`: 7. |"),
            std::string::npos)
      << table;
  const auto w = io::compat_settings(c, keys::kWeights);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.at("test.answer"), "5");
  EXPECT_EQ(io::compat_settings(c, keys::kResume).count("test.answer"), 1u);
  EXPECT_EQ(io::compat_settings(c, keys::kPrepared).size(), 0u);
}

// docs/config.md's key table is the declarations' table (regenerate: RECDISTILL_UPDATE_DOCS=1).
// Each generated table of docs/config.md between its markers: every key of an SASRec run, then
// BERT4Rec's model keys.
TEST(Config, DocsTableIsTheDeclarations) {
  const std::string path = std::string(RECDISTILL_SOURCE_DIR) + "/docs/config.md";
  std::ifstream f(path);
  ASSERT_TRUE(f) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string doc = ss.str();
  bool updated = false;
  for (const auto& [tag, want] : {std::pair{std::string("keys"), io::markdown_table(io::describe<io::ExperimentConfig>())},
                                  std::pair{std::string("bert4rec-keys"), io::markdown_table(io::describe<BERT4RecConfig>())},
                                  std::pair{std::string("stamp-keys"), io::markdown_table(io::describe<STAMPConfig>())},
                                  std::pair{std::string("fpmc-keys"), io::markdown_table(io::describe<FPMCConfig>())},
                                  std::pair{std::string("attenmixer-keys"), io::markdown_table(io::describe<AttenMixerConfig>())},
                                  std::pair{std::string("alkd-keys"), io::markdown_table(io::describe<alkd::AlkdConfig>())}}) {
    const std::string begin = "<!-- " + tag + ":begin (generated from the key declarations; see below) -->\n";
    const std::string end = "<!-- " + tag + ":end -->";
    const auto a = doc.find(begin), b = doc.find(end);
    ASSERT_NE(a, std::string::npos) << "no begin marker " << tag << " in " << path;
    ASSERT_NE(b, std::string::npos) << "no end marker " << tag << " in " << path;
    const std::string have = doc.substr(a + begin.size(), b - a - begin.size());
    if (have != want && std::getenv("RECDISTILL_UPDATE_DOCS")) {
      doc.replace(a + begin.size(), b - a - begin.size(), want);
      updated = true;
      continue;
    }
    if (have != want) {  // name the first row that differs, not the whole table
      std::istringstream h(have), w(want);
      std::string hl, wl;
      int row = 0;
      while (std::getline(h, hl) && std::getline(w, wl) && hl == wl) ++row;
      ADD_FAILURE() << "docs/config.md's " << tag << " table is out of date (run this test with RECDISTILL_UPDATE_DOCS=1); "
                    << "first difference at row " << row << ":\n  docs:  " << hl << "\n  keys:  " << wl;
    }
  }
  if (updated) std::ofstream(path) << doc;
}

// The trainer's settings from training.* keys, and which of them a resume must share.
TEST(Config, TrainerSettingsAndResumeCompatibility) {
  const auto c = parse(
      "training: {schedule: iterations, steps_per_epoch: 7, max_steps: 50, eval_every_steps: 10,\n"
      "           lr_schedule: cosine, warmup_steps: 3, lr_decay_steps: 100, min_lr: 1.0e-5, optimizer: adamw}\n");
  const TrainerConfig tc = trainer_config(c);
  EXPECT_EQ(tc.schedule, TrainerConfig::Schedule::iterations);
  EXPECT_EQ(tc.steps_per_epoch, 7);
  EXPECT_EQ(tc.max_steps, 50);
  EXPECT_EQ(tc.eval_every_steps, 10);
  EXPECT_EQ(tc.lr_schedule.kind, LRSchedule::Kind::cosine);
  EXPECT_EQ(tc.lr_schedule.warmup_steps, 3);
  EXPECT_EQ(tc.lr_schedule.total_steps, 100);
  EXPECT_DOUBLE_EQ(tc.lr_schedule.min_lr, 1e-5);
  EXPECT_TRUE(tc.adam.decoupled);
  const auto s = checkpoint_settings(c);
  for (const char* k : {"seed", "compat", "model.variant", "model.maxlen", "training.lr_schedule", "training.batch_size",
                        "data.split", "eval.ks", "runtime.threads"})
    EXPECT_EQ(s.count(k), 1u) << k;
  for (const char* k : {"training.epochs", "training.patience", "training.eval_every", "training.max_steps",
                        "training.model_dir", "data.path", "runtime.backend", "experiment_name"})
    EXPECT_EQ(s.count(k), 0u) << k;
  // Weights: only what changes a parameter's meaning.
  const auto w = io::compat_settings(c, keys::kWeights);
  EXPECT_EQ(w.size(), 8u);
  EXPECT_EQ(w.count("model.hidden_units"), 1u);
  EXPECT_EQ(w.count("model.seed_window"), 1u);
  // ALKDRec's validation after its first update: epoch 1's own steps, on the iterations schedule.
  EXPECT_EQ(trainer_config(parse("training: {schedule: iterations, steps_per_epoch: 20, first_epoch_steps: 1}\n"))
                .first_epoch_steps,
            1);
  EXPECT_NE(error_of("training:\n  first_epoch_steps: 1\n").find("training.first_epoch_steps needs training.schedule: "
                                                                   "iterations"),
            std::string::npos);
  EXPECT_EQ(w.count("model.dropout_rate"), 0u);
}

// YAML shapes a user can write by mistake: each is an error naming file and line, or (a
// section with every key commented out) no error at all.
TEST(Config, YamlEdgeCases) {
  auto msg = error_of("seed: 1\n---\ntraining: {epochs: 1}\n");
  EXPECT_NE(msg.find("exp.yaml:3: a second YAML document"), std::string::npos) << msg;
  EXPECT_EQ(error_of("seed: 1\nruntime:\n  # threads: 2\n"), "");
  msg = error_of("seed:\n  a: 1\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'seed': expected an integer, found a mapping"), std::string::npos) << msg;
  msg = error_of("~: 5\n");
  EXPECT_NE(msg.find("exp.yaml:1: key '~': a key must be a plain name, found null"), std::string::npos) << msg;
  msg = error_of("runtime: 3\n");
  EXPECT_NE(msg.find("exp.yaml:1: section 'runtime' must be a mapping of keys, found '3'"), std::string::npos) << msg;
  EXPECT_EQ(parse("", {"model={maxlen: 5, hidden_units: 32}"}).sasrec.max_len, 5);  // --set of a whole section
  msg = error_of("training:\n  save_checkpoints: {a: 1}\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'training.save_checkpoints': expected true or false"), std::string::npos) << msg;
  std::string ks = "eval:\n  ks: [";
  for (int i = 1; i <= 65; ++i) ks += std::to_string(i) + (i < 65 ? ", " : "]\n");
  msg = error_of(ks);
  EXPECT_NE(msg.find("expected a list of at most 64 values, found 65"), std::string::npos) << msg;
  // A rule between two keys blames the one given last.
  msg = error_of("training:\n  valid_metric: NDCG@10\neval:\n  ks: [5]\n");
  EXPECT_NE(msg.find("exp.yaml:4: training.valid_metric 'NDCG@10' is not computed with eval.ks [5]"), std::string::npos)
      << msg;
  msg = error_of("model:\n  hidden_units: 7\n");
  EXPECT_NE(msg.find("exp.yaml:2: model.hidden_units (7) must be divisible"), std::string::npos) << msg;
}

namespace {
struct Narrow {
  uint16_t small = 1;
  template <class V>
  void keys(V& v) {
    v(small, io::Key("n", "small", "a narrow unsigned key"));
  }
};
}  // namespace

TEST(Config, NarrowIntegersDoNotWrap) {
  std::string msg;
  try {
    io::parse_config<Narrow>(io::ConfigLayers{{{"n.yaml", "n:\n  small: 65543\n"}}, {}});
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("n.yaml:2: key 'n.small': value 65543 does not fit"), std::string::npos) << msg;
}

// A YAML complex key (a list or a mapping used as a key) and a list or mapping where a scalar
// is expected: each is an error naming the file (or the --set override), the line and the key.
TEST(Config, ComplexKeysAndNonScalarValuesNameFileLineAndKey) {
  auto msg = error_of("seed: 1\n? [a, b]\n: 1\n");
  EXPECT_NE(msg.find("exp.yaml:2: key '[a, b]': a key must be a plain name, found a list"), std::string::npos) << msg;
  msg = error_of("seed: 1\n{a: 1}: 2\n");
  EXPECT_NE(msg.find("exp.yaml:2: key '{a: 1}': a key must be a plain name, found a mapping"), std::string::npos) << msg;
  msg = error_of("model:\n  maxlen: 5\n  ? [hidden_units, maxlen]\n  : 64\n");
  EXPECT_NE(msg.find("exp.yaml:3: key '[hidden_units, maxlen]' in section 'model': a key must be a plain name, "
                     "found a list"),
            std::string::npos)
      << msg;
  msg = error_of("training:\n  {epochs: [1, {a: 2}]}: 3\n");
  EXPECT_NE(msg.find("exp.yaml:2: key '{epochs: [1, {...}]}' in section 'training': a key must be a plain name, "
                     "found a mapping"),
            std::string::npos)
      << msg;
  msg = error_of("", {"model={[a]: 1}"});
  EXPECT_NE(msg.find("--set 'model={[a]: 1}': key '[a]' in section 'model': a key must be a plain name, found a list"),
            std::string::npos)
      << msg;
  // A long or self-referencing key is shown shortened (an alias cycle must not recurse).
  msg = error_of("? &k [*k, 1]\n: 1\n");
  EXPECT_NE(msg.find("exp.yaml:1: key '[[[...], 1], 1]': a key must be a plain name, found a list"), std::string::npos)
      << msg;
  msg = error_of("? [1, 2, 3, 4, 5, 6, 7, 8, 9]\n: 1\n");
  EXPECT_NE(msg.find("exp.yaml:1: key '[1, 2, 3, 4, ...]'"), std::string::npos) << msg;

  // Values: the line is the key's (a list element's own line for an element).
  msg = error_of("model: {hidden_units: [1, 2]}\n");
  EXPECT_NE(msg.find("exp.yaml:1: key 'model.hidden_units': expected an integer, found a list"), std::string::npos)
      << msg;
  msg = error_of("seed: 1\nmodel:\n  hidden_units:\n    a: 1\n");
  EXPECT_NE(msg.find("exp.yaml:3: key 'model.hidden_units': expected an integer, found a mapping"), std::string::npos)
      << msg;
  msg = error_of("model:\n  dropout_rate:\n    - 0.1\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'model.dropout_rate': expected a number, found a list"), std::string::npos)
      << msg;
  msg = error_of("data:\n  path: {a: b}\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'data.path': expected a string, found a mapping"), std::string::npos) << msg;
  msg = error_of("data:\n  drop_duplicates: [true]\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'data.drop_duplicates': expected true or false, found a list"), std::string::npos)
      << msg;
  msg = error_of("model:\n  variant: [recbole]\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'model.variant': expected a string, found a list"), std::string::npos) << msg;
  msg = error_of("eval:\n  ks:\n    - 5\n    - [10]\n");
  EXPECT_NE(msg.find("exp.yaml:4: key 'eval.ks': expected an integer, found a list"), std::string::npos) << msg;
  msg = error_of("data:\n  user_profile_embeddings_files: [a.json, {b: c}]\n");
  EXPECT_NE(msg.find("exp.yaml:2: key 'data.user_profile_embeddings_files': expected a string, found a mapping"),
            std::string::npos)
      << msg;
  msg = error_of("", {"model.hidden_units=[1, 2]"});
  EXPECT_NE(msg.find("--set 'model.hidden_units=[1, 2]': key 'model.hidden_units': expected an integer, found a list"),
            std::string::npos)
      << msg;
  msg = error_of("", {"model={hidden_units: {a: 1}}"});
  EXPECT_NE(msg.find("--set 'model={hidden_units: {a: 1}}': key 'model.hidden_units': expected an integer, found a "
                     "mapping"),
            std::string::npos)
      << msg;
  msg = error_of("seed: &s [1]\nexperiment_name: *s\n");
  EXPECT_NE(msg.find("exp.yaml:1: key 'seed': expected an integer, found a list"), std::string::npos) << msg;
}

// yaml-cpp 0.7's LoadAll never returned on a ',' where a document starts (found by the config
// fuzz target, tests/fuzz/regressions/config_*): a syntax error at its place, in a file and in
// a --set value.
TEST(Config, ACommaWhereADocumentStartsIsASyntaxError) {
  for (const char* text : {",\n", "# c\n,x\n", "- a\n,\n", "{seed: 1},\n", "seed: 1\n...\n,\n"}) {
    SCOPED_TRACE(text);
    const std::string msg = error_of(text);
    EXPECT_NE(msg.find("YAML syntax error: unexpected ','"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of(",\n").find("exp.yaml:1:1: YAML syntax error"), std::string::npos);
  EXPECT_NE(error_of("- a\n,\n").find("exp.yaml:2:1: YAML syntax error"), std::string::npos);
  EXPECT_NE(error_of("\xef\xbb\xbf,\n").find("exp.yaml:1:1: YAML syntax error: unexpected ','"), std::string::npos);
  auto msg = error_of("", {"eval.ks=[5, 10],"});
  EXPECT_NE(msg.find("--set 'eval.ks=[5, 10],': the value is not valid YAML: unexpected ','"), std::string::npos) << msg;
  msg = error_of("", {"seed=1\n---\n2"});
  EXPECT_NE(msg.find("the value is not valid YAML: a second document"), std::string::npos) << msg;
  // A ',' inside a plain value is text.
  EXPECT_EQ(parse("experiment_name: a, b\n").experiment_name, "a, b");
}

}  // namespace RD_TEST_FILE
