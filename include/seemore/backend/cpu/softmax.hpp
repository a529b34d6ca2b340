// seemore/backend/cpu/softmax.hpp — softmax and log-softmax along one dimension
// of a tensor viewed as [outer, n, inner] (inner == 1: contiguous rows), and
// the vectorised row primitives the attention and cross-entropy kernels share.
// Numerically stable: the row maximum is subtracted before exp.
//
// Contiguous float rows run on the vectorised exp of vmath.hpp in the
// processor's form (Eigen's on a processor without AVX2; both within a few ulp
// of libm) and reorderable reductions (`omp simd`): strict-order scalar loops
// around libm's exp ran at under a tenth of memory speed. Double
// rows and strided rows (inner > 1, softmax over a leading dimension) keep the
// plain loops of softmax_row: the reference tests/ops compares float with.
#pragma once

#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/backend/cpu/vmath.hpp>

SEEMORE_AVX512_WARNINGS_OFF  // Eigen's AVX-512 code trips g++ 12's bug 105593 (isa.hpp)
#include <Eigen/Core>
SEEMORE_AVX512_WARNINGS_ON

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace seemore::backend::cpu {

namespace detail_rows {
template <class T>
using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
// Which element types take the vectorised exp.
template <class T>
inline constexpr bool kVector = std::is_same_v<T, float>;
}  // namespace detail_rows

// max of x[0, n); −∞ for n == 0. A NaN makes the result unspecified (the
// row's exp and sum are NaN either way).
template <class T>
inline T row_max(int64_t n, const T* x) {
  T mx = -std::numeric_limits<T>::infinity();
  SEEMORE_PRAGMA(omp simd reduction(max : mx))
  for (int64_t k = 0; k < n; ++k) mx = x[k] > mx ? x[k] : mx;
  return mx;
}

// Σ x[k]·y[k] over [0, n), in any order.
template <class T>
inline T row_dot(int64_t n, const T* x, const T* y) {
  T acc = 0;
  SEEMORE_PRAGMA(omp simd reduction(+ : acc))
  for (int64_t k = 0; k < n; ++k) acc += x[k] * y[k];
  return acc;
}

// y[k] = exp(x[k] − shift) over [0, n); returns Σ y. y may be x.
template <class T>
inline T row_exp_sum(int64_t n, const T* x, T shift, T* y) {
  if constexpr (detail_rows::kVector<T>) {
    if (float sum; vmath::exp_shift_sum(active_isa(), n, x, shift, y, sum)) return sum;
    using A = detail_rows::Arr<T>;
    Eigen::Map<A> out(y, n);
    out = (Eigen::Map<const A>(x, n) - shift).exp();
    return out.sum();
  } else {
    T sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += y[k] = std::exp(x[k] - shift);
    return sum;
  }
}

// Σ exp(x[k] − shift) over [0, n), nothing written.
template <class T>
inline T row_exp_sum(int64_t n, const T* x, T shift) {
  if constexpr (detail_rows::kVector<T>) {
    if (float sum; vmath::exp_shift_sum(active_isa(), n, x, shift, nullptr, sum)) return sum;
    using A = detail_rows::Arr<T>;
    return (Eigen::Map<const A>(x, n) - shift).exp().sum();
  } else {
    T sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += std::exp(x[k] - shift);
    return sum;
  }
}

// One row of n values at stride s: y = softmax(x) or log_softmax(x). The plain
// loops: the reference for the contiguous path, and the path for s > 1.
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

// y[0, n) ← softmax(x[0, n)) for a contiguous row; y may be x.
template <class T>
inline void softmax_contiguous(int64_t n, const T* x, T* y) {
  if constexpr (detail_rows::kVector<T>) {
    T mx = row_max(n, x);
    if (mx == -std::numeric_limits<T>::infinity()) mx = 0;  // fully masked row
    const T inv = T(1) / row_exp_sum(n, x, mx, y);
    Eigen::Map<detail_rows::Arr<T>>(y, n) *= inv;
  } else {
    softmax_row(n, 1, x, y, false);
  }
}

// For `rows` contiguous rows of n: y[r, j] = exp(x[r, j] − shift[r]) for
// j < len(r), 0 after, with shift[r] the row's maximum (0 if the row is all
// −∞). The shifted values and −∞ are written first so that one exp covers the
// whole block: Eigen peels each row's unaligned head and its tail off to the
// scalar exp, which for rows of 37 or 66 costs more than the vectors. y may be x.
template <class T, class Len>
void exp_rows(int64_t rows, int64_t n, const T* x, T* y, Len len, T* shift) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = len(r);
    const T* xr = x + r * n;
    T* yr = y + r * n;
    T mx = row_max(m, xr);
    if (mx == -inf) mx = 0;  // fully masked row
    shift[r] = mx;
    SEEMORE_PRAGMA(omp simd)
    for (int64_t j = 0; j < m; ++j) yr[j] = xr[j] - mx;
    std::fill(yr + m, yr + n, -inf);
  }
  row_exp_sum(rows * n, y, T(0), y);
}

// Σ of a contiguous row, in any order.
template <class T>
inline T row_sum(int64_t n, const T* x) {
  T acc = 0;
  SEEMORE_PRAGMA(omp simd reduction(+ : acc))
  for (int64_t k = 0; k < n; ++k) acc += x[k];
  return acc;
}

// Rows per block of the blocked row kernels: ≤ 16 KiB, in L1.
inline int64_t rows_per_block(int64_t n) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)); }

// `rows` contiguous rows of n: row r ← softmax (or log_softmax) over its first
// len(r) entries, 0 (−∞ for log) after, on exp_rows. y may be x, except for log.
template <class T, class Len>
void softmax_block(int64_t rows, int64_t n, const T* x, T* y, Len len, bool log) {
  std::vector<T> shift(static_cast<size_t>(rows));
  exp_rows(rows, n, x, y, len, shift.data());
  for (int64_t r = 0; r < rows; ++r) {
    T* yr = y + r * n;
    const T sum = row_sum(n, yr);
    if (log) {
      const T lse = shift[size_t(r)] + std::log(sum);
      const int64_t m = len(r);
      const T* xr = x + r * n;
      SEEMORE_PRAGMA(omp simd)
      for (int64_t j = 0; j < m; ++j) yr[j] = xr[j] - lse;
      std::fill(yr + m, yr + n, -std::numeric_limits<T>::infinity());
    } else {
      const T inv = T(1) / sum;
      SEEMORE_PRAGMA(omp simd)
      for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
    }
  }
}

// `rows` contiguous rows of n: row r ← softmax over its first len(r) entries,
// 0 after. Floats take vmath's masked row in the processor's form (max, one
// exp-and-sum, scale: no −∞ written and no exp of the masked tail, which for
// causal attention's rows is half the square); the rest softmax_block.
template <class T, class Len>
void softmax_prefix_rows(int64_t rows, int64_t n, const T* x, T* y, Len len) {
  if constexpr (detail_rows::kVector<T>) {
    const Isa isa = active_isa();
    if (isa != Isa::scalar) {
      for (int64_t r = 0; r < rows; ++r) vmath::softmax_prefix(isa, n, len(r), x + r * n, y + r * n);
      return;
    }
  }
  softmax_block(rows, n, x, y, len, false);
  for (int64_t r = 0; r < rows; ++r)  // no live entry: zeros, as vmath's (softmax_block's 0/0 is NaN)
    if (len(r) == 0) std::fill(y + r * n, y + (r + 1) * n, T(0));
}

// The gradient through softmax_prefix_rows, in place: for row r of d (dL/dy,
// times mask's row when mask is not null), d ← p ⊙ (d − Σ d·p) over its first
// len(r) entries, 0 after; p is the forward's output. These are the plain
// loops (`omp simd`, compiled for the TU's flags); softmax_grad_prefix_rows
// below takes vmath's masked rows where the processor has a form.
template <class T, class Len>
void softmax_grad_rows_plain(int64_t rows, int64_t n, const T* p, const T* mask, T* d, Len len) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = len(r);
    T* dr = d + r * n;
    const T* pr = p + r * n;
    if (mask)
      for (int64_t j = 0; j < m; ++j) dr[j] *= mask[r * n + j];
    const T acc = row_dot(m, dr, pr);
    SEEMORE_PRAGMA(omp simd)
    for (int64_t j = 0; j < m; ++j) dr[j] = pr[j] * (dr[j] - acc);
    std::fill(dr + m, dr + n, T(0));
  }
}
template <class T, class Len>
void softmax_grad_prefix_rows(int64_t rows, int64_t n, const T* p, const T* mask, T* d, Len len) {
  if constexpr (detail_rows::kVector<T>) {
    const Isa isa = active_isa();
    if (isa != Isa::scalar) {
      for (int64_t r = 0; r < rows; ++r)
        vmath::softmax_grad_prefix(isa, n, len(r), p + r * n, mask ? mask + r * n : nullptr, d + r * n);
      return;
    }
  }
  softmax_grad_rows_plain(rows, n, p, mask, d, len);
}

// One contiguous row on the vectorised primitives: fewer passes than a block,
// better for long rows. (Eigen peels a row's unaligned head and its tail off
// to scalar code, so a short row pays its scalar exps once per row.)
template <class T>
inline void softmax_row_fast(int64_t n, const T* x, T* y, bool log) {
  if (!log) return softmax_contiguous(n, x, y);
  T mx = row_max(n, x);
  if (mx == -std::numeric_limits<T>::infinity()) mx = 0;
  const T lse = mx + std::log(row_exp_sum(n, x, mx));
  Eigen::Map<detail_rows::Arr<T>>(y, n) = Eigen::Map<const detail_rows::Arr<T>>(x, n) - lse;
}

template <class T>
void softmax_forward(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  if (inner == 1 && detail_rows::kVector<T> && n >= 256) {
    SEEMORE_PARALLEL_FOR_IF(outer * n >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o) softmax_row_fast(n, x + o * n, y + o * n, log);
    return;
  }
  if (inner == 1 && detail_rows::kVector<T>) {
    const int64_t per = rows_per_block(n);
    const int64_t blocks = (outer + per - 1) / per;
    SEEMORE_PARALLEL_FOR_IF(outer * n >= kParallelGrain)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * per, rows = std::min(per, outer - r0);
      softmax_block(rows, n, x + r0 * n, y + r0 * n, [n](int64_t) { return n; }, log);
    }
    return;
  }
  SEEMORE_PARALLEL_FOR_IF(outer * n * inner >= kParallelGrain)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) softmax_row(n, inner, x + o * n * inner + i, y + o * n * inner + i, log);
}

// From the forward's output y: softmax dx = y ⊙ (dy − Σ dy·y); log_softmax dx = dy − exp(y) Σ dy.
template <class T>
void softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log) {
  if constexpr (detail_rows::kVector<T>) {
    if (inner == 1) {
      using A = detail_rows::Arr<T>;
      SEEMORE_PARALLEL_FOR_IF(outer * n >= kParallelGrain)
      for (int64_t o = 0; o < outer; ++o) {
        Eigen::Map<const A> yr(y + o * n, n), g(dy + o * n, n);
        Eigen::Map<A> out(dx + o * n, n);
        if (log)
          out = g - yr.exp() * g.sum();
        else
          out = yr * (g - row_dot(n, dy + o * n, y + o * n));
      }
      return;
    }
  }
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
