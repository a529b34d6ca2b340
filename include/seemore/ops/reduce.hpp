// seemore/ops/reduce.hpp — sum and mean over dimensions, or over everything;
// argmax along a dimension.
#pragma once

#include <seemore/ops/elementwise.hpp>
#include <seemore/ops/shape.hpp>

#include <cmath>
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

// Index of the largest value along `dim` (the first one on ties, as
// torch.argmax; NaN counts as the largest, as in torch). Not differentiable:
// int32 indices, the dimension removed unless keepdim. Computed on the host.
template <class T>
Tensor<int32_t> argmax(const Tensor<T>& x, int dim = -1, bool keepdim = false) {
  const int d = detail::norm_dim(dim, x.ndim(), "argmax");
  SEEMORE_CHECK(x.size(d) > 0, "argmax: dimension ", dim, " of ", to_string(x.shape()), " is empty");
  int64_t outer, n, inner;
  detail::split_at(x.shape(), d, outer, n, inner);
  const auto v = x.to_vector();  // contiguous, on the host
  std::vector<int32_t> idx(size_t(outer * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* row = v.data() + o * n * inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < n && !std::isnan(row[best * inner]); ++k)
        if (row[k * inner] > row[best * inner] || std::isnan(row[k * inner])) best = k;
      idx[size_t(o * inner + i)] = int32_t(best);
    }
  Shape s = x.shape();
  if (keepdim) s[size_t(d)] = 1;
  else s.erase(s.begin() + d);
  return Tensor<int32_t>::from_vector(s, idx, x.device());
}

}  // namespace seemore
