// seemore/backend/cuda/check.hpp — CUDA and cuBLAS status checks (nvcc only).
// Every status becomes a seemore::Error naming the call, the file and the line;
// out of memory says so in words.
#pragma once

#include <seemore/config.hpp>

#if SEEMORE_HAS_CUDA
#if !defined(SEEMORE_CUDA_EMULATED_DEVICE)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

namespace seemore::backend::cuda {

inline void check(cudaError_t st, const char* call, const char* file, int line) {
  if (st != cudaSuccess) {
    if (st == cudaErrorMemoryAllocation)
      detail::fail("CUDA out of memory in ", call, " at ", file, ":", line);
    detail::fail("CUDA error '", cudaGetErrorString(st), "' in ", call, " at ", file, ":", line);
  }
}

inline const char* cublas_status_name(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (out of memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "unknown cuBLAS status";
  }
}

inline void check(cublasStatus_t st, const char* call, const char* file, int line) {
  if (st != CUBLAS_STATUS_SUCCESS)
    detail::fail("cuBLAS error ", cublas_status_name(st), " in ", call, " at ", file, ":", line);
}

}  // namespace seemore::backend::cuda

#define SEEMORE_CUDA_CHECK(call) ::seemore::backend::cuda::check((call), #call, __FILE__, __LINE__)
#endif
