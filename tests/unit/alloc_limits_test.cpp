// Bounded allocations (io/alloc_limits.hpp, docs/limits.md): the check itself (overflow, the
// stated limits, /proc and RLIMIT_AS, the message), and, for every reader that sizes an
// allocation from a file, a hostile file (a size, count, shape or dimension the bytes do not
// back, or more than this process can hold) that must give a recdistill::Error naming the file.
// "What this process can hold" is pinned by ScopedMemoryHeadroomForTesting so that nothing here
// depends on the machine's memory; the one test of the real /proc figures asks for 2^62 bytes.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/data/atomic.hpp"
#include "recdistill/data/prepared.hpp"
#include "recdistill/data/profiles.hpp"
#include "recdistill/io/alloc_limits.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/io/npy.hpp"
#include "recdistill/io/safetensors.hpp"
#include "recdistill/llm/cache.hpp"

namespace {

namespace fs = std::filesystem;
using namespace recdistill;
using io::ScopedMemoryHeadroomForTesting;

constexpr uint64_t kKiB = 1024, kMiB = 1024 * kKiB;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("rd_limits_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string str(const std::string& name) const { return (path / name).string(); }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_parts(const std::string& e, const std::vector<std::string>& parts) {
  for (const auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << "missing '" << p << "' in: " << e;
}

// A file of `size` bytes that holds none (a hole: no disk space, reads as zeros).
std::string sparse_file(const TempDir& d, const std::string& name, uint64_t size) {
  const std::string p = d.str(name);
  std::ofstream(p, std::ios::binary).flush();
  fs::resize_file(p, size);
  return p;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A version 1.0 .npy file: float32 array of shape `shape` ("(1, 2)"), then `payload` bytes.
std::string npy_bytes(const std::string& shape, size_t payload) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const std::string h = header + std::string(128 - 10 - header.size() - 1, ' ') + "\n";
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += char(h.size() & 0xff);
  bytes += char(h.size() >> 8);
  return bytes + h + std::string(payload, '\0');
}

// ---- the check ----

TEST(AllocLimits, CheckedMultiplication) {
  EXPECT_EQ(io::checked_mul(3, 4).value(), 12u);
  EXPECT_EQ(io::checked_mul(0, UINT64_MAX).value(), 0u);
  EXPECT_EQ(io::checked_mul(uint64_t(1) << 32, uint64_t(1) << 31).value(), uint64_t(1) << 63);
  EXPECT_FALSE(io::checked_mul(uint64_t(1) << 32, uint64_t(1) << 32));
  EXPECT_FALSE(io::checked_mul(UINT64_MAX, 2));
}

TEST(AllocLimits, HumanBytes) {
  EXPECT_EQ(io::human_bytes(512), "512 B");
  EXPECT_EQ(io::human_bytes(64 * kMiB), "64.0 MiB");
  EXPECT_EQ(io::human_bytes(uint64_t(4) << 40), "4.00 TiB");
  EXPECT_EQ(io::human_bytes(uint64_t(300) << 30), "300 GiB");
}

TEST(AllocLimits, ParsesProcFiles) {
  EXPECT_EQ(io::detail::parse_mem_available("MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:   20 kB\n").value(),
            20u * 1024);
  EXPECT_FALSE(io::detail::parse_mem_available("MemTotal: 100 kB\nMemFree: 5 kB\n"));  // kernels before 3.14
  EXPECT_FALSE(io::detail::parse_mem_available(""));
  EXPECT_EQ(io::detail::parse_statm_size("1000 200 30 4 0 50 0\n", 4096).value(), 1000u * 4096);
  EXPECT_FALSE(io::detail::parse_statm_size("", 4096));
}

TEST(AllocLimits, RefusesWhatNoMachineHolds) {
  // 2^62 bytes: more than MemAvailable anywhere, whatever /proc says here.
  const std::string e = error_of([] { io::check_allocation(uint64_t(1) << 62, "the thing", "x.bin"); });
  expect_parts(e, {"x.bin: the thing needs 4.00 EiB (4611686018427387904 bytes), more than this process can hold ("});
  if (std::ifstream("/proc/meminfo")) {
    const auto h = io::memory_headroom();
    EXPECT_LT(h.bytes, uint64_t(1) << 62);
    EXPECT_FALSE(h.why.empty());
  }
  // Small requests are not even looked at.
  EXPECT_NO_THROW(io::check_allocation(1000, "a small thing", "x.bin"));
}

TEST(AllocLimits, OverflowingProductIsRefused) {
  const std::string e = error_of([] {
    io::check_allocation(uint64_t(1) << 40, uint64_t(1) << 30, "tensor 'w'", "w.safetensors");
  });
  expect_parts(e, {"w.safetensors: tensor 'w' announces 1099511627776 elements of 1073741824 bytes, more than 2^64 bytes"});
}

TEST(AllocLimits, TestHeadroomAndMessage) {
  ScopedMemoryHeadroomForTesting limit(1000);
  EXPECT_NO_THROW(io::check_allocation(1000, "x", "f"));  // refused only above the headroom
  EXPECT_NO_THROW(io::check_allocation(250, 4, "x", "f"));
  EXPECT_EQ(error_of([] { io::check_allocation(1001, "the table", "p.json"); }),
            "p.json: the table needs 1001 B (1001 bytes), more than this process can hold (a test's limit of 1000 B; "
            "docs/limits.md)");
  expect_parts(error_of([] { io::check_allocation(251, 4, "the table", "p.json"); }),
               {"p.json: the table needs 1004 B (1004 bytes)"});
}

TEST(AllocLimits, StatedLimit) {
  EXPECT_NO_THROW(io::check_limit(65536, io::kMaxProfileDim, "D", "p.json"));
  EXPECT_EQ(error_of([] { io::check_limit(65537, io::kMaxProfileDim, "D", "p.json"); }),
            "p.json: D is 65537, above the limit of 65536 (docs/limits.md)");
}

// The address-space limit (prlimit --as, ulimit -v) counts, less what is in use already.
TEST(AllocLimitsDeathTest, AddressSpaceLimitIsHeadroom) {
  EXPECT_EXIT(
      {
        const auto used = io::detail::parse_statm_size(io::detail::read_proc_file("/proc/self/statm"),
                                                       uint64_t(::sysconf(_SC_PAGESIZE)));
        if (!used) std::exit(3);
        struct rlimit rl {};
        ::getrlimit(RLIMIT_AS, &rl);
        rl.rlim_cur = rlim_t(*used + 256 * kMiB);
        if (::setrlimit(RLIMIT_AS, &rl) != 0) std::exit(4);
        const auto h = io::memory_headroom();
        std::fprintf(stderr, "headroom %llu: %s\n", (unsigned long long)h.bytes, h.why.c_str());
        // What is in use grew a little since `used` was read; MemAvailable may be smaller still.
        const bool ok = h.bytes <= 256 * kMiB && h.bytes > 128 * kMiB;
        try {
          io::check_allocation(uint64_t(1) << 30, "a GiB", "f.bin");
          std::exit(5);
        } catch (const Error& e) {
          std::fprintf(stderr, "%s\n", e.what());
        }
        std::exit(ok ? 0 : 6);
      },
      ::testing::ExitedWithCode(0), "f.bin: a GiB needs 1.00 GiB .*more than this process can hold \\(address-space limit");
}

// ---- whole-file readers: the file's size is checked before the buffer is allocated ----

TEST(HostileFiles, SparseFilesAreRefusedBeforeReading) {
  TempDir d;
  ScopedMemoryHeadroomForTesting limit(1 * kMiB);
  const std::vector<std::string> msg = {"needs 64.0 MiB (67108864 bytes), more than this process can hold (a test's "
                                        "limit of 1.00 MiB"};
  auto expect_refused = [&](const std::string& path, const std::function<void()>& f) {
    SCOPED_TRACE(path);
    const std::string e = error_of(f);
    EXPECT_EQ(e.rfind(path + ": ", 0), 0u) << e;
    expect_parts(e, msg);
  };
  const auto weights = sparse_file(d, "w.safetensors", 64 * kMiB);
  expect_refused(weights, [&] { io::read_safetensors(weights); });
  expect_parts(error_of([&] { io::read_safetensors(weights); }), {": reading the whole file needs 64.0 MiB"});
  const auto ckpt = sparse_file(d, "last.ckpt", 64 * kMiB);
  expect_refused(ckpt, [&] { io::read_file_bytes(ckpt); });
  const auto npy = sparse_file(d, "p.npy", 64 * kMiB);
  expect_refused(npy, [&] { io::read_npy(npy); });
  const auto inter = sparse_file(d, "x.inter", 64 * kMiB);
  expect_refused(inter, [&] { data::read_atomic(inter); });
  // Profiles: JSON (read by simdjson), .npy, and a .npy's ids sidecar.
  data::IdMap users;
  users.intern("u1");
  data::ProfileOptions quiet;
  quiet.log = nullptr;
  const auto json = sparse_file(d, "p.json", 64 * kMiB);
  expect_refused(json, [&] { data::load_profiles({json}, users, quiet); });
  expect_refused(npy, [&] { data::load_profiles({npy}, users, quiet); });
  write_text(d.str("ok.npy"), npy_bytes("(1, 2)", 8));  // a valid (1, 2) array, its sidecar a hole
  ASSERT_EQ(io::read_npy(d.str("ok.npy")).shape, (std::vector<int64_t>{1, 2}));
  const auto ids = sparse_file(d, "ok.npy.ids", 64 * kMiB);
  expect_refused(ids, [&] { data::load_profiles({d.str("ok.npy")}, users, quiet); });
  // The LLM answer cache.
  const auto cache = sparse_file(d, "cache.jsonl", 64 * kMiB);
  expect_refused(cache, [&] { llm::AnswerCache c(cache, nullptr); });
}

// ---- sizes announced inside files ----

TEST(HostileFiles, ProfileDimensionAboveTheLimit) {
  TempDir d;
  data::IdMap users;
  users.intern("u1");
  data::ProfileOptions quiet;
  quiet.log = nullptr;
  // JSON: one profile of 65537 numbers (131 kB) is refused while it is read.
  std::string json = "{\"u1\": [0";
  for (uint64_t i = 1; i <= io::kMaxProfileDim; ++i) json += ",0";
  json += "]}";
  write_text(d.str("wide.json"), json);
  expect_parts(error_of([&] { data::load_profiles({d.str("wide.json")}, users, quiet); }),
               {d.str("wide.json"), ": $[\"u1\"]: more than 65536 numbers, the limit of a profile's dimension D"});
  // .npy: shape (1, 65537).
  write_text(d.str("wide.npy"), npy_bytes("(1, 65537)", 4 * 65537));
  write_text(d.str("wide.npy.ids"), "u1\n");
  expect_parts(error_of([&] { data::load_profiles({d.str("wide.npy")}, users, quiet); }),
               {d.str("wide.npy"), ": the profile dimension D (the array's second axis) is 65537, above the limit of 65536"});
}

TEST(HostileFiles, ProfileTableLargerThanMemory) {
  TempDir d;
  data::IdMap users;
  for (const char* u : {"u1", "u2", "u3"}) users.intern(u);
  data::ProfileOptions quiet;
  quiet.log = nullptr;
  std::string json = "{\"u1\": [0";
  for (int i = 1; i < 8192; ++i) json += ",0";
  json += "]}";
  write_text(d.str("p.json"), json);
  ScopedMemoryHeadroomForTesting limit(64 * kKiB);  // the 16 kB file fits, 4 x 8192 floats do not
  expect_parts(error_of([&] { data::load_profiles({d.str("p.json")}, users, quiet); }),
               {d.str("p.json"), ": the profile table of 4 users x 1 files x 8192 dimensions needs 128 KiB (131072 bytes), "
                                 "more than this process can hold"});
}

TEST(HostileFiles, SafetensorsShapeAboveTheLimit) {
  // 2^36 + 1 elements, data_offsets to match: refused by the limit (then by the file size).
  const uint64_t n = io::kMaxTensorElements + 1;
  const std::string h = cat(R"({"t":{"dtype":"F32","shape":[)", n, R"(],"data_offsets":[0,)", 4 * n, "]}}");
  std::string file(8, '\0');
  const uint64_t len = h.size();
  std::memcpy(file.data(), &len, 8);
  file += h + std::string(8, '\0');
  expect_parts(error_of([&] { io::parse_safetensors(file, "w.safetensors"); }),
               {"w.safetensors: safetensors header: tensor 't': shape [68719476737] has 68719476737 elements, above the "
                "limit of 68719476736"});
}

TEST(HostileFiles, NpyShapeAboveTheLimit) {
  const std::string bytes = npy_bytes("(262144, 262145)", 16);
  expect_parts(error_of([&] { io::parse_npy(bytes, "big.npy"); }),
               {"big.npy: not a valid .npy file: shape (262144, 262145) has more than 68719476736 elements"});
}

// A fuzz finding (CI, 2026-12-05): a shape with a 0 is empty however large its other entries,
// which the limit does not bound; counting it overflowed int64 (undefined behaviour) before.
TEST(HostileFiles, NpyEmptyShapeWithHugeEntries) {
  const io::NpyArray a = io::parse_npy(npy_bytes("(999999999999, 999999999999, 0)", 0), "empty.npy");
  EXPECT_EQ(a.count(), 0);
  EXPECT_TRUE(a.as<double>().empty());
  io::NpyArray b;
  b.dtype = "<f4";
  b.shape = {999999999999, 999999999999};  // not from parse_npy, which refuses it
  expect_parts(error_of([&] { (void)b.count(); }), {"npy: the shape's element count overflows 64 bits"});
}

// Metadata: every id gets a row of every column of the item (or user) file.
TEST(HostileFiles, MetadataColumns) {
  TempDir d;
  write_text(d.str("x.inter"), "user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t1\n");
  std::string wide = "item_id:token";
  for (uint64_t c = 0; c <= io::kMaxMetadataColumns; ++c) wide += cat("\tc", c, ":token");
  write_text(d.str("wide.item"), wide + "\n");
  expect_parts(error_of([&] { data::read_atomic(d.str("x.inter"), d.str("wide.item")); }),
               {d.str("wide.item"), ": the number of metadata columns in the header is 65537, above the limit of 65536"});
  // 100 columns are allowed, but not 100 columns for each of 1000 items under a 1 MiB limit.
  std::string item = "item_id:token";
  for (int c = 0; c < 100; ++c) item += cat("\tc", c, ":token");
  item += "\ni1";
  for (int c = 0; c < 100; ++c) item += "\tv";
  write_text(d.str("x.item"), item + "\n");
  std::string inter = "user_id:token\titem_id:token\ttimestamp:float\n";
  for (int i = 1; i <= 1000; ++i) inter += cat("u1\ti", i, "\t", i, "\n");
  write_text(d.str("many.inter"), inter);
  EXPECT_NO_THROW(data::read_atomic(d.str("many.inter"), d.str("x.item")));
  ScopedMemoryHeadroomForTesting limit(1 * kMiB);
  expect_parts(error_of([&] { data::read_atomic(d.str("many.inter"), d.str("x.item")); }),
               {d.str("many.inter"), ": the item metadata table (999 ids x 100 columns) needs",
                "more than this process can hold"});
}

// ---- the prepared dataset (Boost archive body) ----

// A small, consistent prepared dataset: users u1, u2; items i1, i2.
data::PreparedData small_prepared() {
  data::PreparedData p;
  auto& d = p.dataset;
  d.source = "x";
  for (const char* u : {"u1", "u2"}) d.users.intern(u);
  for (const char* i : {"i1", "i2"}) d.items.intern(i);
  d.user = {1, 1, 2};
  d.item = {1, 2, 1};
  d.timestamp = {1, 2, 3};
  auto& s = p.split;
  s.protocol = "loo";
  s.n_users = d.users.size();
  s.n_items = d.items.size();
  s.train = {{}, {1}, {1}};
  s.test = {data::SplitCase{1, {1}, 2}};
  return p;
}

// A payload whose body is `body` (any bytes), framed with a valid checksum.
void write_body(const std::string& path, const std::string& body) {
  io::ByteWriter w;
  data::put_prepared_header(w, data::PreparedHeader{});
  w.put(body);
  io::write_container(path, data::kPreparedFile, w.bytes());
}

TEST(HostileFiles, PreparedCountsTheMappingsDoNotBack) {
  TempDir d;
  auto p = small_prepared();
  data::write_prepared(d.str("ok.prep"), p, data::PreparedHeader{});
  EXPECT_NO_THROW(data::read_prepared(d.str("ok.prep")));
  // Models size their item table from n_items: 2^31 - 1 items from a file of a few hundred bytes.
  p.split.n_items = INT32_MAX;
  data::write_prepared(d.str("items.prep"), p, data::PreparedHeader{});
  expect_parts(error_of([&] { data::read_prepared(d.str("items.prep")); }),
               {d.str("items.prep"), ": inconsistent prepared split: 2147483647 items and 3 users, but the id mappings "
                                     "hold 3 and 3"});
}

// The first fields of a prepared body as binary_oarchive writes them, the last one an empty
// vector whose 8-byte element count sits `from_end` bytes before the end; that count becomes
// `count`, and `tail` zero bytes follow.
template <class... Fields>
std::string body_with_count(uint64_t count, size_t from_end, size_t tail, const Fields&... fields) {
  std::ostringstream os(std::ios::binary);
  {
    boost::archive::binary_oarchive ar(os);
    (ar << ... << fields);
  }
  std::string body = os.str();
  uint64_t was = 1;
  std::memcpy(&was, body.data() + body.size() - from_end, 8);
  EXPECT_EQ(was, 0u);
  std::memcpy(body.data() + body.size() - from_end, &count, 8);
  return body + std::string(tail, '\0');
}

TEST(HostileFiles, PreparedVectorOfNumbersLongerThanTheBody) {
  TempDir d;
  const std::vector<std::string> pad = {"[PAD]"};
  // d.user announces 1000 int32 (4000 bytes); 1000 bytes follow. (A vector of numbers ends
  // with its count when empty.)
  write_body(d.str("x.prep"), body_with_count(1000, 8, 1000, std::string("x"), pad, pad, std::vector<int32_t>{}));
  expect_parts(error_of([&] { data::read_prepared(d.str("x.prep")); }),
               {d.str("x.prep"), ": cannot decode the prepared dataset body: ",
                "vector's elements larger than the rest of the input"});
}

TEST(HostileFiles, PreparedVectorLargerThanMemory) {
  TempDir d;
  // The user tokens announce 10000 strings (32 bytes each); 10000 bytes follow. (An empty
  // vector of strings ends with its count and a 4-byte item version.)
  write_body(d.str("x.prep"), body_with_count(10000, 12, 10000, std::string("x"), std::vector<std::string>{}));
  ScopedMemoryHeadroomForTesting limit(64 * kKiB);
  expect_parts(error_of([&] { data::read_prepared(d.str("x.prep")); }),
               {d.str("x.prep"), ": a vector of 10000 elements of 32 bytes needs ", "(320000 bytes), more than this "
                                 "process can hold (a test's limit of 64.0 KiB"});
}

}  // namespace
