// seemore/backend/cpu/allocator.hpp — keeps glibc from returning memory to the
// kernel after every large free. A training step frees and reallocates the same
// large buffers (activations, Eigen's GEMM workspaces) thousands of times; with
// glibc's defaults each cycle is a brk/mmap system call pair and page faults.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace seemore::backend::cpu {

// Call once at program start (the trainer and benchmarks do).
inline void tune_allocator() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // serve blocks up to glibc's maximum (32 MiB) from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // and do not give the top of the heap back
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace seemore::backend::cpu
