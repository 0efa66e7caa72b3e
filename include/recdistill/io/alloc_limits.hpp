// recdistill/io/alloc_limits.hpp: bounded allocations for the readers of untrusted files
// (docs/limits.md).
//
// A size read from a file (a dimension, a count, a shape, the file's own size) is checked
// before anything is allocated from it:
//   - against a stated limit of its kind (kMax* below): generous, but finite, so that a file
//     cannot ask for more than any real dataset or model needs;
//   - the bytes it implies (count x element size, with checked multiplication) against what
//     this process can still hold: min(MemAvailable of /proc/meminfo, the address-space limit
//     RLIMIT_AS (prlimit --as, ulimit -v) minus the address space in use, /proc/self/statm).
// A refusal is a recdistill::Error naming the file, what was to be allocated, the size and the
// limit, e.g.
//   x.safetensors: reading the whole file needs 64.0 GiB (68719476736 bytes), more than this
//   process can hold (address-space limit 2.00 GiB, 210 MiB of it in use)
// so a hostile file gets an error instead of an OOM kill or a bare std::bad_alloc.
//
// What this does not promise: the memory check is made per allocation, at the moment of the
// request (other allocations made later, by this or another process, are not foreseen); below
// kCheckedFromBytes the /proc files are not read (a small request is answered by the stated
// limits alone); a container's cgroup memory limit is not read (MemAvailable there is the
// host's). If /proc cannot be read, only the stated limits and RLIMIT_AS apply.
#pragma once
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "recdistill/core/error.hpp"

namespace recdistill::io {

// ---- Stated limits (docs/limits.md) ----

// Dimension D of a user-profile embedding (data/profiles.hpp). Embedding models give 384 to
// 4096 numbers; a file claiming more than 65536 is refused before the table is sized from it.
inline constexpr uint64_t kMaxProfileDim = uint64_t(1) << 16;
// Elements of one tensor (safetensors weights, .npy arrays): 2^36 (256 GiB of float32).
inline constexpr uint64_t kMaxTensorElements = uint64_t(1) << 36;
// Elements of one collection in a prepared dataset's Boost archive (io/bounded_archive.hpp).
inline constexpr uint64_t kMaxArchiveElements = uint64_t(1) << 36;
// Metadata columns of an item or user file (data/text.hpp): each id gets a row of them.
inline constexpr uint64_t kMaxMetadataColumns = uint64_t(1) << 16;
// Requests smaller than this are not checked against /proc (reading it costs a system call
// or two; readers make many small allocations, each bounded by the bytes they have read).
inline constexpr uint64_t kCheckedFromBytes = uint64_t(16) << 20;

// ---- Helpers ----

// a * b, or nothing when it does not fit in 64 bits.
inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// "4.00 TiB", "512 B": three significant digits, binary units.
inline std::string human_bytes(uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

// How much more this process may allocate, and where that figure comes from.
struct MemoryHeadroom {
  uint64_t bytes = UINT64_MAX;  // UINT64_MAX: unknown (no limit could be read)
  std::string why;              // "MemAvailable 20.1 GiB", for messages
};

namespace detail {

// Set by ScopedMemoryHeadroomForTesting; 0 = none.
inline std::atomic<uint64_t> headroom_for_testing{0};

// The value of "MemAvailable:" in /proc/meminfo's text, in bytes.
inline std::optional<uint64_t> parse_mem_available(const std::string& meminfo) {
  std::istringstream in(meminfo);
  std::string key, unit;
  uint64_t value = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    if (!(l >> key >> value) || key != "MemAvailable:") continue;
    l >> unit;
    if (unit == "kB") return checked_mul(value, 1024);
    if (unit.empty()) return value;
    return std::nullopt;
  }
  return std::nullopt;
}

// The first field of /proc/self/statm (total program size, pages), in bytes.
inline std::optional<uint64_t> parse_statm_size(const std::string& statm, uint64_t page_size) {
  std::istringstream in(statm);
  uint64_t pages = 0;
  if (!(in >> pages)) return std::nullopt;
  return checked_mul(pages, page_size);
}

inline std::string read_proc_file(const char* path) {
  std::ifstream f(path);
  if (!f) return {};
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace detail

// min(MemAvailable, RLIMIT_AS - address space in use). Never throws: what cannot be read is
// left out (bytes stays UINT64_MAX when nothing could be read and no address-space limit is set).
inline MemoryHeadroom memory_headroom() {
  MemoryHeadroom h;
  if (const uint64_t t = detail::headroom_for_testing.load()) {
    h.bytes = t;
    h.why = cat("a test's limit of ", human_bytes(t));
    return h;
  }
  if (const auto avail = detail::parse_mem_available(detail::read_proc_file("/proc/meminfo"))) {
    h.bytes = *avail;
    h.why = cat("MemAvailable ", human_bytes(*avail));
  }
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    const uint64_t limit = uint64_t(rl.rlim_cur);
    const long page = ::sysconf(_SC_PAGESIZE);
    const auto used = detail::parse_statm_size(detail::read_proc_file("/proc/self/statm"),
                                               page > 0 ? uint64_t(page) : 4096);
    const uint64_t room = used ? (limit > *used ? limit - *used : 0) : limit;
    if (room < h.bytes) {
      h.bytes = room;
      h.why = used ? cat("address-space limit ", human_bytes(limit), ", ", human_bytes(*used), " of it in use")
                   : cat("address-space limit ", human_bytes(limit));
    }
  }
  return h;
}

// Tests only: makes memory_headroom() answer `bytes` (and every request, however small, be
// checked) while the object lives. Not thread-safe against concurrent readers' expectations.
class ScopedMemoryHeadroomForTesting {
 public:
  explicit ScopedMemoryHeadroomForTesting(uint64_t bytes) : prev_(detail::headroom_for_testing.exchange(bytes)) {}
  ~ScopedMemoryHeadroomForTesting() { detail::headroom_for_testing.store(prev_); }
  ScopedMemoryHeadroomForTesting(const ScopedMemoryHeadroomForTesting&) = delete;
  ScopedMemoryHeadroomForTesting& operator=(const ScopedMemoryHeadroomForTesting&) = delete;

 private:
  uint64_t prev_;
};

// Whether check_allocation would look at /proc for a request of `bytes` (callers that build
// a message for it may skip that work when not).
inline bool allocation_needs_check(uint64_t bytes) {
  return bytes >= kCheckedFromBytes || detail::headroom_for_testing.load(std::memory_order_relaxed) != 0;
}

// Refuses to allocate `bytes` for `what` (read from `file`) when this process cannot hold them.
// `what` reads as the subject of "needs": "reading the whole file", "tensor 'w' (2 x 3 F32)".
inline void check_allocation(uint64_t bytes, std::string_view what, std::string_view file) {
  if (!allocation_needs_check(bytes)) return;
  const MemoryHeadroom h = memory_headroom();
  if (bytes > h.bytes)
    fail(file, ": ", what, " needs ", human_bytes(bytes), " (", bytes, " bytes), more than this process can hold (",
         h.why, "; docs/limits.md)");
}

// The same for `count` elements of `element_bytes` each; an overflowing product is refused.
inline void check_allocation(uint64_t count, uint64_t element_bytes, std::string_view what, std::string_view file) {
  const auto bytes = checked_mul(count, element_bytes);
  if (!bytes)
    fail(file, ": ", what, " announces ", count, " elements of ", element_bytes,
         " bytes, more than 2^64 bytes (a crafted or damaged file; docs/limits.md)");
  check_allocation(*bytes, what, file);
}

// Refuses `value` of `what` above its stated limit.
inline void check_limit(uint64_t value, uint64_t limit, std::string_view what, std::string_view file) {
  if (value > limit) fail(file, ": ", what, " is ", value, ", above the limit of ", limit, " (docs/limits.md)");
}

// The size of an open file about to be read whole, checked.
inline void check_file_read(uint64_t size, std::string_view file) {
  check_allocation(size, "reading the whole file", file);
}

}  // namespace recdistill::io
