// seemore/backend/cpu/cross_entropy.hpp — cross-entropy fused with log-softmax.
//
// logits [N, V], targets [N]; rows whose target equals ignore_index add
// nothing. The forward returns the SUM of -log p(target) over counted rows and
// the count; the op divides (mean reduction, as torch's default). Targets out
// of [0, V) are reported with their row before anything is computed. Rows run
// on softmax.hpp's vectorised primitives; tests/ops compares them with the
// plain loops of softmax_row.
#pragma once

#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/backend/cpu/softmax.hpp>
#include <seemore/config.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace seemore::backend::cpu {

inline void check_targets(int64_t N, int64_t V, const int32_t* targets, int32_t ignore_index) {
  for (int64_t r = 0; r < N; ++r)
    SEEMORE_CHECK(targets[r] == ignore_index || (targets[r] >= 0 && targets[r] < V), "cross_entropy: target ",
                  targets[r], " at row ", r, " is outside [0, ", V, ") and is not ignore_index ", ignore_index);
}

// losses[r] = -log softmax(logits[r])[t] (0 for ignored rows); returns the count of counted rows.
template <class T>
int64_t cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                              T* losses) {
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r) count += targets[r] != ignore_index;
  SEEMORE_PARALLEL_FOR_IF(N * V >= kParallelGrain)
  for (int64_t r = 0; r < N; ++r) {
    if (targets[r] == ignore_index) {
      losses[r] = 0;
      continue;
    }
    const T* x = logits + r * V;
    const T mx = row_max(V, x);
    losses[r] = mx + std::log(row_exp_sum(V, x, mx)) - x[targets[r]];
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
  SEEMORE_PARALLEL_FOR_IF(N * V >= kParallelGrain)
  for (int64_t r = 0; r < N; ++r) {
    T* d = dlogits + r * V;
    if (targets[r] == ignore_index) {
      std::fill(d, d + V, T(0));
      continue;
    }
    const T* x = logits + r * V;
    const T k = scale / row_exp_sum(V, x, row_max(V, x), d);
    for (int64_t v = 0; v < V; ++v) d[v] *= k;
    d[targets[r]] -= scale;
  }
}

}  // namespace seemore::backend::cpu
