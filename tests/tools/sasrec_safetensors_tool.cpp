// The C++ side of tools/safetensors_interchange.py (built with the tests, never run by ctest):
//
//   recdistill_sasrec_safetensors_tool export REQUEST.json OUT_DIR
//       builds the SASRec of REQUEST with our initialisation, writes OUT_DIR/model.safetensors
//       (sasrec_state_dict + write_safetensors) and OUT_DIR/logits.json (our logits for
//       REQUEST's histories);
//   recdistill_sasrec_safetensors_tool score REQUEST.json MODEL.safetensors OUT.json
//       loads MODEL (read_safetensors + sasrec_from_state_dict) and writes our logits.
//
// REQUEST: {"variant": "recbole"|"pmixer", "n_items", "max_len", "hidden", "layers", "heads",
// "inner", "ln_eps", "init_range", "seed", "histories": [[item ids, oldest first], ...]}.
// logits.json: {"logits": [[N values], ...]}, one row per history (full item logits, as
// evaluation scores them: tests/common/sasrec_logits.hpp).
#include <simdjson.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "../common/sasrec_logits.hpp"
#include "recdistill/backbones/sasrec.hpp"
#include "recdistill/backbones/sasrec_state_dict.hpp"
#include "recdistill/io/safetensors.hpp"

using namespace recdistill;

namespace {

struct Request {
  SASRecConfig cfg;
  uint64_t seed = 0;
  std::vector<std::vector<int32_t>> histories;
};

Request read_request(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element r;
  if (auto e = parser.load(path).get(r)) fail(path, ": ", simdjson::error_message(e));
  Request q;
  const std::string_view v = r["variant"];
  if (v != "recbole" && v != "pmixer") fail(path, ": variant must be recbole or pmixer, found ", v);
  q.cfg.variant = v == "pmixer" ? SASRecVariant::pmixer : SASRecVariant::recbole;
  q.cfg.n_items = int(int64_t(r["n_items"]));
  q.cfg.max_len = int(int64_t(r["max_len"]));
  q.cfg.hidden = int(int64_t(r["hidden"]));
  q.cfg.layers = int(int64_t(r["layers"]));
  q.cfg.heads = int(int64_t(r["heads"]));
  q.cfg.inner = int(int64_t(r["inner"]));
  q.cfg.ln_eps = double(r["ln_eps"]);
  q.cfg.init_range = double(r["init_range"]);
  q.cfg.hidden_dropout = q.cfg.attn_dropout = 0;
  q.seed = uint64_t(int64_t(r["seed"]));
  for (auto h : r["histories"].get_array()) {
    q.histories.emplace_back();
    for (auto id : h.get_array()) q.histories.back().push_back(int32_t(int64_t(id)));
  }
  return q;
}

void write_logits(const std::string& path, const std::vector<float>& logits, size_t n_items) {
  std::ofstream f(path);
  f << "{\"logits\": [";
  char buf[32];
  for (size_t i = 0; i < logits.size(); ++i) {
    if (i % n_items == 0) f << (i ? "], [" : "[");
    else f << ", ";
    std::snprintf(buf, sizeof buf, "%.9g", double(logits[i]));  // 9 digits: exact float32
    f << buf;
  }
  f << "]]}\n";
  if (!f) fail(path, ": write failed");
}

template <class V>
void run(const std::string& mode, const Request& q, const std::vector<std::string>& args) {
  const SASRec<cpu::Backend, float, V> net(q.cfg);
  std::vector<float> params(net.num_params());
  if (mode == "export") {
    net.init(params.data(), q.seed);
    // Our init leaves biases at 0 and LayerNorms at 1/0: shift every value a little so that a
    // bias or LayerNorm mapped to the wrong place changes the logits.
    for (size_t i = 0; i < params.size(); ++i) params[i] += 0.02f * float(int(i % 11) - 5);
    const std::string dir = args.at(0);
    io::write_safetensors(dir + "/model.safetensors", sasrec_state_dict(net, params));
    write_logits(dir + "/logits.json", rdtest::sasrec_full_logits(net, params, q.histories), size_t(q.cfg.n_items));
  } else {
    params = sasrec_from_state_dict(net, io::read_safetensors(args.at(0)), args.at(0));
    write_logits(args.at(1), rdtest::sasrec_full_logits(net, params, q.histories), size_t(q.cfg.n_items));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (!((a.size() == 3 && a[0] == "export") || (a.size() == 4 && a[0] == "score"))) {
    std::cerr << "usage: " << argv[0] << " export REQUEST.json OUT_DIR\n"
              << "       " << argv[0] << " score REQUEST.json MODEL.safetensors OUT.json\n";
    return 2;
  }
  try {
    const Request q = read_request(a[1]);
    const std::vector<std::string> rest(a.begin() + 2, a.end());
    if (q.cfg.variant == SASRecVariant::pmixer) run<sasrec::Pmixer>(a[0], q, rest);
    else run<sasrec::RecBole>(a[0], q, rest);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
