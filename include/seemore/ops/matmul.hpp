// seemore/ops/matmul.hpp — matrix products: matmul (plain and batched, with
// transposes) and linear (x·Wᵀ + b), each one GEMM per direction.
#pragma once

#include <seemore/backend/cpu/gemm.hpp>
#include <seemore/ops/reduce.hpp>
#include <seemore/ops/shape.hpp>

namespace seemore {

// op(a)·op(b), op = transpose of the last two dims when asked.
// a: [..., M, K] (or [..., K, M] with trans_a), or 2-d and shared by every batch of b;
// b: [K, N] shared by every batch,
// or [..., K, N] with the same leading dims as a (or [..., N, K] with trans_b).
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool trans_a = false, bool trans_b = false) {
  detail::check_same_device("matmul", a, b);
  SEEMORE_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "matmul: operands must have at least 2 dims, got ",
                to_string(a.shape()), " and ", to_string(b.shape()));
  const int64_t M = trans_a ? a.size(-1) : a.size(-2), K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2), N = trans_b ? b.size(-2) : b.size(-1);
  SEEMORE_CHECK(K == Kb, "matmul: inner dimensions differ: ", to_string(a.shape()), (trans_a ? "ᵀ" : ""), " · ",
                to_string(b.shape()), (trans_b ? "ᵀ" : ""));
  const bool shared_b = b.ndim() == 2, shared_a = a.ndim() == 2 && !shared_b;
  Shape batch(shared_a ? b.shape().begin() : a.shape().begin(), shared_a ? b.shape().end() - 2 : a.shape().end() - 2);
  if (!shared_a && !shared_b)
    SEEMORE_CHECK(Shape(b.shape().begin(), b.shape().end() - 2) == batch, "matmul: batch dimensions differ: ",
                  to_string(a.shape()), " and ", to_string(b.shape()));
  const int64_t nb = numel_of(batch);
  Shape os = batch;
  os.push_back(M);
  os.push_back(N);
  auto out = Tensor<T>::empty(os, a.device());
  const int64_t lda = a.size(-1), ldb = b.size(-1);
  if (shared_b && !trans_a) {  // fold the batch into the rows: one big GEMM
    SEEMORE_DISPATCH(a.device(), gemm, false, trans_b, nb * M, N, K, T(1), a.data(), lda, b.data(), ldb, T(0),
                     out.data(), N);
  } else {
    SEEMORE_DISPATCH(a.device(), batched_gemm, trans_a, trans_b, nb, M, N, K, T(1), a.data(), lda, shared_a ? 0 : M * K, b.data(),
                     ldb, shared_b ? 0 : K * N, T(0), out.data(), N, M * N);
  }
  const bool na = a.requires_grad(), nbg = b.requires_grad();
  Tensor<T> sa = nbg ? a.detach() : Tensor<T>(), sb = na ? b.detach() : Tensor<T>();
  Shape sa_shape = a.shape(), sb_shape = b.shape();
  autograd::record(out, "matmul", {a, b}, [=](const Tensor<T>& g) {
    Tensor<T> ga, gb;
    if (na) {
      ga = trans_a ? matmul(sb, g, trans_b, true) : matmul(g, sb, false, !trans_b);
      if (shared_a) ga = sum_to(ga, sa_shape);
    }
    if (nbg) {
      if (shared_b && !trans_a) {  // Σ over the batch of op(A)ᵀ·G, as one GEMM on folded rows
        auto a2 = reshape(sa, {-1, K}), g2 = reshape(g, {-1, N});
        gb = trans_b ? matmul(g2, a2, true, false) : matmul(a2, g2, true, false);
      } else {
        gb = trans_b ? matmul(g, sa, true, trans_a) : matmul(sa, g, !trans_a, false);
        if (shared_b) gb = sum_to(gb, sb_shape);
      }
    }
    return std::vector<Tensor<T>>{ga, gb};
  });
  return out;
}

// torch.nn.functional.linear: x [..., in] · weight[out, in]ᵀ + bias[out].
// bias may be undefined (no bias).
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  detail::check_same_device("linear", x, weight);
  SEEMORE_CHECK(weight.ndim() == 2 && x.ndim() >= 1 && x.size(-1) == weight.size(1), "linear: input ",
                to_string(x.shape()), " does not match weight ", to_string(weight.shape()), " ([out, in])");
  const int64_t in = weight.size(1), out_f = weight.size(0), N = x.numel() / std::max<int64_t>(in, 1);
  if (bias.defined())
    SEEMORE_CHECK(bias.ndim() == 1 && bias.size(0) == out_f, "linear: bias ", to_string(bias.shape()),
                  " does not match weight ", to_string(weight.shape()));
  Shape os = x.shape();
  os.back() = out_f;
  auto out = Tensor<T>::empty(os, x.device());
  SEEMORE_DISPATCH(x.device(), gemm, false, true, N, out_f, in, T(1), x.data(), in, weight.data(), in, T(0), out.data(),
                   out_f);
  if (bias.defined()) SEEMORE_DISPATCH(x.device(), add_bias, N, out_f, out.data(), bias.data());
  const bool nx = x.requires_grad(), nw = weight.requires_grad(), nbias = bias.defined() && bias.requires_grad();
  Tensor<T> sx = nw ? x.detach() : Tensor<T>(), sw = nx ? weight.detach() : Tensor<T>();
  Shape xs = x.shape();
  autograd::record(out, "linear", {x, weight, bias}, [=](const Tensor<T>& g) {
    Tensor<T> gx, gw, gb;
    if (nx) {
      gx = Tensor<T>::empty(xs, g.device());
      SEEMORE_DISPATCH(g.device(), gemm, false, false, N, in, out_f, T(1), g.data(), out_f, sw.data(), in, T(0),
                       gx.data(), in);
    }
    if (nw) {
      gw = Tensor<T>::empty({out_f, in}, g.device());
      SEEMORE_DISPATCH(g.device(), gemm, true, false, out_f, in, N, T(1), g.data(), out_f, sx.data(), in, T(0),
                       gw.data(), in);
    }
    if (nbias) {
      gb = Tensor<T>::empty({out_f}, g.device());
      SEEMORE_DISPATCH(g.device(), bias_grad, N, out_f, g.data(), gb.data());
    }
    return std::vector<Tensor<T>>{gx, gw, gb};
  });
  return out;
}

}  // namespace seemore
