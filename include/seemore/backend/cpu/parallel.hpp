// seemore/backend/cpu/parallel.hpp — OpenMP helpers that vanish without -fopenmp.
#pragma once

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

#define SEEMORE_PRAGMA(x) _Pragma(#x)
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

}  // namespace seemore::backend::cpu
