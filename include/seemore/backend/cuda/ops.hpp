// seemore/backend/cuda/ops.hpp — the CUDA backend's entry points (nvcc only).
//
// One function per kernel name of backend::cpu, with the same raw-pointer
// signature, so SEEMORE_DISPATCH can call either. Each forwards to a launcher
// in kernels/seemore/kernels/*.cuh (or to cuBLAS). The one op whose CUDA form
// keeps different state is attention: the flash kernels save the row
// log-sum-exp instead of the T×T probabilities, so ops/attention.hpp calls
// flash_attention_forward/backward here directly.
#pragma once

#include <seemore/backend/cuda/gemm.hpp>
#include <seemore/backend/cuda/memory.hpp>

#if SEEMORE_HAS_CUDA
#include <seemore/kernels/adam.cuh>
#include <seemore/kernels/attention.cuh>
#include <seemore/kernels/cross_entropy.cuh>
#include <seemore/kernels/elementwise.cuh>
#include <seemore/kernels/layernorm.cuh>
#include <seemore/kernels/layout.cuh>
#include <seemore/kernels/softmax.cuh>

namespace seemore::backend::cuda {

namespace k = ::seemore::kernels;
using cpu::Broadcast;

// Makes `device` current for this host thread (a no-op when it already is).
inline void set_device(int device) {
  thread_local int current = -1;
  if (current != device) {
    SEEMORE_CUDA_CHECK(cudaSetDevice(device));
    current = device;
  }
}

// ---- elementwise
template <class T> void add(const Broadcast& bc, const T* a, const T* b, T* out) { k::binary<k::BinOp::Add>(bc, a, b, out); }
template <class T> void sub(const Broadcast& bc, const T* a, const T* b, T* out) { k::binary<k::BinOp::Sub>(bc, a, b, out); }
template <class T> void mul(const Broadcast& bc, const T* a, const T* b, T* out) { k::binary<k::BinOp::Mul>(bc, a, b, out); }
template <class T> void div(const Broadcast& bc, const T* a, const T* b, T* out) { k::binary<k::BinOp::Div>(bc, a, b, out); }
template <class T>
void broadcast_to(const std::vector<int64_t>& from, const T* in, const std::vector<int64_t>& to, T* out) {
  k::strided_copy(to, cpu::broadcast_strides(from, to), in, out, "broadcast_to");
}
template <class T>
void sum_to(const std::vector<int64_t>& from, const T* in, const std::vector<int64_t>& to, T* out) {
  k::launch_sum_to(from, in, to, out);
}
template <class T>
void scale_shift(int64_t n, const T* x, T scale, T shift, T* y) { k::unary(n, x, y, Unary::ScaleShift, scale, shift); }
template <class T>
void unary_map(int64_t n, const T* x, T* y, Unary op) { k::unary(n, x, y, op); }
template <class T>
void gelu_forward(int64_t n, const T* x, T* y, bool tanh_approx) { k::launch_gelu_forward(n, x, y, tanh_approx); }
template <class T>
void gelu_backward(int64_t n, const T* x, const T* dy, T* dx, bool tanh_approx) {
  k::launch_gelu_backward(n, x, dy, dx, tanh_approx);
}
template <class T> void relu_forward(int64_t n, const T* x, T* y) { k::launch_relu_forward(n, x, y); }
template <class T> void relu_backward(int64_t n, const T* x, const T* dy, T* dx) { k::launch_relu_backward(n, x, dy, dx); }
template <class T>
void dropout_forward(int64_t n, const T* x, T* y, T* mask, double p, uint64_t seed, uint64_t base,
                     const uint64_t* base_dev = nullptr) {
  k::launch_dropout(n, x, y, mask, p, seed, base, base_dev);
}
template <class T>
void dropout_mask(int64_t n, T* mask, double p, uint64_t seed, uint64_t base, const uint64_t* base_dev = nullptr) {
  k::launch_dropout<T>(n, nullptr, nullptr, mask, p, seed, base, base_dev);
}
template <class T> void fill(int64_t n, T* p, T v) { k::launch_fill(n, p, v); }
template <class T> void iota(int64_t n, T* p) { k::launch_iota(n, p); }
template <class T> void add_bias(int64_t N, int64_t C, T* y, const T* b) { k::launch_add_bias(N, C, y, b); }
template <class T> void bias_grad(int64_t N, int64_t C, const T* dy, T* db) { k::launch_colsum(N, C, dy, db, false); }

// ---- layout
template <class T>
void permute(const std::vector<int64_t>& in_shape, const std::vector<int>& perm, const T* in, T* out) {
  const auto in_st = cpu::contiguous_strides(in_shape);
  std::vector<int64_t> shape(in_shape.size()), st(in_shape.size());
  for (size_t i = 0; i < in_shape.size(); ++i) {
    shape[i] = in_shape[size_t(perm[i])];
    st[i] = in_st[size_t(perm[i])];
  }
  k::strided_copy(shape, st, in, out, "permute");
}
template <class T>
void slice_copy(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  k::launch_slice_copy(outer, n, inner, start, len, in, out);
}
template <class T>
void slice_scatter(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  k::launch_slice_scatter(outer, n, inner, start, len, in, out);
}
template <class T>
void slice_place(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* in, T* out) {
  k::launch_slice_place(outer, n, inner, start, len, in, out);
}
template <class T>
void index_select(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx, T* out) {
  k::launch_index_select(outer, n, inner, in, m, idx, out);
}
template <class T>
void index_add(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx, T* out) {
  k::launch_index_add(outer, n, inner, g, m, idx, out);
}
template <class T>
void gather(int64_t outer, int64_t n, int64_t inner, const T* in, int64_t m, const int32_t* idx, T* out) {
  k::launch_gather(outer, n, inner, in, m, idx, out);
}
template <class T>
void scatter_add(int64_t outer, int64_t n, int64_t inner, const T* g, int64_t m, const int32_t* idx, T* out) {
  k::launch_scatter_add(outer, n, inner, g, m, idx, out);
}
template <class T>
void embedding_forward(int64_t V, int64_t C, const T* table, int64_t N, const int32_t* ids, T* out) {
  k::launch_index_select<T>(1, V, C, table, N, ids, out);
}
template <class T>
void embedding_backward(int64_t V, int64_t C, const T* dout, int64_t N, const int32_t* ids, T* dtable) {
  k::launch_embedding_backward(V, C, dout, N, ids, dtable);
}
template <class T>
void im2col_patches(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t kk, const T* x, T* cols) {
  k::launch_im2col(B, Cin, H, W, kk, x, cols);
}
template <class T>
void col2im_patches(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t kk, const T* dcols, T* dx) {
  k::launch_col2im(B, Cin, H, W, kk, dcols, dx);
}

// ---- normalisation, softmax, loss
template <class T>
void layernorm_forward(int64_t N, int64_t C, const T* inp, const T* weight, const T* bias, T eps, T* out, T* mean,
                       T* rstd) {
  k::launch_layernorm_forward(N, C, inp, weight, bias, eps, out, mean, rstd);
}
template <class T>
void layernorm_backward(int64_t N, int64_t C, const T* dout, const T* inp, const T* weight, const T* mean,
                        const T* rstd, T* dinp, T* dweight, T* dbias) {
  k::launch_layernorm_backward(N, C, dout, inp, weight, mean, rstd, dinp, dweight, dbias);
}
template <class T>
void softmax_forward(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  k::launch_softmax_forward(outer, n, inner, x, y, log);
}
template <class T>
void softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log) {
  k::launch_softmax_backward(outer, n, inner, y, dy, dx, log);
}
template <class T>
void cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                           T* losses) {
  k::launch_cross_entropy_forward(N, V, logits, targets, ignore_index, losses);
}
template <class T>
void loss_mean(int64_t N, const T* losses, int64_t count, T* out) { k::launch_loss_mean(N, losses, count, out); }
template <class T>
void cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                            T scale, T* dlogits) {
  k::launch_cross_entropy_backward(N, V, logits, targets, ignore_index, scale, dlogits);
}
// The same with nothing read on the host: the divisor counted on the device
// (or divide_by when > 0) and the upstream gradient read there (ops/loss.hpp).
template <class T>
void loss_mean_counted(int64_t N, const T* losses, const int32_t* targets, int32_t ignore_index, int64_t divide_by,
                       T* out, double* count) {
  k::launch_loss_mean_counted(N, losses, targets, ignore_index, divide_by, out, count);
}
template <class T>
void cross_entropy_backward_dev(int64_t N, int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                                const T* g, const double* count, T* dlogits) {
  k::launch_cross_entropy_backward(N, V, logits, targets, ignore_index, T(0), dlogits, g, count);
}

// ---- attention (flash: saves lse [B, H, T], not the probabilities)
// base_dev: as dropout_forward's.
template <class T>
void flash_attention_forward(int64_t B, int64_t Tn, int64_t H, int64_t D, const T* qkv, double scale, bool causal,
                             double p, uint64_t seed, uint64_t base, T* lse, T* out, const uint64_t* base_dev = nullptr) {
  k::launch_attention_forward(k::packed_args(B, Tn, H, D, qkv, sizeof(T), scale, causal, p, seed, base, base_dev), out,
                              lse);
}
// delta: scratch of B·H·T elements. dqkv is overwritten.
template <class T>
void flash_attention_backward(int64_t B, int64_t Tn, int64_t H, int64_t D, const T* qkv, double scale, bool causal,
                              double p, uint64_t seed, uint64_t base, const T* out, const T* lse, const T* dout,
                              T* delta, T* dqkv, const uint64_t* base_dev = nullptr) {
  const int64_t C = H * D;
  k::launch_attention_backward(k::packed_args(B, Tn, H, D, qkv, sizeof(T), scale, causal, p, seed, base, base_dev),
                               out, dout, lse, delta, dqkv, dqkv + C, dqkv + 2 * C);
}
// Decoding: the new rows' keys and values go into the cache, then the new
// queries attend to the cache (same contract as cpu::kv_append / attention_cached).
template <class T>
void kv_append(int64_t B, int64_t Tn, int64_t pos, int64_t Tmax, int64_t C, const T* qkv, T* kcache, T* vcache) {
  cudaStream_t s = current_stream();
  const size_t row = size_t(C) * sizeof(T);
  for (int64_t b = 0; b < B; ++b) {
    const T* src = qkv + b * Tn * 3 * C;
    SEEMORE_CUDA_CHECK(cudaMemcpy2DAsync(kcache + (b * Tmax + pos) * C, row, src + C, 3 * row, row, size_t(Tn),
                                         cudaMemcpyDeviceToDevice, s));
    SEEMORE_CUDA_CHECK(cudaMemcpy2DAsync(vcache + (b * Tmax + pos) * C, row, src + 2 * C, 3 * row, row, size_t(Tn),
                                         cudaMemcpyDeviceToDevice, s));
  }
}
template <class T>
void attention_cached(int64_t B, int64_t Tn, int64_t pos, int64_t Tmax, int64_t H, int64_t D, const T* q, int64_t ldq,
                      const T* kcache, const T* vcache, T scale, T* out) {
  const int64_t C = H * D;
  k::AttnArgs a{B, H, D, Tn, pos + Tn, pos, q, kcache, vcache, ldq, C, C, Tn * ldq, Tmax * C, Tmax * C, C, Tn * C,
                double(scale), true, 0, 1.0, 0, 0, 0, nullptr};
  k::launch_attention_forward<T>(a, out, nullptr);
}

// ---- GEMM: gemm and batched_gemm come from gemm.hpp.

// ---- optimizers
template <class T>
void adam_step(const std::vector<k::AdamTensor<T>>& tensors, const k::AdamHyper<T>& hp) { k::launch_adam(tensors, hp); }
template <class T>
void sgd_step(int64_t n, T* p, const T* g, T lr) { k::launch_sgd(n, p, g, lr); }

}  // namespace seemore::backend::cuda
#endif
