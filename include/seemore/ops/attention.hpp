// seemore/ops/attention.hpp — multi-head scaled-dot-product attention as one
// fused op on packed QKV, with its own backward.
//
// qkv [B, T, 3C] = [queries | keys | values], each C = H·D wide with head h in
// columns [h·D, (h+1)·D) — one Linear(C, 3C) output. Returns [B, T, C] with the
// heads concatenated. scores = scale·q·kᵀ, optional causal mask, softmax,
// dropout on the attention weights (training only; batch row b's mask from
// its own counter range, as ops/dropout.hpp), weights·v.
// Reference path: the same math per head from matmul/softmax/dropout ops.
#pragma once

#include <seemore/backend/cpu/attention.hpp>
#include <seemore/ops/common.hpp>
#include <seemore/ops/dropout.hpp>

namespace seemore {

struct AttentionOptions {
  int64_t n_head = 1;
  double scale = 1.0;   // seemore preset: C^-0.5; standard: D^-0.5
  bool causal = false;
  double dropout = 0.0; // on the attention weights, applied only when training
  bool training = false;
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
  auto out = Tensor<T>::empty({B, Tn, C}, qkv.device());
#if SEEMORE_HAS_CUDA
  if (qkv.device().is_cuda()) return detail::flash_attention(qkv, opt, B, Tn, H, D, drop, gen, out);
#endif
  // The CPU form keeps P and the mask's keep bits (cheap at this model's lengths).
  SEEMORE_CHECK(qkv.device().is_cpu(), "attention: tensor on ", qkv.device().str(), " but seemore was built without CUDA");
  auto probs = Tensor<T>::empty({B, H, Tn, Tn}, qkv.device());
  detail::CpuKeep keep;
  if (drop) {
    const auto rows = detail::dropout_rows(probs.shape());
    const uint64_t base = gen->reserve_rows(rows.rows, rows.row_blocks);
    keep = opt.causal ? detail::cpu_causal_keep_fill(rows, H, Tn, opt.dropout, gen->seed(), base)
                      : detail::cpu_keep_fill<T>(rows, nullptr, nullptr, opt.dropout, gen->seed(), base);
  }
  const T scale = T(opt.scale);
  const bool causal = opt.causal;
  backend::cpu::count_attention_flops(B, H, Tn, D, causal, 2);  // S = Q·Kᵀ, O = P̃·V
  backend::cpu::attention_forward(B, Tn, H, D, qkv.data(), scale, opt.causal, drop ? &keep.bits : nullptr,
                                  probs.data(), out.data());
  auto sq = qkv.detach();
  autograd::record(out, "attention", {qkv}, [=](const Tensor<T>& g) {
    auto gq = Tensor<T>::empty(sq.shape(), g.device());
    backend::cpu::count_attention_flops(B, H, Tn, D, causal, 4);  // dV, dP̃, dQ, dK
    backend::cpu::attention_backward(B, Tn, H, D, sq.data(), scale, causal, drop ? &keep.bits : nullptr,
                                     probs.data(), g.data(), gq.data());
    return std::vector<Tensor<T>>{gq};
  });
  return out;
}

}  // namespace seemore
