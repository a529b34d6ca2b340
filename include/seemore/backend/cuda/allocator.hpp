// seemore/backend/cuda/allocator.hpp — the caching device allocator (nvcc only).
//
// cudaMalloc and cudaFree synchronise the device and cost tens of
// microseconds; a training step frees and reallocates the same few hundred
// buffers every step. Freed blocks therefore go to a per-device free list keyed
// by their rounded size, and the next request of that size takes one back:
// after the first step a step calls cudaMalloc no more (stats().mallocs stops
// growing; tests/cuda checks it).
//
// SEEMORE_CUDA_NO_CACHE=1 bypasses the cache: every tensor gets a cudaMalloc
// of exactly its size and is cudaFree'd when dropped, so that
// compute-sanitizer's memcheck sees an overrun past a tensor's end (inside a
// rounded, cached block it would be a legal access) and a use after free.
//
// Pools: a CUDA graph (graph.hpp) replays, at the same addresses, every
// temporary its captured step allocated and freed. Those blocks must not be
// handed to anything else between replays, so while a pool is active
// (PoolScope) allocations come from, and are cached in, that pool's own free
// lists; a block freed later goes back to the pool it came from. During a
// capture no cudaMalloc may happen (the capture would break): a request the
// pool cannot serve is an error, which the graph reports as a reason to stay
// eager. A released pool's blocks go back to the shared cache.
//
// All work of a device runs on its one stream (context.hpp), so a block freed
// by the host may be handed out again at once: every later use is ordered
// after every earlier one on that stream. When cudaMalloc fails, the cache is
// released and the call retried once before "out of memory" is reported.
#pragma once

#include <seemore/backend/cuda/check.hpp>

#if SEEMORE_HAS_CUDA
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace seemore::backend::cuda {

struct AllocatorStats {
  size_t mallocs = 0;        // cudaMalloc calls so far
  size_t frees = 0;          // cudaFree calls so far (cache releases)
  size_t bytes_in_use = 0;   // handed out to tensors
  size_t bytes_cached = 0;   // held in the free lists
  size_t peak_in_use = 0;
};

class CachingAllocator {
 public:
  // Small blocks round to 512 B, large ones to 1 MiB, so sizes that differ by a
  // few elements (captions of different lengths) still share a free list.
  static size_t round_size(size_t bytes) {
    const size_t small = 512, large = size_t(1) << 20;
    return bytes < large ? (bytes + small - 1) / small * small : (bytes + large - 1) / large * large;
  }

  static bool bypass() {
    static const bool on = [] {
      const char* v = std::getenv("SEEMORE_CUDA_NO_CACHE");
      return v && *v && std::string(v) != "0";
    }();
    return on;
  }

  void* allocate(size_t bytes, int device) {
    if (bytes == 0) return nullptr;
    const size_t size = bypass() ? bytes : round_size(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    auto& d = dev(device);
    auto& lists = d.pool_free[d.active_pool];
    auto it = lists.find(size);
    if (it != lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      d.stats.bytes_cached -= size;
      note_use(d, p, size, d.active_pool);
      return p;
    }
    if (d.no_malloc)
      detail::fail("CUDA graph capture: the step asks for a block of ", size,
                   " bytes that its memory pool does not hold (the warm-up step did not allocate it); cudaMalloc "
                   "cannot be captured");
    SEEMORE_CUDA_CHECK(cudaSetDevice(device));
    void* p = nullptr;
    cudaError_t st = cudaMalloc(&p, size);
    if (st == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error before retrying
      release_locked(d, device);
      st = cudaMalloc(&p, size);
    }
    if (st == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      detail::fail("CUDA out of memory: cannot allocate ", size, " bytes on cuda:", device, " (", d.stats.bytes_in_use,
                   " bytes in use by tensors, cache already released)");
    }
    check(st, "cudaMalloc", __FILE__, __LINE__);
    ++d.stats.mallocs;
    note_use(d, p, size, d.active_pool);
    return p;
  }

  // Never throws: called from Storage's destructor.
  void deallocate(void* p, int device) noexcept {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto& d = dev(device);
    auto it = d.live.find(p);
    if (it == d.live.end()) return;  // not ours: ignore rather than corrupt the lists
    const size_t size = it->second.size;
    int pool = it->second.pool;
    d.live.erase(it);
    d.stats.bytes_in_use -= size;
    if (bypass()) {
      cudaSetDevice(device);
      cudaFree(p);  // waits for the device's queued work first
      ++d.stats.frees;
      return;
    }
    if (pool != 0 && !d.pool_free.count(pool)) pool = 0;  // its pool was released
    d.stats.bytes_cached += size;
    d.pool_free[pool][size].push_back(p);
  }

  // A new pool's id (never 0, the shared cache's).
  int create_pool(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& d = dev(device);
    const int id = ++d.next_pool;
    d.pool_free[id];
    return id;
  }
  // The pool's cached blocks go to the shared cache, and so will its blocks
  // still in use when they are freed.
  void release_pool(int device, int pool) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& d = dev(device);
    auto it = d.pool_free.find(pool);
    if (pool == 0 || it == d.pool_free.end()) return;
    for (auto& [size, blocks] : it->second)
      for (void* p : blocks) d.pool_free[0][size].push_back(p);
    d.pool_free.erase(pool);
    if (d.active_pool == pool) d.active_pool = 0;
  }
  // Which pool allocations come from (0: the shared cache); the previous one is returned.
  int set_active_pool(int device, int pool) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& d = dev(device);
    SEEMORE_CHECK(pool == 0 || d.pool_free.count(pool), "CUDA allocator: no pool ", pool);
    std::swap(d.active_pool, pool);
    return pool;
  }
  // While on, a request the active pool cannot serve is an error instead of a cudaMalloc (graph capture).
  void set_no_malloc(int device, bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    dev(device).no_malloc = on;
  }

  // Gives every cached block back to the driver (cudaFree).
  void release_cache(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    release_locked(dev(device), device);
  }

  AllocatorStats stats(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    return dev(device).stats;
  }

 private:
  struct Live {
    size_t size;
    int pool;
  };
  struct PerDevice {
    // Free lists by pool (0: the shared cache), then by rounded size.
    std::unordered_map<int, std::unordered_map<size_t, std::vector<void*>>> pool_free{{0, {}}};
    std::unordered_map<void*, Live> live;
    AllocatorStats stats;
    int active_pool = 0, next_pool = 0;
    bool no_malloc = false;
  };
  PerDevice& dev(int device) { return devices_[device]; }
  static void note_use(PerDevice& d, void* p, size_t size, int pool) {
    d.live[p] = {size, pool};
    d.stats.bytes_in_use += size;
    if (d.stats.bytes_in_use > d.stats.peak_in_use) d.stats.peak_in_use = d.stats.bytes_in_use;
  }
  // The shared cache goes back to the driver; pools keep theirs (a graph replays into them).
  static void release_locked(PerDevice& d, int device) {
    cudaSetDevice(device);
    cudaDeviceSynchronize();  // a cached block may still be read by queued work
    for (auto& [size, blocks] : d.pool_free[0])
      for (void* p : blocks) {
        cudaFree(p);
        ++d.stats.frees;
        d.stats.bytes_cached -= size;
      }
    d.pool_free[0].clear();
  }

  std::mutex mu_;
  std::unordered_map<int, PerDevice> devices_;
};

// One allocator per process. Deliberately never destroyed: tensors held in
// static objects may be freed after the CUDA runtime has shut down.
inline CachingAllocator& allocator() {
  static auto* a = new CachingAllocator();
  return *a;
}

inline AllocatorStats allocator_stats(int device = 0) { return allocator().stats(device); }

}  // namespace seemore::backend::cuda
#endif
