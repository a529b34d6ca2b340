// seemore/backend/cpu/gemm_kernels.hpp — float GEMM on packed panels with an
// AVX-512 and an AVX2 register kernel, chosen at run time (isa.hpp).
//
// Why our own: Eigen's products are vectorised for the TU's flags, so a user
// building without -march=native got SSE2 (a tenth of the machine), and even
// with them they reached ~63% of the FMA peak inside the seemore step.
//
// The classic layout (Goto; BLIS's five loops): op(B) is copied in blocks of
// KC rows into slivers NR columns wide, op(A) in blocks of MC×KC into slivers
// MR rows tall, both zero-padded, so the register kernel reads two contiguous
// streams whatever the transposes and strides. The A block (MC×KC floats,
// 96 KiB) stays in L2 while each B sliver (KC·NR: 32 KiB for AVX-512, 16 for
// AVX2) goes by against all its slivers.
//
// Each element of C is the same sequence of operations whatever M, N, the
// position of the element or the split over threads: per KC block of k, a
// sequential sum of products (one FMA each) from zero, then
// C ← alpha·acc + beta·C (an FMA), with beta = 1 after the first block. So a
// row of C does not depend on the rows around it (a batch split across ranks
// or micro-batches gives the same rows), and as both forms use the same KC,
// an AVX2 and an AVX-512 processor compute the same bits.
#pragma once

#include <seemore/backend/cpu/isa.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace seemore::backend::cpu::detail_packed {

// The panel sizes of one form. Measured at the model's shapes on a Zen 4
// (docs/benchmarks.md): KC 256 beat 128 by 4–5% (half as many passes over C)
// and matched 384 and 512; MC anywhere from 24 to 120 rows was within the
// noise, and 240 slightly behind; NC made no difference.
struct Geometry {
  int64_t mr, nr, kc, mc, nc;
};
constexpr Geometry kAvx512{12, 32, 256, 96, 4096};
constexpr Geometry kAvx2{6, 16, 256, 96, 4096};

// Per-thread packing buffers, 64-byte aligned, grown on demand and kept.
struct Buffer {
  std::unique_ptr<float, void (*)(void*)> p{nullptr, std::free};
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!p) throw std::bad_alloc();
      size = n;
    }
    return p.get();
  }
};
inline Buffer& a_buffer() {
  static thread_local Buffer b;
  return b;
}
inline Buffer& b_buffer() {
  static thread_local Buffer b;
  return b;
}

#if SEEMORE_X86_DISPATCH
// Eight rows of eight floats, transposed: dst[c·ldd + r] = src[r·ld + c]. Rows
// of a row-major operand become the k-major columns of a packed sliver eight
// at a time instead of one strided store per element (packing was a sixth of
// the step that way). The loops are unrolled by pragma: at -O2 g++ kept some
// of them rolled, with the intermediate vectors stored to the stack and read
// back (1024 lines packed from L2 at -O2: 10.9 GB/s that way, 13.6 unrolled).
SEEMORE_TARGET_AVX2 inline void transpose8(const float* src, int64_t ld, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld);
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
#pragma GCC unroll 8
  for (int c = 0; c < 8; ++c) _mm256_storeu_ps(dst + c * ldd, t[c]);
}

// Four rows of eight floats, transposed: dst[c·ldd + r] = src[r·ld + c], four
// floats per store. The tail of a sliver whose width is not a multiple of
// eight (12 rows for AVX-512's A, 6 for AVX2's) costs half a transpose8.
SEEMORE_TARGET_AVX2 inline void transpose4(const float* src, int64_t ld, float* dst, int64_t ldd) {
  const __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld);
  const __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    _mm_storeu_ps(dst + c * ldd, _mm256_castps256_ps128(u[c]));
    _mm_storeu_ps(dst + (c + 4) * ldd, _mm256_extractf128_ps(u[c], 1));
  }
}
#endif

// The packing runs only inside the kernels' forms, so it is compiled for
// AVX2 (which both have): transpose8 and the fixed-size copies inline into
// it, whatever the TU's flags.
#if SEEMORE_X86_DISPATCH
#define SEEMORE_TARGET_PACK SEEMORE_TARGET_AVX2
#else
#define SEEMORE_TARGET_PACK
#endif

// w floats from `in` to `out`. std::copy became a call to memmove (5% of
// the step, in packing a row-major B), so the moves are spelled out.
template <int64_t w>
SEEMORE_TARGET_PACK inline void copy_line(const float* in, float* out) {
#if SEEMORE_X86_DISPATCH
  constexpr int64_t by8 = w / 8 * 8, by4 = by8 + (w - by8) / 4 * 4;
  for (int64_t l = 0; l < by8; l += 8) _mm256_storeu_ps(out + l, _mm256_loadu_ps(in + l));
  if constexpr (by4 > by8) _mm_storeu_ps(out + by8, _mm_loadu_ps(in + by8));
  for (int64_t l = by4; l < w; ++l) out[l] = in[l];
#else
  std::copy(in, in + w, out);
#endif
}

// Both operands are packed the same way: `count` lines (rows of op(A), or
// columns of op(B)) × kc into slivers of w lines, zero past `count`:
//   dst[(s·kc + k)·w + l] = line s·w + l at k,
// where line l at k is src[l·ld + k] when `strided` (a row-major A, a
// transposed B: each line contiguous along k) and src[k·ld + l] otherwise (a
// transposed A, a row-major B: each k's w values contiguous).
template <int64_t w>
SEEMORE_TARGET_PACK void pack(bool strided, const float* src, int64_t ld, int64_t count, int64_t kc, float* dst) {
  if (!strided) {
    // Along each k's row of the source, across the slivers: the reads stream
    // (the block is in L3 or memory), the writes land in the buffer in L2.
    // Sliver by sliver, each k's w values are a line or two 4·ld bytes from
    // the last, more rows than the prefetchers follow.
    const int64_t full = count / w, rest = count - full * w;
    for (int64_t k = 0; k < kc; ++k) {
      const float* in = src + k * ld;
      float* out = dst + k * w;
      for (int64_t s = 0; s < full; ++s) copy_line<w>(in + s * w, out + s * kc * w);
      if (rest > 0) {
        for (int64_t l = 0; l < rest; ++l) out[full * kc * w + l] = in[full * w + l];
        for (int64_t l = rest; l < w; ++l) out[full * kc * w + l] = 0.0f;
      }
    }
    return;
  }
  for (int64_t s = 0; s * w < count; ++s, dst += kc * w) {
    const int64_t lines = std::min(w, count - s * w);
    const float* first = src + s * w * ld;
    int64_t k0 = 0;
#if SEEMORE_X86_DISPATCH
    if (lines == w && w >= 4) {
      // Eight k of eight lines at a time (four for the last group when fewer
      // than eight are left), each group along its whole length; the last
      // group moved back to end at w (overlapping the one before when w is
      // not a multiple of four). A line's kc values are a few cache lines,
      // too short a stream for the prefetchers to catch, so the next eight
      // lines (of this sliver or the next; the matrix's last line at most)
      // are prefetched while a group is moved.
      k0 = kc / 8 * 8;
      const int64_t last = count - 1 - s * w;  // the matrix's last line, from `first`
      for (int64_t g = 0; g < w;) {
        const int64_t width = w - g >= 8 ? 8 : 4, at = std::min(g, w - width), next = at + width;
        const float* in = first + at * ld;
        const int64_t ahead_lines = std::max<int64_t>(0, std::min<int64_t>(8, last + 1 - next));
        float* out = dst + at;
        for (int64_t k = 0; k < k0; k += 8) {
          if (k % 16 == 0)
            for (int64_t i = 0; i < ahead_lines; ++i)
              _mm_prefetch(reinterpret_cast<const char*>(first + (next + i) * ld + k), _MM_HINT_T0);
          if (width == 8) transpose8(in + k, ld, out + k * w, w);
          else transpose4(in + k, ld, out + k * w, w);
        }
        g = next;
      }
    }
#endif
    for (int64_t l = 0; l < lines; ++l)
      for (int64_t k = k0; k < kc; ++k) dst[k * w + l] = first[l * ld + k];
    for (int64_t l = lines; l < w; ++l)
      for (int64_t k = k0; k < kc; ++k) dst[k * w + l] = 0.0f;
  }
}

// The register kernels: C[0..m, 0..n) ← alpha·(Σ_k a_k ⊗ b_k) + beta·C, for
// m ≤ mr, n ≤ nr; beta == 0 never reads C (it may hold NaN). `a` and `b` are
// one packed sliver each.
#if SEEMORE_X86_DISPATCH
SEEMORE_TARGET_AVX512 inline void kernel_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                int64_t m, int64_t n, float alpha, float beta, bool stream) {
  constexpr int MR = 12;
  // C's tile is read and written after the k loop, and between two k blocks
  // the whole of C has gone by: without a prefetch, its 24 lines arrive from
  // L3 (or memory) only once the loop is done. A store (beta = 0) fetches
  // its line too, unless it streams.
  if (!stream)
    for (int64_t i = 0; i < m; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + n - 1), _MM_HINT_T0);
    }
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k, a += MR, b += 32) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  const __mmask16 k0 = tail16(n), k1 = tail16(n - 16);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* row = c + i * ldc;
    if (stream && n == 32) {
      _mm512_stream_ps(row, _mm512_mul_ps(acc0[i], va));
      _mm512_stream_ps(row + 16, _mm512_mul_ps(acc1[i], va));
    } else if (beta == 0.0f) {
      _mm512_mask_storeu_ps(row, k0, _mm512_mul_ps(acc0[i], va));
      _mm512_mask_storeu_ps(row + 16, k1, _mm512_mul_ps(acc1[i], va));
    } else {
      _mm512_mask_storeu_ps(row, k0,
                            _mm512_fmadd_ps(acc0[i], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(k0, row))));
      _mm512_mask_storeu_ps(row + 16, k1,
                            _mm512_fmadd_ps(acc1[i], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(k1, row + 16))));
    }
  }
}

SEEMORE_TARGET_AVX2 inline void kernel_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                            int64_t m, int64_t n, float alpha, float beta, bool stream) {
  constexpr int MR = 6;
  if (!stream)
    for (int64_t i = 0; i < m; ++i) {  // as in kernel_avx512
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + n - 1), _MM_HINT_T0);
    }
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k, a += MR, b += 16) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* row = c + i * ldc;
    if (stream && n == 16) {
      _mm256_stream_ps(row, _mm256_mul_ps(acc0[i], va));
      _mm256_stream_ps(row + 8, _mm256_mul_ps(acc1[i], va));
    } else if (beta == 0.0f) {
      store8(row, n, _mm256_mul_ps(acc0[i], va));
      store8(row + 8, n - 8, _mm256_mul_ps(acc1[i], va));
    } else {
      store8(row, n, _mm256_fmadd_ps(acc0[i], va, _mm256_mul_ps(vb, load8(row, n))));
      store8(row + 8, n - 8, _mm256_fmadd_ps(acc1[i], va, _mm256_mul_ps(vb, load8(row + 8, n - 8))));
    }
  }
}

// Whether the kernels write C with non-temporal stores. A product with a
// short K (the CLS rows' weight gradients: K is the batch) is bound by
// writing C, and an ordinary store reads each line before writing it: the
// 512×2048×16 gradient took 0.31 ms a step that way on AVX-512 and 0.60 on
// AVX2, 0.17 and 0.23 streamed (docs/benchmarks.md). Only for C written in
// one pass (K ≤ kStreamK ≤ KC, beta = 0), aligned for the stores, and of a
// MiB or more per call, which no longer stays in L2 for whatever reads it
// next. The values stored are the same; ragged tiles store as before.
constexpr int64_t kStreamK = 32, kStreamElems = int64_t(1) << 18;
// A streamed store ignores beta: it is right only when K fits one k block.
static_assert(kStreamK <= kAvx512.kc && kStreamK <= kAvx2.kc, "streamed C needs K within one KC block");
inline bool stream_c(int64_t K, int64_t M, int64_t N, float beta, const float* C, int64_t ldc) {
  return K <= kStreamK && beta == 0.0f && M * N >= kStreamElems && reinterpret_cast<uintptr_t>(C) % 64 == 0 &&
         ldc % 16 == 0;
}

// The five loops around one form's kernel, on the calling thread. The packing
// loops are compiled for the form too, so they vectorise like the kernel.
#define SEEMORE_PACKED_GEMM(NAME, TARGET, GEO, KERNEL)                                                           \
  TARGET inline void NAME(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,              \
                          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,        \
                          int64_t ldc) {                                                                         \
    constexpr Geometry g = GEO;                                                                                  \
    const bool stream = stream_c(K, M, N, beta, C, ldc);                                                         \
    float* bp = b_buffer().get(size_t(g.kc * ((std::min(N, g.nc) + g.nr - 1) / g.nr * g.nr)));                   \
    float* ap = a_buffer().get(size_t(g.kc * ((std::min(M, g.mc) + g.mr - 1) / g.mr * g.mr)));                   \
    for (int64_t jc = 0; jc < N; jc += g.nc) {                                                                   \
      const int64_t nc = std::min(g.nc, N - jc);                                                                 \
      for (int64_t pc = 0; pc < K; pc += g.kc) {                                                                 \
        const int64_t kc = std::min(g.kc, K - pc);                                                               \
        const float beta_block = pc == 0 ? beta : 1.0f;                                                          \
        pack<g.nr>(trans_b, trans_b ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, nc, kc, bp);                   \
        for (int64_t ic = 0; ic < M; ic += g.mc) {                                                               \
          const int64_t mc = std::min(g.mc, M - ic);                                                             \
          pack<g.mr>(!trans_a, trans_a ? A + pc * lda + ic : A + ic * lda + pc, lda, mc, kc, ap);                \
          for (int64_t jr = 0; jr < nc; jr += g.nr)                                                              \
            for (int64_t ir = 0; ir < mc; ir += g.mr)                                                            \
              KERNEL(kc, ap + ir * kc, bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,                         \
                     std::min(g.mr, mc - ir), std::min(g.nr, nc - jr), alpha, beta_block, stream);               \
        }                                                                                                        \
      }                                                                                                          \
    }                                                                                                            \
    if (stream) _mm_sfence();                                                                                    \
  }
SEEMORE_PACKED_GEMM(gemm_avx512, SEEMORE_TARGET_AVX512, kAvx512, kernel_avx512)
SEEMORE_PACKED_GEMM(gemm_avx2, SEEMORE_TARGET_AVX2, kAvx2, kernel_avx2)
#undef SEEMORE_PACKED_GEMM
#endif  // SEEMORE_X86_DISPATCH

// C = alpha·op(A)·op(B) + beta·C on the calling thread with `isa`'s kernel;
// false when there is none for it (scalar: the caller uses Eigen). K ≥ 1.
inline bool packed_gemm(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return gemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), true;
  if (isa == Isa::avx2) return gemm_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), true;
#endif
  (void)isa, (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B;
  (void)ldb, (void)beta, (void)C, (void)ldc;
  return false;
}

// Small products (attention's per-head ones: 64×64×16, 37×64×37; the CLS
// query's 1×37×64) on AVX-512 take a lighter path. There, the 12×32 tile's
// padding and blocking cost more than the FMAs: a 64×16 output fills half of
// each 32-wide sliver, 37 rows take four 12-row slivers, and every 16-deep k
// loop is followed by a whole tile's store. Here op(A) is packed in 8-row
// slivers and op(B) read where it is (a transposed B is packed in 16-wide
// slivers), and a tile of R rows × NV vectors of C is accumulated in
// registers, masked at the ragged end; fewer vectors take more rows, to keep
// enough independent sums in flight (a transposed A, whose rows are
// contiguous along each k, is read in place). 1.2–2.7× the packed path at those
// shapes (docs/benchmarks.md). A single vector of columns (D = 16) takes
// 16-row tiles. The AVX2 form's small path reads op(A) in place whichever its
// transpose (6×16 tiles, small_gemm_avx2): on the Intel Xeon its heads ran
// 10–30% faster than on the packed path, whose packing of A was a fifth of a
// head's backward; on a Zen 4 an earlier unpacked AVX2 tile, with A packed in
// 6-row slivers, had been slower than the packed path (docs/benchmarks.md).
//
// With K ≤ KC this is the packed kernels' arithmetic exactly: each element
// is a sequential FMA sum over k from zero, then alpha·acc (beta = 0) or
// alpha·acc + beta·C, so a product gives the same bits on either path and
// the packed path is its oracle (tests/backend/test_cpu_forms.cpp).
//
// A few rows against a large op(B) (the CLS rows' Linear layers,
// 16×2048·2048×512, either transpose) are the other case: packing all of
// op(B) costs as much as the product, each packed element meeting only 16
// rows, and the 12-row tile takes them as 12 + 4. A transposed B is packed a
// sliver at a time and read from L1 by a 16-row tile (6-row ones in the AVX2
// form), a row-major one streamed row by row (few_rows_avx512, k block by k
// block as the packed path goes): the packed path's bits, 1.4–2× its speed
// in the step (docs/benchmarks.md).
constexpr int64_t kSmallFmas = int64_t(1) << 18;  // M·N·K at most (64×64×64)
constexpr int64_t kFewRows = 16;
inline bool small_product(Isa isa, int64_t M, int64_t N, int64_t K, bool trans_b) {
  if (isa == Isa::avx2) return (K <= kAvx2.kc && M * N * K <= kSmallFmas) || M <= kFewRows;
  return isa == Isa::avx512 && ((K <= kAvx512.kc && M * N * K <= kSmallFmas) || M <= kFewRows);
}

#if SEEMORE_X86_DISPATCH
// The source of the next sliver a few-rows product packs from a transposed
// B (16 of its rows, kc long), fetched a line per k of the tile multiplying
// the current one: the packing's reads from memory then overlap the
// arithmetic instead of following it (the M = 16 NT products 16% faster in
// the step, docs/benchmarks.md). Empty: nothing fetched.
struct Ahead {
  const float* src = nullptr;
  int64_t ld = 0, rows = 0, len = 0;
  // After the sliver of columns [j, j + 16) at k block pc comes the next k
  // block of the same columns, or the first of the next columns.
  static Ahead next_sliver(const float* B, int64_t ldb, int64_t N, int64_t K, int64_t j, int64_t pc, int64_t kc_max) {
    const bool same = pc + kc_max < K;
    const int64_t nj = same ? j : j + 16, npc = same ? pc + kc_max : 0;
    if (nj >= N) return {};
    return {B + nj * ldb + npc, ldb, std::min<int64_t>(16, N - nj), std::min(kc_max, K - npc)};
  }
  // k-th line: row k mod 16, the (k / 16)-th sixteen floats of it.
  SEEMORE_TARGET_AVX2 void fetch(int64_t k) const {
    const int64_t r = k % 16, q = k / 16 * 16;
    if (src && r < rows && q < len) _mm_prefetch(reinterpret_cast<const char*>(src + r * ld + q), _MM_HINT_T0);
  }
};

// C[0, rows) × [0, cols) (rows ≤ R, cols ≤ 16·NV) from op(A)(r, k) = a[k·aks + r]
// and op(B)(k, 16v + l) = b[k·bks + v·bvs + l].
template <int R, int NV, bool kAhead = false>
SEEMORE_TARGET_AVX512 inline void small_tile_avx512(int64_t rows, int64_t cols, int64_t K, const float* a,
                                                    int64_t aks, const float* b, int64_t bks, int64_t bvs,
                                                    float alpha, float beta, float* c, int64_t ldc,
                                                    const Ahead& ahead = {}) {
  __mmask16 mk[NV];
  for (int v = 0; v < NV; ++v) mk[v] = tail16(cols - 16 * v);
  __m512 acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k, a += aks, b += bks) {
    if constexpr (kAhead) ahead.fetch(k);
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + v * bvs);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 ak = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ak, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* row = c + r * ldc + 16 * v;
      _mm512_mask_storeu_ps(row, mk[v],
                            beta == 0.0f ? _mm512_mul_ps(acc[r][v], va)
                                         : _mm512_fmadd_ps(acc[r][v], va,
                                                           _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk[v], row))));
    }
  }
}

// Few rows against a row-major B (the backward's dY·W for the CLS rows): B
// is read as it lies, kStreamRows of its rows at a time, each from left to
// right, into sums of the whole 16-row output kept in a scratch block (L1 or
// L2) between those steps. A tile per 16 columns through a whole k block
// reads a line from each of its 256 rows, more streams than the prefetchers
// follow: with B from memory (a weight, 4 MiB) that ran at 75 GFLOP/s in the
// step. Each sum still runs over k in order from zero in every k block, so
// the bits are the packed path's.
constexpr int64_t kStreamRows = 16;
SEEMORE_TARGET_AVX512 inline void few_rows_streamed_avx512(int64_t M, int64_t N, int64_t K, float alpha,
                                                           const float* ap, const float* B, int64_t ldb, float beta,
                                                           float* C, int64_t ldc) {
  constexpr int64_t kc_max = kAvx512.kc, R = kFewRows;
  const int64_t panels = (N + 15) / 16;
  float* sums = b_buffer().get(size_t(panels * R * 16));  // panel p, row r: sums + (p·R + r)·16
  for (int64_t pc = 0; pc < K; pc += kc_max) {
    const int64_t kc = std::min(kc_max, K - pc);
    const float beta_block = pc == 0 ? beta : 1.0f;
    for (int64_t k0 = 0; k0 < kc; k0 += kStreamRows) {
      const int64_t kn = std::min(kStreamRows, kc - k0);
      const bool first = k0 == 0, last = k0 + kStreamRows >= kc;
      const float* a = ap + (pc + k0) * R;
      const float* b = B + (pc + k0) * ldb;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t j = 16 * p;
        const __mmask16 mk = tail16(N - j);
        float* t = sums + p * R * 16;
        __m512 acc[R];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) acc[r] = first ? _mm512_setzero_ps() : _mm512_load_ps(t + 16 * r);
        for (int64_t k = 0; k < kn; ++k) {
          const __m512 bv = _mm512_maskz_loadu_ps(mk, b + k * ldb + j);
          if (pc + k0 + k + kStreamRows < K)  // the same columns kStreamRows rows on: the next step's
            _mm_prefetch(reinterpret_cast<const char*>(b + (k + kStreamRows) * ldb + j), _MM_HINT_T0);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[k * R + r]), bv, acc[r]);
        }
        if (!last) {
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) _mm512_store_ps(t + 16 * r, acc[r]);
          continue;
        }
        const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta_block);
        for (int r = 0; r < R && r < M; ++r) {
          float* row = C + r * ldc + j;
          _mm512_mask_storeu_ps(row, mk,
                                beta_block == 0.0f
                                    ? _mm512_mul_ps(acc[r], va)
                                    : _mm512_fmadd_ps(acc[r], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk, row))));
        }
      }
    }
  }
}

// Few rows (M ≤ 16) against a large op(B), k block by k block as the packed
// path goes (alpha·acc + beta·C on the first block, + C after), op(A) packed
// once. A row-major B is streamed (few_rows_streamed_avx512). A transposed one
// (a weight, x·Wᵀ) is packed a 16-wide sliver at a time, over every k block
// before the next sliver, for one 16-row tile: W's rows are read in order,
// and the sliver is in L1 when the tile reads it, where the packed path would
// write all of op(B) out and read it back for a 12-row and a 4-row tile.
SEEMORE_TARGET_AVX512 inline void few_rows_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                                  float alpha, const float* A, int64_t lda, const float* B,
                                                  int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t kc_max = kAvx512.kc;
  float* ap = a_buffer().get(size_t(kFewRows * K));
  pack<kFewRows>(!trans_a, A, lda, M, K, ap);
  if (!trans_b) return few_rows_streamed_avx512(M, N, K, alpha, ap, B, ldb, beta, C, ldc);
  float* bp = b_buffer().get(size_t(16 * kc_max));
  for (int64_t j = 0; j < N; j += 16) {
    const int64_t cols = std::min<int64_t>(16, N - j);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      pack<16>(true, B + j * ldb + pc, ldb, cols, kc, bp);
      small_tile_avx512<kFewRows, 1, true>(M, cols, kc, ap + pc * kFewRows, kFewRows, bp, 16, 16, alpha,
                                           pc == 0 ? beta : 1.0f, C + j, ldc,
                                           Ahead::next_sliver(B, ldb, N, K, j, pc, kc_max));
    }
  }
}

// The tiles over C, in column panels of up to four vectors (64 floats); the
// four-row tiles of three or four vectors start halfway into an 8-row sliver.
SEEMORE_TARGET_AVX512 inline void small_gemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                                    float alpha, const float* A, int64_t lda, const float* B,
                                                    int64_t ldb, float beta, float* C, int64_t ldc) {
  if (K > kAvx512.kc || M * N * K > kSmallFmas)
    return few_rows_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // One vector of columns (a head's D = 16) takes 16-row tiles: sixteen sums
  // in flight, and each row of B loaded once for sixteen rows, not eight.
  const bool tall = N <= 16;
  const int64_t sh = tall ? 16 : 8;  // rows per sliver of a packed A
  const float* ap = A;
  if (!trans_a) {
    float* p = a_buffer().get(size_t((M + sh - 1) / sh * sh * K));
    if (tall) pack<16>(true, A, lda, M, K, p);
    else pack<8>(true, A, lda, M, K, p);
    ap = p;
  }
  const float* b = B;
  int64_t bks = ldb, bvs = 16;
  if (trans_b) {
    float* bp = b_buffer().get(size_t((N + 15) / 16 * 16 * K));
    pack<16>(true, B, ldb, N, K, bp);
    b = bp, bks = 16, bvs = 16 * K;
  }
  for (int64_t j = 0; j < N; j += 64) {
    const int64_t cols = std::min<int64_t>(64, N - j), nv = (cols + 15) / 16, rs = tall ? 16 : nv <= 2 ? 8 : 4;
    const float* bj = trans_b ? b + j * K : b + j;
    for (int64_t i = 0; i < M; i += rs) {
      const int64_t rows = std::min(rs, M - i);
      // A tile reads all R rows: a transposed A's last, short one is copied.
      const float* a = A + i;
      int64_t aks = lda;
      if (!trans_a) {
        a = ap + i / sh * sh * K + i % sh, aks = sh;
      } else if (rows < rs) {
        float* p = a_buffer().get(size_t(sh * K));
        if (tall) pack<16>(false, A + i, lda, rows, K, p);
        else pack<8>(false, A + i, lda, rows, K, p);
        a = p, aks = sh;
      }
      float* c = C + i * ldc + j;
      if (tall) {
        small_tile_avx512<16, 1>(rows, cols, K, a, aks, bj, bks, bvs, alpha, beta, c, ldc);
        continue;
      }
      switch (nv) {
        case 1: small_tile_avx512<8, 1>(rows, cols, K, a, aks, bj, bks, bvs, alpha, beta, c, ldc); break;
        case 2: small_tile_avx512<8, 2>(rows, cols, K, a, aks, bj, bks, bvs, alpha, beta, c, ldc); break;
        case 3: small_tile_avx512<4, 3>(rows, cols, K, a, aks, bj, bks, bvs, alpha, beta, c, ldc); break;
        default: small_tile_avx512<4, 4>(rows, cols, K, a, aks, bj, bks, bvs, alpha, beta, c, ldc); break;
      }
    }
  }
}
// The AVX2 form: C[0, R) × [0, cols) (cols ≤ 8·NV) from op(A)(r, k) =
// a[k·ak + r·ar], read where it is (either transpose: a head's rows are in
// L1), and op(B)(k, 8v + l) = b[k·bks + v·8 + l].
template <int R, int NV, bool kAhead = false>
SEEMORE_TARGET_AVX2 inline void small_tile_avx2(int64_t cols, int64_t K, const float* a, int64_t ak, int64_t ar,
                                                const float* b, int64_t bks, float alpha, float beta, float* c,
                                                int64_t ldc, const Ahead& ahead = {}) {
  __m256 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k, a += ak, b += bks) {
    if constexpr (kAhead) ahead.fetch(k);
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = load8(b + 8 * v, cols - 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * ar);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      float* row = c + r * ldc + 8 * v;
      const int64_t left = cols - 8 * v;
      store8(row, left,
             beta == 0.0f ? _mm256_mul_ps(acc[r][v], va)
                          : _mm256_fmadd_ps(acc[r][v], va, _mm256_mul_ps(vb, load8(row, left))));
    }
}

// A tile of `rows` ≤ 6 rows and `cols` ≤ 16 columns.
template <bool kAhead = false>
SEEMORE_TARGET_AVX2 inline void small_rows_avx2(int64_t rows, int64_t cols, int64_t K, const float* a, int64_t ak,
                                                int64_t ar, const float* b, int64_t bks, float alpha, float beta,
                                                float* c, int64_t ldc, const Ahead& ahead = {}) {
  auto tile = [&](auto r) {
    constexpr int R = decltype(r)::value;
    if (cols > 8) small_tile_avx2<R, 2, kAhead>(cols, K, a, ak, ar, b, bks, alpha, beta, c, ldc, ahead);
    else small_tile_avx2<R, 1, kAhead>(cols, K, a, ak, ar, b, bks, alpha, beta, c, ldc, ahead);
  };
  switch (rows) {
    case 1: tile(std::integral_constant<int, 1>{}); break;
    case 2: tile(std::integral_constant<int, 2>{}); break;
    case 3: tile(std::integral_constant<int, 3>{}); break;
    case 4: tile(std::integral_constant<int, 4>{}); break;
    case 5: tile(std::integral_constant<int, 5>{}); break;
    default: tile(std::integral_constant<int, 6>{}); break;
  }
}

// few_rows_streamed_avx512's AVX2 form: rows [0, R) (R ≤ 6) of a 16-column
// panel through kn rows of B, from and back to their sums in `t` (row r at
// t + 16·r), or, after the k block's last rows (`last`), to C as the packed
// kernels store. `fetch`: also fetch the same columns kStreamRows rows on,
// for the first of a panel's tiles; `fetch_rows` of them lie inside B.
template <int R>
SEEMORE_TARGET_AVX2 inline void streamed_tile_avx2(int64_t cols, int64_t kn, const float* a, const float* b,
                                                   int64_t ldb, float* t, bool first, bool last, bool fetch,
                                                   int64_t fetch_rows, float alpha, float beta, float* c,
                                                   int64_t ldc) {
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 2; ++v) acc[r][v] = first ? _mm256_setzero_ps() : _mm256_load_ps(t + 16 * r + 8 * v);
  for (int64_t k = 0; k < kn; ++k) {
    const __m256 b0 = load8(b + k * ldb, cols), b1 = load8(b + k * ldb + 8, cols - 8);
    if (fetch && k < fetch_rows) _mm_prefetch(reinterpret_cast<const char*>(b + (k + kStreamRows) * ldb), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + k * kFewRows + r);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  if (!last) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 2; ++v) _mm256_store_ps(t + 16 * r + 8 * v, acc[r][v]);
    return;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 2; ++v) {
      float* row = c + r * ldc + 8 * v;
      const int64_t left = cols - 8 * v;
      store8(row, left,
             beta == 0.0f ? _mm256_mul_ps(acc[r][v], va)
                          : _mm256_fmadd_ps(acc[r][v], va, _mm256_mul_ps(vb, load8(row, left))));
    }
}

SEEMORE_TARGET_AVX2 inline void few_rows_streamed_avx2(int64_t M, int64_t N, int64_t K, float alpha, const float* ap,
                                                       const float* B, int64_t ldb, float beta, float* C,
                                                       int64_t ldc) {
  constexpr int64_t kc_max = kAvx2.kc, R = kFewRows;
  const int64_t panels = (N + 15) / 16;
  float* sums = b_buffer().get(size_t(panels * R * 16));
  for (int64_t pc = 0; pc < K; pc += kc_max) {
    const int64_t kc = std::min(kc_max, K - pc);
    const float beta_block = pc == 0 ? beta : 1.0f;
    for (int64_t k0 = 0; k0 < kc; k0 += kStreamRows) {
      const int64_t kn = std::min(kStreamRows, kc - k0);
      const bool first = k0 == 0, last = k0 + kStreamRows >= kc;
      const int64_t fetch_rows = std::max<int64_t>(0, K - (pc + k0 + kStreamRows));
      for (int64_t j = 0; j < N; j += 16) {
        const int64_t cols = std::min<int64_t>(16, N - j);
        float* t = sums + j * R;
        for (int64_t i = 0; i < M; i += 6) {
          const float* a = ap + (pc + k0) * R + i;
          const float* b = B + (pc + k0) * ldb + j;
          auto tile = [&](auto rows) {
            streamed_tile_avx2<decltype(rows)::value>(cols, kn, a, b, ldb, t + 16 * i, first, last, i == 0,
                                                      fetch_rows, alpha, beta_block, C + i * ldc + j, ldc);
          };
          switch (std::min<int64_t>(6, M - i)) {
            case 1: tile(std::integral_constant<int, 1>{}); break;
            case 2: tile(std::integral_constant<int, 2>{}); break;
            case 3: tile(std::integral_constant<int, 3>{}); break;
            case 4: tile(std::integral_constant<int, 4>{}); break;
            case 5: tile(std::integral_constant<int, 5>{}); break;
            default: tile(std::integral_constant<int, 6>{}); break;
          }
        }
      }
    }
  }
}

// Few rows, as few_rows_avx512, in tiles of 6 rows × 16 columns: a panel's
// rows of B (a sliver of a transposed one) are fetched by the first tile and
// read from L1 by the others.
SEEMORE_TARGET_AVX2 inline void few_rows_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                              float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                                              float beta, float* C, int64_t ldc) {
  constexpr int64_t kc_max = kAvx2.kc;
  float* ap = a_buffer().get(size_t(kFewRows * K));
  pack<kFewRows>(!trans_a, A, lda, M, K, ap);
  if (!trans_b) return few_rows_streamed_avx2(M, N, K, alpha, ap, B, ldb, beta, C, ldc);
  float* bp = b_buffer().get(size_t(16 * kc_max));
  for (int64_t j = 0; j < N; j += 16)
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t cols = std::min<int64_t>(16, N - j), kc = std::min(kc_max, K - pc);
      pack<16>(true, B + j * ldb + pc, ldb, cols, kc, bp);
      // The sliver is in L1 for the tiles after the first, which fetches the next one's source.
      small_rows_avx2<true>(std::min<int64_t>(6, M), cols, kc, ap + pc * kFewRows, kFewRows, 1, bp, 16, alpha,
                            pc == 0 ? beta : 1.0f, C + j, ldc, Ahead::next_sliver(B, ldb, N, K, j, pc, kc_max));
      for (int64_t i = 6; i < M; i += 6)
        small_rows_avx2(std::min<int64_t>(6, M - i), cols, kc, ap + pc * kFewRows + i, kFewRows, 1, bp, 16, alpha,
                        pc == 0 ? beta : 1.0f, C + i * ldc + j, ldc);
    }
}

// Panels of 16 columns, tiles of 6 rows (12 sums) read in place; a transposed
// B is packed in 16-wide slivers first. The packed path's per-call packing of
// both operands was a third of a head's backward here.
SEEMORE_TARGET_AVX2 inline void small_gemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                                float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                                                float beta, float* C, int64_t ldc) {
  if (K > kAvx2.kc || M * N * K > kSmallFmas)
    return few_rows_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const float* b = B;
  int64_t bks = ldb;
  if (trans_b) {
    float* bp = b_buffer().get(size_t((N + 15) / 16 * 16 * K));
    pack<16>(true, B, ldb, N, K, bp);
    b = bp, bks = 16;
  }
  const int64_t ak = trans_a ? lda : 1, ar = trans_a ? 1 : lda;
  for (int64_t j = 0; j < N; j += 16)
    for (int64_t i = 0; i < M; i += 6)
      small_rows_avx2(std::min<int64_t>(6, M - i), std::min<int64_t>(16, N - j), K, A + i * ar, ak, ar,
                      trans_b ? b + j * K : b + j, bks, alpha, beta, C + i * ldc + j, ldc);
}
#endif  // SEEMORE_X86_DISPATCH

// C = alpha·op(A)·op(B) + beta·C on the calling thread by the small path
// when small_product(isa, M, N, K, trans_b) holds; false, and nothing done,
// otherwise (the caller goes on to packed_gemm). K ≥ 1.
inline bool small_gemm(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                       int64_t ldc) {
  if (!small_product(isa, M, N, K, trans_b)) return false;
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512)
    return small_gemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), true;
  if (isa == Isa::avx2) return small_gemm_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), true;
#endif
  (void)isa, (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B;
  (void)ldb, (void)beta, (void)C, (void)ldc;
  return false;
}

// The register tile's rows of a form: thread splits of M keep to multiples of it.
inline int64_t row_grain(Isa isa) { return isa == Isa::avx512 ? kAvx512.mr : isa == Isa::avx2 ? kAvx2.mr : 4; }
inline int64_t col_grain(Isa isa) { return isa == Isa::avx512 ? kAvx512.nr : isa == Isa::avx2 ? kAvx2.nr : 16; }

}  // namespace seemore::backend::cpu::detail_packed
