// The plugin edge (include/recdistill/plugin/): the registry loads the bundled plugins (SASRec,
// BERT4Rec) from the build tree, refuses a library of another ABI version without touching it,
// names the folders when a model is missing, keeps a library loaded while its objects live; each
// model's weights round-trip and are refused when corrupted or configured differently.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "recdistill/data/atomic.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/safetensors.hpp"
#include "recdistill/plugin/registry.hpp"

namespace {

using namespace recdistill;
namespace fs = std::filesystem;

plugin::SearchOptions only(std::vector<std::string> dirs) {
  plugin::SearchOptions so;
  so.dirs = std::move(dirs);
  so.use_env = false;
  return so;
}

// The bundled plugins, in the registry's (file name) order: four, and the CUDA one where nvcc
// was found (plugins/sequential_cuda).
#ifndef RECDISTILL_TEST_CUDA_PLUGIN
#define RECDISTILL_TEST_CUDA_PLUGIN 0
#endif
constexpr size_t kBundled = 4 + RECDISTILL_TEST_CUDA_PLUGIN;

const plugin::LoadedPlugin& plugin_named(const plugin::Registry& reg, const std::string& name) {
  for (const auto& p : reg.plugins())
    if (p.info.name == name) return p;
  throw std::runtime_error("no plugin " + name + " in " + reg.folders_text());
}

struct Tiny {
  explicit Tiny(const std::string& model = "SASRec") : layers(io::config_layers(
      {RECDISTILL_TEST_CONFIG}, {cat("data.path=", RECDISTILL_TEST_DATA), cat("model.model_name=", model)})) {}
  io::ConfigLayers layers;
  io::ExperimentConfig cfg = io::parse_config(layers);
  data::Dataset data = data::read_atomic_inter(RECDISTILL_TEST_DATA);
  data::Split split = data::to_split(data::split_leave_one_out(data::to_sequences(data)));
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / cat("recdistill_plugin_test_", ::getpid(), "_", name);
  return p;
}

TEST(PluginRegistry, ListsTheBundledModels) {
  plugin::Registry reg(only({RECDISTILL_TEST_PLUGIN_DIR}));
  ASSERT_EQ(reg.plugins().size(), kBundled) << reg.folders_text();
  // Each transformer's plugin offers it alone and with profile distillation (the seed's names).
  for (const auto& [lib, model] : {std::pair{"sasrec", "SASRec"}, std::pair{"bert4rec", "BERT4Rec"}}) {
    const auto& p = plugin_named(reg, lib);
    EXPECT_EQ(p.abi_version, plugin::kPluginAbiVersion);
    ASSERT_EQ(p.info.models.size(), 2u);
    EXPECT_EQ(p.info.models[0].name, model);
    EXPECT_EQ(p.info.models[1].name, std::string(model) + "LLM");
    EXPECT_TRUE(p.info.strategies.empty());
  }
  // The session models' plugin.
  const auto& s = plugin_named(reg, "session");
  EXPECT_EQ(s.abi_version, plugin::kPluginAbiVersion);
  ASSERT_EQ(s.info.models.size(), 3u);
  EXPECT_EQ(s.info.models[0].name, "STAMP");
  EXPECT_EQ(s.info.models[1].name, "FPMC");
  EXPECT_EQ(s.info.models[2].name, "AttenMixer");
  // Active distillation's plugin: the selection strategies, no model.
  const auto& a = plugin_named(reg, "alkd");
  EXPECT_EQ(a.abi_version, plugin::kPluginAbiVersion);
  EXPECT_TRUE(a.info.models.empty());
  std::vector<std::string> names;
  for (const auto& c : a.info.strategies) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"alkdrec", "rad_bc", "random", "hardest", "easiest", "replay", "teacher_only"}));
  EXPECT_TRUE(reg.refused().empty());
}

TEST(PluginRegistry, RefusesAnotherAbiVersionBeforeTouchingAnythingElse) {
  // Every other entry point of that library aborts the process, so passing means untouched.
  plugin::Registry reg(only({RECDISTILL_TEST_ABI_DIR, RECDISTILL_TEST_PLUGIN_DIR}));
  ASSERT_EQ(reg.refused().size(), 1u);
  EXPECT_NE(reg.refused()[0].file.string().find("librecdistill_test_abi_mismatch.so"), std::string::npos);
  EXPECT_NE(reg.refused()[0].reason.find(cat("plugin ABI version ", plugin::kPluginAbiVersion + 1,
                                             ", but this recdistill expects ABI version ",
                                             plugin::kPluginAbiVersion)),
            std::string::npos)
      << reg.refused()[0].reason;
  EXPECT_EQ(reg.plugins().size(), kBundled);  // the good ones next to it still load
}

TEST(PluginRegistry, MissingModelNamesTheModelAndEveryFolder) {
  Tiny t;
  plugin::Registry reg(only({RECDISTILL_TEST_EMPTY_DIR, "/nonexistent/plugins"}));
  const std::string e = error_of([&] { reg.create_model("SASRec", t.layers); });
  EXPECT_NE(e.find("no plugin offers the model 'SASRec'"), std::string::npos) << e;
  EXPECT_NE(e.find(RECDISTILL_TEST_EMPTY_DIR), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/plugins (--plugin-dir, missing)"), std::string::npos) << e;
}

TEST(PluginRegistry, ReadsFoldersFromTheEnvironment) {
  ::setenv(plugin::kPluginPathEnv, cat("/nonexistent/a::", RECDISTILL_TEST_PLUGIN_DIR).c_str(), 1);
  plugin::SearchOptions so;
  plugin::Registry reg(so);
  ::unsetenv(plugin::kPluginPathEnv);
  ASSERT_EQ(reg.folders().size(), 2u);
  EXPECT_EQ(reg.folders()[0].origin, plugin::kPluginPathEnv);
  EXPECT_FALSE(reg.folders()[0].exists);
  EXPECT_EQ(reg.plugins().size(), kBundled);
}

TEST(PluginRegistry, ObjectKeepsItsLibraryLoaded) {
  Tiny t;
  std::shared_ptr<plugin::Model> m;
  {
    plugin::Registry reg(only({RECDISTILL_TEST_PLUGIN_DIR}));
    ASSERT_EQ(reg.plugins().size(), kBundled);
    const auto& lib = plugin_named(reg, "sasrec").lib;
    EXPECT_EQ(lib.use_count(), 1);
    m = reg.create_model("SASRec", t.layers);
    // The object's deleter holds the library handle. (glibc may keep a library mapped after
    // dlclose anyway, e.g. for its STB_GNU_UNIQUE symbols, so the count is what is checked.)
    EXPECT_EQ(lib.use_count(), 2);
    auto m2 = reg.create_model("SASRec", t.layers);
    EXPECT_EQ(lib.use_count(), 3);
    m2.reset();
    EXPECT_EQ(lib.use_count(), 2);
  }
  // The registry and its handles are gone; the object's code must still be mapped.
  EXPECT_EQ(m->name(), "SASRec");
  EXPECT_EQ(m->num_items(), 0);
  m.reset();  // destroyed by the library's own destroy function, then the library unloads
}

TEST(PluginRegistry, StrategiesAndModelsFromSeveralLibrariesFirstFolderWins) {
  Tiny t;
  plugin::Registry reg(only({RECDISTILL_TEST_EXAMPLE_DIR, RECDISTILL_TEST_PLUGIN_DIR}));
  ASSERT_EQ(reg.plugins().size(), 1 + kBundled);
  EXPECT_EQ(reg.plugins()[0].info.name, "example");
  auto s = reg.create_strategy("Alternate", t.layers);
  EXPECT_EQ(s->name(), "Alternate");
  plugin::SelectionRequest req;
  req.pool = {{"5", 0.9}, {"3", 0.5}, {"8", 0.2}, {"1", 0.1}};
  req.budget = 2;
  req.oracle = [](const std::string& id) { return id == "1" ? alkd::AnswerState::missing : alkd::AnswerState::usable; };
  const alkd::Selection sel = s->select(req);
  EXPECT_EQ(sel.sessions, (std::vector<std::string>{"5", "3"}));  // hardest, easiest ("1": no answer), hardest
  EXPECT_EQ(sel.report.skipped, 1u);
  EXPECT_EQ(reg.create_model("Popularity", t.layers)->name(), "Popularity");
  EXPECT_EQ(reg.create_model("SASRec", t.layers)->name(), "SASRec");
  const std::string e = error_of([&] { reg.create_strategy("ALKDMaxMin", t.layers); });
  EXPECT_NE(e.find("no plugin offers the strategy 'ALKDMaxMin' (available: Alternate, alkdrec, rad_bc, random, "
                   "hardest, easiest, replay, teacher_only)"),
            std::string::npos)
      << e;
}

class BundledModel : public ::testing::TestWithParam<std::string> {};

TEST_P(BundledModel, TrainSaveLoadEvaluateRecommend) {
  const std::string model = GetParam();
  Tiny t(model);
  plugin::Registry reg(only({RECDISTILL_TEST_PLUGIN_DIR}));
  auto m = reg.create_model(model, t.layers);
  EXPECT_EQ(m->name(), model);
  int epochs = 0, steps = 0;
  plugin::RunOptions ro;
  ro.on_epoch = [&](const EpochLog&) { ++epochs; };
  ro.on_step = [&](const StepLog&) { ++steps; };
  const TrainResult res = m->train(t.data, t.split, ro);
  EXPECT_EQ(epochs, t.cfg.training.epochs);
  EXPECT_GT(steps, epochs);
  EXPECT_EQ(m->num_items(), t.data.items.size());

  const fs::path w = scratch("weights_" + model);
  m->save(w.string());
  auto loaded = reg.create_model(model, t.layers);
  loaded->load(w.string(), t.data);
  std::vector<data::SplitCase> cases;
  for (const auto& c : t.split.test)
    if (c.target != 0 && !c.history.empty()) cases.push_back(c);
  const auto ranks = loaded->rank(t.split, cases);
  ASSERT_EQ(ranks.size(), cases.size());
  // Bit for bit: same weights, same code.
  EXPECT_EQ(eval::metrics_from_ranks(ranks, t.cfg.eval), res.test);

  // Top-k: k items, best first, none from the excluded history, never the pad.
  const std::vector<int32_t> hist = t.split.test[0].history;
  const auto recs = loaded->recommend({hist}, 5, {hist});
  ASSERT_EQ(recs.size(), 1u);
  ASSERT_EQ(recs[0].size(), 5u);
  for (size_t r = 0; r < recs[0].size(); ++r) {
    EXPECT_GT(recs[0][r].item, 0);
    EXPECT_EQ(std::count(hist.begin(), hist.end(), recs[0][r].item), 0);
    if (r > 0) {
      EXPECT_GE(recs[0][r - 1].score, recs[0][r].score);
    }
  }

  // recommend keeps its network between calls: the same request gives the same list, and the
  // trained object (its own weights) agrees with the loaded one.
  const auto again = loaded->recommend({hist}, 5, {hist});
  const auto trained = m->recommend({hist}, 5, {hist});
  for (size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(again[0][r].item, recs[0][r].item);
    EXPECT_EQ(again[0][r].score, recs[0][r].score);
    EXPECT_EQ(trained[0][r].item, recs[0][r].item);
  }

  // The file is safetensors with the resolved model settings in its metadata.
  const io::SafeTensors st = io::read_safetensors(w.string());
  EXPECT_EQ(st.metadata.at("format_version"), "1");
  EXPECT_NE(st.metadata.at("model_config").find("  hidden_units: 8\n"), std::string::npos) << st.metadata.at("model_config");
  EXPECT_NE(st.find("item_embedding.weight"), nullptr);
  // A flipped byte in the tensors is caught by the checksum, a truncated file by the reader;
  // a different model setting is named.
  std::string bytes;
  {
    std::ifstream in(w, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const fs::path bad = scratch("flipped_" + model);
  {
    std::string b = bytes;
    b[b.size() - 2] ^= 0x10;
    std::ofstream(bad, std::ios::binary) << b;
  }
  EXPECT_NE(error_of([&] { loaded->load(bad.string(), t.data); }).find("the weights are corrupted: tensor checksum"),
            std::string::npos);
  {
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() - 3);
  }
  const std::string trunc = error_of([&] { loaded->load(bad.string(), t.data); });
  EXPECT_NE(trunc.find("extend past the end of the file"), std::string::npos) << trunc;
  {
    std::ofstream(bad, std::ios::binary) << std::string("RDWGHT\0\1") << bytes;
  }
  EXPECT_NE(error_of([&] { loaded->load(bad.string(), t.data); }).find("old recdistill format"), std::string::npos);
  io::ConfigLayers other = t.layers;
  other.sets.push_back("model.hidden_units=16");
  other.sets.push_back("model.inner_size=32");
  auto wider = reg.create_model(model, other);
  const std::string e = error_of([&] { wider->load(w.string(), t.data); });
  EXPECT_NE(e.find("the weights do not fit the configured model:"), std::string::npos) << e;
  EXPECT_NE(e.find("model.hidden_units: weights 8, config 16"), std::string::npos) << e;
  fs::remove(w);
  fs::remove(bad);
}

INSTANTIATE_TEST_SUITE_P(Plugins, BundledModel, ::testing::Values("SASRec", "BERT4Rec"));

}  // namespace
