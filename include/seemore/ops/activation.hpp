// seemore/ops/activation.hpp — GELU (exact erf form, or the tanh approximation) and ReLU.
#pragma once

#include <seemore/ops/common.hpp>

namespace seemore {

enum class GeluApprox { None, Tanh };

template <class T>
Tensor<T> gelu(const Tensor<T>& x, GeluApprox approx = GeluApprox::None) {
  const bool t = approx == GeluApprox::Tanh;
  auto out = Tensor<T>::empty(x.shape(), x.device());
  if (!t && x.device().is_cpu() && autograd::any_requires_grad({&x})) {
    // Kept for the backward: GELU'(x) instead of x, computed here from the
    // erf the forward evaluates anyway, so the backward is one product
    // (dy·d, the same bits) instead of erf and exp again. d takes the place
    // of the saved x: an intermediate x is freed with its last handle, since
    // the graph keeps only an edge to it (autograd::record).
    auto d = Tensor<T>::empty(x.shape(), x.device());
    backend::cpu::gelu_forward_grad(x.numel(), x.data(), out.data(), d.data());
    autograd::record(out, "gelu", {x}, [d](const Tensor<T>& g) {
      auto gx = Tensor<T>::empty(d.shape(), g.device());
      backend::cpu::gelu_backward_saved(d.numel(), d.data(), g.data(), gx.data());
      return std::vector<Tensor<T>>{gx};
    });
    return out;
  }
  SEEMORE_DISPATCH(x.device(), gelu_forward, x.numel(), x.data(), out.data(), t);
  auto sx = x.detach();
  autograd::record(out, "gelu", {x}, [sx, t](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(sx.shape(), g.device());
    SEEMORE_DISPATCH(g.device(), gelu_backward, sx.numel(), sx.data(), g.data(), gx.data(), t);
    return std::vector<Tensor<T>>{gx};
  });
  return out;
}

template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  auto out = Tensor<T>::empty(x.shape(), x.device());
  SEEMORE_DISPATCH(x.device(), relu_forward, x.numel(), x.data(), out.data());
  auto sx = x.detach();
  autograd::record(out, "relu", {x}, [sx](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(sx.shape(), g.device());
    SEEMORE_DISPATCH(g.device(), relu_backward, sx.numel(), sx.data(), g.data(), gx.data());
    return std::vector<Tensor<T>>{gx};
  });
  return out;
}

}  // namespace seemore
