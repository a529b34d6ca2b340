// seemore/kernels/layout.cuh — data movement: slices, concatenation, index
// select/add, gather/scatter-add, embedding, patch extraction (im2col).
//
// Contract (same as backend/cpu/layout.hpp and conv.hpp): every output is
// overwritten except slice_place, which writes only its slice. The adjoints
// that sum (index_add, scatter_add, embedding backward) give each output
// element one thread that walks its sources in index order: no atomics, the
// same summation order as the CPU, so the results are bit-identical to it.
#pragma once

#include <seemore/kernels/common.cuh>

#if SEEMORE_KERNELS
namespace seemore::kernels {

// ------------------------------------------------------------------ kernels

// out[o, j, i] = in[o, start + j, i] for j < len (copy) — or the reverse (place).
template <class T, bool place>
__global__ void slice_kernel(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  SEEMORE_GRID_STRIDE(k, outer * len * inner) {
    const int64_t i = k % inner, j = (k / inner) % len, o = k / (inner * len);
    const int64_t big = (o * n + start + j) * inner + i;
    if (place) out[big] = in[k];
    else out[k] = in[big];
  }
}

// slice_scatter: out [outer, n, inner] is the slice where it lands, 0 elsewhere.
template <class T>
__global__ void slice_scatter_kernel(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in,
                                     T* out) {
  SEEMORE_GRID_STRIDE(k, outer * n * inner) {
    const int64_t i = k % inner, j = (k / inner) % n, o = k / (inner * n);
    out[k] = (j >= start && j < start + len) ? in[(o * len + j - start) * inner + i] : T(0);
  }
}

// out[o, j, i] = in[o, idx[j], i]
template <class T>
__global__ void index_select_kernel(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m,
                                    const int32_t* idx, T* out) {
  SEEMORE_GRID_STRIDE(k, outer * m * inner) {
    const int64_t i = k % inner, j = (k / inner) % m, o = k / (inner * m);
    out[k] = in[(o * n + idx[j]) * inner + i];
  }
}

// out[o, r, i] = Σ_{j : idx[j] == r} g[o, j, i], j ascending.
template <class T>
__global__ void index_add_kernel(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx,
                                 T* out) {
  SEEMORE_GRID_STRIDE(k, outer * n * inner) {
    const int64_t i = k % inner, r = (k / inner) % n, o = k / (inner * n);
    T acc = 0;
    for (int64_t j = 0; j < m; ++j)
      if (idx[j] == r) acc += g[(o * m + j) * inner + i];
    out[k] = acc;
  }
}

// torch.gather along the middle dimension: out[o, j, i] = in[o, idx[o, j, i], i]
template <class T>
__global__ void gather_kernel(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx,
                              T* out) {
  SEEMORE_GRID_STRIDE(k, outer * m * inner) {
    const int64_t i = k % inner, o = k / (inner * m);
    out[k] = in[(o * n + idx[k]) * inner + i];
  }
}
template <class T>
__global__ void scatter_add_kernel(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx,
                                   T* out) {
  SEEMORE_GRID_STRIDE(k, outer * n * inner) {
    const int64_t i = k % inner, r = (k / inner) % n, o = k / (inner * n);
    T acc = 0;
    for (int64_t j = 0; j < m; ++j) {
      const int64_t src = (o * m + j) * inner + i;
      if (idx[src] == r) acc += g[src];
    }
    out[k] = acc;
  }
}

// Embedding backward: one block per table row; its threads own the columns and
// scan the ids in order (ids are few: B·T of one batch).
template <class T>
__global__ void embedding_backward_kernel(int64_t V, int64_t C, const T* dout, int64_t N, const int32_t* ids, T* dtable) {
  for (int64_t v = blockIdx.x; v < V; v += gridDim.x)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      T acc = 0;
      for (int64_t r = 0; r < N; ++r)
        if (ids[r] == v) acc += dout[r * C + c];
      dtable[v * C + c] = acc;
    }
}

// Non-overlapping k×k patches: cols [B·Ho·Wo, Cin·k·k] <-> x [B, Cin, H, W].
template <class T>
__global__ void im2col_kernel(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* x, T* cols) {
  const int64_t Ho = H / k, Wo = W / k, K = Cin * k * k;
  SEEMORE_GRID_STRIDE(e, B * Ho * Wo * K) {
    const int64_t col = e % K, row = e / K;
    const int64_t c = col / (k * k), i = (col / k) % k, j = col % k;
    const int64_t pw = row % Wo, ph = (row / Wo) % Ho, b = row / (Wo * Ho);
    cols[e] = x[((b * Cin + c) * H + ph * k + i) * W + pw * k + j];
  }
}
template <class T>
__global__ void col2im_kernel(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* dcols, T* dx) {
  const int64_t Ho = H / k, Wo = W / k, K = Cin * k * k;
  SEEMORE_GRID_STRIDE(e, B * Cin * H * W) {
    const int64_t w = e % W, h = (e / W) % H, c = (e / (W * H)) % Cin, b = e / (W * H * Cin);
    const int64_t ph = h / k, pw = w / k;
    dx[e] = (ph < Ho && pw < Wo) ? dcols[((b * Ho + ph) * Wo + pw) * K + (c * k + h % k) * k + w % k] : T(0);
  }
}

// ------------------------------------------------------------------ launchers

#define SEEMORE_LAUNCH_1D(kernel, n, ...)                                                         \
  do {                                                                                            \
    if ((n) > 0) {                                                                                \
      launch(kernel, grid_for(n), kThreads, 0, backend::cuda::current_stream(), __VA_ARGS__);         \
      SEEMORE_CUDA_LAUNCH_CHECK();                                                                \
    }                                                                                             \
  } while (0)

template <class T>
void launch_slice_copy(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  SEEMORE_LAUNCH_1D((slice_kernel<T, false>), outer * len * inner, outer, n, inner, start, len, in, out);
}
template <class T>
void launch_slice_place(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  SEEMORE_LAUNCH_1D((slice_kernel<T, true>), outer * len * inner, outer, n, inner, start, len, in, out);
}
template <class T>
void launch_slice_scatter(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  SEEMORE_LAUNCH_1D(slice_scatter_kernel<T>, outer * n * inner, outer, n, inner, start, len, in, out);
}
template <class T>
void launch_index_select(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx, T* out) {
  SEEMORE_LAUNCH_1D(index_select_kernel<T>, outer * m * inner, outer, n, inner, in, m, idx, out);
}
template <class T>
void launch_index_add(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx, T* out) {
  SEEMORE_LAUNCH_1D(index_add_kernel<T>, outer * n * inner, outer, n, inner, g, m, idx, out);
}
template <class T>
void launch_gather(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx, T* out) {
  SEEMORE_LAUNCH_1D(gather_kernel<T>, outer * m * inner, outer, n, inner, in, m, idx, out);
}
template <class T>
void launch_scatter_add(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx, T* out) {
  SEEMORE_LAUNCH_1D(scatter_add_kernel<T>, outer * n * inner, outer, n, inner, g, m, idx, out);
}
template <class T>
void launch_embedding_backward(int64_t V, int64_t C, const T* dout, int64_t N, const int32_t* ids, T* dtable) {
  if (V * C == 0) return;
  const unsigned blocks = unsigned(V < 65535 ? V : 65535);
  const int threads = C >= 256 ? 256 : int(ceil_div(C, kWarp) * kWarp);
  launch(embedding_backward_kernel<T>, blocks, threads, 0, backend::cuda::current_stream(), V, C, dout, N, ids, dtable);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_im2col(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* x, T* cols) {
  SEEMORE_LAUNCH_1D(im2col_kernel<T>, B * (H / k) * (W / k) * Cin * k * k, B, Cin, H, W, k, x, cols);
}
template <class T>
void launch_col2im(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* dcols, T* dx) {
  SEEMORE_LAUNCH_1D(col2im_kernel<T>, B * Cin * H * W, B, Cin, H, W, k, dcols, dx);
}

}  // namespace seemore::kernels
#endif
