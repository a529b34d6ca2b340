// seemore/kernels/common.cuh — what every kernel file shares (nvcc only).
//
// Each kernel file holds its kernels first, then its launchers; every launcher
// queues on the current device's stream and ends with
// SEEMORE_CUDA_LAUNCH_CHECK(), so a bad launch configuration is reported at the
// call that made it, with file and line.
//
// Indices are int64_t wherever a product of tensor sizes can pass 2³¹.
#pragma once

#include <seemore/config.hpp>

// SEEMORE_KERNELS: the kernel files have a body. Under nvcc that is the real
// thing; a g++ translation unit may instead include the CPU emulation of the
// CUDA execution model first (tests/cuda/emulation.hpp, which defines
// SEEMORE_CUDA_EMULATION), to run the kernels' logic on the CPU in CI — the
// kernels alone, or with SEEMORE_CUDA_EMULATED_DEVICE the whole CUDA backend.
#if SEEMORE_HAS_CUDA
#include <seemore/backend/cuda/context.hpp>
#define SEEMORE_KERNELS 1
#elif defined(SEEMORE_CUDA_EMULATION)
#define SEEMORE_KERNELS 1
#else
#define SEEMORE_KERNELS 0
#endif

#include <cstdint>
#include <utility>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr SEEMORE_HOST_DEVICE inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int kWarp = 32;
constexpr int kThreads = 256;  // default block for elementwise kernels

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never
// more than the grid allows.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = ceil_div(n, threads);
  return unsigned(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

#if SEEMORE_HAS_CUDA && !defined(SEEMORE_CUDA_EMULATED_DEVICE)
// kernel<<<grid, block, smem, stream>>>(args...), as a function so that the
// emulation can provide its own.
template <class... KArgs, class... Args>
inline void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
}
// The block's dynamic shared memory as a T array.
#define SEEMORE_DYNAMIC_SMEM(T, name)                          \
  extern __shared__ __align__(16) unsigned char seemore_smem_[]; \
  T* name = reinterpret_cast<T*>(seemore_smem_)
#endif

// Unroll hint: nvcc's pragma; nothing for a host compiler (the emulation).
#if SEEMORE_HAS_CUDA && !defined(SEEMORE_CUDA_EMULATION)
#define SEEMORE_UNROLL _Pragma("unroll")
#else
#define SEEMORE_UNROLL
#endif

#define SEEMORE_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Device math for float and double under one name (the CPU path uses std::).
__device__ inline float dexp(float x) { return ::expf(x); }
__device__ inline double dexp(double x) { return ::exp(x); }
__device__ inline float dlog(float x) { return ::logf(x); }
__device__ inline double dlog(double x) { return ::log(x); }
__device__ inline float dsqrt(float x) { return ::sqrtf(x); }
__device__ inline double dsqrt(double x) { return ::sqrt(x); }
__device__ inline float derf(float x) { return ::erff(x); }
__device__ inline double derf(double x) { return ::erf(x); }
__device__ inline float dtanh(float x) { return ::tanhf(x); }
__device__ inline double dtanh(double x) { return ::tanh(x); }
// a·b + c rounded once on the GPU, whatever nvcc's contraction setting. Run
// on the CPU (the emulation tests), it follows backend/cpu/adam.hpp's madd:
// fused where the CPU has FMA, else rounded twice.
__device__ inline float dfma(float a, float b, float c) {
#if defined(__CUDA_ARCH__) || defined(__FP_FAST_FMAF)
  return ::fmaf(a, b, c);
#else
  return a * b + c;
#endif
}
__device__ inline double dfma(double a, double b, double c) {
#if defined(__CUDA_ARCH__) || defined(__FP_FAST_FMA)
  return ::fma(a, b, c);
#else
  return a * b + c;
#endif
}
template <class T>
__device__ inline T neg_inf() { return -__builtin_huge_val(); }

}  // namespace seemore::kernels

#define SEEMORE_CUDA_LAUNCH_CHECK() ::seemore::backend::cuda::after_launch(__FILE__, __LINE__)
#endif
