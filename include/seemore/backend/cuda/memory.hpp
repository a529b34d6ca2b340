// seemore/backend/cuda/memory.hpp — device memory and host<->device copies (nvcc only).
//
// Storage asks these functions for memory; they go through the caching
// allocator. Copies are queued on the device's stream; a copy to the host
// waits for it, so the host sees every result queued before.
#pragma once

#include <seemore/backend/cuda/allocator.hpp>
#include <seemore/backend/cuda/context.hpp>

#if SEEMORE_HAS_CUDA
#include <cstddef>
#include <string>

namespace seemore::backend::cuda {

inline void* device_alloc(size_t bytes, int device) {
  (void)context(device);  // checks the index and creates the stream first
  return allocator().allocate(bytes, device);
}

inline void device_free(void* p, size_t /*bytes*/, int device) noexcept { allocator().deallocate(p, device); }

// Copies between host and device or device and device; `device` is the GPU
// involved (the destination's when both are GPUs).
inline void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes,
                       int device) {
  if (bytes == 0) return;
  SEEMORE_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s = stream(device);
  const cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                            : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  SEEMORE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
  // To the host: the caller reads the data next. From pageable host memory:
  // the caller may free its buffer as soon as we return.
  if (kind != cudaMemcpyDeviceToDevice) SEEMORE_CUDA_CHECK(cudaStreamSynchronize(s));
}

// Zero bits are 0 for float, double and int32, so zeros() never leaves the device.
inline void zero_bytes(void* dst, size_t bytes, int device) {
  if (bytes == 0) return;
  SEEMORE_CUDA_CHECK(cudaSetDevice(device));
  SEEMORE_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream(device)));
}

// Why no GPU can be used, in the runtime's words ("CUDA driver version is
// insufficient for CUDA runtime version", "no CUDA-capable device is
// detected", ...), or "" when one can: a skipped test says which.
inline std::string device_status() {
  int n = 0;
  const cudaError_t st = cudaGetDeviceCount(&n);
  (void)cudaGetLastError();  // "no device" must not stick to the next call
  if (st != cudaSuccess) return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(st);
  if (n == 0) return "cudaGetDeviceCount: 0 devices";
  return "";
}
// True when a usable GPU is present (tests skip otherwise; device_status() says why not).
inline bool device_available() { return device_status().empty(); }

}  // namespace seemore::backend::cuda
#endif
