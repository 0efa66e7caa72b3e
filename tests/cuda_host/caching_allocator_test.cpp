// The CUDA backend's caching allocator (backend/cuda/caching_allocator.hpp) over a host "driver"
// with a fixed capacity, so its caching, size classes, devices and out-of-memory retry run in CI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "../common/test_util.hpp"
#include "recdistill/backend/cuda/caching_allocator.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

namespace {

using namespace recdistill;

// A driver of `capacity` bytes over malloc, counting its calls.
struct FakeDriver {
  static inline std::size_t capacity = 0, used = 0, allocations = 0, releases = 0;
  static inline int current = 0;
  static inline std::set<void*> live;
  static void reset(std::size_t cap) {
    capacity = cap;
    used = allocations = releases = 0;
    current = 0;
    live.clear();
  }
  static void* allocate(std::size_t bytes) {
    if (used + bytes > capacity) return nullptr;
    void* p = std::malloc(bytes);
    used += bytes;
    ++allocations;
    live.insert(p);
    sizes()[p] = bytes;
    return p;
  }
  static void release(void* p) noexcept {
    used -= sizes()[p];
    ++releases;
    live.erase(p);
    std::free(p);
  }
  static int device() { return current; }
  static std::map<void*, std::size_t>& sizes() {
    static std::map<void*, std::size_t> s;
    return s;
  }
};

using Alloc = cuda::CachingAllocator<FakeDriver>;

TEST(CachingAllocator, SizeClassesRoundUp) {
  EXPECT_EQ(Alloc::size_class(1), 512u);
  EXPECT_EQ(Alloc::size_class(512), 512u);
  EXPECT_EQ(Alloc::size_class(513), 1024u);
  EXPECT_EQ(Alloc::size_class((1u << 20) - 1), 1u << 20);
  EXPECT_EQ(Alloc::size_class(1u << 20), 2u << 20);
  EXPECT_EQ(Alloc::size_class((2u << 20) + 1), 4u << 20);
}

TEST(CachingAllocator, AFreedBlockServesTheNextRequestOfItsClass) {
  FakeDriver::reset(1 << 30);
  Alloc a;
  void* p = a.allocate(1000);
  a.deallocate(p);
  EXPECT_EQ(a.stats().cached_bytes, 1024u);
  EXPECT_EQ(a.allocate(1024), p) << "same class: the cached block";
  void* q = a.allocate(1000);  // the cached one is in use: a new block
  EXPECT_NE(q, p);
  void* r = a.allocate(5000);  // another class
  EXPECT_EQ(FakeDriver::allocations, 3u);
  const auto s = a.stats();
  EXPECT_EQ(s.reuses, 1u);
  EXPECT_EQ(s.in_use_bytes, 1024u + 1024u + 5120u);
  a.deallocate(p);
  a.deallocate(q);
  a.deallocate(r);
  a.deallocate(nullptr);
  EXPECT_EQ(FakeDriver::releases, 0u) << "freed blocks stay cached";
  EXPECT_EQ(a.stats().in_use_bytes, 0u);
  a.release_cached();
  EXPECT_EQ(FakeDriver::releases, 3u);
  EXPECT_TRUE(FakeDriver::live.empty());
}

TEST(CachingAllocator, BlocksAreKeptPerDevice) {
  FakeDriver::reset(1 << 30);
  Alloc a;
  void* p = a.allocate(100);
  a.deallocate(p);
  FakeDriver::current = 1;
  void* q = a.allocate(100);
  EXPECT_NE(q, p) << "device 0's block is not handed out on device 1";
  a.deallocate(q);
  FakeDriver::current = 0;
  EXPECT_EQ(a.allocate(100), p);
  a.deallocate(p);
  a.release_cached();
  EXPECT_TRUE(FakeDriver::live.empty());
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheAndRetriesOnce) {
  FakeDriver::reset(4u << 20);
  Alloc a;
  void* big = a.allocate(3u << 20);  // class 4 MiB: the whole capacity
  a.deallocate(big);                  // cached, still held from the driver
  void* small = a.allocate(1000);     // fails at the driver, succeeds after the release
  EXPECT_NE(small, nullptr);
  EXPECT_EQ(a.stats().cache_releases, 1u);
  EXPECT_EQ(a.stats().cached_bytes, 0u);
  EXPECT_EQ(FakeDriver::releases, 1u);
  // Nothing cached and no room: a clear error, and the allocator stays usable.
  const std::string e = test::error_of([&] { a.allocate(4u << 20); });
  EXPECT_NE(e.find("out of GPU memory: 4194304 bytes asked for on device 0, with 1024 bytes in this process's buffers"),
            std::string::npos)
      << e;
  a.deallocate(small);
  a.release_cached();
  EXPECT_TRUE(FakeDriver::live.empty());
}

}  // namespace

}  // namespace RD_TEST_FILE
