// seemore/kernels/common.cuh — what every kernel file shares (nvcc only).
//
// Each kernel file holds its kernels first, then its launchers; every launcher
// ends with SEEMORE_CUDA_LAUNCH_CHECK() so a bad launch configuration is
// reported at the call that made it, with file and line.
#pragma once

#include <seemore/backend/cuda/check.hpp>

#include <cstdint>

#if SEEMORE_HAS_CUDA
namespace seemore::kernels {

constexpr SEEMORE_HOST_DEVICE inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace seemore::kernels

#define SEEMORE_CUDA_LAUNCH_CHECK() SEEMORE_CUDA_CHECK(cudaGetLastError())
#endif
