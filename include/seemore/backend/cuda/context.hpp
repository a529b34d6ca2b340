// seemore/backend/cuda/context.hpp — per-device stream and cuBLAS handle (nvcc only).
//
// Each device gets one stream, created on first use, on which every kernel,
// GEMM and copy of that device is queued: the order of host calls is the order
// of execution, with no events to manage. The stream is a blocking one, so
// work that other code queues on the legacy default stream stays ordered too.
#pragma once

#include <seemore/backend/cuda/check.hpp>

#if SEEMORE_HAS_CUDA
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>

namespace seemore::backend::cuda {

struct DeviceContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  bool tf32 = false;  // the math mode last set on `cublas`
  void* cublas_workspace = nullptr;
};

// Created once per device and never destroyed (see allocator()).
// Throws unless cuda:device exists and the driver answers, naming the cause.
inline void require_device(int device) {
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    detail::fail("cuda:", device, " is not usable: ", cudaGetErrorString(st));
  }
  SEEMORE_CHECK(device >= 0 && device < count, "cuda:", device, " does not exist (", count, " CUDA device(s))");
}

inline DeviceContext& context(int device) {
  static std::mutex mu;
  static auto* contexts = new std::unordered_map<int, DeviceContext>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = contexts->find(device);
  if (it != contexts->end()) return it->second;
  require_device(device);
  DeviceContext c;
  SEEMORE_CUDA_CHECK(cudaSetDevice(device));
  SEEMORE_CUDA_CHECK(cudaStreamCreate(&c.stream));
  SEEMORE_CUDA_CHECK(cublasCreate(&c.cublas));
  SEEMORE_CUDA_CHECK(cublasSetStream(c.cublas, c.stream));
  SEEMORE_CUDA_CHECK(cublasSetMathMode(c.cublas, CUBLAS_DEFAULT_MATH));
  return contexts->emplace(device, c).first->second;
}

// cuBLAS's workspace given explicitly (32 MiB, what cuBLAS recommends on
// Hopper), so that a GEMM captured in a CUDA graph never makes cuBLAS
// allocate one (graph.hpp). Once per device.
inline void ensure_cublas_workspace(int device) {
  auto& c = context(device);
  if (c.cublas_workspace) return;
  const size_t bytes = size_t(32) << 20;
  SEEMORE_CUDA_CHECK(cudaSetDevice(device));
  SEEMORE_CUDA_CHECK(cudaMalloc(&c.cublas_workspace, bytes));
  SEEMORE_CUDA_CHECK(cublasSetWorkspace(c.cublas, c.cublas_workspace, bytes));
}

// The device the current host thread works on; kernels launch on its stream.
inline int current_device() {
  int d = 0;
  SEEMORE_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}
inline cudaStream_t stream(int device) { return context(device).stream; }
// Every launch asks for this: the thread remembers its last device's stream
// instead of taking context()'s lock each time.
inline cudaStream_t current_stream() {
  thread_local int cached_device = -1;
  thread_local cudaStream_t cached = nullptr;
  const int d = current_device();
  if (d != cached_device) {
    cached = stream(d);
    cached_device = d;
  }
  return cached;
}

// TF32 tensor-core GEMMs for float: off by default so that results match the
// CPU to fp32 rounding; on, GEMMs round their inputs to 10 mantissa bits.
inline bool& tf32_flag() {
  static bool on = false;
  return on;
}
inline void set_allow_tf32(bool on) { tf32_flag() = on; }
inline bool allow_tf32() { return tf32_flag(); }

// Whether this thread is capturing a CUDA graph (backend/cuda/graph.hpp).
// Ops then read nothing back from the device: checks of device data that
// they would make on the host (token ids, targets) are the caller's, made
// before the inputs were copied in.
inline bool& capturing_flag() {
  thread_local bool on = false;
  return on;
}
inline bool capturing() { return capturing_flag(); }

// SEEMORE_CUDA_SYNC=1 in the environment: every launch (kernel or cuBLAS
// call) waits for the device and checks, so that a kernel that faults is
// named at its own launch (file:line of its launcher) instead of at the next
// synchronising call. Slow; for finding faults.
inline bool sync_launches() {
  static const bool on = [] {
    const char* v = std::getenv("SEEMORE_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}
// What every launcher runs after queuing its work.
inline void after_launch(const char* file, int line) {
  check(cudaGetLastError(), "kernel launch", file, line);
  if (sync_launches() && !capturing())
    check(cudaStreamSynchronize(current_stream()), "kernel (SEEMORE_CUDA_SYNC)", file, line);
}

// Waits for everything queued on the device (benchmarks, tests).
inline void synchronize(int device = 0) {
  SEEMORE_CUDA_CHECK(cudaSetDevice(device));
  SEEMORE_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

}  // namespace seemore::backend::cuda
#endif
