// seemore/ops/common.hpp — checks shared by the ops.
#pragma once

#include <seemore/autograd.hpp>
#include <seemore/backend/dispatch.hpp>
#include <seemore/tensor.hpp>

namespace seemore::detail {

// Dimension d (negative counts from the end) of an nd-dimensional tensor.
inline int norm_dim(int d, int nd, const char* op) {
  SEEMORE_CHECK(d >= -nd && d < nd, op, ": dimension ", d, " out of range for a ", nd, "-d tensor");
  return d < 0 ? d + nd : d;
}

template <class A, class B>
void check_same_device(const char* op, const A& a, const B& b) {
  SEEMORE_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(), " and ",
                b.device().str(), ")");
}

// Whether an op may read device data back to check it on the host: not
// while a CUDA graph is being captured (the caller checked the inputs).
inline bool host_checks(const Device& d) {
#if SEEMORE_HAS_CUDA
  if (d.is_cuda()) return !backend::cuda::capturing();
#endif
  (void)d;
  return true;
}

// [outer, n, inner] around dimension d.
inline void split_at(const Shape& s, int d, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < d; ++i) outer *= s[size_t(i)];
  n = s[size_t(d)];
  for (size_t i = size_t(d) + 1; i < s.size(); ++i) inner *= s[i];
}

}  // namespace seemore::detail
