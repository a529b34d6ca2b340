// seemore/kernels/softmax.cuh — softmax and log-softmax along one dimension of a
// tensor viewed as [outer, n, inner], forward and backward.
//
// Contract (same as backend/cpu/softmax.hpp): outputs overwritten; the row
// maximum is subtracted before exp; a row that is all −∞ gives 0·NaN-free
// output (its maximum counts as 0). Backward takes the forward's output y.
//
// inner == 1 (contiguous rows, the common case): one warp per row, the
// reductions in registers and shuffles. inner > 1: one thread per (outer,
// inner) column, striding over n (consecutive threads read consecutive
// addresses, so the loads still coalesce).
#pragma once

#include <seemore/kernels/common.cuh>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr int kSoftmaxRowsPerBlock = 4;

// ------------------------------------------------------------------ kernels

template <class T>
__device__ inline void softmax_warp_row(int64_t n, const T* x, T* y, bool log, int lane) {
  T mx = neg_inf<T>();
  for (int64_t k = lane; k < n; k += kWarp) mx = max(mx, x[k]);
  mx = warp_max(mx);
  if (mx == neg_inf<T>()) mx = 0;
  T sum = 0;
  for (int64_t k = lane; k < n; k += kWarp) sum += dexp(x[k] - mx);
  sum = warp_sum(sum);
  if (log) {
    const T lse = mx + dlog(sum);
    for (int64_t k = lane; k < n; k += kWarp) y[k] = x[k] - lse;
  } else {
    const T inv = T(1) / sum;
    for (int64_t k = lane; k < n; k += kWarp) y[k] = dexp(x[k] - mx) * inv;
  }
}

template <class T>
__global__ void softmax_rows_kernel(int64_t rows, int64_t n, const T* x, T* y, bool log) {
  const int64_t row = int64_t(blockIdx.x) * kSoftmaxRowsPerBlock + threadIdx.x / kWarp;
  if (row >= rows) return;
  softmax_warp_row(n, x + row * n, y + row * n, log, int(threadIdx.x % kWarp));
}

template <class T>
__global__ void softmax_cols_kernel(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  SEEMORE_GRID_STRIDE(col, outer * inner) {
    const int64_t base = (col / inner) * n * inner + col % inner;
    T mx = neg_inf<T>();
    for (int64_t k = 0; k < n; ++k) mx = max(mx, x[base + k * inner]);
    if (mx == neg_inf<T>()) mx = 0;
    T sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += dexp(x[base + k * inner] - mx);
    const T lse = mx + dlog(sum), inv = T(1) / sum;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t j = base + k * inner;
      y[j] = log ? x[j] - lse : dexp(x[j] - mx) * inv;
    }
  }
}

// softmax: dx = y ⊙ (dy − Σ dy·y); log_softmax: dx = dy − exp(y)·Σ dy.
template <class T>
__global__ void softmax_backward_rows_kernel(int64_t rows, int64_t n, const T* y, const T* dy, T* dx, bool log) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kSoftmaxRowsPerBlock + threadIdx.x / kWarp;
  if (row >= rows) return;
  const T* yr = y + row * n;
  const T* gr = dy + row * n;
  T acc = 0;
  for (int64_t k = lane; k < n; k += kWarp) acc += log ? gr[k] : gr[k] * yr[k];
  acc = warp_sum(acc);
  T* d = dx + row * n;
  for (int64_t k = lane; k < n; k += kWarp) d[k] = log ? gr[k] - dexp(yr[k]) * acc : yr[k] * (gr[k] - acc);
}

template <class T>
__global__ void softmax_backward_cols_kernel(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx,
                                             bool log) {
  SEEMORE_GRID_STRIDE(col, outer * inner) {
    const int64_t base = (col / inner) * n * inner + col % inner;
    T acc = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t j = base + k * inner;
      acc += log ? dy[j] : dy[j] * y[j];
    }
    for (int64_t k = 0; k < n; ++k) {
      const int64_t j = base + k * inner;
      dx[j] = log ? dy[j] - dexp(y[j]) * acc : y[j] * (dy[j] - acc);
    }
  }
}

// ------------------------------------------------------------------ launchers

template <class T>
void launch_softmax_forward(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  if (outer * n * inner == 0) return;
  cudaStream_t s = backend::cuda::current_stream();
  if (inner == 1)
    launch(softmax_rows_kernel<T>, unsigned(ceil_div(outer, kSoftmaxRowsPerBlock)), kSoftmaxRowsPerBlock * kWarp, 0, s, 
        outer, n, x, y, log);
  else
    launch(softmax_cols_kernel<T>, grid_for(outer * inner), kThreads, 0, s, outer, n, inner, x, y, log);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch_softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log) {
  if (outer * n * inner == 0) return;
  cudaStream_t s = backend::cuda::current_stream();
  if (inner == 1)
    launch(softmax_backward_rows_kernel<T>, unsigned(ceil_div(outer, kSoftmaxRowsPerBlock)), kSoftmaxRowsPerBlock * kWarp, 0,
                                   s, outer, n, y, dy, dx, log);
  else
    launch(softmax_backward_cols_kernel<T>, grid_for(outer * inner), kThreads, 0, s, outer, n, inner, y, dy, dx, log);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

}  // namespace seemore::kernels
#endif
