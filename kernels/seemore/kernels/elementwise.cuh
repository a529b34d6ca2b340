// seemore/kernels/elementwise.cuh — maps, broadcasting binary ops, bias, dropout,
// and the deterministic sums behind sum_to and the bias gradient.
//
// Contract (same as backend/cpu/elementwise.hpp): outputs are overwritten;
// add_bias adds into y; column sums either overwrite or add (accumulate flag).
// Broadcasting is described by backend::cpu::Broadcast (shape + strides, 0 on
// stretched dimensions), turned into a fixed-size descriptor passed by value.
//
// No float atomics anywhere: every sum runs in a fixed order, so a result is
// the same run to run.
#pragma once

#include <seemore/backend/cpu/elementwise.hpp>
#include <seemore/backend/cuda/allocator.hpp>
#include <seemore/kernels/common.cuh>
#include <seemore/random.hpp>

#include <vector>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr int kMaxDims = 8;

// An output shape and, for up to two operands, element strides into them.
struct Strided {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t sa[kMaxDims] = {};
  int64_t sb[kMaxDims] = {};
};

inline Strided make_strided(const std::vector<int64_t>& shape, const std::vector<int64_t>& sa,
                            const std::vector<int64_t>& sb, const char* op) {
  SEEMORE_CHECK(shape.size() <= size_t(kMaxDims), op, ": ", shape.size(), " dimensions; the CUDA kernels take at most ",
                kMaxDims);
  Strided s;
  s.nd = int(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    s.shape[i] = shape[i];
    s.sa[i] = sa.empty() ? 0 : sa[i];
    s.sb[i] = sb.empty() ? 0 : sb[i];
  }
  return s;
}

enum class BinOp { Add, Sub, Mul, Div, First };

template <BinOp op, class T>
__device__ inline T apply(T a, T b) {
  if constexpr (op == BinOp::Add) return a + b;
  else if constexpr (op == BinOp::Sub) return a - b;
  else if constexpr (op == BinOp::Mul) return a * b;
  else if constexpr (op == BinOp::Div) return a / b;
  else return a;
}

// ------------------------------------------------------------------ kernels

template <BinOp op, class T>
__global__ void binary_same_kernel(int64_t n, const T* a, const T* b, T* out) {
  SEEMORE_GRID_STRIDE(i, n) out[i] = apply<op>(a[i], b[i]);
}

template <BinOp op, class T>
__global__ void binary_strided_kernel(Strided s, int64_t n, const T* a, const T* b, T* out) {
  SEEMORE_GRID_STRIDE(i, n) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = s.nd - 1; d >= 0; --d) {
      const int64_t c = rem % s.shape[d];
      rem /= s.shape[d];
      oa += c * s.sa[d];
      ob += c * s.sb[d];
    }
    out[i] = apply<op>(a[oa], b ? b[ob] : T(0));
  }
}

template <class T>
__global__ void unary_kernel(int64_t n, const T* x, T* y, backend::Unary op, T scale, T shift) {
  SEEMORE_GRID_STRIDE(i, n) {
    const T v = x[i];
    switch (op) {
      case backend::Unary::Exp: y[i] = dexp(v); break;
      case backend::Unary::Log: y[i] = dlog(v); break;
      case backend::Unary::Sqrt: y[i] = dsqrt(v); break;
      case backend::Unary::ScaleShift: y[i] = v * scale + shift; break;
    }
  }
}

template <class T>
__global__ void gelu_forward_kernel(int64_t n, const T* x, T* y, bool tanh_approx) {
  SEEMORE_GRID_STRIDE(i, n) {
    const T v = x[i];
    if (tanh_approx)
      y[i] = T(0.5) * v * (T(1) + dtanh(T(0.7978845608028654) * (v + T(0.044715) * v * v * v)));
    else
      y[i] = T(0.5) * v * (T(1) + derf(v * T(0.7071067811865476)));
  }
}

template <class T>
__global__ void gelu_backward_kernel(int64_t n, const T* x, const T* dy, T* dx, bool tanh_approx) {
  SEEMORE_GRID_STRIDE(i, n) {
    const T v = x[i];
    if (tanh_approx) {
      const T k = T(0.7978845608028654), c = T(0.044715);
      const T t = dtanh(k * (v + c * v * v * v));
      dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * k * (T(1) + T(3) * c * v * v));
    } else {
      dx[i] = dy[i] * (T(0.5) * (T(1) + derf(v * T(0.7071067811865476))) +
                       v * dexp(T(-0.5) * v * v) * T(0.3989422804014327));
    }
  }
}

template <class T>
__global__ void relu_forward_kernel(int64_t n, const T* x, T* y) {
  SEEMORE_GRID_STRIDE(i, n) y[i] = x[i] > T(0) ? x[i] : T(0);
}
template <class T>
__global__ void relu_backward_kernel(int64_t n, const T* x, const T* dy, T* dx) {
  SEEMORE_GRID_STRIDE(i, n) dx[i] = x[i] > T(0) ? dy[i] : T(0);
}

template <class T>
__global__ void add_bias_kernel(int64_t N, int64_t C, T* y, const T* b) {
  SEEMORE_GRID_STRIDE(i, N * C) y[i] += b[i % C];
}

// One thread per Philox block of four elements, each from Philox::block as on the CPU,
// so the masks are bit-identical. x == nullptr: write the mask only. base_dev,
// when given, is added to base: a captured CUDA graph reads the step's
// starting counter from device memory (Generator::device_offset).
template <class T>
__global__ void dropout_kernel(int64_t n, const T* x, T* y, T* mask, uint64_t threshold, T scale, uint64_t seed,
                               uint64_t base, const uint64_t* base_dev) {
  if (base_dev) base += *base_dev;
  SEEMORE_GRID_STRIDE(blk, (n + 3) / 4) {
    const Philox::Block r = Philox::block(seed, base + uint64_t(blk));
    for (int l = 0; l < 4; ++l) {
      const int64_t i = 4 * blk + l;
      if (i >= n) break;
      const T m = uint64_t(r[l]) >= threshold ? scale : T(0);
      mask[i] = m;
      if (x) y[i] = x[i] * m;
    }
  }
}

// sum_to: one thread per output element walks the reduced dimensions in
// order. `kept` describes the output's dimensions with their input strides,
// `red` the summed ones.
struct ReducePlan {
  int nk = 0, nr = 0;
  int64_t kshape[kMaxDims] = {}, kstride[kMaxDims] = {};
  int64_t rshape[kMaxDims] = {}, rstride[kMaxDims] = {};
  int64_t rcount = 1;
};

// The input offset of index i over dimensions (shape, stride), last fastest.
__device__ inline int64_t mixed_radix_offset(int64_t i, int n, const int64_t* shape, const int64_t* stride) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; --d) {
    off += (i % shape[d]) * stride[d];
    i /= shape[d];
  }
  return off;
}

template <class T>
__global__ void sum_to_kernel(ReducePlan p, int64_t m, const T* in, T* out) {
  SEEMORE_GRID_STRIDE(o, m) {
    const int64_t base = mixed_radix_offset(o, p.nk, p.kshape, p.kstride);
    T acc = 0;
    for (int64_t r = 0; r < p.rcount; ++r) {
      acc += in[base + mixed_radix_offset(r, p.nr, p.rshape, p.rstride)];
    }
    out[o] = acc;
  }
}

// The same sum when the outputs are few and the reductions long (a full sum,
// a per-row sum of a wide tensor): one block per output, its threads striding
// over the reduced elements, then a fixed tree in shared memory.
constexpr int kReduceThreads = 256;
template <class T>
__global__ void sum_to_block_kernel(ReducePlan p, int64_t m, const T* in, T* out) {
  __shared__ T part[kReduceThreads];
  for (int64_t o = blockIdx.x; o < m; o += gridDim.x) {
    const int64_t base = mixed_radix_offset(o, p.nk, p.kshape, p.kstride);
    T acc = 0;
    for (int64_t r = threadIdx.x; r < p.rcount; r += kReduceThreads) {
      acc += in[base + mixed_radix_offset(r, p.nr, p.rshape, p.rstride)];
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = kReduceThreads / 2; s > 0; s /= 2) {
      if (int(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = part[0];
    __syncthreads();  // part is rewritten for the next output
  }
}

// Column sums of x [N, C] in two deterministic passes: partial sums over
// chunks of rows (coalesced: consecutive threads read consecutive columns),
// then the chunks in order.
constexpr int64_t kColChunk = 64;
template <class T>
__global__ void colsum_partial_kernel(int64_t N, int64_t C, const T* x, T* partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (c >= C) return;
  const int64_t r0 = chunk * kColChunk, r1 = min(N, r0 + kColChunk);
  T acc = 0;
  for (int64_t r = r0; r < r1; ++r) acc += x[r * C + c];
  partial[chunk * C + c] = acc;
}
template <class T>
__global__ void colsum_final_kernel(int64_t chunks, int64_t C, const T* partial, T* out, bool accumulate) {
  SEEMORE_GRID_STRIDE(c, C) {
    T acc = 0;
    for (int64_t k = 0; k < chunks; ++k) acc += partial[k * C + c];
    out[c] = accumulate ? out[c] + acc : acc;
  }
}

// ------------------------------------------------------------------ launchers

template <BinOp op, class T>
void binary(const backend::cpu::Broadcast& bc, const T* a, const T* b, T* out) {
  int64_t n = 1;
  for (auto d : bc.shape) n *= d;
  if (n == 0) return;
  const auto contiguous = backend::cpu::contiguous_strides(bc.shape);
  cudaStream_t s = backend::cuda::current_stream();
  if (bc.sa == contiguous && bc.sb == contiguous) {
    launch(binary_same_kernel<op, T>, grid_for(n), kThreads, 0, s, n, a, b, out);
  } else {
    launch(binary_strided_kernel<op, T>, grid_for(n), kThreads, 0, s, make_strided(bc.shape, bc.sa, bc.sb, "broadcast"), n,
                                                                a, b, out);
  }
  SEEMORE_CUDA_LAUNCH_CHECK();
}

// out = in read through `strides` as a tensor of `shape` (broadcast_to, permute).
template <class T>
void strided_copy(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, const T* in, T* out,
                  const char* op) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  if (n == 0) return;
  launch(binary_strided_kernel<BinOp::First, T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), 
      make_strided(shape, strides, {}, op), n, in, static_cast<const T*>(nullptr), out);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void unary(int64_t n, const T* x, T* y, backend::Unary op, T scale = T(1), T shift = T(0)) {
  if (n == 0) return;
  launch(unary_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, x, y, op, scale, shift);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch_gelu_forward(int64_t n, const T* x, T* y, bool tanh_approx) {
  if (n == 0) return;
  launch(gelu_forward_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, x, y, tanh_approx);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_gelu_backward(int64_t n, const T* x, const T* dy, T* dx, bool tanh_approx) {
  if (n == 0) return;
  launch(gelu_backward_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, x, dy, dx, tanh_approx);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_relu_forward(int64_t n, const T* x, T* y) {
  if (n == 0) return;
  launch(relu_forward_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, x, y);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_relu_backward(int64_t n, const T* x, const T* dy, T* dx) {
  if (n == 0) return;
  launch(relu_backward_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, x, dy, dx);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_add_bias(int64_t N, int64_t C, T* y, const T* b) {
  if (N * C == 0) return;
  launch(add_bias_kernel<T>, grid_for(N * C), kThreads, 0, backend::cuda::current_stream(), N, C, y, b);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_dropout(int64_t n, const T* x, T* y, T* mask, double p, uint64_t seed, uint64_t base,
                    const uint64_t* base_dev = nullptr) {
  if (n == 0) return;
  launch(dropout_kernel<T>, grid_for((n + 3) / 4), kThreads, 0, backend::cuda::current_stream(), 
      n, x, y, mask, backend::cpu::keep_threshold(p), T(1.0 / (1.0 - p)), seed, base, base_dev);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

// Constants made on the device (a H2D copy cannot be captured in a graph).
template <class T>
__global__ void fill_kernel(int64_t n, T* p, T v) {
  SEEMORE_GRID_STRIDE(i, n) p[i] = v;
}
template <class T>
__global__ void iota_kernel(int64_t n, T* p) {
  SEEMORE_GRID_STRIDE(i, n) p[i] = T(i);
}
template <class T>
void launch_fill(int64_t n, T* p, T v) {
  if (n == 0) return;
  launch(fill_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, p, v);
  SEEMORE_CUDA_LAUNCH_CHECK();
}
template <class T>
void launch_iota(int64_t n, T* p) {
  if (n == 0) return;
  launch(iota_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, p);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch_sum_to(const std::vector<int64_t>& from, const T* in, const std::vector<int64_t>& to, T* out) {
  int64_t m = 1;
  for (auto d : to) m *= d;
  if (m == 0) return;
  SEEMORE_CHECK(from.size() <= size_t(kMaxDims), "sum_to: ", from.size(), " dimensions; the CUDA kernels take at most ",
                kMaxDims);
  const auto st = backend::cpu::broadcast_strides(to, from);
  const auto in_st = backend::cpu::contiguous_strides(from);
  ReducePlan p;
  for (size_t d = 0; d < from.size(); ++d) {
    if (st[d] == 0 && from[d] != 1) {
      p.rshape[p.nr] = from[d];
      p.rstride[p.nr++] = in_st[d];
      p.rcount *= from[d];
    } else {
      p.kshape[p.nk] = from[d];
      p.kstride[p.nk++] = in_st[d];
    }
  }
  if (p.rcount >= 2048 && m <= 4096)
    launch(sum_to_block_kernel<T>, unsigned(std::min<int64_t>(m, 65535)), kReduceThreads, 0, backend::cuda::current_stream(), 
        p, m, in, out);
  else
    launch(sum_to_kernel<T>, grid_for(m), kThreads, 0, backend::cuda::current_stream(), p, m, in, out);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

// out[c] (=|+=) Σ_r x[r, c]
template <class T>
void launch_colsum(int64_t N, int64_t C, const T* x, T* out, bool accumulate) {
  if (C == 0) return;
  cudaStream_t s = backend::cuda::current_stream();
  const int device = backend::cuda::current_device();
  const int64_t chunks = std::max<int64_t>(1, ceil_div(N, kColChunk));
  SEEMORE_CHECK(chunks <= 65535, "column sum: ", N, " rows is more than the CUDA kernel takes");
  auto& alloc = backend::cuda::allocator();
  T* partial = static_cast<T*>(alloc.allocate(size_t(chunks * C) * sizeof(T), device));
  if (N == 0) {
    SEEMORE_CUDA_CHECK(cudaMemsetAsync(partial, 0, size_t(C) * sizeof(T), s));
  } else {
    dim3 grid(unsigned(ceil_div(C, 128)), unsigned(chunks));
    launch(colsum_partial_kernel<T>, grid, 128, 0, s, N, C, x, partial);
    SEEMORE_CUDA_LAUNCH_CHECK();
  }
  launch(colsum_final_kernel<T>, grid_for(C), kThreads, 0, s, chunks, C, partial, out, accumulate);
  alloc.deallocate(partial, device);  // stream order keeps it alive for the kernels above
  SEEMORE_CUDA_LAUNCH_CHECK();
}

}  // namespace seemore::kernels
#endif
