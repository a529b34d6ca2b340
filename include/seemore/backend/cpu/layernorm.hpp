// seemore/backend/cpu/layernorm.hpp — LayerNorm over the last dimension.
//
// Forward: inp [N, C] -> out [N, C], and per row the mean and 1/std (saved for
// the backward). Backward: dinp is overwritten; dweight and dbias are
// ACCUMULATED into (+=), so the caller zeroes them once per backward pass.
// The weight/bias gradients sum over rows serially per column (each thread
// takes a block of columns, parallel.hpp), so the result does not depend on
// the thread count. The per-row sums are `omp simd`
// reductions: summed in vector lanes, not strictly left to right, which is
// what lets them vectorise (strict-order sums ran several times slower).
#pragma once

#include <seemore/backend/cpu/parallel.hpp>

#include <cmath>
#include <cstdint>

namespace seemore::backend::cpu {

template <class T>
void layernorm_forward(int64_t N, int64_t C, const T* inp, const T* weight, const T* bias, T eps, T* out, T* mean,
                       T* rstd) {
  SEEMORE_PARALLEL_FOR_IF(N * C >= kParallelGrain)
  for (int64_t r = 0; r < N; ++r) {
    const T* x = inp + r * C;
    T m = 0;
    SEEMORE_PRAGMA(omp simd reduction(+ : m))
    for (int64_t c = 0; c < C; ++c) m += x[c];
    m /= T(C);
    T v = 0;
    SEEMORE_PRAGMA(omp simd reduction(+ : v))
    for (int64_t c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
    v /= T(C);  // biased variance, as torch.nn.LayerNorm
    const T s = T(1) / std::sqrt(v + eps);
    T* y = out + r * C;
    for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = s;
  }
}

template <class T>
void layernorm_backward(int64_t N, int64_t C, const T* dout, const T* inp, const T* weight, const T* mean,
                        const T* rstd, T* dinp, T* dweight, T* dbias) {
  SEEMORE_PARALLEL_FOR_IF(N * C >= kParallelGrain)
  for (int64_t r = 0; r < N; ++r) {
    const T* x = inp + r * C;
    const T* dy = dout + r * C;
    const T m = mean[r], s = rstd[r];
    // dx = s · (g − mean(g) − x̂ · mean(g ⊙ x̂)), g = dy ⊙ w
    T mg = 0, mgx = 0;
    SEEMORE_PRAGMA(omp simd reduction(+ : mg, mgx))
    for (int64_t c = 0; c < C; ++c) {
      const T g = dy[c] * weight[c];
      mg += g;
      mgx += g * (x[c] - m) * s;
    }
    mg /= T(C);
    mgx /= T(C);
    T* dx = dinp + r * C;
    for (int64_t c = 0; c < C; ++c) dx[c] = s * (dy[c] * weight[c] - mg - (x[c] - m) * s * mgx);
  }
  if (!dweight && !dbias) return;
  for_column_blocks(N, C, [&](int64_t c0, int64_t c1) {  // kRowGroup rows at a time (parallel.hpp)
    if (dbias) add_rows(N, C, dout, c0, c1, dbias);
    if (!dweight) return;
    int64_t r = 0;
    for (; r + kRowGroup <= N; r += kRowGroup) {
      const T* x = inp + r * C;
      const T* dy = dout + r * C;
      const T* m = mean + r;
      const T* s = rstd + r;
      SEEMORE_PRAGMA(omp simd)
      for (int64_t c = c0; c < c1; ++c) {
        T acc = dweight[c];
        SEEMORE_UNROLL_8
        for (int64_t i = 0; i < kRowGroup; ++i) acc += dy[i * C + c] * (x[i * C + c] - m[i]) * s[i];
        dweight[c] = acc;
      }
    }
    for (; r < N; ++r) {
      const T* x = inp + r * C;
      const T* dy = dout + r * C;
      const T m = mean[r], s = rstd[r];
      for (int64_t c = c0; c < c1; ++c) dweight[c] += dy[c] * (x[c] - m) * s;
    }
  });
}

}  // namespace seemore::backend::cpu
