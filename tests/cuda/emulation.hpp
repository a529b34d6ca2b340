// tests/cuda/emulation.hpp — the CUDA execution model on the CPU, for testing
// the kernels' logic in a g++ build (no GPU, every CI run, under ASan too).
//
// Include this before any kernel header. Each launch runs its blocks one after
// another; the threads of a block are real threads, so __syncthreads() is a
// barrier over the block's live threads and a warp shuffle is an exchange
// through a barrier over the warp's 32 lanes. `__shared__` arrays become
// function statics, which is right because only one block runs at a time.
// Device memory is host memory, streams do nothing, copies are memcpy.
//
// What this does not model: the GPU's memory ordering without barriers, warp
// divergence timing, launch limits, and the speed of anything. A kernel that
// passes here has correct indexing, tiling and synchronisation logic; it
// still has to pass tests/cuda/test_cuda.cu on a real GPU.
#pragma once

#define SEEMORE_CUDA_EMULATION 1

#include <seemore/config.hpp>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) {
  if (n) std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
template <class F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
  return cudaSuccess;
}
#define SEEMORE_CUDA_CHECK(call) ((void)(call))

using std::max;
using std::min;

namespace seemore_emu {

// A reusable barrier over a set of threads that may shrink as threads exit.
class Barrier {
 public:
  explicit Barrier(int n) : live_(n) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> l(m_);
    const uint64_t gen = gen_;
    if (++arrived_ >= live_) {
      release();
    } else {
      cv_.wait(l, [&] { return gen_ != gen; });
    }
  }
  void reset(int n) {
    std::unique_lock<std::mutex> l(m_);
    live_ = n;
    arrived_ = 0;
  }
  void drop() {  // a thread exits: the others no longer wait for it
    std::unique_lock<std::mutex> l(m_);
    --live_;
    if (arrived_ > 0 && arrived_ >= live_) release();
  }

 private:
  void release() {
    arrived_ = 0;
    ++gen_;
    cv_.notify_all();
  }
  std::mutex m_;
  std::condition_variable cv_;
  int live_, arrived_ = 0;
  uint64_t gen_ = 0;
};

struct Warp {
  Barrier bar{32};
  uint64_t slot[2][32] = {};  // double-buffered: one barrier per exchange
};

struct Block {
  explicit Block(int threads, size_t smem_bytes)
      : bar(threads), warps(size_t((threads + 31) / 32)), smem((smem_bytes + 15) / 16 + 1) {}
  Barrier bar;
  std::vector<Warp> warps;
  struct alignas(16) Chunk {
    unsigned char b[16];
  };
  std::vector<Chunk> smem;
};

struct Context {
  dim3 thread, block;
  int linear = 0;
  uint64_t exchanges = 0;  // this lane's shuffles so far in the block (all lanes make the same ones)
  Block* blk = nullptr;
};
inline thread_local Context ctx;
inline dim3 grid_dim, block_dim;

// A lane that has read exchange k's values can run ahead only as far as
// exchange k+1's barrier, which every lane reaches after reading exchange k:
// so the buffer of exchange k is not rewritten (by exchange k+2) while read.
template <class T>
T exchange(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
  Warp& w = ctx.blk->warps[size_t(ctx.linear / 32)];
  auto& slots = w.slot[ctx.exchanges++ % 2];
  std::memcpy(&slots[ctx.linear % 32], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T out;
  std::memcpy(&out, &slots[src & 31], sizeof(T));
  return out;
}

// Runs fn once per thread of each block, blocks in order. The block's threads
// are created once per launch and walk the blocks together; between two blocks
// every thread waits at a launch-wide barrier while thread 0 resets the
// block's barriers.
inline void run(dim3 grid, dim3 block, size_t smem, const std::function<void()>& fn) {
  grid_dim = grid;
  block_dim = block;
  const int threads = int(block.x * block.y * block.z);
  const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
  Block blk(threads, smem);
  auto reset = [&] {
    blk.bar.reset(threads);
    for (size_t w = 0; w < blk.warps.size(); ++w)
      blk.warps[w].bar.reset(w + 1 < blk.warps.size() || threads % 32 == 0 ? 32 : threads % 32);
  };
  reset();
  Barrier all(threads);
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads));
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ctx.linear = t;
      ctx.thread = dim3(unsigned(t) % block.x, (unsigned(t) / block.x) % block.y, unsigned(t) / (block.x * block.y));
      ctx.blk = &blk;
      for (int64_t b = 0; b < blocks; ++b) {
        ctx.block = dim3(unsigned(b % grid.x), unsigned((b / grid.x) % grid.y), unsigned(b / (int64_t(grid.x) * grid.y)));
        ctx.exchanges = 0;
        fn();
        // This thread has exited the block: the others no longer wait for it.
        blk.warps[size_t(t / 32)].bar.drop();
        blk.bar.drop();
        all.arrive_and_wait();
        if (t == 0) reset();
        all.arrive_and_wait();
      }
    });
  for (auto& th : pool) th.join();
}

}  // namespace seemore_emu

#define threadIdx (::seemore_emu::ctx.thread)
#define blockIdx (::seemore_emu::ctx.block)
#define blockDim (::seemore_emu::block_dim)
#define gridDim (::seemore_emu::grid_dim)
#define SEEMORE_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::seemore_emu::ctx.blk->smem.data())

inline void __syncthreads() { ::seemore_emu::ctx.blk->bar.arrive_and_wait(); }
template <class T>
T __shfl_sync(unsigned, T v, int src) {
  return ::seemore_emu::exchange(v, src);
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return ::seemore_emu::exchange(v, (::seemore_emu::ctx.linear % 32) ^ mask);
}

// What the launchers use from the CUDA backend: one "device", host memory.
namespace seemore::backend::cuda {
inline cudaStream_t current_stream() { return nullptr; }
inline int current_device() { return 0; }
struct EmulatedAllocator {
  void* allocate(size_t bytes, int) { return ::operator new(bytes ? bytes : 1, std::align_val_t(64)); }
  void deallocate(void* p, int) { ::operator delete(p, std::align_val_t(64)); }
};
inline EmulatedAllocator& allocator() {
  static EmulatedAllocator a;
  return a;
}
}  // namespace seemore::backend::cuda

namespace seemore::kernels {
template <class... KArgs, class... Args>
inline void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t, Args&&... args) {
  ::seemore_emu::run(grid, block, smem, [&] { kernel(args...); });
}
}  // namespace seemore::kernels
