// seemore/ops/layernorm.hpp — LayerNorm over the last dimension as one fused op
// with its own backward (the statistics are computed once and saved).
// Reference path: (x − mean)/sqrt(var + eps)·w + b from elementwise ops; the
// tests compare the two.
#pragma once

#include <seemore/backend/cpu/layernorm.hpp>
#include <seemore/ops/common.hpp>

namespace seemore {

template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, double eps = 1e-5) {
  SEEMORE_CHECK(x.ndim() >= 1, "layer_norm: input must have at least one dimension");
  const int64_t C = x.size(-1), N = x.numel() / std::max<int64_t>(C, 1);
  SEEMORE_CHECK(weight.shape() == Shape{C} && bias.shape() == Shape{C}, "layer_norm: weight ",
                to_string(weight.shape()), " and bias ", to_string(bias.shape()), " must be [", C, "] for input ",
                to_string(x.shape()));
  detail::check_same_device("layer_norm", x, weight);
  auto out = Tensor<T>::empty(x.shape(), x.device());
  auto mean = Tensor<T>::empty({N}, x.device()), rstd = Tensor<T>::empty({N}, x.device());
  SEEMORE_DISPATCH(x.device(), layernorm_forward, N, C, x.data(), weight.data(), bias.data(), T(eps), out.data(),
                   mean.data(), rstd.data());
  auto sx = x.detach(), sw = weight.detach();
  const bool nw = weight.requires_grad(), nb = bias.requires_grad();
  autograd::record(out, "layer_norm", {x, weight, bias}, [=](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(sx.shape(), g.device());
    Tensor<T> gw = nw ? Tensor<T>::zeros({C}, g.device()) : Tensor<T>();
    Tensor<T> gb = nb ? Tensor<T>::zeros({C}, g.device()) : Tensor<T>();
    SEEMORE_DISPATCH(g.device(), layernorm_backward, N, C, g.data(), sx.data(), sw.data(), mean.data(), rstd.data(),
                     gx.data(), nw ? gw.data() : nullptr, nb ? gb.data() : nullptr);
    return std::vector<Tensor<T>>{gx, gw, gb};
  });
  return out;
}

}  // namespace seemore
