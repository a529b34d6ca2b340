// seemore/backend/cuda/memory.hpp — device memory and host<->device copies (nvcc only).
//
// Plain cudaMalloc/cudaFree for now; the caching allocator of the CUDA backend
// replaces these two functions without touching Storage.
#pragma once

#include <seemore/backend/cuda/check.hpp>

#if SEEMORE_HAS_CUDA
#include <cstddef>

namespace seemore::backend::cuda {

inline void* device_alloc(size_t bytes, int device) {
  if (bytes == 0) return nullptr;
  SEEMORE_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  SEEMORE_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

inline void device_free(void* p, size_t /*bytes*/, int device) {
  cudaSetDevice(device);
  cudaFree(p);  // no throw from a destructor path
}

inline void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (bytes == 0) return;
  const cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                            : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  SEEMORE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

// True when a usable GPU is present (tests skip otherwise).
inline bool device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

}  // namespace seemore::backend::cuda
#endif
