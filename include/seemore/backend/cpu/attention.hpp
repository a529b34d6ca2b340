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
// ([B, H, Tq, T]) for the backward; M comes from keep bits (dropout.hpp), head
// (b, h) being elements [h·Tq·T, (h+1)·Tq·T) of batch row b, expanded a head
// at a time. The CPU keeps the scores: at this model's lengths they are small;
// the CUDA kernel never materialises them.
//
// Tq < T (not causal): only the first Tq positions are queries, every
// position a key and a value; out is [B, Tq, C], and the query columns of
// the positions after Tq are neither read nor, in dqkv, anything but zero.
// The ViT's last block needs only its CLS query (nn/attention.hpp).
#pragma once

#include <seemore/backend/cpu/dropout.hpp>
#include <seemore/backend/cpu/gemm.hpp>
#include <seemore/backend/cpu/softmax.hpp>
#include <seemore/config.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace seemore::backend::cpu {

namespace detail_attention {
// A head's Tq×T scratch (dropped probabilities, dP), kept per thread and
// slot: a std::vector per head was an allocation and a zeroing per head and
// layer.
template <class T>
T* scratch(int slot, int64_t n) {
  static thread_local std::vector<T> s[2];
  auto& v = s[slot];
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}
// Causal heads go in blocks of this many rows (queries), each product over
// only the keys the block can see: the masked part of every product is zeros
// (P = 0 above the diagonal), so leaving it out drops exact zero terms from
// the start or the end of each sum and gives the same bits, for 3/4 of the
// work at T = 64. Blocks of 16 (5/8 of the work) were no faster: the AVX2
// form packs its operands per call (docs/benchmarks.md).
constexpr int64_t kCausalRows = 32;

// Head (b, h)'s place in the keep bits (`per` = Tq·T weights a head): its
// run and first element there.
inline std::pair<int64_t, int64_t> head_bits(const KeepBits& keep, int64_t b, int64_t h, int64_t H, int64_t per) {
  const int64_t e = h * per;
  return keep.runs == 1 ? std::pair<int64_t, int64_t>{0, b * H * per + e} : std::pair<int64_t, int64_t>{b, e};
}
// Fetches head bh's first `rows` rows of a [B, Tn, ld] tensor (the D floats
// at column h·D of each) into L2, for writing when kWrite. A head's rows lie
// ld floats apart, a page or more for the encoder's, where the hardware
// prefetchers do not follow. Fetched while the head before is computed (the
// gradients' rows for writing), the decoder's backward went from 690 to 540
// µs a layer in the step and the CLS-only one from 850 to 510
// (docs/benchmarks.md).
template <bool kWrite, class T>
inline void fetch_head(const T* base, int64_t bh, int64_t H, int64_t Tn, int64_t ld, int64_t D, int64_t rows) {
  const int64_t b = bh / H, h = bh % H;
  const char* p = reinterpret_cast<const char*>(base + b * Tn * ld + h * D);
  const int64_t bytes = D * int64_t(sizeof(T)), step = ld * int64_t(sizeof(T));
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + t * step + o, kWrite ? 1 : 0, 2);
}
// Tq as given (≤ 0: all T queries), checked against T and the mask.
inline int64_t queries(int64_t Tq, int64_t Tn, bool causal) {
  if (Tq <= 0) return Tn;
  SEEMORE_CHECK(Tq <= Tn && (!causal || Tq == Tn), "attention: ", Tq, " queries of ", Tn,
                " positions (fewer queries only without the causal mask)");
  return Tq;
}
}  // namespace detail_attention

template <class T>
void attention_forward(int64_t B, int64_t Tn, int64_t H, int64_t D, const T* qkv, T scale, bool causal,
                       const KeepBits* keep, T* probs, T* out, int64_t Tq = 0) {
  const int64_t C = H * D, C3 = 3 * C, Q = detail_attention::queries(Tq, Tn, causal);
  SEEMORE_PARALLEL_FOR_IF(B * H >= 2)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const T* q = qkv + b * Tn * C3 + h * D;
    T* P = probs + bh * Q * Tn;
    const int64_t R = causal ? detail_attention::kCausalRows : Q;
    for (int64_t i0 = 0; i0 < Q; i0 += R) {  // S; causal: row i needs keys [0, i], softmax reads no further
      const int64_t i1 = std::min(Q, i0 + R);
      gemm<T>(false, true, i1 - i0, causal ? i1 : Tn, D, scale, q + i0 * C3, C3, q + C, C3, T(0), P + i0 * Tn, Tn);
    }
    // Causal rows skip their masked tails; whole rows (the encoder's 37 or
    // 65) are faster as one exp over the block than row by row, whose
    // ragged last vectors cost a fifth more exps.
    if (causal) softmax_prefix_rows(Q, Tn, P, P, [](int64_t i) { return i + 1; });
    else softmax_block(Q, Tn, P, P, [Tn](int64_t) { return Tn; }, false);
    const T* A = P;
    if (keep) {
      T* dropped = detail_attention::scratch<T>(0, Q * Tn);
      const auto [run, e] = detail_attention::head_bits(*keep, b, h, H, Q * Tn);
      keep_scale(*keep, run, e, Q * Tn, P, dropped);
      A = dropped;
    }
    for (int64_t i0 = 0; i0 < Q; i0 += R) {  // O = P̃·V; causal: P̃ is zero past the block's last query
      const int64_t i1 = std::min(Q, i0 + R);
      gemm<T>(false, false, i1 - i0, D, causal ? i1 : Tn, T(1), A + i0 * Tn, Tn, q + 2 * C, C3, T(0),
              out + (b * Q + i0) * C + h * D, C);
    }
  }
}

// dqkv is overwritten; `causal` and Tq as in the forward that saved probs
// (dout is [B, Tq, C]).
template <class T>
void attention_backward(int64_t B, int64_t Tn, int64_t H, int64_t D, const T* qkv, T scale, bool causal,
                        const KeepBits* keep, const T* probs, const T* dout, T* dqkv, int64_t Tq = 0) {
  const int64_t C = H * D, C3 = 3 * C, Q = detail_attention::queries(Tq, Tn, causal);
  SEEMORE_PARALLEL_FOR_IF(B * H >= 2)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    if (bh + 1 < B * H) {  // the next head's inputs, and the rows its gradients go to
      for (int64_t part = 0; part < 3; ++part) {
        detail_attention::fetch_head<false>(qkv + part * C, bh + 1, H, Tn, C3, D, part == 0 ? Q : Tn);
        detail_attention::fetch_head<true>(static_cast<const T*>(dqkv) + part * C, bh + 1, H, Tn, C3, D, Tn);
      }
      detail_attention::fetch_head<false>(dout, bh + 1, H, Q, C, D, Q);
    }
    const T* q = qkv + b * Tn * C3 + h * D;
    const T* k = q + C;
    const T* v = q + 2 * C;
    const T* P = probs + bh * Q * Tn;
    const auto [run, e] = keep ? detail_attention::head_bits(*keep, b, h, H, Q * Tn) : std::pair<int64_t, int64_t>{};
    const T* dO = dout + b * Q * C + h * D;
    T* dq = dqkv + b * Tn * C3 + h * D;
    T* dk = dq + C;
    T* dv = dq + 2 * C;
    T* dP = detail_attention::scratch<T>(0, Q * Tn);  // written whole by its GEMMs and their fill
    const T* A = P;
    if (keep) {  // P̃ = P ⊙ M straight from the bits, as the forward made it
      T* Pd = detail_attention::scratch<T>(1, Q * Tn);
      keep_scale(*keep, run, e, Q * Tn, P, Pd);
      A = Pd;
    }
    // Causal: by blocks of R keys (dV, dK: only the queries from the block's
    // first key on see it) or of R queries (dP̃, dQ: only the keys up to the
    // block's last query); the rest of each product is zeros (see kCausalRows).
    // Not causal, the keys go in one block of all Tn, over the Q queries.
    const int64_t R = causal ? detail_attention::kCausalRows : Tn;
    for (int64_t j0 = 0; j0 < Tn; j0 += R) {  // dV = P̃ᵀ·dO
      const int64_t j1 = std::min(Tn, j0 + R), i0 = causal ? j0 : 0;
      gemm<T>(true, false, j1 - j0, D, Q - i0, T(1), A + i0 * Tn + j0, Tn, dO + i0 * C, C, T(0), dv + j0 * C3, C3);
    }
    for (int64_t i0 = 0; i0 < Q; i0 += R) {  // dP̃ = dO·Vᵀ; the keys it leaves out are zeroed
      const int64_t i1 = std::min(Q, i0 + R), keys = causal ? i1 : Tn;
      gemm<T>(false, true, i1 - i0, keys, D, T(1), dO + i0 * C, C, v, C3, T(0), dP + i0 * Tn, Tn);
      for (int64_t i = i0; i < i1; ++i) std::fill(dP + i * Tn + keys, dP + (i + 1) * Tn, T(0));
    }
    // dS = P ⊙ (dP̃ ⊙ M − Σ (dP̃ ⊙ M)·P); a causal row's keys past the query
    // are 0. dP̃ ⊙ M in place from the bits: the same products as a float
    // mask's, with no T×T mask written and read back. Whole rows keep the
    // plain loops: for the encoder's rows of 37 they were 5% faster a head
    // than the masked row form.
    if (keep) keep_scale(*keep, run, e, Q * Tn, dP, dP);
    if (causal) softmax_grad_prefix_rows(Q, Tn, P, static_cast<const T*>(nullptr), dP, [](int64_t i) { return i + 1; });
    else softmax_grad_rows_plain(Q, Tn, P, static_cast<const T*>(nullptr), dP, [Tn](int64_t) { return Tn; });
    for (int64_t i0 = 0; i0 < Q; i0 += R) {  // dQ = scale·dS·K
      const int64_t i1 = std::min(Q, i0 + R);
      gemm<T>(false, false, i1 - i0, D, causal ? i1 : Tn, scale, dP + i0 * Tn, Tn, k, C3, T(0), dq + i0 * C3, C3);
    }
    for (int64_t i = Q; i < Tn; ++i) std::fill(dq + i * C3, dq + i * C3 + D, T(0));  // positions that ask nothing
    for (int64_t j0 = 0; j0 < Tn; j0 += R) {  // dK = scale·dSᵀ·Q
      const int64_t j1 = std::min(Tn, j0 + R), i0 = causal ? j0 : 0;
      gemm<T>(true, false, j1 - j0, D, Q - i0, scale, dP + i0 * Tn + j0, Tn, q + i0 * C3, C3, T(0), dk + j0 * C3,
              C3);
    }
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
    softmax_prefix_rows(Tn, L, S.data(), S.data(), [pos](int64_t i) { return pos + i + 1; });
    gemm<T>(false, false, Tn, D, L, T(1), S.data(), L, vcache + b * Tmax * C + h * D, C, T(0),
            out + b * Tn * C + h * D, C);
  }
}

}  // namespace seemore::backend::cpu
