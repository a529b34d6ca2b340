// seemore/nn/activation.hpp — GELU and ReLU as modules, for Sequential (they
// take an index there, as in torch.nn.Sequential, and hold no parameters).
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

template <class T>
class GELU : public Module<T> {
 public:
  explicit GELU(GeluApprox approx = GeluApprox::None) : approx_(approx) {}
  Tensor<T> forward(const Tensor<T>& x) const { return gelu(x, approx_); }

 private:
  GeluApprox approx_;
};

template <class T>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) const { return relu(x); }
};

}  // namespace seemore::nn
