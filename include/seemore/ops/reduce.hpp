// seemore/ops/reduce.hpp — sum and mean over dimensions, or over everything.
#pragma once

#include <seemore/ops/elementwise.hpp>
#include <seemore/ops/shape.hpp>

#include <set>

namespace seemore {

// Sum over the listed dimensions (negative counts from the end). keepdim keeps
// them as size 1.
template <class T>
Tensor<T> sum(const Tensor<T>& x, std::vector<int> dims, bool keepdim = false) {
  const int nd = x.ndim();
  std::set<int> ds;
  for (int d : dims) SEEMORE_CHECK(ds.insert(detail::norm_dim(d, nd, "sum")).second, "sum: dimension ", d, " listed twice");
  Shape kept = x.shape(), squeezed;
  for (int d = 0; d < nd; ++d) {
    if (ds.count(d)) kept[size_t(d)] = 1;
    else squeezed.push_back(x.shape()[size_t(d)]);
  }
  Tensor<T> out = sum_to(x, kept);
  if (out.shares_storage_with(x)) out = x;  // nothing reduced
  return keepdim ? out : reshape(out, squeezed);
}
template <class T>
Tensor<T> sum(const Tensor<T>& x) {
  std::vector<int> all(size_t(x.ndim()));
  std::iota(all.begin(), all.end(), 0);
  return sum(x, all, false);
}
template <class T>
Tensor<T> mean(const Tensor<T>& x, std::vector<int> dims, bool keepdim = false) {
  int64_t n = 1;
  for (int d : dims) n *= x.size(d);
  return affine(sum(x, dims, keepdim), n ? 1.0 / double(n) : std::nan(""), 0.0);
}
template <class T>
Tensor<T> mean(const Tensor<T>& x) {
  return affine(sum(x), x.numel() ? 1.0 / double(x.numel()) : std::nan(""), 0.0);
}

}  // namespace seemore
