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
// Two modes. By default only the kernels are emulated: their launchers see a
// few stand-ins for the backend (current_stream, a host allocator). With
// SEEMORE_CUDA_EMULATED_DEVICE defined first, this also emulates the CUDA
// runtime and cuBLAS (a plain column-major GEMM written from the BLAS
// definition), config.hpp switches the whole CUDA path on, and the real
// backend headers — caching allocator, streams, cuBLAS calls, the ops' CUDA
// branches — compile and run against it: a program like that must be all one
// mode (tests/cuda/test_cuda_emulated.cpp runs the GPU test suite so).
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
#include <memory>
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
enum cudaError_t {
  cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901
};
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };

namespace seemore_emu {
// Stream capture (CUDA graphs): while a capture is on, work queued on a
// stream — launches, device-to-device copies, memsets, cuBLAS calls — is
// recorded, not run, and a graph launch runs the records in order. What a
// real capture refuses (a synchronisation, a copy from or to the host, a
// cudaMalloc or cudaFree) invalidates it, and the call returns an error, so
// a hidden host synchronisation in a captured step fails here as on a GPU.
struct Capture {
  bool on = false, invalid = false;
  std::vector<std::function<void()>> ops;
};
inline Capture& capture() {
  static Capture c;
  return c;
}
inline void enqueue(std::function<void()> op) {
  if (capture().on) capture().ops.push_back(std::move(op));
  else op();
}
inline cudaError_t refuse_in_capture() {
  if (!capture().on) return cudaSuccess;
  capture().invalid = true;
  return cudaErrorStreamCaptureUnsupported;
}
}  // namespace seemore_emu

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  seemore_emu::enqueue([=] { std::memset(p, v, n); });
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  if (kind != cudaMemcpyDeviceToDevice && seemore_emu::refuse_in_capture() != cudaSuccess)
    return cudaErrorStreamCaptureUnsupported;
  seemore_emu::enqueue([=] {
    if (n) std::memcpy(d, s, n);
  });
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return seemore_emu::refuse_in_capture(); }
template <class F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                                     size_t height, cudaMemcpyKind kind, cudaStream_t) {
  if (kind != cudaMemcpyDeviceToDevice && seemore_emu::refuse_in_capture() != cudaSuccess)
    return cudaErrorStreamCaptureUnsupported;
  seemore_emu::enqueue([=] {
    for (size_t r = 0; r < height; ++r)
      std::memcpy(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  });
  return cudaSuccess;
}

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

// The CPU threads that play a block's CUDA threads, kept from one launch to the
// next (creating hundreds of threads per launch would dominate the run time).
class Pool {
 public:
  // Runs job(t) on threads t = 0..n-1 and waits for all of them.
  void run(int n, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> l(m_);
    while (int(workers_.size()) < n) {
      const int t = int(workers_.size());
      workers_.emplace_back([this, t] { work(t); });
    }
    job_ = &job;
    active_ = n;
    finished_ = 0;
    ++generation_;
    start_.notify_all();
    done_.wait(l, [&] { return finished_ == active_; });
    job_ = nullptr;
  }
  static Pool& get() {  // never destroyed: its threads sleep until the process ends
    static Pool* p = new Pool();
    return *p;
  }

 private:
  void work(int t) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> l(m_);
        start_.wait(l, [&] { return generation_ != seen; });
        seen = generation_;
        if (t >= active_) continue;
        job = job_;
      }
      (*job)(t);
      std::unique_lock<std::mutex> l(m_);
      if (++finished_ == active_) done_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable start_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int active_ = 0, finished_ = 0;
  uint64_t generation_ = 0;
};

// Runs fn once per thread of each block, blocks in order. The block's threads
// walk the blocks together, with one launch-wide barrier between two blocks.
// Two Block states alternate: thread 0 resets the next one before that
// barrier, when nobody can be using it (it served the block before).
inline void run(dim3 grid, dim3 block, size_t smem, const std::function<void()>& fn) {
  grid_dim = grid;
  block_dim = block;
  const int threads = int(block.x * block.y * block.z);
  const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
  std::vector<std::unique_ptr<Block>> owned;
  owned.push_back(std::make_unique<Block>(threads, smem));
  owned.push_back(std::make_unique<Block>(threads, smem));
  Block* blks_ptr[2] = {owned[0].get(), owned[1].get()};
  auto blks = [&](int64_t i) -> Block& { return *blks_ptr[i]; };
  auto reset = [&](Block& blk) {
    blk.bar.reset(threads);
    for (size_t w = 0; w < blk.warps.size(); ++w)
      blk.warps[w].bar.reset(w + 1 < blk.warps.size() || threads % 32 == 0 ? 32 : threads % 32);
  };
  reset(blks(0));
  reset(blks(1));
  Barrier all(threads);
  Pool::get().run(threads, [&](int t) {
    ctx.linear = t;
    ctx.thread = dim3(unsigned(t) % block.x, (unsigned(t) / block.x) % block.y, unsigned(t) / (block.x * block.y));
    for (int64_t b = 0; b < blocks; ++b) {
      Block& blk = blks(b % 2);
      ctx.blk = &blk;
      ctx.block = dim3(unsigned(b % grid.x), unsigned((b / grid.x) % grid.y), unsigned(b / (int64_t(grid.x) * grid.y)));
      ctx.exchanges = 0;
      fn();
      // This thread has exited the block: the others no longer wait for it.
      blk.warps[size_t(t / 32)].bar.drop();
      blk.bar.drop();
      if (t == 0 && b + 1 < blocks) reset(blks((b + 1) % 2));
      if (b + 1 < blocks) all.arrive_and_wait();
    }
  });
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

#if !defined(SEEMORE_CUDA_EMULATED_DEVICE)
#define SEEMORE_CUDA_CHECK(call) ((void)(call))
// What the launchers use from the CUDA backend: one "device", host memory.
namespace seemore::backend::cuda {
inline cudaStream_t current_stream() { return nullptr; }
inline int current_device() { return 0; }
inline void after_launch(const char*, int) {}
struct EmulatedAllocator {
  void* allocate(size_t bytes, int) { return ::operator new(bytes ? bytes : 1, std::align_val_t(64)); }
  void deallocate(void* p, int) { ::operator delete(p, std::align_val_t(64)); }
  int set_active_pool(int, int) { return 0; }  // one heap, no pools
};
inline EmulatedAllocator& allocator() {
  static EmulatedAllocator a;
  return a;
}
}  // namespace seemore::backend::cuda
#else
// ---- the CUDA runtime: one device whose memory is host memory, at most kMemory bytes
namespace seemore_emu {
constexpr size_t kMemory = size_t(16) << 30;
inline size_t& bytes_allocated() {
  static size_t n = 0;
  return n;
}
}  // namespace seemore_emu
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return "invalid argument";
  }
}
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t n) {
  if (seemore_emu::refuse_in_capture() != cudaSuccess) return cudaErrorStreamCaptureUnsupported;
  if (n > seemore_emu::kMemory - seemore_emu::bytes_allocated()) return cudaErrorMemoryAllocation;
  *p = ::operator new(n ? n : 1, std::align_val_t(256));
  seemore_emu::bytes_allocated() += n;
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  if (seemore_emu::refuse_in_capture() != cudaSuccess) return cudaErrorStreamCaptureUnsupported;
  ::operator delete(p, std::align_val_t(256));
  return cudaSuccess;  // (the byte count is only a ceiling for the OOM test)
}
inline cudaError_t cudaDeviceSynchronize() { return seemore_emu::refuse_in_capture(); }

// ---- graphs: a capture's records, replayed in order
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };
struct cudaGraph_st {
  std::vector<std::function<void()>> ops;
};
struct cudaGraphExec_st {
  std::vector<std::function<void()>> ops;
};
using cudaGraph_t = cudaGraph_st*;
using cudaGraphExec_t = cudaGraphExec_st*;
inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
  auto& c = seemore_emu::capture();
  if (c.on) return cudaErrorStreamCaptureUnsupported;
  c.on = true;
  c.invalid = false;
  c.ops.clear();
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* g) {
  auto& c = seemore_emu::capture();
  c.on = false;
  *g = nullptr;
  if (c.invalid) return cudaErrorStreamCaptureInvalidated;
  *g = new cudaGraph_st{std::move(c.ops)};
  c.ops.clear();
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  *e = new cudaGraphExec_st{g->ops};
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
  if (seemore_emu::capture().on) return cudaErrorStreamCaptureUnsupported;
  for (auto& op : e->ops) op();
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  static int token;
  *s = &token;
  return cudaSuccess;
}

// ---- cuBLAS: column-major C = alpha·op(A)·op(B) + beta·C, from the BLAS definition
using cublasHandle_t = void*;
enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS, CUBLAS_STATUS_NOT_INITIALIZED, CUBLAS_STATUS_ALLOC_FAILED, CUBLAS_STATUS_INVALID_VALUE,
  CUBLAS_STATUS_ARCH_MISMATCH, CUBLAS_STATUS_MAPPING_ERROR, CUBLAS_STATUS_EXECUTION_FAILED,
  CUBLAS_STATUS_INTERNAL_ERROR, CUBLAS_STATUS_NOT_SUPPORTED
};
enum cublasOperation_t { CUBLAS_OP_N, CUBLAS_OP_T };
enum cublasMath_t { CUBLAS_DEFAULT_MATH, CUBLAS_TF32_TENSOR_OP_MATH };
inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  static int token;
  *h = &token;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetWorkspace(cublasHandle_t, void*, size_t) { return CUBLAS_STATUS_SUCCESS; }
namespace seemore_emu {
template <class T>
cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* alpha, const T* A,
                    int lda, const T* B, int ldb, const T* beta, T* C, int ldc) {
  // BLAS argument rules: the leading dimensions cover the stored rows.
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta == CUBLAS_OP_N ? m : k) ||
      ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      T acc = 0;
      for (int l = 0; l < k; ++l) {
        const T a = ta == CUBLAS_OP_N ? A[i + size_t(l) * lda] : A[l + size_t(i) * lda];
        const T b = tb == CUBLAS_OP_N ? B[l + size_t(j) * ldb] : B[j + size_t(l) * ldb];
        acc += a * b;
      }
      T& c = C[i + size_t(j) * ldc];
      c = *beta == T(0) ? *alpha * acc : *alpha * acc + *beta * c;  // beta = 0: C is not read
    }
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace seemore_emu
namespace seemore_emu {
// A GEMM queued on the stream: alpha and beta are host values, read now (as
// cuBLAS reads host-mode scalars at the call, and a capture records them).
template <class T>
cublasStatus_t queue_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* alpha,
                          const T* A, int lda, long long sa, const T* B, int ldb, long long sb, const T* beta, T* C,
                          int ldc, long long sc, int batch) {
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta == CUBLAS_OP_N ? m : k) ||
      ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  const T al = *alpha, be = *beta;
  enqueue([=] {
    for (int i = 0; i < batch; ++i) gemm(ta, tb, m, n, k, &al, A + i * sa, lda, B + i * sb, ldb, &be, C + i * sc, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace seemore_emu
inline cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float* alpha, const float* A, int lda, const float* B, int ldb,
                                  const float* beta, float* C, int ldc) {
  return seemore_emu::queue_gemm(ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}
inline cublasStatus_t cublasDgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const double* alpha, const double* A, int lda, const double* B, int ldb,
                                  const double* beta, double* C, int ldc) {
  return seemore_emu::queue_gemm(ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}
template <class T>
cublasStatus_t emu_gemm_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* alpha,
                                const T* A, int lda, long long sa, const T* B, int ldb, long long sb, const T* beta,
                                T* C, int ldc, long long sc, int batch) {
  return seemore_emu::queue_gemm(ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                int n, int k, const float* alpha, const float* A, int lda,
                                                long long sa, const float* B, int ldb, long long sb,
                                                const float* beta, float* C, int ldc, long long sc, int batch) {
  return emu_gemm_batched(ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
inline cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                int n, int k, const double* alpha, const double* A, int lda,
                                                long long sa, const double* B, int ldb, long long sb,
                                                const double* beta, double* C, int ldc, long long sc, int batch) {
  return emu_gemm_batched(ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
#endif

namespace seemore::kernels {
template <class... KArgs, class... Args>
inline void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t, Args&&... args) {
#if defined(SEEMORE_CUDA_EMULATED_DEVICE)
  // The arguments by value, as a real launch takes them (and a capture keeps them).
  ::seemore_emu::enqueue([=] { ::seemore_emu::run(grid, block, smem, [&] { kernel(args...); }); });
#else
  ::seemore_emu::run(grid, block, smem, [&] { kernel(args...); });
#endif
}
}  // namespace seemore::kernels
