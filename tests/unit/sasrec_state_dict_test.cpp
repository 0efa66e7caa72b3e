// SASRec weights as the reference PyTorch module's state_dict (backbones/sasrec_state_dict.hpp):
// the names and shapes of both variants, the round trip flat -> state_dict -> file -> flat,
// strict loading, and the committed PyTorch files of tests/fixtures/safetensors/ (written by
// tools/safetensors_interchange.py from RecBole 1.2.1's SASRec and from a pmixer-layout module):
// loaded here, our logits must match PyTorch's.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/sasrec_logits.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backbones/sasrec_state_dict.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/io/npy.hpp"
#include "recdistill/io/safetensors.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

namespace {

namespace fs = std::filesystem;
using namespace recdistill;

template <class V>
SASRec<cpu::Backend, float, V> tiny(int layers = 2) {
  SASRecConfig c;
  c.variant = V::id;
  c.n_items = 20;
  c.max_len = 5;
  c.hidden = 8;
  c.heads = 2;
  c.layers = layers;
  c.inner = 16;
  return SASRec<cpu::Backend, float, V>(c);
}

template <class Net>
std::vector<float> initialised(const Net& net, uint64_t seed) {
  std::vector<float> p(net.num_params());
  net.init(p.data(), seed);
  // Biases and LayerNorms start at 0 / 1: shift every value so that a swapped tensor shows.
  for (size_t i = 0; i < p.size(); ++i) p[i] += 0.001f * float(i % 97);
  return p;
}

std::string load_error(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The state_dict keys and shapes as PyTorch prints them for N = 20, L = 5, d = 8, inner 16, 2 layers
// (RecBole 1.2.1 SASRec; pmixer/SASRec.pytorch's model.py): checked against the modules
// themselves by tools/safetensors_interchange.py.
TEST(SASRecStateDict, RecboleNamesAndShapes) {
  auto net = tiny<sasrec::RecBole>();
  std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
      {"item_embedding.weight", {20, 8}}, {"position_embedding.weight", {5, 8}},
      {"LayerNorm.weight", {8}}, {"LayerNorm.bias", {8}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "trm_encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"query", "key", "value", "dense"}) {
      want.push_back({p + "multi_head_attention." + m + ".weight", {8, 8}});
      want.push_back({p + "multi_head_attention." + m + ".bias", {8}});
    }
    want.push_back({p + "multi_head_attention.LayerNorm.weight", {8}});
    want.push_back({p + "multi_head_attention.LayerNorm.bias", {8}});
    want.push_back({p + "feed_forward.dense_1.weight", {16, 8}});
    want.push_back({p + "feed_forward.dense_1.bias", {16}});
    want.push_back({p + "feed_forward.dense_2.weight", {8, 16}});
    want.push_back({p + "feed_forward.dense_2.bias", {8}});
    want.push_back({p + "feed_forward.LayerNorm.weight", {8}});
    want.push_back({p + "feed_forward.LayerNorm.bias", {8}});
  }
  const auto st = sasrec_state_dict(net, initialised(net, 1));
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& t : st.tensors) got[t.name] = t.shape;
  EXPECT_EQ(got, (std::map<std::string, std::vector<int64_t>>(want.begin(), want.end())));
}

TEST(SASRecStateDict, PmixerNamesAndShapes) {
  auto net = tiny<sasrec::Pmixer>();
  std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
      {"item_emb.weight", {20, 8}}, {"pos_emb.weight", {5, 8}},
      {"last_layernorm.weight", {8}}, {"last_layernorm.bias", {8}}};
  for (int l = 0; l < 2; ++l) {
    const std::string i = std::to_string(l);
    want.push_back({"attention_layernorms." + i + ".weight", {8}});
    want.push_back({"attention_layernorms." + i + ".bias", {8}});
    want.push_back({"attention_layers." + i + ".in_proj_weight", {24, 8}});
    want.push_back({"attention_layers." + i + ".in_proj_bias", {24}});
    want.push_back({"attention_layers." + i + ".out_proj.weight", {8, 8}});
    want.push_back({"attention_layers." + i + ".out_proj.bias", {8}});
    want.push_back({"forward_layernorms." + i + ".weight", {8}});
    want.push_back({"forward_layernorms." + i + ".bias", {8}});
    for (const char* c : {"conv1", "conv2"}) {
      want.push_back({"forward_layers." + i + "." + c + ".weight", {8, 8, 1}});
      want.push_back({"forward_layers." + i + "." + c + ".bias", {8}});
    }
  }
  const auto st = sasrec_state_dict(net, initialised(net, 1));
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& t : st.tensors) got[t.name] = t.shape;
  EXPECT_EQ(got, (std::map<std::string, std::vector<int64_t>>(want.begin(), want.end())));
}

template <class V>
void round_trip_and_strict() {
  auto net = tiny<V>();
  const auto params = initialised(net, 7);
  const auto st = sasrec_state_dict(net, params);
  // Each tensor holds exactly its slice of the flat buffer.
  size_t total = 0;
  for (const auto& t : st.tensors) total += t.data.size();
  EXPECT_EQ(total, params.size());
  // flat -> state_dict -> bytes -> state_dict -> flat is the identity.
  const auto back = io::parse_safetensors(io::encode_safetensors(st), "mem");
  EXPECT_EQ(sasrec_from_state_dict(net, back, "mem"), params);

  const std::string emb = V::id == SASRecVariant::pmixer ? "item_emb.weight" : "item_embedding.weight";
  const std::string ln = V::id == SASRecVariant::pmixer ? "last_layernorm.bias" : "LayerNorm.bias";
  {  // missing
    auto s = st;
    s.tensors.erase(s.tensors.begin());
    const auto msg = load_error([&] { sasrec_from_state_dict(net, s, "m.safetensors"); });
    EXPECT_NE(msg.find("m.safetensors: not the state_dict of this SASRec"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing tensors (1): '" + emb + "'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("unexpected"), std::string::npos) << msg;
  }
  {  // extra
    auto s = st;
    s.tensors.push_back({"profile_transform.weight", {8, 4}, std::vector<float>(32)});
    const auto msg = load_error([&] { sasrec_from_state_dict(net, s, "m.safetensors"); });
    EXPECT_NE(msg.find("unexpected tensors (1): 'profile_transform.weight'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("missing"), std::string::npos) << msg;
  }
  {  // wrong shape (same element count: the shape itself must match)
    auto s = st;
    for (auto& t : s.tensors)
      if (t.name == emb) t.shape = {8, 20};
    auto msg = load_error([&] { sasrec_from_state_dict(net, s, "m.safetensors"); });
    EXPECT_NE(msg.find("shape mismatches (1): '" + emb + "': expected [20, 8], found [8, 20]"), std::string::npos)
        << msg;
    // A model with another catalogue size: the error names the model's settings.
    for (auto& t : s.tensors)
      if (t.name == emb) t.shape = {21, 8}, t.data.resize(21 * 8);
    msg = load_error([&] { sasrec_from_state_dict(net, s, "m.safetensors"); });
    EXPECT_NE(msg.find("expected [20, 8], found [21, 8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("N = 20, L = 5, d = 8"), std::string::npos) << msg;
  }
  {  // fewer layers in the file
    auto one = tiny<V>(1);
    const auto s1 = sasrec_state_dict(one, initialised(one, 3));
    const auto msg = load_error([&] { sasrec_from_state_dict(net, s1, "m.safetensors"); });
    EXPECT_NE(msg.find("missing tensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(V::id == SASRecVariant::pmixer ? "attention_layers.1.in_proj_weight"
                                                      : "trm_encoder.layer.1.multi_head_attention.query.weight"),
              std::string::npos)
        << msg;
  }
  {  // non-finite values
    auto s = st;
    for (auto& t : s.tensors)
      if (t.name == ln) t.data[3] = std::nanf("");
    const auto msg = load_error([&] { sasrec_from_state_dict(net, s, "m.safetensors"); });
    EXPECT_NE(msg.find("tensor '" + ln + "' element 3 is nan: weights must be finite"), std::string::npos) << msg;
  }
}

TEST(SASRecStateDict, RecboleRoundTripAndStrictLoad) { round_trip_and_strict<sasrec::RecBole>(); }
TEST(SASRecStateDict, PmixerRoundTripAndStrictLoad) { round_trip_and_strict<sasrec::Pmixer>(); }

TEST(SASRecStateDict, OtherVariantsFileIsNamed) {
  auto rb = tiny<sasrec::RecBole>();
  auto pm = tiny<sasrec::Pmixer>();
  const auto pm_st = sasrec_state_dict(pm, initialised(pm, 1));
  const auto rb_st = sasrec_state_dict(rb, initialised(rb, 1));
  auto msg = load_error([&] { sasrec_from_state_dict(rb, pm_st, "p.safetensors"); });
  EXPECT_NE(msg.find("looks like the 'pmixer' variant's state_dict"), std::string::npos) << msg;
  EXPECT_NE(msg.find("and "), std::string::npos) << "long lists are cut: " << msg;
  msg = load_error([&] { sasrec_from_state_dict(pm, rb_st, "r.safetensors"); });
  EXPECT_NE(msg.find("looks like the 'recbole' variant's state_dict"), std::string::npos) << msg;
}

// ---- PyTorch -> ours: the committed files of tools/safetensors_interchange.py ------------

template <class V>
void pytorch_file_gives_pytorch_logits(const std::string& variant) {
  const fs::path dir = fs::path(RECDISTILL_FIXTURE_DIR) / "safetensors" / variant;
  simdjson::dom::parser parser;
  const simdjson::dom::element m = parser.load((dir / "manifest.json").string());
  SASRecConfig c;
  c.variant = V::id;
  c.n_items = int(int64_t(m["n_items"]));
  c.max_len = int(int64_t(m["max_len"]));
  c.hidden = int(int64_t(m["hidden"]));
  c.layers = int(int64_t(m["layers"]));
  c.heads = int(int64_t(m["heads"]));
  c.inner = int(int64_t(m["inner"]));
  c.ln_eps = double(m["ln_eps"]);
  const SASRec<cpu::Backend, float, V> net(c);

  std::vector<std::vector<int32_t>> histories;
  for (auto h : m["histories"].get_array()) {
    histories.emplace_back();
    for (auto id : h.get_array()) histories.back().push_back(int32_t(int64_t(id)));
  }
  const auto st = io::read_safetensors((dir / "model.safetensors").string());
  const auto params = sasrec_from_state_dict(net, st, (dir / "model.safetensors").string());
  const auto ours = rdtest::sasrec_full_logits(net, params, histories);

  const auto want_arr = io::read_npy((dir / "logits.npy").string());
  ASSERT_EQ(want_arr.shape, (std::vector<int64_t>{int64_t(histories.size()), c.n_items}));
  const auto want = want_arr.as<float>();
  ASSERT_EQ(ours.size(), want.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    worst = std::max(worst, std::abs(double(ours[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  EXPECT_LE(worst, 1e-5) << variant << ": max abs logit difference vs PyTorch";
  // Logits of order 1, so 1e-5 is a real check (a wrongly mapped tensor moves them by far more).
  EXPECT_GE(scale, 0.5) << variant;
}

TEST(SASRecStateDict, RecboleFileFromPyTorchGivesItsLogits) {
  pytorch_file_gives_pytorch_logits<sasrec::RecBole>("recbole");
}
TEST(SASRecStateDict, PmixerFileFromPyTorchGivesItsLogits) {
  pytorch_file_gives_pytorch_logits<sasrec::Pmixer>("pmixer");
}

}  // namespace

}  // namespace RD_TEST_FILE
