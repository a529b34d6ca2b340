// seemore/ops/attention.hpp — multi-head scaled-dot-product attention as one
// fused op on packed QKV, with its own backward.
//
// qkv [B, T, 3C] = [queries | keys | values], each C = H·D wide with head h in
// columns [h·D, (h+1)·D) — one Linear(C, 3C) output. Returns [B, T, C] with the
// heads concatenated. scores = scale·q·kᵀ, optional causal mask, softmax,
// dropout on the attention weights (training only; batch row b's mask from
// its own counter range, as ops/dropout.hpp), weights·v.
// Reference path: the same math per head from matmul/softmax/dropout ops.
//
// With opt.queries = n < T (not causal; CPU), only the first n positions ask:
// the result is [B, n, C], the query columns of later positions are not read,
// and qkv_projection computes only the queries that are. The ViT's last block
// (the CLS query alone) takes this path.
#pragma once

#include <seemore/backend/cpu/attention.hpp>
#include <seemore/ops/common.hpp>
#include <seemore/ops/dropout.hpp>
#include <seemore/ops/matmul.hpp>

#include <algorithm>

namespace seemore {

struct AttentionOptions {
  int64_t n_head = 1;
  double scale = 1.0;   // seemore preset: C^-0.5; standard: D^-0.5
  bool causal = false;
  double dropout = 0.0; // on the attention weights, applied only when training
  bool training = false;
  int64_t queries = 0;  // > 0: only the first `queries` positions are queries (not causal; CPU)
};

#if SEEMORE_HAS_CUDA
namespace detail {
// The CUDA form: the flash kernels keep the row log-sum-exp, not P and the
// mask; the backward recomputes both (the mask from the same Philox counters).
template <class T>
Tensor<T> flash_attention(const Tensor<T>& qkv, const AttentionOptions& opt, int64_t B, int64_t Tn, int64_t H,
                          int64_t D, bool drop, Generator* gen, Tensor<T>& out) {
  const Device dev = qkv.device();
  backend::cuda::set_device(dev.index());
  const double p = drop ? opt.dropout : 0.0;
  const uint64_t seed = drop ? gen->seed() : 0;
  // Each batch row's weights from its own counter range (ops/dropout.hpp).
  const uint64_t base = drop ? gen->reserve_rows(B, uint64_t(H * Tn * Tn + 3) / 4) : 0;
  const uint64_t* base_dev = drop ? gen->device_offset() : nullptr;
  auto lse = Tensor<T>::empty({B, H, Tn}, dev);
  backend::cuda::flash_attention_forward(B, Tn, H, D, qkv.data(), opt.scale, opt.causal, p, seed, base, lse.data(),
                                         out.data(), base_dev);
  auto sq = qkv.detach(), so = out.detach();
  const double scale = opt.scale;
  const bool causal = opt.causal;
  autograd::record(out, "attention", {qkv}, [=](const Tensor<T>& g) {
    backend::cuda::set_device(dev.index());
    auto gq = Tensor<T>::empty(sq.shape(), dev);
    auto delta = Tensor<T>::empty({B, H, Tn}, dev);
    backend::cuda::flash_attention_backward(B, Tn, H, D, sq.data(), scale, causal, p, seed, base, so.data(),
                                            lse.data(), g.data(), delta.data(), gq.data(), base_dev);
    return std::vector<Tensor<T>>{gq};
  });
  return out;
}
}  // namespace detail
#endif

template <class T>
Tensor<T> attention(const Tensor<T>& qkv, const AttentionOptions& opt, Generator* gen = nullptr) {
  SEEMORE_CHECK(qkv.ndim() == 3, "attention: qkv must be [B, T, 3C], got ", to_string(qkv.shape()));
  const int64_t B = qkv.size(0), Tn = qkv.size(1), C3 = qkv.size(2), H = opt.n_head;
  SEEMORE_CHECK(H > 0 && C3 % (3 * H) == 0, "attention: last dim ", C3, " of ", to_string(qkv.shape()),
                " is not 3·H·D for H = ", H);
  const int64_t C = C3 / 3, D = C / H;
  const bool drop = opt.training && opt.dropout > 0;
  SEEMORE_CHECK(opt.dropout >= 0 && opt.dropout < 1, "attention: dropout ", opt.dropout, " outside [0, 1)");
  SEEMORE_CHECK(!drop || gen, "attention: dropout in training needs a generator");
  SEEMORE_CHECK(opt.queries >= 0 && opt.queries <= Tn && (!opt.causal || opt.queries == 0 || opt.queries == Tn),
                "attention: queries ", opt.queries, " must be in [0, T = ", Tn,
                "] (0: all), and all with the causal mask");
  const int64_t Q = opt.queries > 0 ? opt.queries : Tn;
  auto out = Tensor<T>::empty({B, Q, C}, qkv.device());
#if SEEMORE_HAS_CUDA
  if (qkv.device().is_cuda()) {
    SEEMORE_CHECK(Q == Tn, "attention: fewer queries (", Q, ") than positions (", Tn,
                  ") is a CPU form; on CUDA slice the output of the whole attention");
    return detail::flash_attention(qkv, opt, B, Tn, H, D, drop, gen, out);
  }
#endif
  // The CPU form keeps P and the mask's keep bits (cheap at this model's lengths).
  SEEMORE_CHECK(qkv.device().is_cpu(), "attention: tensor on ", qkv.device().str(), " but seemore was built without CUDA");
  auto probs = Tensor<T>::empty({B, H, Q, Tn}, qkv.device());
  detail::CpuKeep keep;
  if (drop) {
    const auto rows = detail::dropout_rows(probs.shape());
    const uint64_t base = gen->reserve_rows(rows.rows, rows.row_blocks);
    keep = opt.causal ? detail::cpu_causal_keep_fill(rows, H, Tn, opt.dropout, gen->seed(), base)
                      : detail::cpu_keep_fill<T>(rows, nullptr, nullptr, opt.dropout, gen->seed(), base);
  }
  const T scale = T(opt.scale);
  const bool causal = opt.causal;
  backend::cpu::count_attention_flops(B, H, Tn, D, causal, 2, Q);  // S = Q·Kᵀ, O = P̃·V
  backend::cpu::attention_forward(B, Tn, H, D, qkv.data(), scale, opt.causal, drop ? &keep.bits : nullptr,
                                  probs.data(), out.data(), Q);
  auto sq = qkv.detach();
  autograd::record(out, "attention", {qkv}, [=](const Tensor<T>& g) {
    auto gq = Tensor<T>::empty(sq.shape(), g.device());
    backend::cpu::count_attention_flops(B, H, Tn, D, causal, 4, Q);  // dV, dP̃, dQ, dK
    backend::cpu::attention_backward(B, Tn, H, D, sq.data(), scale, causal, drop ? &keep.bits : nullptr,
                                     probs.data(), g.data(), gq.data(), Q);
    return std::vector<Tensor<T>>{gq};
  });
  return out;
}

// x [B, T, C] → the packed [B, T, 3C] that attention() reads, through the
// weight [3C, C] of Linear(C, 3C, bias = false): keys and values of every
// position, queries of the first `queries` only (the query columns of the
// rest are zero). What attention with opt.queries = `queries` needs, for
// queries/T of the query projection's work; `queries` = T is linear(x, w).
// CPU: the other devices take the whole projection.
template <class T>
Tensor<T> qkv_projection(const Tensor<T>& x, const Tensor<T>& weight, int64_t queries) {
  SEEMORE_CHECK(x.ndim() == 3 && weight.ndim() == 2 && weight.size(1) == x.size(2) &&
                    weight.size(0) == 3 * x.size(2),
                "qkv_projection: x ", to_string(x.shape()), " must be [B, T, C] and weight ",
                to_string(weight.shape()), " [3C, C]");
  const int64_t B = x.size(0), Tn = x.size(1), C = x.size(2), C3 = 3 * C, n = queries;
  SEEMORE_CHECK(n >= 1 && n <= Tn, "qkv_projection: queries ", n, " must be in [1, T = ", Tn, "]");
  if (n == Tn) return linear(x, weight);
  SEEMORE_CHECK(x.device().is_cpu() && weight.device().is_cpu(),
                "qkv_projection: fewer queries than positions is a CPU form, got tensors on ", x.device().str(),
                " and ", weight.device().str());
  auto out = Tensor<T>::empty({B, Tn, C3}, x.device());
  const T *xd = x.data(), *w = weight.data();
  T* o = out.data();
  // Keys and values: all B·T rows against weight rows [C, 3C). Queries:
  // position t of every batch row is one row of x every T, so each t is one
  // product of B rows (the CLS query: one product of 16 rows, not 16 of one).
  backend::cpu::gemm<T>(false, true, B * Tn, 2 * C, C, T(1), xd, C, w + C * C, C, T(0), o + C, C3);
  for (int64_t t = 0; t < n; ++t)
    backend::cpu::gemm<T>(false, true, B, C, C, T(1), xd + t * C, Tn * C, w, C, T(0), o + t * C3, Tn * C3);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = n; t < Tn; ++t) std::fill(o + (b * Tn + t) * C3, o + (b * Tn + t) * C3 + C, T(0));
  const bool nx = x.requires_grad(), nw = weight.requires_grad();
  Tensor<T> sx = nw ? x.detach() : Tensor<T>(), sw = nx ? weight.detach() : Tensor<T>();
  autograd::record(out, "qkv_projection", {x, weight}, [=](const Tensor<T>& g) {
    Tensor<T> gx, gw;
    const T* gd = g.data();
    if (nx) {  // dx = d[k|v]·W[C, 3C), then + dq·W[0, C) at the query positions
      gx = Tensor<T>::empty({B, Tn, C}, g.device());
      const T* wd = sw.data();
      backend::cpu::gemm<T>(false, false, B * Tn, C, 2 * C, T(1), gd + C, C3, wd + C * C, C, T(0), gx.data(), C);
      for (int64_t t = 0; t < n; ++t)
        backend::cpu::gemm<T>(false, false, B, C, C, T(1), gd + t * C3, Tn * C3, wd, C, T(1), gx.data() + t * C,
                              Tn * C);
    }
    if (nw) {  // dW[C, 3C) = d[k|v]ᵀ·x over all rows; dW[0, C) = Σ_t dq_tᵀ·x_t over the query positions
      gw = Tensor<T>::empty({C3, C}, g.device());
      const T* xs = sx.data();
      backend::cpu::gemm<T>(true, false, 2 * C, C, B * Tn, T(1), gd + C, C3, xs, C, T(0), gw.data() + C * C, C);
      for (int64_t t = 0; t < n; ++t)
        backend::cpu::gemm<T>(true, false, C, C, B, T(1), gd + t * C3, Tn * C3, xs + t * C, Tn * C,
                              t == 0 ? T(0) : T(1), gw.data(), C);
    }
    return std::vector<Tensor<T>>{gx, gw};
  });
  return out;
}

}  // namespace seemore
