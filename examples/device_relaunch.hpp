// examples/device_relaunch.hpp — `--device cuda` for the command-line tools.
//
// The tools are built by g++ (the fast CPU path: -march=native, Eigen, OpenMP).
// When the CUDA toolkit is found, the same sources are also built by nvcc as
// <tool>-cuda. A g++-built tool asked for a CUDA device hands over to that
// sibling with the same arguments, so `seemore-train --device cuda` works in
// any build that can run it, and says why when it cannot.
#pragma once

#include <seemore/config.hpp>
#include <seemore/device.hpp>
#if SEEMORE_HAS_CUDA
#include <seemore/backend/cuda/context.hpp>
#endif

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace seemore::tools {

inline void relaunch_for_device(const std::string& device, char** argv) {
#if !SEEMORE_HAS_CUDA
  if (device.rfind("cuda", 0) != 0) return;
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string self = n > 0 ? std::string(buf, size_t(n)) : std::string(argv[0]);
  const std::string sibling = self + "-cuda";
  if (::access(sibling.c_str(), X_OK) == 0) {
    ::execv(sibling.c_str(), argv);
    detail::fail("--device ", device, ": could not start ", sibling, ": ", std::strerror(errno));
  }
  detail::fail("--device ", device, ": this binary was built without CUDA and there is no ", sibling,
               " next to it (it is built when CMake finds the CUDA toolkit)");
#else
  (void)device;
  (void)argv;
#endif
}

// Parses --device and --tf32 and fails early, before a tool creates any
// output, when the device cannot be used.
inline Device open_device(const std::string& name, bool tf32 = false) {
  const Device dev = Device::parse(name);
  SEEMORE_CHECK(!tf32 || dev.is_cuda(), "--tf32 applies to --device cuda only");
#if SEEMORE_HAS_CUDA
  if (dev.is_cuda()) backend::cuda::require_device(dev.index());
  backend::cuda::set_allow_tf32(tf32);
#endif
  return dev;
}

}  // namespace seemore::tools
