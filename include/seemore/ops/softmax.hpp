// seemore/ops/softmax.hpp — softmax and log-softmax along a dimension (default: last).
#pragma once

#include <seemore/backend/cpu/softmax.hpp>
#include <seemore/ops/common.hpp>

namespace seemore {

namespace detail {
template <class T>
Tensor<T> softmax_impl(const Tensor<T>& x, int dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  const int d = norm_dim(dim, x.ndim(), name);
  int64_t outer, n, inner;
  split_at(x.shape(), d, outer, n, inner);
  auto out = Tensor<T>::empty(x.shape(), x.device());
  SEEMORE_DISPATCH(x.device(), softmax_forward, outer, n, inner, x.data(), out.data(), log);
  auto y = out.detach();
  autograd::record(out, name, {x}, [=](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(y.shape(), g.device());
    SEEMORE_DISPATCH(g.device(), softmax_backward, outer, n, inner, y.data(), g.data(), gx.data(), log);
    return std::vector<Tensor<T>>{gx};
  });
  return out;
}
}  // namespace detail

template <class T>
Tensor<T> softmax(const Tensor<T>& x, int dim = -1) { return detail::softmax_impl(x, dim, false); }
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int dim = -1) { return detail::softmax_impl(x, dim, true); }

}  // namespace seemore
