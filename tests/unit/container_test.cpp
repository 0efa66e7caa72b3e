// The verified binary framing (io/container.hpp): every kind of damage is detected before
// the payload is used, and each error names the file and what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../common/test_util.hpp"
#include "recdistill/io/container.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
namespace fs = std::filesystem;

namespace {

constexpr io::FileKind kTest{std::string_view("RDTEST\0\1", 8), 3, "test file"};

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("rd_container") {}
};

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string error_of(const std::string& path, const io::FileKind& kind = kTest) {
  try {
    io::read_container(path, kind);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string payload() {
  std::string p;
  for (int i = 0; i < 1000; ++i) p += char(i * 7 + 3);
  return p;
}

}  // namespace

TEST(Fnv1a64, MatchesPublishedVectors) {
  // Reference values of 64-bit FNV-1a (Fowler/Noll/Vo test suite).
  EXPECT_EQ(io::fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(io::fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(io::fnv1a64("foobar"), 0x85944171f73967e8ull);
  // Hashing in pieces equals hashing the whole.
  EXPECT_EQ(io::fnv1a64("bar", io::fnv1a64("foo")), io::fnv1a64("foobar"));
}

TEST(Container, RoundTripsAndLeavesNoTemporaryFile) {
  TempDir d;
  const auto f = d.str("x.bin");
  io::write_container(f, kTest, payload());
  EXPECT_EQ(io::read_container(f, kTest), payload());
  EXPECT_EQ(fs::file_size(f), io::kContainerHeader + payload().size());
  int entries = 0;
  for (const auto& e : fs::directory_iterator(d.path)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
  // An empty payload is valid too.
  io::write_container(f, kTest, "");
  EXPECT_EQ(io::read_container(f, kTest), "");
}

TEST(Container, DetectsAFlippedByteAnywhere) {
  TempDir d;
  const auto f = d.str("x.bin");
  io::write_container(f, kTest, payload());
  const std::string good = io::read_file_bytes(f);
  // Every payload byte, one bit at a time at a few positions, and the checksum field itself.
  for (size_t pos : {io::kContainerHeader, io::kContainerHeader + 1, good.size() / 2, good.size() - 1,
                     size_t(20), size_t(27)}) {
    std::string bad = good;
    bad[pos] = char(bad[pos] ^ 0x10);
    write_raw(f, bad);
    const auto e = error_of(f);
    EXPECT_NE(e.find(f), std::string::npos) << e;
    EXPECT_NE(e.find("corrupted"), std::string::npos) << "byte " << pos << ": " << e;
  }
}

TEST(Container, DetectsTruncationAndExtraBytes) {
  TempDir d;
  const auto f = d.str("x.bin");
  io::write_container(f, kTest, payload());
  const std::string good = io::read_file_bytes(f);
  write_raw(f, good.substr(0, good.size() - 1));
  EXPECT_NE(error_of(f).find("truncated test file: the header announces 1000 payload bytes, the file holds 999"),
            std::string::npos) << error_of(f);
  write_raw(f, good.substr(0, 10));
  EXPECT_NE(error_of(f).find("truncated: 10 bytes, shorter than the 28-byte header"), std::string::npos)
      << error_of(f);
  write_raw(f, good + "xy");
  EXPECT_NE(error_of(f).find("2 unexpected bytes after"), std::string::npos) << error_of(f);
}

TEST(Container, RefusesWrongMagicVersionAndEmptyFile) {
  TempDir d;
  const auto f = d.str("x.bin");
  write_raw(f, "");
  EXPECT_NE(error_of(f).find(f + ": the file is empty (expected a recdistill test file)"), std::string::npos)
      << error_of(f);
  write_raw(f, "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n");
  EXPECT_NE(error_of(f).find("not a recdistill test file (magic bytes 'user_id:'"), std::string::npos)
      << error_of(f);
  // Another kind's file is refused by magic, not misread.
  constexpr io::FileKind other{std::string_view("RDOTHR\0\1", 8), 3, "other file"};
  io::write_container(f, other, payload());
  EXPECT_NE(error_of(f).find("expected 'RDTEST\\x00\\x01'"), std::string::npos) << error_of(f);
  // Same magic, other format version: both numbers named.
  constexpr io::FileKind older{std::string_view("RDTEST\0\1", 8), 2, "test file"};
  io::write_container(f, older, payload());
  EXPECT_NE(error_of(f).find("test file written by format version 2, this build reads version 3"),
            std::string::npos) << error_of(f);
  constexpr io::FileKind newer{std::string_view("RDTEST\0\1", 8), 4, "test file"};
  io::write_container(f, newer, payload());
  EXPECT_NE(error_of(f).find("written by format version 4, this build reads version 3 (written by a newer"),
            std::string::npos) << error_of(f);
  EXPECT_NE(error_of(d.str("missing.bin")).find("missing.bin: cannot open file"), std::string::npos);
}

TEST(ByteReader, NeverReadsPastTheEnd) {
  io::ByteWriter w;
  w.put<uint32_t>(7);
  w.put(std::string("hello"));
  w.put(std::vector<float>{1.5f, -2.0f});
  const std::string bytes = w.bytes();
  {
    io::ByteReader r(bytes, "f");
    EXPECT_EQ(r.get<uint32_t>("a"), 7u);
    EXPECT_EQ(r.get_string("b"), "hello");
    EXPECT_EQ(r.get_vector<float>("c"), (std::vector<float>{1.5f, -2.0f}));
    EXPECT_TRUE(r.done());
  }
  // Every truncation fails with a message instead of reading out of bounds.
  for (size_t n = 0; n < bytes.size(); ++n) {
    io::ByteReader r(std::string_view(bytes).substr(0, n), "f");
    EXPECT_THROW(
        {
          r.get<uint32_t>("a");
          r.get_string("b");
          r.get_vector<float>("c");
        },
        Error)
        << n;
  }
  // A huge announced length does not allocate.
  io::ByteWriter h;
  h.put<uint64_t>(uint64_t(1) << 60);
  io::ByteReader r(h.bytes(), "f");
  EXPECT_THROW(r.get_vector<double>("v"), Error);
}

}  // namespace RD_TEST_FILE
