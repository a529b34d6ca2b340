// seemore/nn/layernorm.hpp — LayerNorm over the last dimension (weight 1, bias 0 at init).
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

template <class T>
class LayerNorm : public Module<T> {
 public:
  explicit LayerNorm(int64_t C, double eps = 1e-5) : eps_(eps) {
    SEEMORE_CHECK(C > 0 && eps > 0, "LayerNorm: dim (", C, ") and eps (", eps, ") must be > 0");
    weight = this->register_parameter("weight", Tensor<T>::ones({C}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({C}));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return layer_norm(x, weight, bias, eps_); }
  Tensor<T> weight, bias;

 private:
  double eps_;
};

}  // namespace seemore::nn
