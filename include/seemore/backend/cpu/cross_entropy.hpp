// seemore/backend/cpu/cross_entropy.hpp — cross-entropy fused with log-softmax.
//
// logits [N, V], targets [N]; rows whose target equals ignore_index add
// nothing. The forward returns the SUM of -log p(target) over counted rows and
// the count; the op divides (mean reduction, as torch's default). Targets out
// of [0, V) are reported with their row before anything is computed. Float
// rows run on softmax.hpp's blocked exp; tests/ops compares them with the
// double rows, which are the plain loops.
#pragma once

#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/backend/cpu/softmax.hpp>
#include <seemore/config.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace seemore::backend::cpu {

inline void check_targets(int64_t N, int64_t V, const int32_t* targets, int32_t ignore_index) {
  for (int64_t r = 0; r < N; ++r)
    SEEMORE_CHECK(targets[r] == ignore_index || (targets[r] >= 0 && targets[r] < V), "cross_entropy: target ",
                  targets[r], " at row ", r, " is outside [0, ", V, ") and is not ignore_index ", ignore_index);
}

// losses[r] = -log softmax(logits[r])[t] (0 for ignored rows); returns the count of counted rows.
// Float rows go through exp_rows in blocks; double rows are the plain loops.
template <class T>
int64_t cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                              T* losses) {
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r) count += targets[r] != ignore_index;
  const int64_t per = detail_rows::kVector<T> ? rows_per_block(V) : 1;
  const int64_t blocks = (N + per - 1) / per;
  SEEMORE_PARALLEL_FOR_IF(N * V >= kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * per, rows = std::min(per, N - r0);
    const T* x = logits + r0 * V;
    if constexpr (detail_rows::kVector<T>) {
      std::vector<T> e(static_cast<size_t>(rows * V)), shift(static_cast<size_t>(rows));
      exp_rows(rows, V, x, e.data(), [V](int64_t) { return V; }, shift.data());
      for (int64_t r = 0; r < rows; ++r) {
        const int32_t t = targets[r0 + r];
        losses[r0 + r] = t == ignore_index
                             ? T(0)
                             : shift[size_t(r)] + std::log(row_sum(V, e.data() + r * V)) - x[r * V + t];
      }
    } else {
      const int32_t t = targets[r0];
      if (t == ignore_index) {
        losses[r0] = 0;
        continue;
      }
      const T mx = row_max(V, x);
      losses[r0] = mx + std::log(row_exp_sum(V, x, mx)) - x[t];  // double: the plain strict-order loop
    }
  }
  return count;
}

// out[0] = Σ losses / count, summed in double.
template <class T>
void loss_mean(int64_t N, const T* losses, int64_t count, T* out) {
  double total = 0;
  for (int64_t r = 0; r < N; ++r) total += double(losses[r]);
  out[0] = T(total / double(count));
}

// dlogits[r] = scale · (softmax(logits[r]) − onehot(t)); zero for ignored rows.
template <class T>
void cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                            T scale, T* dlogits) {
  const int64_t per = detail_rows::kVector<T> ? rows_per_block(V) : 1;
  const int64_t blocks = (N + per - 1) / per;
  SEEMORE_PARALLEL_FOR_IF(N * V >= kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * per, rows = std::min(per, N - r0);
    T* d = dlogits + r0 * V;
    if constexpr (detail_rows::kVector<T>) {
      std::vector<T> shift(static_cast<size_t>(rows));
      exp_rows(rows, V, logits + r0 * V, d, [V](int64_t) { return V; }, shift.data());
    } else {
      for (int64_t r = 0; r < rows; ++r) softmax_row(V, 1, logits + (r0 + r) * V, d + r * V, false);
    }
    for (int64_t r = 0; r < rows; ++r) {
      T* dr = d + r * V;
      const int32_t t = targets[r0 + r];
      if (t == ignore_index) {
        std::fill(dr, dr + V, T(0));
        continue;
      }
      // Float rows hold exp(x − max) here, double rows the softmax itself.
      const T k = detail_rows::kVector<T> ? scale / row_sum(V, dr) : scale;
      SEEMORE_PRAGMA(omp simd)
      for (int64_t v = 0; v < V; ++v) dr[v] *= k;
      dr[t] -= scale;
    }
  }
}

}  // namespace seemore::backend::cpu
