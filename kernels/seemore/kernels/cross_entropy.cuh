// seemore/kernels/cross_entropy.cuh — cross-entropy fused with log-softmax,
// with ignore_index, and the mean over counted rows.
//
// Contract (same as backend/cpu/cross_entropy.hpp): forward writes per-row
// losses[r] = logsumexp(logits[r]) − logits[r, t] (0 for ignored rows);
// loss_mean writes out[0] = Σ losses / count, summed in double in a fixed
// order (loss_mean_counted also counts the rows on the device). Backward
// overwrites dlogits = scale·(softmax − onehot), 0 for ignored rows. Targets
// are range-checked on the host before any kernel runs (by the caller, when
// the work is captured into a graph).
//
// One warp per row: the row is read once for the maximum and once for the sum
// of exponentials (forward), and the probabilities are never stored — the
// backward recomputes them in the same pass that writes the gradient.
#pragma once

#include <seemore/kernels/common.cuh>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr int kCeRowsPerBlock = 4;
constexpr int kMeanThreads = 256;

// ------------------------------------------------------------------ kernels

template <class T>
__device__ inline void row_max_sum(int64_t V, const T* x, int lane, T& mx, T& sum) {
  mx = neg_inf<T>();
  for (int64_t v = lane; v < V; v += kWarp) mx = max(mx, x[v]);
  mx = warp_max(mx);
  sum = 0;
  for (int64_t v = lane; v < V; v += kWarp) sum += dexp(x[v] - mx);
  sum = warp_sum(sum);
}

template <class T>
__global__ void cross_entropy_forward_kernel(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                                             int32_t ignore_index, T* losses) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kCeRowsPerBlock + threadIdx.x / kWarp;
  if (row >= N) return;
  const int32_t t = targets[row];
  if (t == ignore_index) {
    if (lane == 0) losses[row] = 0;
    return;
  }
  const T* x = logits + row * V;
  T mx, sum;
  row_max_sum(V, x, lane, mx, sum);
  if (lane == 0) losses[row] = mx + dlog(sum) - x[t];
}

// scale = g[0] / count[0] when g is given (computed as the host computes it,
// in double, then rounded): nothing of the backward is read on the host.
template <class T>
__global__ void cross_entropy_backward_kernel(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                                              int32_t ignore_index, T scale, T* dlogits, const T* g,
                                              const double* count) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kCeRowsPerBlock + threadIdx.x / kWarp;
  if (row >= N) return;
  if (g) scale = T(double(g[0]) / count[0]);
  const int32_t t = targets[row];
  T* d = dlogits + row * V;
  if (t == ignore_index) {
    for (int64_t v = lane; v < V; v += kWarp) d[v] = 0;
    return;
  }
  const T* x = logits + row * V;
  T mx, sum;
  row_max_sum(V, x, lane, mx, sum);
  const T inv = T(1) / sum;
  for (int64_t v = lane; v < V; v += kWarp) d[v] = scale * (dexp(x[v] - mx) * inv) - (v == t ? scale : T(0));
}

// One block: each thread sums a strided subset in order, then a fixed tree.
template <class T>
__global__ void loss_mean_kernel(int64_t N, const T* losses, double count, T* out) {
  __shared__ double part[kMeanThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < N; i += kMeanThreads) acc += double(losses[i]);
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kMeanThreads / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = T(part[0] / count);
}

// The mean of loss_mean_kernel with its divisor made on the device: the rows
// whose target is not ignore_index, counted in the same pass (or divide_by
// when > 0). The sum goes in the same order as loss_mean_kernel's; the divisor
// is also written to count[0], for the backward.
template <class T>
__global__ void loss_mean_counted_kernel(int64_t N, const T* losses, const int32_t* targets, int32_t ignore_index,
                                         double divide_by, T* out, double* count) {
  __shared__ double part[kMeanThreads];
  __shared__ double counted[kMeanThreads];
  double acc = 0, c = 0;
  for (int64_t i = threadIdx.x; i < N; i += kMeanThreads) {
    acc += double(losses[i]);
    c += targets[i] != ignore_index ? 1.0 : 0.0;
  }
  part[threadIdx.x] = acc;
  counted[threadIdx.x] = c;
  __syncthreads();
  for (int s = kMeanThreads / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) {
      part[threadIdx.x] += part[threadIdx.x + s];
      counted[threadIdx.x] += counted[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double n = divide_by > 0 ? divide_by : counted[0];
    out[0] = T(part[0] / n);
    count[0] = n;
  }
}

// ------------------------------------------------------------------ launchers

template <class T>
void launch_cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                                  T* losses) {
  if (N == 0) return;
  launch(cross_entropy_forward_kernel<T>, unsigned(ceil_div(N, kCeRowsPerBlock)), kCeRowsPerBlock * kWarp, 0,
                                 backend::cuda::current_stream(), N, V, logits, targets, ignore_index, losses);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

// g and count, when given, replace scale (see the kernel).
template <class T>
void launch_cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                                   int32_t ignore_index, T scale, T* dlogits, const T* g = nullptr,
                                   const double* count = nullptr) {
  if (N == 0) return;
  launch(cross_entropy_backward_kernel<T>, unsigned(ceil_div(N, kCeRowsPerBlock)), kCeRowsPerBlock * kWarp, 0,
         backend::cuda::current_stream(), N, V, logits, targets, ignore_index, scale, dlogits, g, count);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch_loss_mean_counted(int64_t N, const T* losses, const int32_t* targets, int32_t ignore_index,
                              int64_t divide_by, T* out, double* count) {
  launch(loss_mean_counted_kernel<T>, 1, kMeanThreads, 0, backend::cuda::current_stream(), N, losses, targets,
         ignore_index, double(divide_by), out, count);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch_loss_mean(int64_t N, const T* losses, int64_t count, T* out) {
  launch(loss_mean_kernel<T>, 1, kMeanThreads, 0, backend::cuda::current_stream(), N, losses, double(count), out);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

}  // namespace seemore::kernels
#endif
