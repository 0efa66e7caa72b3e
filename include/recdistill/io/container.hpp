// recdistill/io/container.hpp: the one framing of every recdistill binary file (prepared
// datasets, checkpoints), verified before any byte of the payload is interpreted
// (DESIGN.md, Decisions: Untrusted files).
//
// Layout, little-endian, 28-byte header then the payload:
//   magic     8 bytes   per file kind, e.g. "RDCKPT\0\1"
//   version   u32       format version of that kind's payload
//   length    u64       payload bytes that follow the header
//   checksum  u64       64-bit FNV-1a of the payload bytes (offset 0xcbf29ce484222325,
//                       prime 0x100000001b3), computed by the plain byte loop below
//   payload   `length` bytes
// A reader checks, in this order: the file is at least a header long, the magic, the
// version, the length against the file size (truncated or extra bytes), the checksum; only
// then is the payload handed to a deserialiser. Every error names the file.
//
// ByteWriter/ByteReader are a minimal bounds-checked little-endian encoding for payloads
// that do not need Boost.Serialization (checkpoints).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/alloc_limits.hpp"
#include "recdistill/io/atomic_file.hpp"

namespace recdistill::io {

static_assert(std::endian::native == std::endian::little,
              "recdistill's binary files are little-endian; a big-endian port needs byte swaps here");

inline constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// 64-bit FNV-1a over n bytes, continuing from `h` (so several buffers hash as one stream).
inline uint64_t fnv1a64_bytes(const void* data, size_t n, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return h;
}
inline uint64_t fnv1a64(std::string_view s, uint64_t h = kFnvOffset) { return fnv1a64_bytes(s.data(), s.size(), h); }

inline std::string hex64(uint64_t v) {
  static const char* d = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[size_t(i)] = d[v & 15];
  return s;
}

// One kind of binary file: its 8 magic bytes, the payload format version this build writes
// and reads, and a name for messages ("checkpoint", "prepared dataset").
struct FileKind {
  std::string_view magic;  // exactly 8 bytes
  uint32_t version;
  std::string_view what;
  std::string_view older = "write it again with this build";  // what to do with an older version
};

inline constexpr size_t kContainerHeader = 8 + 4 + 8 + 8;

namespace detail {
template <class U>
void put_raw(std::string& out, U v) {
  char b[sizeof(U)];
  std::memcpy(b, &v, sizeof(U));
  out.append(b, sizeof(U));
}
template <class U>
U get_raw(const char* p) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  return v;
}
inline std::string printable_magic(std::string_view m) {
  std::string s;
  for (unsigned char c : m) {
    if (c >= 32 && c < 127) s += char(c);
    else s += cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
  }
  return s;
}
}  // namespace detail

// Header + payload, as written to disk.
inline std::string frame(const FileKind& kind, std::string_view payload) {
  RD_REQUIRE(kind.magic.size() == 8, "a file kind's magic must be 8 bytes");
  std::string out;
  out.reserve(kContainerHeader + payload.size());
  out.append(kind.magic.data(), 8);
  detail::put_raw<uint32_t>(out, kind.version);
  detail::put_raw<uint64_t>(out, uint64_t(payload.size()));
  detail::put_raw<uint64_t>(out, fnv1a64(payload));
  out.append(payload.data(), payload.size());
  return out;
}

// Verifies `bytes` (the whole file `path`) and returns a view of its payload.
inline std::string_view unframe(std::string_view bytes, const FileKind& kind, const std::string& path) {
  if (bytes.empty()) fail(path, ": the file is empty (expected a recdistill ", kind.what, ")");
  if (bytes.size() < kContainerHeader)
    fail(path, ": truncated: ", bytes.size(), " bytes, shorter than the ", kContainerHeader,
         "-byte header of a recdistill ", kind.what);
  if (bytes.substr(0, 8) != kind.magic)
    fail(path, ": not a recdistill ", kind.what, " (magic bytes '",
         detail::printable_magic(bytes.substr(0, 8)), "', expected '",
         detail::printable_magic(kind.magic), "')");
  const auto version = detail::get_raw<uint32_t>(bytes.data() + 8);
  if (version != kind.version)
    fail(path, ": ", kind.what, " written by format version ", version, ", this build reads version ",
         kind.version, version < kind.version ? cat(" (", kind.older, ")") : std::string(" (written by a newer recdistill)"));
  const auto length = detail::get_raw<uint64_t>(bytes.data() + 12);
  const uint64_t have = uint64_t(bytes.size() - kContainerHeader);
  if (length > have)
    fail(path, ": truncated ", kind.what, ": the header announces ", length,
         " payload bytes, the file holds ", have, " (an interrupted copy or write?)");
  if (length < have)
    fail(path, ": ", have - length, " unexpected bytes after the ", kind.what, "'s ", length,
         "-byte payload");
  const std::string_view payload = bytes.substr(kContainerHeader);
  const uint64_t want = detail::get_raw<uint64_t>(bytes.data() + 20);
  const uint64_t got = fnv1a64(payload);
  if (want != got)
    fail(path, ": ", kind.what, " is corrupted: payload checksum ", hex64(got), ", header says ",
         hex64(want), " (FNV-1a 64)");
  return payload;
}

// The whole file; its size is checked against what this process can hold first
// (io/alloc_limits.hpp: a sparse file of 64 GiB costs no disk space).
inline std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(path, ": cannot open file");
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, ": cannot determine the file size");
  check_file_read(uint64_t(size), path);
  std::string bytes;
  try {
    bytes.assign(size_t(size), '\0');
  } catch (const std::bad_alloc&) {
    fail(path, ": cannot allocate ", human_bytes(uint64_t(size)), " to read the file");
  }
  f.seekg(0);
  if (size > 0 && !f.read(bytes.data(), size)) fail(path, ": read error (file changed while reading?)");
  return bytes;
}

// Writes header + payload atomically (io/atomic_file.hpp).
inline void write_container(const std::string& path, const FileKind& kind, std::string_view payload) {
  write_file_atomic(path, frame(kind, payload));
}

// Reads and verifies the whole file; returns its payload.
inline std::string read_container(const std::string& path, const FileKind& kind) {
  const std::string bytes = read_file_bytes(path);
  return std::string(unframe(bytes, kind, path));
}

// Little-endian encoding of scalars, strings and vectors of trivially copyable values.
class ByteWriter {
 public:
  template <class U>
    requires std::is_arithmetic_v<U>
  void put(U v) { detail::put_raw<U>(out_, v); }
  void put(const std::string& s) {
    put<uint64_t>(s.size());
    out_ += s;
  }
  template <class U>
    requires std::is_trivially_copyable_v<U>
  void put(const std::vector<U>& v) {
    put<uint64_t>(v.size());
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(U));
  }
  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what ByteWriter wrote; reading past the end fails naming the file and the field, so
// even a payload that passed the checksum but was written by a buggy or hostile writer
// cannot make it read out of bounds or allocate more than the file holds.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string path) : b_(bytes), path_(std::move(path)) {}
  template <class U>
    requires std::is_arithmetic_v<U>
  U get(const char* what) {
    need(sizeof(U), what);
    const U v = detail::get_raw<U>(b_.data() + pos_);
    pos_ += sizeof(U);
    return v;
  }
  std::string get_string(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    need(n, what);
    std::string s(b_.substr(pos_, size_t(n)));
    pos_ += size_t(n);
    return s;
  }
  template <class U>
  std::vector<U> get_vector(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    if (n > (b_.size() - pos_) / sizeof(U)) fail(path_, ": field '", what, "' announces ", n,
                                                  " elements, more than the payload holds");
    std::vector<U> v(static_cast<size_t>(n));
    // (an empty vector's data() may be null, and memcpy from or to null is undefined even for
    // 0 bytes: found by the checkpoint fuzz target)
    if (n > 0) std::memcpy(v.data(), b_.data() + pos_, size_t(n) * sizeof(U));
    pos_ += size_t(n) * sizeof(U);
    return v;
  }
  bool done() const { return pos_ == b_.size(); }
  void expect_end() const {
    if (!done()) fail(path_, ": ", b_.size() - pos_, " unread bytes at the end of the payload");
  }
  const std::string& path() const { return path_; }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > b_.size() - pos_)
      fail(path_, ": the payload ends inside field '", what, "' (needs ", n, " bytes, ",
           b_.size() - pos_, " left)");
  }
  std::string_view b_;
  size_t pos_ = 0;
  std::string path_;
};

}  // namespace recdistill::io
