// seemore/kernels/layernorm.cuh — LayerNorm over the last dimension.
//
// Contract (same as backend/cpu/layernorm.hpp): forward writes out [N, C] and
// per row mean and rstd = 1/sqrt(var + eps) (biased variance). Backward
// OVERWRITES dinp and ACCUMULATES (+=) into dweight and dbias, either of which
// may be null.
//
// One warp per row. The statistics take one pass over the row: each lane runs
// Welford's update over its columns, then the lanes' (count, mean, M2) merge
// pairwise (Chan et al.) — no E[x²]−E[x]² cancellation, and the row is read
// twice in all (statistics, then the normalised output), not three times.
// The parameter gradients are column sums over rows: partial sums per chunk of
// rows, then the chunks in order (deterministic, no atomics).
#pragma once

#include <seemore/backend/cuda/allocator.hpp>
#include <seemore/kernels/common.cuh>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr int kRowsPerBlock = 4;  // warps per block for the row kernels
constexpr int64_t kLnChunk = 64;  // rows per partial sum of the parameter gradients

// ------------------------------------------------------------------ kernels

template <class T>
__global__ void layernorm_forward_kernel(int64_t N, int64_t C, const T* inp, const T* weight, const T* bias, T eps,
                                         T* out, T* mean, T* rstd) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= N) return;
  const T* x = inp + row * C;
  T n = 0, m = 0, m2 = 0;
  for (int64_t c = lane; c < C; c += kWarp) {
    const T v = x[c];
    n += T(1);
    const T d = v - m;
    m += d / n;
    m2 += d * (v - m);
  }
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const T nb = __shfl_xor_sync(0xffffffffu, n, o), mb = __shfl_xor_sync(0xffffffffu, m, o),
            m2b = __shfl_xor_sync(0xffffffffu, m2, o);
    const T nt = n + nb;
    if (nt > T(0)) {
      const T d = mb - m;
      m2 = m2 + m2b + d * d * n * nb / nt;
      m = m + d * nb / nt;
      n = nt;
    }
  }
  const T s = T(1) / dsqrt(m2 / T(C) + eps);
  T* y = out + row * C;
  for (int64_t c = lane; c < C; c += kWarp) y[c] = (x[c] - m) * s * weight[c] + bias[c];
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

template <class T>
__global__ void layernorm_backward_kernel(int64_t N, int64_t C, const T* dout, const T* inp, const T* weight,
                                          const T* mean, const T* rstd, T* dinp) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= N) return;
  const T* x = inp + row * C;
  const T* dy = dout + row * C;
  const T m = mean[row], s = rstd[row];
  T mg = 0, mgx = 0;
  for (int64_t c = lane; c < C; c += kWarp) {
    const T g = dy[c] * weight[c];
    mg += g;
    mgx += g * (x[c] - m) * s;
  }
  mg = warp_sum(mg) / T(C);
  mgx = warp_sum(mgx) / T(C);
  T* dx = dinp + row * C;
  for (int64_t c = lane; c < C; c += kWarp) dx[c] = s * (dy[c] * weight[c] - mg - (x[c] - m) * s * mgx);
}

// partial[chunk, 0:C] = Σ dy·x̂, partial[chunk, C:2C] = Σ dy over the chunk's rows.
template <class T>
__global__ void layernorm_param_partial_kernel(int64_t N, int64_t C, const T* dout, const T* inp, const T* mean,
                                               const T* rstd, T* partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (c >= C) return;
  const int64_t r0 = chunk * kLnChunk, r1 = min(N, r0 + kLnChunk);
  T gw = 0, gb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const T dy = dout[r * C + c];
    gw += dy * (inp[r * C + c] - mean[r]) * rstd[r];
    gb += dy;
  }
  partial[chunk * 2 * C + c] = gw;
  partial[chunk * 2 * C + C + c] = gb;
}

template <class T>
__global__ void layernorm_param_final_kernel(int64_t chunks, int64_t C, const T* partial, T* dweight, T* dbias) {
  SEEMORE_GRID_STRIDE(c, C) {
    T gw = 0, gb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      gw += partial[k * 2 * C + c];
      gb += partial[k * 2 * C + C + c];
    }
    if (dweight) dweight[c] += gw;
    if (dbias) dbias[c] += gb;
  }
}

// ------------------------------------------------------------------ launchers

template <class T>
void launch_layernorm_forward(int64_t N, int64_t C, const T* inp, const T* weight, const T* bias, T eps, T* out,
                              T* mean, T* rstd) {
  if (N == 0) return;
  launch(layernorm_forward_kernel<T>, unsigned(ceil_div(N, kRowsPerBlock)), kRowsPerBlock * kWarp, 0,
                             backend::cuda::current_stream(), N, C, inp, weight, bias, eps, out, mean, rstd);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch_layernorm_backward(int64_t N, int64_t C, const T* dout, const T* inp, const T* weight, const T* mean,
                               const T* rstd, T* dinp, T* dweight, T* dbias) {
  if (N == 0) return;
  cudaStream_t s = backend::cuda::current_stream();
  launch(layernorm_backward_kernel<T>, unsigned(ceil_div(N, kRowsPerBlock)), kRowsPerBlock * kWarp, 0, s, 
      N, C, dout, inp, weight, mean, rstd, dinp);
  SEEMORE_CUDA_LAUNCH_CHECK();
  if (!dweight && !dbias) return;
  const int64_t chunks = ceil_div(N, kLnChunk);
  SEEMORE_CHECK(chunks <= 65535, "layer_norm backward: ", N, " rows is more than the CUDA kernel takes");
  const int device = backend::cuda::current_device();
  auto& alloc = backend::cuda::allocator();
  T* partial = static_cast<T*>(alloc.allocate(size_t(chunks * 2 * C) * sizeof(T), device));
  launch(layernorm_param_partial_kernel<T>, dim3(unsigned(ceil_div(C, 128)), unsigned(chunks)), 128, 0, s, 
      N, C, dout, inp, mean, rstd, partial);
  launch(layernorm_param_final_kernel<T>, grid_for(C), kThreads, 0, s, chunks, C, partial, dweight, dbias);
  alloc.deallocate(partial, device);  // stream order keeps it alive for the kernels above
  SEEMORE_CUDA_LAUNCH_CHECK();
}

}  // namespace seemore::kernels
#endif
