// seemore/backend/cpu/layout.hpp — kernels that move data: permute, concat,
// slice, index_select, gather, embedding. Dimensions are passed as the
// [outer, n, inner] view around the dimension an op works along.
#pragma once

#include <seemore/backend/cpu/elementwise.hpp>
#include <seemore/backend/cpu/parallel.hpp>

#include <algorithm>
#include <cstring>

namespace seemore::backend::cpu {

// out (shape = in shape permuted by perm) = in with axes reordered.
template <class T>
void permute(const std::vector<int64_t>& in_shape, const std::vector<int>& perm, const T* in, T* out) {
  const size_t nd = in_shape.size();
  auto in_st = contiguous_strides(in_shape);
  std::vector<int64_t> out_shape(nd), st(nd);
  for (size_t i = 0; i < nd; ++i) {
    out_shape[i] = in_shape[size_t(perm[i])];
    st[i] = in_st[size_t(perm[i])];
  }
  Broadcast bc;
  bc.shape = out_shape;
  bc.sa = st;
  bc.sb.assign(nd, 0);
  static const T zero = 0;
  binary_broadcast(bc, in, &zero, out, [](T x, T) { return x; });
}

namespace detail_layout {
// f(o, i, count) over the pieces of `outer` runs of `count` elements each,
// split over the threads by elements (a single run, such as a weight's rows,
// is split too) once there are enough to pay for a parallel region: these
// copies run at the memory's speed, which one core does not reach.
template <class F>
void for_runs(int64_t outer, int64_t count, F f) {
  const int64_t total = outer * count;
  const int64_t parts = total >= 4 * kParallelGrain && !in_parallel() ? max_threads() : 1;
  SEEMORE_PARALLEL_FOR_IF(parts > 1)
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t e = total * p / parts, e1 = total * (p + 1) / parts; e < e1;) {
      const int64_t o = e / count, i = e % count, m = std::min(count - i, e1 - e);
      f(o, i, m);
      e += m;
    }
}
}  // namespace detail_layout

// Copies rows [start, start+len) of dimension n: in [outer, n, inner] -> out [outer, len, inner].
template <class T>
void slice_copy(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  const int64_t run = len * inner;
  detail_layout::for_runs(outer, run, [&](int64_t o, int64_t i, int64_t m) {
    std::memcpy(out + o * run + i, in + (o * n + start) * inner + i, size_t(m) * sizeof(T));
  });
}
// The adjoint: writes `in` [outer, len, inner] into out [outer, n, inner] at
// start, and zeros around it (each element written once).
template <class T>
void slice_scatter(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  const int64_t row = n * inner, lo = start * inner, hi = (start + len) * inner;
  detail_layout::for_runs(outer, row, [&](int64_t o, int64_t i, int64_t m) {
    T* dst = out + o * row;
    const int64_t end = i + m, a = std::min(std::max(i, lo), end), b = std::max(std::min(end, hi), a);
    std::fill(dst + i, dst + a, T(0));
    if (b > a) std::memcpy(dst + a, in + o * len * inner + (a - lo), size_t(b - a) * sizeof(T));
    std::fill(dst + b, dst + end, T(0));
  });
}

// out[o, j, i] = in[o, idx[j], i]
template <class T>
void index_select(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx, T* out) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      std::memcpy(out + (o * m + j) * inner, in + (o * n + idx[j]) * inner, size_t(inner) * sizeof(T));
}
// out (zeroed) [o, idx[j], i] += g[o, j, i]; serial, so the summation order is fixed.
template <class T>
void index_add(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx, T* out) {
  std::fill(out, out + outer * n * inner, T(0));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j) {
      T* dst = out + (o * n + idx[j]) * inner;
      const T* src = g + (o * m + j) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
}

// torch.gather: out[o, j, i] = in[o, idx[o, j, i], i]
template <class T>
void gather(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx, T* out) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (o * m + j) * inner + i;
        out[k] = in[(o * n + idx[k]) * inner + i];
      }
}
template <class T>
void scatter_add(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx, T* out) {
  std::fill(out, out + outer * n * inner, T(0));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (o * m + j) * inner + i;
        out[(o * n + idx[k]) * inner + i] += g[k];
      }
}

// Embedding is index_select on the rows of a [V, C] table.
template <class T>
void embedding_forward(int64_t V, int64_t C, const T* table, int64_t N, const int32_t* ids, T* out) {
  index_select<T>(1, V, C, table, N, ids, out);
}
template <class T>
void embedding_backward(int64_t V, int64_t C, const T* dout, int64_t N, const int32_t* ids, T* dtable) {
  index_add<T>(1, V, C, dout, N, ids, dtable);
}

}  // namespace seemore::backend::cpu

namespace seemore::backend::cpu {
// Writes in [outer, len, inner] into out [outer, n, inner] at `start`, leaving the rest (concat).
template <class T>
void slice_place(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  const int64_t run = len * inner;
  detail_layout::for_runs(outer, run, [&](int64_t o, int64_t i, int64_t m) {
    std::memcpy(out + (o * n + start) * inner + i, in + o * run + i, size_t(m) * sizeof(T));
  });
}
}  // namespace seemore::backend::cpu
