// seemore/backend/cpu/attention.hpp — multi-head scaled-dot-product attention
// on a packed QKV tensor, forward and backward.
//
// qkv [B, T, 3C] holds, per position, the queries of all heads, then the keys,
// then the values; head h uses columns [h·D, (h+1)·D) of each, C = H·D. This is
// exactly what one Linear(C, 3C) produces, so no permute is needed before or
// after: out [B, T, C] has the heads concatenated, ready for the projection.
//
// Per (b, h): S = scale·Q·Kᵀ (causal: S[i, j>i] = −∞), P = softmax(S),
// P̃ = P ⊙ M (dropout mask, 0 or 1/(1−p)), O = P̃·V. The forward saves P
// ([B, H, T, T]) for the backward; M comes from keep bits (dropout.hpp), head
// (b, h) being elements [h·T², (h+1)·T²) of batch row b, expanded a head at a
// time. The CPU keeps T×T scores: at this model's lengths they are small; the
// CUDA kernel never materialises them.
#pragma once

#include <seemore/backend/cpu/dropout.hpp>
#include <seemore/backend/cpu/gemm.hpp>
#include <seemore/backend/cpu/softmax.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace seemore::backend::cpu {

namespace detail_attention {
// A head's T×T scratch (dropped probabilities, dP, the mask), kept per thread
// and slot: a std::vector per head was an allocation and a zeroing per head
// and layer.
template <class T>
T* scratch(int slot, int64_t n) {
  static thread_local std::vector<T> s[3];
  auto& v = s[slot];
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}
// Head (b, h)'s place in the keep bits: its run and first element there.
inline std::pair<int64_t, int64_t> head_bits(const KeepBits& keep, int64_t b, int64_t h, int64_t H, int64_t Tn) {
  const int64_t e = h * Tn * Tn;
  return keep.runs == 1 ? std::pair<int64_t, int64_t>{0, b * H * Tn * Tn + e} : std::pair<int64_t, int64_t>{b, e};
}
}  // namespace detail_attention

// row[0, n) ← softmax(row[0, n)); row[n, len) ← 0 (the causally masked keys).
template <class T>
inline void softmax_prefix(T* row, int64_t n, int64_t len) {
  softmax_contiguous(n, row, row);
  std::fill(row + n, row + len, T(0));
}

template <class T>
void attention_forward(int64_t B, int64_t Tn, int64_t H, int64_t D, const T* qkv, T scale, bool causal,
                       const KeepBits* keep, T* probs, T* out) {
  const int64_t C = H * D, C3 = 3 * C;
  SEEMORE_PARALLEL_FOR_IF(B * H >= 2)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const T* q = qkv + b * Tn * C3 + h * D;
    T* P = probs + bh * Tn * Tn;
    gemm<T>(false, true, Tn, Tn, D, scale, q, C3, q + C, C3, T(0), P, Tn);
    softmax_block(Tn, Tn, P, P, [&](int64_t i) { return causal ? i + 1 : Tn; }, false);
    const T* A = P;
    if (keep) {
      T* dropped = detail_attention::scratch<T>(0, Tn * Tn);
      const auto [run, e] = detail_attention::head_bits(*keep, b, h, H, Tn);
      keep_scale(*keep, run, e, Tn * Tn, P, dropped);
      A = dropped;
    }
    gemm<T>(false, false, Tn, D, Tn, T(1), A, Tn, q + 2 * C, C3, T(0), out + b * Tn * C + h * D, C);
  }
}

// dqkv is overwritten.
template <class T>
void attention_backward(int64_t B, int64_t Tn, int64_t H, int64_t D, const T* qkv, T scale, const KeepBits* keep,
                        const T* probs, const T* dout, T* dqkv) {
  const int64_t C = H * D, C3 = 3 * C;
  SEEMORE_PARALLEL_FOR_IF(B * H >= 2)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const T* q = qkv + b * Tn * C3 + h * D;
    const T* k = q + C;
    const T* v = q + 2 * C;
    const T* P = probs + bh * Tn * Tn;
    T* M = nullptr;
    if (keep) {
      M = detail_attention::scratch<T>(2, Tn * Tn);
      const auto [run, e] = detail_attention::head_bits(*keep, b, h, H, Tn);
      keep_scale(*keep, run, e, Tn * Tn, static_cast<const T*>(nullptr), M);
    }
    const T* dO = dout + b * Tn * C + h * D;
    T* dq = dqkv + b * Tn * C3 + h * D;
    T* dk = dq + C;
    T* dv = dq + 2 * C;
    T* dP = detail_attention::scratch<T>(0, Tn * Tn);  // written whole by its GEMM
    const T* A = P;
    if (M) {
      T* Pd = detail_attention::scratch<T>(1, Tn * Tn);
      for (int64_t i = 0; i < Tn * Tn; ++i) Pd[i] = P[i] * M[i];
      A = Pd;
    }
    gemm<T>(true, false, Tn, D, Tn, T(1), A, Tn, dO, C, T(0), dv, C3);              // dV = P̃ᵀ·dO
    gemm<T>(false, true, Tn, Tn, D, T(1), dO, C, v, C3, T(0), dP, Tn);              // dP̃ = dO·Vᵀ
    for (int64_t i = 0; i < Tn; ++i) {                                               // dS = P ⊙ (dP − Σ dP·P)
      T* d = dP + i * Tn;
      const T* p = P + i * Tn;
      if (M)
        for (int64_t j = 0; j < Tn; ++j) d[j] *= M[i * Tn + j];
      const T acc = row_dot(Tn, d, p);
      SEEMORE_PRAGMA(omp simd)
      for (int64_t j = 0; j < Tn; ++j) d[j] = p[j] * (d[j] - acc);
    }
    gemm<T>(false, false, Tn, D, Tn, scale, dP, Tn, k, C3, T(0), dq, C3);            // dQ = scale·dS·K
    gemm<T>(true, false, Tn, D, Tn, scale, dP, Tn, q, C3, T(0), dk, C3);             // dK = scale·dSᵀ·Q
  }
}

}  // namespace seemore::backend::cpu

namespace seemore::backend::cpu {

// Appends the keys and values of Tn new positions (columns [C, 2C) and
// [2C, 3C) of qkv [B, Tn, 3C]) to caches [B, Tmax, C] at position pos.
template <class T>
void kv_append(int64_t B, int64_t Tn, int64_t pos, int64_t Tmax, int64_t C, const T* qkv, T* kcache, T* vcache) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tn; ++t) {
      const T* row = qkv + (b * Tn + t) * 3 * C;
      std::copy(row + C, row + 2 * C, kcache + (b * Tmax + pos + t) * C);
      std::copy(row + 2 * C, row + 3 * C, vcache + (b * Tmax + pos + t) * C);
    }
}

// Incremental (KV-cached) causal attention for inference. q [B, Tn, C] holds
// the queries of Tn new positions starting at absolute position `pos`; the
// caches k, v [B, Tmax, C] already hold positions [0, pos + Tn). New query i
// sees keys [0, pos + i]. out [B, Tn, C]. No dropout: inference only.
template <class T>
void attention_cached(int64_t B, int64_t Tn, int64_t pos, int64_t Tmax, int64_t H, int64_t D, const T* q,
                      int64_t ldq, const T* kcache, const T* vcache, T scale, T* out) {
  const int64_t C = H * D, L = pos + Tn;
  SEEMORE_PARALLEL_FOR_IF(B * H >= 2 && L * Tn * D >= 4096)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    std::vector<T> S(size_t(Tn * L));
    gemm<T>(false, true, Tn, L, D, scale, q + b * Tn * ldq + h * D, ldq, kcache + b * Tmax * C + h * D, C, T(0),
            S.data(), L);
    for (int64_t i = 0; i < Tn; ++i) softmax_prefix(S.data() + i * L, pos + i + 1, L);
    gemm<T>(false, false, Tn, D, L, T(1), S.data(), L, vcache + b * Tmax * C + h * D, C, T(0),
            out + b * Tn * C + h * D, C);
  }
}

}  // namespace seemore::backend::cpu
