// seemore/config.hpp — build-mode switches and the error type every component throws.
//
// SEEMORE_HAS_CUDA is 1 only when the translation unit is compiled by nvcc and
// SEEMORE_NO_CUDA is not defined. A g++ translation unit therefore never sees a
// CUDA header. Because some inline bodies (Device::cuda, the op dispatch) differ
// between the two modes, one executable must be compiled in one mode only.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

// SEEMORE_CUDA_EMULATED_DEVICE (tests only: tests/cuda/emulation.hpp) turns the
// CUDA path on in a g++ translation unit, against a CPU emulation of the CUDA
// runtime, cuBLAS and the execution model.
#if (defined(__CUDACC__) || defined(SEEMORE_CUDA_EMULATED_DEVICE)) && !defined(SEEMORE_NO_CUDA)
#define SEEMORE_HAS_CUDA 1
#else
#define SEEMORE_HAS_CUDA 0
#endif

#if SEEMORE_HAS_CUDA
#define SEEMORE_HOST_DEVICE __host__ __device__
#else
#define SEEMORE_HOST_DEVICE
#endif

namespace seemore {

// Every error seemore raises. The message starts with "[seemore] " and names
// what was wrong (the op, the shapes, the file, the field).
struct Error : std::runtime_error {
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
[[noreturn]] inline void fail(Args&&... args) {
  std::ostringstream os;
  os << "[seemore] ";
  (os << ... << std::forward<Args>(args));
  throw Error(os.str());
}
}  // namespace detail

}  // namespace seemore

// SEEMORE_CHECK(cond, parts...): throw seemore::Error built from the parts when cond is false.
#define SEEMORE_CHECK(cond, ...)                          \
  do {                                                    \
    if (!(cond)) ::seemore::detail::fail(__VA_ARGS__);    \
  } while (0)
