// seemore/ops/conv.hpp — the patchify convolution: Conv2d with kernel = stride
// = k and no padding, through im2col + one GEMM.
//
// x [B, Cin, H, W], weight [Cout, Cin, k, k], bias [Cout] (optional) ->
// [B, P, Cout] with P = (H/k)·(W/k) patches in row-major order. That is
// torch's conv2d(x, w, b, stride=k).flatten(2).transpose(1, 2): the token
// layout a ViT wants, produced directly by the GEMM with no transpose.
#pragma once

#include <seemore/backend/cpu/conv.hpp>
#include <seemore/ops/matmul.hpp>

namespace seemore {

template <class T>
Tensor<T> patch_conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  SEEMORE_CHECK(x.ndim() == 4, "patch_conv2d: input must be [B, C, H, W], got ", to_string(x.shape()));
  SEEMORE_CHECK(weight.ndim() == 4 && weight.size(2) == weight.size(3) && weight.size(1) == x.size(1),
                "patch_conv2d: weight ", to_string(weight.shape()), " must be [Cout, ", x.size(1),
                ", k, k] for input ", to_string(x.shape()));
  const int64_t B = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3), Cout = weight.size(0), k = weight.size(2);
  SEEMORE_CHECK(k > 0 && H >= k && W >= k, "patch_conv2d: image ", H, "x", W, " smaller than the kernel ", k);
  const int64_t P = (H / k) * (W / k), K = Cin * k * k;
  auto cols = Tensor<T>::empty({B, P, K}, x.device());
  SEEMORE_DISPATCH(x.device(), im2col_patches, B, Cin, H, W, k, x.data(), cols.data());
  // The GEMM and bias (and their backward) are linear's; the im2col step has its own node.
  Tensor<T> patches = cols;
  if (x.requires_grad() && grad_enabled()) {
    Shape xs = x.shape();
    autograd::record(patches, "im2col_patches", {x}, [=](const Tensor<T>& g) {
      auto gx = Tensor<T>::empty(xs, g.device());
      SEEMORE_DISPATCH(g.device(), col2im_patches, B, Cin, H, W, k, g.data(), gx.data());
      return std::vector<Tensor<T>>{gx};
    });
  }
  return linear(patches, reshape(weight, {Cout, K}), bias);
}

}  // namespace seemore
