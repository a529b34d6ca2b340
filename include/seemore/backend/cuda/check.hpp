// seemore/backend/cuda/check.hpp — CUDA and cuBLAS status checks (nvcc only).
// Every status becomes a seemore::Error naming the call, the file and the line.
#pragma once

#include <seemore/config.hpp>

#if SEEMORE_HAS_CUDA
#include <cuda_runtime.h>

namespace seemore::backend::cuda {

inline void check(cudaError_t st, const char* call, const char* file, int line) {
  if (st != cudaSuccess) {
    if (st == cudaErrorMemoryAllocation)
      detail::fail("CUDA out of memory in ", call, " at ", file, ":", line);
    detail::fail("CUDA error '", cudaGetErrorString(st), "' in ", call, " at ", file, ":", line);
  }
}

}  // namespace seemore::backend::cuda

#define SEEMORE_CUDA_CHECK(call) ::seemore::backend::cuda::check((call), #call, __FILE__, __LINE__)
#endif
