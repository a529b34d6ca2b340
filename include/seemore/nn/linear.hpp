// seemore/nn/linear.hpp — torch.nn.Linear: y = x·Wᵀ + b with PyTorch's default init.
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

struct LinearOptions {
  int64_t in = 0, out = 0;  // features in and out: required
  bool bias = true;
};

// weight [out, in], bias [out] (optional).
template <class T>
class Linear : public Module<T> {
 public:
  Linear(const LinearOptions& o, Generator& g) : Linear(o.in, o.out, o.bias, g) {}
  Linear(int64_t in, int64_t out, bool bias, Generator& g) {
    SEEMORE_CHECK(in > 0 && out > 0, "Linear: in (", in, ") and out (", out, ") features must be > 0");
    weight = this->register_parameter("weight", kaiming_uniform<T>({out, in}, in, g));
    if (bias) this->bias = this->register_parameter("bias", kaiming_uniform<T>({out}, in, g));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return linear(x, weight, bias); }
  Tensor<T> weight, bias;
};

}  // namespace seemore::nn
