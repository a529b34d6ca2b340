// seemore/backend/cpu/parallel.hpp — OpenMP helpers that vanish without -fopenmp.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

#define SEEMORE_PRAGMA(x) _Pragma(#x)
// An unroll hint for g++. nvcc's front end (which also reads these headers'
// host code in .cu files) does not know the GCC pragma and warns at every
// use, so there it is left out.
#ifdef __CUDACC__
#define SEEMORE_UNROLL_8
#else
#define SEEMORE_UNROLL_8 SEEMORE_PRAGMA(GCC unroll 8)
#endif
#ifdef _OPENMP
// Parallel loop only when there is enough work to pay for waking the threads.
#define SEEMORE_PARALLEL_FOR_IF(cond) SEEMORE_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define SEEMORE_PARALLEL_FOR_IF(cond)
#endif

namespace seemore::backend::cpu {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
// True on a thread inside an OpenMP parallel region.
inline bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}
inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}
// Rough element count above which a row or map kernel goes parallel.
constexpr int64_t kParallelGrain = 1 << 15;

// Sums down the rows of a [rows, cols] matrix (a bias's or a norm's weight
// gradient): f(c0, c1) sums every row, in row order, into columns [c0, c1).
// Each thread gets one contiguous block of columns, a multiple of 16 wide so
// that no two threads write one cache line; each column's sum is then the
// serial loop's, bit for bit, whatever the thread count. Left serial, these
// sums kept one of two threads waiting for about 2% of a training step.
//
// Inside a block, the sums go eight rows at a time (kRowGroup): each column's
// partial sum is loaded, takes eight rows' terms in order in a register, and is
// stored. A row at a time, every term was a load, an add and a store of the
// same sum, a chain of store-to-load forwards: a 1024×128 bias gradient
// summed at 14 GB/s (-O2) and 37 (-O3 -march=native) that way, at 47 and 90
// this way, and a LayerNorm's weight gradient took three times its row pass.
// The order of the additions, and so the bits, are unchanged.
constexpr int64_t kRowGroup = 8;
template <class F>
void for_column_blocks(int64_t rows, int64_t cols, F&& f) {
  const int64_t threads = max_threads();
  const int64_t per = std::max<int64_t>(16, ((cols + threads - 1) / threads + 15) / 16 * 16);
  const int64_t blocks = (cols + per - 1) / per;
  SEEMORE_PARALLEL_FOR_IF(blocks > 1 && rows * cols >= kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) f(b * per, std::min(cols, (b + 1) * per));
}

// acc[c] += Σ_r src[r·ld + c] for c in [c0, c1), the rows in order, kRowGroup
// at a time: the plain column sum of a bias's gradient.
template <class T>
void add_rows(int64_t rows, int64_t ld, const T* src, int64_t c0, int64_t c1, T* acc) {
  int64_t r = 0;
  for (; r + kRowGroup <= rows; r += kRowGroup) {
    const T* in = src + r * ld;
    SEEMORE_PRAGMA(omp simd)
    for (int64_t c = c0; c < c1; ++c) {
      T a = acc[c];
      SEEMORE_UNROLL_8
      for (int64_t i = 0; i < kRowGroup; ++i) a += in[i * ld + c];
      acc[c] = a;
    }
  }
  for (; r < rows; ++r)
    for (int64_t c = c0; c < c1; ++c) acc[c] += src[r * ld + c];
}

}  // namespace seemore::backend::cpu
