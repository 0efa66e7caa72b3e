// The safetensors reader and writer (io/safetensors.hpp): round trip, byte compatibility with
// the Python library's writer, and a clear refusal of every malformed file, through both the
// in-memory parser and the file reader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "recdistill/io/safetensors.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

namespace {

namespace fs = std::filesystem;
using namespace recdistill;

const fs::path kDir = fs::path(RECDISTILL_FIXTURE_DIR) / "safetensors";

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("rd_st_" + std::to_string(::getpid()) + "_" + name);
}

// A file from a header (written as given, no padding) and a data buffer.
std::string file(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string floats(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * sizeof(float));
}

// Both the parser and the file reader must refuse `bytes` with a message containing each part.
void expect_refused(const std::string& bytes, const std::vector<std::string>& parts) {
  SCOPED_TRACE(parts.front());
  auto check = [&](auto&& read, const std::string& path) {
    try {
      (void)read();
      ADD_FAILURE() << "accepted a malformed file";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "want '" << p << "' in: " << msg;
    }
  };
  check([&] { return io::parse_safetensors(bytes, "mem.safetensors"); }, "mem.safetensors");
  const fs::path p = temp_path("bad.safetensors");
  std::ofstream(p, std::ios::binary) << bytes;
  check([&] { return io::read_safetensors(p.string()); }, p.string());
  fs::remove(p);
}

io::SafeTensors sample() {
  io::SafeTensors st;
  st.metadata = {{"format_version", "1"}, {"model_config", "model:\n  variant: \"recbole\"\n\ttab"}};
  st.tensors.push_back({"w", {2, 3}, {1, 2, 3, 4, 5, -6.5f}});
  st.tensors.push_back({"b", {3}, {0.25f, std::numeric_limits<float>::denorm_min(), 3e38f}});
  st.tensors.push_back({"scalar", {}, {42}});
  st.tensors.push_back({"empty", {0, 4}, {}});
  st.tensors.push_back({"quote\"d\\name", {1}, {7}});
  return st;
}

void expect_same(const io::SafeTensors& a, const io::SafeTensors& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
    EXPECT_EQ(a.tensors[i].data, b.tensors[i].data) << a.tensors[i].name;
  }
}

TEST(Safetensors, RoundTripInMemoryAndOnDisk) {
  const auto st = sample();
  const std::string bytes = io::encode_safetensors(st);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header padded to a multiple of 8";
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), 8 + n + 4 * (6 + 3 + 1 + 0 + 1));
  expect_same(io::parse_safetensors(bytes, "mem"), st);

  const fs::path p = temp_path("rt.safetensors");
  io::write_safetensors(p.string(), st);
  EXPECT_EQ(read_bytes(p), bytes);
  const auto back = io::read_safetensors(p.string());
  expect_same(back, st);
  ASSERT_NE(back.find("scalar"), nullptr);
  EXPECT_EQ(back.find("scalar")->data, std::vector<float>{42});
  EXPECT_EQ(back.find("nope"), nullptr);
  fs::remove(p);

  // No tensors at all is a valid file.
  expect_same(io::parse_safetensors(io::encode_safetensors({}), "mem"), io::SafeTensors{});
}

TEST(Safetensors, WriterRefusesInconsistentTensors) {
  io::SafeTensors st;
  st.tensors.push_back({"w", {2, 3}, {1, 2, 3}});
  EXPECT_THROW((void)io::encode_safetensors(st), Error);
  st.tensors[0] = {"w", {3}, {1, 2, 3}};
  st.tensors.push_back({"w", {1}, {1}});
  EXPECT_THROW((void)io::encode_safetensors(st), Error);
  st.tensors.back().name = "__metadata__";
  EXPECT_THROW((void)io::encode_safetensors(st), Error);
}

// tests/fixtures/safetensors/python_small.safetensors is written by Python's safetensors 0.4.5
// (tools/safetensors_interchange.py): we read what it wrote, and writing it back gives the
// same bytes (same header text, key order, padding and data layout).
TEST(Safetensors, ReadsAndRewritesPythonFileByteForByte) {
  const fs::path p = kDir / "python_small.safetensors";
  const std::string bytes = read_bytes(p);
  ASSERT_FALSE(bytes.empty()) << p;
  const auto st = io::read_safetensors(p.string());
  EXPECT_EQ(st.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  // Python's save_file orders tensors by name (bytes).
  std::vector<std::string> names;
  for (const auto& t : st.tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.weight", "b", "empty", "scalar", "z.\xC3\xBC"}));
  const auto* a = st.find("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a->data[size_t(i)], float(i) * 0.25f - 1.0f);
  EXPECT_EQ(st.find("b")->data, (std::vector<float>{1.5f, -2.0f, 1e-30f, 3e38f}));
  EXPECT_EQ(st.find("scalar")->shape, std::vector<int64_t>{});
  EXPECT_EQ(st.find("scalar")->data, std::vector<float>{3.5f});
  EXPECT_EQ(st.find("empty")->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(st.find("empty")->data.empty());
  EXPECT_EQ(st.find("z.\xC3\xBC")->data, std::vector<float>{7.0f});
  EXPECT_EQ(io::encode_safetensors(st), bytes);
}

// ---- refusals ---------------------------------------------------------------------------

const std::string kOk = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

TEST(SafetensorsRefuses, ValidBaseline) {
  // The malformed cases below are this file with one thing changed.
  const auto st = io::parse_safetensors(file(kOk, floats({1, 2})), "mem");
  EXPECT_EQ(st.tensors.at(0).data, (std::vector<float>{1, 2}));
}

TEST(SafetensorsRefuses, TruncatedFile) {
  expect_refused(std::string("\x10\0\0", 3), {"3 bytes", "8-byte header length", "truncated"});
  expect_refused(std::string(), {"0 bytes", "truncated"});
  // The data cut short: the tensor's offsets run past the end.
  expect_refused(file(kOk, floats({1})), {"tensor 't'", "data_offsets [0, 8]", "extend past the end",
                                          "has 4 bytes"});
  // The header cut short.
  const std::string whole = file(kOk, floats({1, 2}));
  expect_refused(whole.substr(0, 20), {"header length 54 is beyond the file", "20 bytes"});
}

TEST(SafetensorsRefuses, HeaderOver100MB) {
  std::string bytes(8, '\0');
  const uint64_t n = 100'000'001;
  std::memcpy(bytes.data(), &n, 8);
  expect_refused(bytes + kOk, {"header length 100000001 exceeds the limit of 100000000 bytes"});
  const uint64_t huge = ~uint64_t(0);
  std::memcpy(bytes.data(), &huge, 8);
  expect_refused(bytes + kOk, {"header length 18446744073709551615 exceeds the limit"});
}

TEST(SafetensorsRefuses, HeaderLengthBeyondFile) {
  std::string bytes = file(kOk, floats({1, 2}));
  const uint64_t n = 1000;
  std::memcpy(bytes.data(), &n, 8);
  expect_refused(bytes, {"header length 1000 is beyond the file", "70 bytes", "at most 62 bytes"});
}

TEST(SafetensorsRefuses, InvalidJson) {
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", floats({1, 2})),
                 {"safetensors header: invalid JSON"});
  expect_refused(file(R"({"t": nan})"), {"invalid JSON"});
  expect_refused(file("{\"t\xff\":1}"), {"invalid JSON"});  // not UTF-8
  expect_refused(file(R"( {"t":1})"), {"expected a JSON object starting with '{', found ' '"});
  expect_refused(file(R"([1, 2])"), {"starting with '{', found '['"});
}

TEST(SafetensorsRefuses, DuplicateNames) {
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      floats({1, 2})),
                 {"duplicate tensor name 't'"});
  expect_refused(file(R"({"__metadata__":{},"__metadata__":{}})"), {"duplicate key '__metadata__'"});
  expect_refused(file(R"({"t":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "duplicate key 'dtype'"});
}

TEST(SafetensorsRefuses, WrongDtype) {
  for (const char* dt : {"F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "f32"}) {
    std::string h = kOk;
    h.replace(h.find("F32"), 3, dt);
    expect_refused(file(h, floats({1, 2})), {"tensor 't'", cat("dtype is ", dt), "only F32 tensors are read"});
  }
  expect_refused(file(R"({"t":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "dtype: expected a string", "found an integer"});
}

TEST(SafetensorsRefuses, BadShape) {
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "shape: expected non-negative integers", "-2"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "shape: expected non-negative integers", "a non-integer number"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "shape: expected an array"});
  // The element count overflows: refused before any size is used.
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                      floats({1, 2})),
                 {"tensor 't'", "too many elements"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", floats({1, 2})),
                 {"tensor 't'", "unexpected key 'extra'"});
  expect_refused(file(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "missing key 'shape'"});
  expect_refused(file(R"({"t":[1,2]})", floats({1, 2})), {"tensor 't'", "expected an object"});
}

TEST(SafetensorsRefuses, OverlappingOffsets) {
  expect_refused(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                      floats({1, 2, 3})),
                 {"tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (data_offsets [0, 8])"});
  // Two tensors on the same bytes.
  expect_refused(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                      floats({1, 2})),
                 {"overlaps tensor 'a'"});
}

TEST(SafetensorsRefuses, HoleBetweenOffsets) {
  expect_refused(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                      floats({1, 2, 3})),
                 {"bytes [4, 8) of the data buffer belong to no tensor", "between tensor 'a' and tensor 'b'"});
  expect_refused(file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", floats({1, 2})),
                 {"bytes [0, 4)", "before tensor 'b'"});
}

TEST(SafetensorsRefuses, OffsetsNotMatchingShape) {
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1, 2})),
                 {"tensor 't'", "data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 3 x 4 = 12 bytes"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", floats({1, 2})),
                 {"tensor 't'", "end is before begin"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", floats({1, 2})),
                 {"tensor 't'", "data_offsets: expected [begin, end]"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", floats({1, 2})),
                 {"tensor 't'", "data_offsets: expected [begin, end]"});
  expect_refused(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", floats({1, 2})),
                 {"tensor 't'", "data_offsets: expected [begin, end]"});
}

TEST(SafetensorsRefuses, FileSizeMismatch) {
  expect_refused(file(kOk, floats({1, 2, 3})),
                 {"the file has 74 bytes, but 8 + header 54 + tensor data 8 = 70", "trailing bytes"});
}

TEST(SafetensorsRefuses, BadMetadata) {
  expect_refused(file(R"({"__metadata__":{"epochs":3}})"),
                 {"'__metadata__': key 'epochs': expected a string value, found an integer 3"});
  expect_refused(file(R"({"__metadata__":{"a":{"b":"c"}}})"), {"key 'a': expected a string value, found an object"});
  expect_refused(file(R"({"__metadata__":["a"]})"), {"'__metadata__': expected an object of string -> string"});
  expect_refused(file(R"({"__metadata__":{"a":"1","a":"2"}})"), {"'__metadata__': duplicate key 'a'"});
  const auto st = io::parse_safetensors(file(R"({"__metadata__":{"format":"pt","k":"v\n"}})"), "mem");
  EXPECT_EQ(st.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"k", "v\n"}}));
}

TEST(SafetensorsRefuses, ADirectoryOrMissingFile) {
  EXPECT_THROW((void)io::read_safetensors(fs::temp_directory_path().string()), Error);
  EXPECT_THROW((void)io::read_safetensors("/nonexistent/x.safetensors"), Error);
}

}  // namespace

}  // namespace RD_TEST_FILE
