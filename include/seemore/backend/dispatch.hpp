// seemore/backend/dispatch.hpp — the seam between ops and backends.
//
// An op in seemore/ops/ validates shapes, allocates its outputs on the input's
// device and calls SEEMORE_DISPATCH(device, kernel, args...). The kernel has the
// same name and raw-pointer signature in backend::cpu (Eigen, always built; the
// reference and test oracle) and in backend::cuda (compiled only by nvcc).
#pragma once

#include <seemore/config.hpp>
#include <seemore/device.hpp>

#if SEEMORE_HAS_CUDA
#include <seemore/backend/cuda/ops.hpp>
#endif

namespace seemore::backend {

[[noreturn]] inline void no_kernel(const char* kernel, Device dev) {
  detail::fail(kernel, ": tensor on ", dev.str(), " but seemore was built without CUDA");
}

}  // namespace seemore::backend

// Under nvcc a CUDA tensor's kernel runs on its device (made current first);
// under g++ a CUDA tensor cannot exist, and the call says so.
#if SEEMORE_HAS_CUDA
#define SEEMORE_DISPATCH(dev, kernel, ...)                        \
  do {                                                            \
    if ((dev).is_cpu()) {                                         \
      ::seemore::backend::cpu::kernel(__VA_ARGS__);               \
    } else {                                                      \
      ::seemore::backend::cuda::set_device((dev).index());        \
      ::seemore::backend::cuda::kernel(__VA_ARGS__);              \
    }                                                             \
  } while (0)
#else
#define SEEMORE_DISPATCH(dev, kernel, ...)                        \
  do {                                                            \
    if ((dev).is_cpu())                                           \
      ::seemore::backend::cpu::kernel(__VA_ARGS__);               \
    else                                                          \
      ::seemore::backend::no_kernel(#kernel, (dev));              \
  } while (0)
#endif
