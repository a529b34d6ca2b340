// seemore/backend/cpu/softmax.hpp — softmax and log-softmax along one dimension
// of a tensor viewed as [outer, n, inner] (inner == 1: contiguous rows).
// Numerically stable: the row maximum is subtracted before exp.
#pragma once

#include <seemore/backend/cpu/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace seemore::backend::cpu {

// One row of n values at stride s: y = softmax(x) or log_softmax(x).
template <class T>
inline void softmax_row(int64_t n, int64_t s, const T* x, T* y, bool log) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < n; ++k) mx = std::max(mx, x[k * s]);
  if (mx == -std::numeric_limits<T>::infinity()) mx = 0;  // fully masked row
  T sum = 0;
  for (int64_t k = 0; k < n; ++k) {
    const T e = std::exp(x[k * s] - mx);
    if (!log) y[k * s] = e;
    sum += e;
  }
  if (log) {
    const T lse = mx + std::log(sum);
    for (int64_t k = 0; k < n; ++k) y[k * s] = x[k * s] - lse;
  } else {
    const T inv = T(1) / sum;
    for (int64_t k = 0; k < n; ++k) y[k * s] *= inv;
  }
}

template <class T>
void softmax_forward(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  SEEMORE_PARALLEL_FOR_IF(outer * n * inner >= kParallelGrain)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) softmax_row(n, inner, x + o * n * inner + i, y + o * n * inner + i, log);
}

// From the forward's output y: softmax dx = y ⊙ (dy − Σ dy·y); log_softmax dx = dy − exp(y) Σ dy.
template <class T>
void softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log) {
  SEEMORE_PARALLEL_FOR_IF(outer * n * inner >= kParallelGrain)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      T acc = 0;
      for (int64_t k = 0; k < n; ++k) acc += log ? dy[base + k * inner] : dy[base + k * inner] * y[base + k * inner];
      for (int64_t k = 0; k < n; ++k) {
        const int64_t j = base + k * inner;
        dx[j] = log ? dy[j] - std::exp(y[j]) * acc : y[j] * (dy[j] - acc);
      }
    }
}

}  // namespace seemore::backend::cpu
