// Writes the prepared_fuzz seed corpus from tests/fixtures/import/small.inter: a payload (the
// fuzzer frames it), a whole valid file, and damaged files (truncated, bad checksum, old
// version, empty). Build and run by hand, from the repository root:
//   g++ -std=c++20 -Iinclude -I/usr/include/eigen3 tests/fuzz/make_prepared_seeds.cpp -lyaml-cpp -lsimdjson \
//       -lboost_serialization -o /tmp/make_prepared_seeds && /tmp/make_prepared_seeds
#include <fstream>
#include <string>

#include "recdistill/data/atomic.hpp"
#include "recdistill/data/prepared.hpp"

using namespace recdistill;

static void put(const std::string& name, const std::string& bytes) {
  std::ofstream("tests/fuzz/corpus/prepared/" + name, std::ios::binary) << bytes;
}

int main() {
  data::PreparedData p;
  p.dataset = data::read_atomic_inter("tests/fixtures/import/small.inter");
  p.split = data::to_split(data::split_leave_one_out(data::to_sequences(p.dataset)));
  data::PreparedHeader h;
  h.settings = "data.format=atomic\ndata.split=loo\n";
  h.settings_hash = io::fnv1a64(h.settings);
  h.inputs.push_back({"small.inter", 121, 42});
  h.input_hash = 7;
  const std::string payload = data::encode_prepared(p, h);
  const std::string file = io::frame(data::kPreparedFile, payload);
  put("payload_small.bin", payload);
  put("small.rdprep", file);
  put("truncated.rdprep", file.substr(0, file.size() - 9));
  std::string bad = file;
  bad[bad.size() - 3] ^= 0x40;
  put("bad_checksum.rdprep", bad);
  std::string old = file;
  old[8] = 0;
  put("old_version.rdprep", old);
  put("empty.rdprep", "");
  put("payload_truncated.bin", payload.substr(0, payload.size() / 2));
  return 0;
}
