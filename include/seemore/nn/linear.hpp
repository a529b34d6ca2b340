// seemore/nn/linear.hpp — torch.nn.Linear: y = x·Wᵀ + b with PyTorch's default init.
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

// weight [out, in], bias [out] (optional).
template <class T>
class Linear : public Module<T> {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& g) {
    weight = this->register_parameter("weight", kaiming_uniform<T>({out, in}, in, g));
    if (bias) this->bias = this->register_parameter("bias", kaiming_uniform<T>({out}, in, g));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return linear(x, weight, bias); }
  Tensor<T> weight, bias;
};

}  // namespace seemore::nn
