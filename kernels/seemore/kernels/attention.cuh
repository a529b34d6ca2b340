// seemore/kernels/attention.cuh — fused scaled-dot-product attention, forward
// and backward, flash-style: the T×T scores live only in registers and shared
// memory, never in global memory.
//
// Layout (same as backend/cpu/attention.hpp): queries, keys and values are rows
// with a row stride (ld) and a batch stride, head h at columns [h·D, (h+1)·D);
// the packed training layout is qkv [B, T, 3C] (ld 3C), the decoding layout
// reads keys and values from a cache [B, Tmax, C]. Query i sees key j when
// j ≤ i + pos under the causal mask (pos = 0 in training, the cache length in
// decoding). Dropout on the attention weights keeps element (b, h, i, j) of
// batch row b, index e = (h·Tq + i)·Tk + j within the row, when lane e%4 of
// Philox(seed, base + b·⌈H·Tq·Tk/4⌉ + e/4) passes the threshold — the CPU's
// rule for a batched mask (ops/dropout.hpp), so both devices drop the same
// weights for the same generator state.
//
// Forward writes out [B, Tq, C] (heads concatenated) and, for the backward, the
// row log-sum-exp lse [B, H, Tq] (the 4·T bytes per row that replace the T×T
// probabilities). Backward OVERWRITES dq, dk, dv (all of dqkv in training).
//
// Shape of the work: one warp per query row (forward, dQ) or key row (dK, dV);
// a block of kRows warps shares each tile of kTile keys (or queries) staged in
// shared memory, padded by one element per row so that lane j reading row j
// hits its own bank. Lane j scores key j of the tile; lanes then own output
// columns d = lane + 32·k and take each weight from its lane by shuffle. The
// online softmax (running max m, running sum l, rescale by exp(m_old − m_new))
// makes one pass over the keys. The backward is two kernels, one per side of
// the product, each recomputing P from lse — twice the score FLOPs of a fused
// backward, but no atomics: the gradients are deterministic.
#pragma once

#include <seemore/backend/cpu/elementwise.hpp>
#include <seemore/kernels/common.cuh>
#include <seemore/random.hpp>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr int kAttnRows = 8;    // warps per block = rows handled per block
constexpr int kAttnTile = 32;   // keys (queries) per shared-memory tile = warp size
constexpr int kAttnMaxD = 128;  // head size limit: 4 output columns per lane
constexpr int kAttnPerLane = kAttnMaxD / kWarp;

struct AttnArgs {
  int64_t B, H, D, Tq, Tk, pos;
  const void* q;
  const void* k;
  const void* v;
  int64_t ldq, ldk, ldv, bq, bk, bv;  // row and batch strides (elements)
  int64_t ldo, bo;                    // of out / dq
  double scale;
  bool causal;
  uint64_t threshold;  // dropout: keep when the Philox lane >= threshold; 0: no dropout
  double keep_scale;   // 1/(1−p)
  uint64_t seed, base;
  uint64_t row_blocks;  // Philox blocks per batch row: ⌈H·Tq·Tk/4⌉
  const uint64_t* base_dev;  // added to base when given (a captured graph's step counter)
};

__device__ inline bool attn_keep(const AttnArgs& a, int64_t bh, int64_t i, int64_t j) {
  const uint64_t per = uint64_t(a.H * a.Tq * a.Tk);
  uint64_t e = uint64_t((bh * a.Tq + i) * a.Tk + j), block;
  if (per % 4 == 0) {  // the rows' ranges touch: one run of counters
    block = a.base + e / 4;
  } else {
    const uint64_t b = uint64_t(bh / a.H);
    e -= b * per;
    block = a.base + b * a.row_blocks + e / 4;
  }
  if (a.base_dev) block += *a.base_dev;
  const Philox::Block r = Philox::block(a.seed, block);
  return uint64_t(r[e % 4]) >= a.threshold;
}
__device__ inline bool attn_visible(const AttnArgs& a, int64_t i, int64_t j) {
  return j < a.Tk && i < a.Tq && (!a.causal || j <= i + a.pos);
}

// Rows [r0, r0 + kAttnTile) of a and b (rows ≥ n read as zeros) into the
// padded tiles A and B, by the whole block.
template <class T>
__device__ inline void load_tiles(T* A, T* B, const T* a, const T* b, int64_t lda, int64_t ldb, int64_t r0,
                                  int64_t n, int64_t D) {
  for (int64_t e = threadIdx.x; e < kAttnTile * D; e += blockDim.x) {
    const int64_t r = e / D, d = e % D, row = r0 + r;
    A[r * (D + 1) + d] = row < n ? a[row * lda + d] : T(0);
    B[r * (D + 1) + d] = row < n ? b[row * ldb + d] : T(0);
  }
}
// acc[c] += Σ_jj w(lane jj)·tile[jj, lane + 32c]: each lane's weight, by shuffle, times a tile row.
template <class T>
__device__ inline void accumulate_tile(T (&acc)[kAttnPerLane], T w, const T* tile, int64_t D, int lane) {
  for (int jj = 0; jj < kAttnTile; ++jj) {
    const T wj = __shfl_sync(0xffffffffu, w, jj);
    SEEMORE_UNROLL
    for (int c = 0; c < kAttnPerLane; ++c) {
      const int64_t d = lane + c * kWarp;
      if (d < D) acc[c] += wj * tile[jj * (D + 1) + d];
    }
  }
}
// row[lane + 32c] = scale·acc[c]
template <class T>
__device__ inline void store_row(T* row, const T (&acc)[kAttnPerLane], T scale, int64_t D, int lane) {
  SEEMORE_UNROLL
  for (int c = 0; c < kAttnPerLane; ++c) {
    const int64_t d = lane + c * kWarp;
    if (d < D) row[d] = acc[c] * scale;
  }
}

// Block x of a launch is one (batch element, head): its indices and the
// head's queries, keys and values (columns h·D.. of each).
template <class T>
struct HeadView {
  int64_t bh, b, h;
  const T *q, *k, *v;
};
template <class T>
__device__ inline HeadView<T> head_view(const AttnArgs& a, int64_t bh) {
  const int64_t b = bh / a.H, h = bh % a.H;
  return {bh, b, h, static_cast<const T*>(a.q) + b * a.bq + h * a.D, static_cast<const T*>(a.k) + b * a.bk + h * a.D,
          static_cast<const T*>(a.v) + b * a.bv + h * a.D};
}

// ------------------------------------------------------------------ kernels

// Shared memory: K tile, V tile [kTile][D+1], then this block's query rows [kRows][D].
template <class T>
__global__ void attention_forward_kernel(AttnArgs a, T* out, T* lse) {
  SEEMORE_DYNAMIC_SMEM(T, smem);
  const int64_t D = a.D, P = D + 1;
  T* Ks = smem;
  T* Vs = Ks + kAttnTile * P;
  T* Qs = Vs + kAttnTile * P;
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  const auto [bh, b, h, q, k, v] = head_view<T>(a, blockIdx.x);
  const int64_t row0 = int64_t(blockIdx.y) * kAttnRows, i = row0 + w;
  const bool active = i < a.Tq;
  if (active)
    for (int64_t d = lane; d < D; d += kWarp) Qs[w * D + d] = q[i * a.ldq + d];

  T m = neg_inf<T>(), l = 0, acc[kAttnPerLane] = {};
  const T scale = T(a.scale);
  // Keys any row of this block can see.
  const int64_t last_row = min(a.Tq, row0 + kAttnRows) - 1;
  const int64_t kend = a.causal ? min(a.Tk, last_row + a.pos + 1) : a.Tk;
  for (int64_t k0 = 0; k0 < kend; k0 += kAttnTile) {
    __syncthreads();  // the previous tile is consumed (and Qs is written, first time)
    load_tiles(Ks, Vs, k, v, a.ldk, a.ldv, k0, a.Tk, D);
    __syncthreads();
    if (!active) continue;
    const int64_t j = k0 + lane;
    T s = neg_inf<T>();
    if (attn_visible(a, i, j)) {
      T dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += Qs[w * D + d] * Ks[lane * P + d];
      s = dot * scale;
    }
    const T m_new = max(m, warp_max(s));
    if (m_new == neg_inf<T>()) continue;  // nothing visible yet
    T p = s == neg_inf<T>() ? T(0) : dexp(s - m_new);
    const T alpha = m == neg_inf<T>() ? T(0) : dexp(m - m_new);
    l = l * alpha + warp_sum(p);
    m = m_new;
    if (a.threshold && p != T(0)) p = attn_keep(a, bh, i, j) ? p * T(a.keep_scale) : T(0);
    SEEMORE_UNROLL
    for (int c = 0; c < kAttnPerLane; ++c) acc[c] *= alpha;
    accumulate_tile(acc, p, Vs, D, lane);
  }
  if (!active) return;
  store_row(out + b * a.bo + i * a.ldo + h * D, acc, T(1) / l, D, lane);
  if (lse && lane == 0) lse[bh * a.Tq + i] = m + dlog(l);
}

// delta[bh, i] = Σ_d dO[i, d]·O[i, d]  (= Σ_j P̃·dP̃ of row i, with or without dropout)
template <class T>
__global__ void attention_delta_kernel(AttnArgs a, const T* out, const T* dout, T* delta) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kAttnRows + threadIdx.x / kWarp;
  if (row >= a.B * a.H * a.Tq) return;
  const int64_t i = row % a.Tq, bh = row / a.Tq, b = bh / a.H, h = bh % a.H;
  const int64_t off = b * a.bo + i * a.ldo + h * a.D;
  T acc = 0;
  for (int64_t d = lane; d < a.D; d += kWarp) acc += out[off + d] * dout[off + d];
  acc = warp_sum(acc);
  if (lane == 0) delta[row] = acc;
}

// dQ: one warp per query row, keys in tiles (the forward's loop).
// Shared: K tile, V tile [kTile][D+1], Q rows and dO rows [kRows][D].
template <class T>
__global__ void attention_dq_kernel(AttnArgs a, const T* dout, const T* lse, const T* delta, T* dq) {
  SEEMORE_DYNAMIC_SMEM(T, smem);
  const int64_t D = a.D, P = D + 1;
  T* Ks = smem;
  T* Vs = Ks + kAttnTile * P;
  T* Qs = Vs + kAttnTile * P;
  T* Gs = Qs + kAttnRows * D;
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  const auto [bh, b, h, q, k, v] = head_view<T>(a, blockIdx.x);
  const int64_t row0 = int64_t(blockIdx.y) * kAttnRows, i = row0 + w;
  const bool active = i < a.Tq;
  const T* g = dout + b * a.bo + h * D;
  T row_lse = 0, row_delta = 0;
  if (active) {
    for (int64_t d = lane; d < D; d += kWarp) {
      Qs[w * D + d] = q[i * a.ldq + d];
      Gs[w * D + d] = g[i * a.ldo + d];
    }
    row_lse = lse[bh * a.Tq + i];
    row_delta = delta[bh * a.Tq + i];
  }
  const T scale = T(a.scale);
  T acc[kAttnPerLane] = {};
  const int64_t last_row = min(a.Tq, row0 + kAttnRows) - 1;
  const int64_t kend = a.causal ? min(a.Tk, last_row + a.pos + 1) : a.Tk;
  for (int64_t k0 = 0; k0 < kend; k0 += kAttnTile) {
    __syncthreads();
    load_tiles(Ks, Vs, k, v, a.ldk, a.ldv, k0, a.Tk, D);
    __syncthreads();
    if (!active) continue;
    const int64_t j = k0 + lane;
    T ds = 0;
    if (attn_visible(a, i, j)) {
      T s = 0, dp = 0;
      for (int64_t d = 0; d < D; ++d) {
        s += Qs[w * D + d] * Ks[lane * P + d];
        dp += Gs[w * D + d] * Vs[lane * P + d];
      }
      const T p = dexp(s * scale - row_lse);
      if (a.threshold) dp = attn_keep(a, bh, i, j) ? dp * T(a.keep_scale) : T(0);
      ds = p * (dp - row_delta);
    }
    accumulate_tile(acc, ds, Ks, D, lane);
  }
  if (!active) return;
  store_row(dq + b * a.bq + i * a.ldq + h * D, acc, scale, D, lane);
}

// dK, dV: one warp per key row, queries in tiles.
// Shared: Q tile, dO tile [kTile][D+1], lse and delta [kTile], K and V rows [kRows][D].
template <class T>
__global__ void attention_dkv_kernel(AttnArgs a, const T* dout, const T* lse, const T* delta, T* dk, T* dv) {
  SEEMORE_DYNAMIC_SMEM(T, smem);
  const int64_t D = a.D, P = D + 1;
  T* Qs = smem;
  T* Gs = Qs + kAttnTile * P;
  T* Ls = Gs + kAttnTile * P;
  T* Ds = Ls + kAttnTile;
  T* Kr = Ds + kAttnTile;
  T* Vr = Kr + kAttnRows * D;
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  const auto [bh, b, h, q, k, v] = head_view<T>(a, blockIdx.x);
  const int64_t col0 = int64_t(blockIdx.y) * kAttnRows, j = col0 + w;
  const bool active = j < a.Tk;
  const T* g = dout + b * a.bo + h * D;
  if (active)
    for (int64_t d = lane; d < D; d += kWarp) {
      Kr[w * D + d] = k[j * a.ldk + d];
      Vr[w * D + d] = v[j * a.ldv + d];
    }
  const T scale = T(a.scale);
  T gk[kAttnPerLane] = {}, gv[kAttnPerLane] = {};
  // The first query that sees any key of this block: causal hides key j from queries i < j − pos.
  const int64_t first = a.causal && col0 > a.pos ? col0 - a.pos : 0;
  for (int64_t q0 = first / kAttnTile * kAttnTile; q0 < a.Tq; q0 += kAttnTile) {
    __syncthreads();
    load_tiles(Qs, Gs, q, g, a.ldq, a.ldo, q0, a.Tq, D);
    for (int64_t r = threadIdx.x; r < kAttnTile; r += blockDim.x) {
      const int64_t i = q0 + r;
      Ls[r] = i < a.Tq ? lse[bh * a.Tq + i] : T(0);
      Ds[r] = i < a.Tq ? delta[bh * a.Tq + i] : T(0);
    }
    __syncthreads();
    if (!active) continue;
    const int64_t i = q0 + lane;
    T pd = 0, ds = 0;  // dropped weight P̃ and score gradient for (i, j)
    if (attn_visible(a, i, j)) {
      T s = 0, dp = 0;
      for (int64_t d = 0; d < D; ++d) {
        s += Qs[lane * P + d] * Kr[w * D + d];
        dp += Gs[lane * P + d] * Vr[w * D + d];
      }
      const T p = dexp(s * scale - Ls[lane]);
      T z = 1;
      if (a.threshold) z = attn_keep(a, bh, i, j) ? T(a.keep_scale) : T(0);
      pd = p * z;
      ds = p * (dp * z - Ds[lane]);
    }
    accumulate_tile(gv, pd, Gs, D, lane);
    accumulate_tile(gk, ds, Qs, D, lane);
  }
  if (!active) return;
  store_row(dk + b * a.bk + j * a.ldk + h * D, gk, scale, D, lane);
  store_row(dv + b * a.bv + j * a.ldv + h * D, gv, T(1), D, lane);
}

// ------------------------------------------------------------------ launchers

template <class K>
inline void attn_smem_opt_in(K kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    SEEMORE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

inline void attn_check(const AttnArgs& a) {
  SEEMORE_CHECK(a.D >= 1 && a.D <= kAttnMaxD, "attention (CUDA): head size ", a.D, " outside [1, ", kAttnMaxD, "]");
  SEEMORE_CHECK(a.B * a.H <= 0x7fffffff && ceil_div(std::max(a.Tq, a.Tk), kAttnRows) <= 65535,
                "attention (CUDA): ", a.B, "·", a.H, " heads of ", a.Tq, " positions is more than the kernel's grid");
}

// The packed training layout: qkv [B, T, 3C].
inline AttnArgs packed_args(int64_t B, int64_t Tn, int64_t H, int64_t D, const void* qkv, size_t elem, double scale,
                            bool causal, double p, uint64_t seed, uint64_t base, const uint64_t* base_dev = nullptr) {
  const int64_t C = H * D;
  const char* base_ptr = static_cast<const char*>(qkv);
  AttnArgs a{B, H, D, Tn, Tn, 0, base_ptr, base_ptr + size_t(C) * elem, base_ptr + size_t(2 * C) * elem,
             3 * C, 3 * C, 3 * C, Tn * 3 * C, Tn * 3 * C, Tn * 3 * C, C, Tn * C, scale, causal,
             p > 0 ? backend::cpu::keep_threshold(p) : 0, p > 0 ? 1.0 / (1.0 - p) : 1.0, seed, base,
             uint64_t(H * Tn * Tn + 3) / 4, base_dev};
  // A threshold of 0 keeps everything, which is what p == 0 means anyway.
  return a;
}

template <class T>
void launch_attention_forward(const AttnArgs& a, T* out, T* lse) {
  if (a.B * a.H * a.Tq == 0) return;
  attn_check(a);
  const size_t smem = size_t(2 * kAttnTile * (a.D + 1) + kAttnRows * a.D) * sizeof(T);
  attn_smem_opt_in(attention_forward_kernel<T>, smem);
  dim3 grid(unsigned(a.B * a.H), unsigned(ceil_div(a.Tq, kAttnRows)));
  launch(attention_forward_kernel<T>, grid, kAttnRows * kWarp, smem, backend::cuda::current_stream(), a, out, lse);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

// dq/dk/dv use the strides of q/k/v; `delta` is scratch of B·H·Tq elements.
template <class T>
void launch_attention_backward(const AttnArgs& a, const T* out, const T* dout, const T* lse, T* delta, T* dq, T* dk,
                               T* dv) {
  if (a.B * a.H * a.Tq == 0) return;
  attn_check(a);
  cudaStream_t s = backend::cuda::current_stream();
  launch(attention_delta_kernel<T>, unsigned(ceil_div(a.B * a.H * a.Tq, kAttnRows)), kAttnRows * kWarp, 0, s, a, out, dout,
                                                                                                        delta);
  SEEMORE_CUDA_LAUNCH_CHECK();
  const size_t smem_q = size_t(2 * kAttnTile * (a.D + 1) + 2 * kAttnRows * a.D) * sizeof(T);
  attn_smem_opt_in(attention_dq_kernel<T>, smem_q);
  launch(attention_dq_kernel<T>, dim3(unsigned(a.B * a.H), unsigned(ceil_div(a.Tq, kAttnRows))), kAttnRows * kWarp, smem_q,
                           s, a, dout, lse, delta, dq);
  SEEMORE_CUDA_LAUNCH_CHECK();
  const size_t smem_kv = size_t(2 * kAttnTile * (a.D + 1) + 2 * kAttnTile + 2 * kAttnRows * a.D) * sizeof(T);
  attn_smem_opt_in(attention_dkv_kernel<T>, smem_kv);
  launch(attention_dkv_kernel<T>, dim3(unsigned(a.B * a.H), unsigned(ceil_div(a.Tk, kAttnRows))), kAttnRows * kWarp,
                            smem_kv, s, a, dout, lse, delta, dk, dv);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

}  // namespace seemore::kernels
#endif
