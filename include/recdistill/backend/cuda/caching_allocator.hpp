// recdistill/backend/cuda/caching_allocator.hpp: device memory through a cache of freed blocks.
//
// cudaMalloc and cudaFree synchronise the device and cost tens of microseconds each, so buffers
// made and dropped again (a trainer's, an evaluation's, a chunk's scratch) would pay that every
// time. Here a freed block goes to the free list of its size class and device, and is handed out
// again; nothing goes back to the driver until an allocation fails. Then every cached block is
// released and the allocation tried once more. Memory other libraries take with cudaMalloc
// (NCCL, cuBLAS workspaces) does not see the cache: release_cached() before making them.
//
// Reuse is safe because every operation of cuda::Backend runs on the legacy default stream: work
// queued on a block before it was freed runs before any work queued after it was handed out.
// (A stream per trainer would need a cache per stream.)
//
// Plain C++ over a policy, so that the caching is tested on the host (tests/cuda_host/):
//   Raw::allocate(bytes) -> void*   nullptr when out of memory (any other failure throws)
//   Raw::release(void*)             never throws
//   Raw::device() -> int            the current device
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "recdistill/core/error.hpp"

namespace recdistill::cuda {

template <class Raw>
class CachingAllocator {
 public:
  struct Stats {
    std::size_t driver_allocations = 0;  // blocks obtained from Raw::allocate
    std::size_t reuses = 0;              // allocations served from the cache
    std::size_t cache_releases = 0;      // times the cache was emptied to retry an allocation
    std::size_t in_use_bytes = 0, cached_bytes = 0;
  };

  // Requests round up to 512-byte granules below 1 MiB and to 2 MiB granules from there, so a
  // block serves requests of nearby sizes (at most 2 MiB or 512 bytes is wasted per block).
  static std::size_t size_class(std::size_t bytes) {
    constexpr std::size_t small = 512, large = std::size_t(2) << 20, limit = std::size_t(1) << 20;
    const std::size_t g = bytes < limit ? small : large;
    return (bytes + g - 1) / g * g;
  }

  // A block of at least `bytes` (> 0) on the current device.
  void* allocate(std::size_t bytes) {
    RD_REQUIRE(bytes > 0, "CachingAllocator::allocate: 0 bytes");
    const std::size_t size = size_class(bytes);
    const int device = Raw::device();
    std::lock_guard<std::mutex> lock(m_);
    void* p = nullptr;
    if (auto it = free_.find({device, size}); it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= size;
      ++stats_.reuses;
    } else {
      p = Raw::allocate(size);
      if (!p && stats_.cached_bytes > 0) {  // out of memory: give the cache back, try once more
        release_cached_locked();
        ++stats_.cache_releases;
        p = Raw::allocate(size);
      }
      if (!p)
        fail("out of GPU memory: ", size, " bytes asked for on device ", device, ", with ", stats_.in_use_bytes,
             " bytes in this process's buffers and none cached: use a smaller training.batch_size (or a smaller "
             "model), or a GPU with more memory");
      ++stats_.driver_allocations;
    }
    try {
      in_use_.emplace(p, Block{device, size});
    } catch (...) {  // no room for the entry: give the block back rather than lose it
      Raw::release(p);
      throw;
    }
    stats_.in_use_bytes += size;
    return p;
  }

  // p: a block of allocate() (nullptr is ignored). It goes to the cache.
  void deallocate(void* p) noexcept {
    if (!p) return;
    std::lock_guard<std::mutex> lock(m_);
    const auto it = in_use_.find(p);
    if (it == in_use_.end()) return;  // not ours: never happens through DeviceBuffer
    const Block b = it->second;
    in_use_.erase(it);
    stats_.in_use_bytes -= b.size;
    try {
      free_[{b.device, b.size}].push_back(p);
      stats_.cached_bytes += b.size;
    } catch (...) {  // no room for the list entry: give the block back instead
      Raw::release(p);
    }
  }

  // Gives every cached block back to the driver (blocks in use stay).
  void release_cached() noexcept {
    std::lock_guard<std::mutex> lock(m_);
    release_cached_locked();
  }

  Stats stats() const {
    std::lock_guard<std::mutex> lock(m_);
    return stats_;
  }

 private:
  struct Block {
    int device;
    std::size_t size;
  };
  void release_cached_locked() noexcept {
    for (auto& [key, list] : free_)
      for (void* p : list) Raw::release(p);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  mutable std::mutex m_;
  std::unordered_map<void*, Block> in_use_;
  std::map<std::pair<int, std::size_t>, std::vector<void*>> free_;  // (device, size class) -> blocks
  Stats stats_;
};

}  // namespace recdistill::cuda
