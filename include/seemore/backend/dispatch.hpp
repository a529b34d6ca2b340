// seemore/backend/dispatch.hpp — the seam between ops and backends.
//
// An op in seemore/ops/ validates shapes, allocates its outputs on the input's
// device and calls SEEMORE_DISPATCH(device, kernel, args...). The kernel has the
// same name and raw-pointer signature in backend::cpu (Eigen, always built; the
// reference and test oracle) and in backend::cuda (compiled only by nvcc).
#pragma once

#include <seemore/config.hpp>
#include <seemore/device.hpp>

namespace seemore::backend {

[[noreturn]] inline void no_kernel(const char* kernel, Device dev) {
#if SEEMORE_HAS_CUDA
  detail::fail(kernel, ": no kernel for ", dev.str(), " yet");
#else
  detail::fail(kernel, ": tensor on ", dev.str(), " but seemore was built without CUDA");
#endif
}

}  // namespace seemore::backend

// A backend kernel lands here once it exists for the device; until then the
// call names the kernel that is missing.
#define SEEMORE_DISPATCH(dev, kernel, ...)                        \
  do {                                                            \
    if ((dev).is_cpu())                                           \
      ::seemore::backend::cpu::kernel(__VA_ARGS__);               \
    else                                                          \
      ::seemore::backend::no_kernel(#kernel, (dev));              \
  } while (0)
