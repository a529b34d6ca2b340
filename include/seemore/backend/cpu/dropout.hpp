// seemore/backend/cpu/dropout.hpp — inverted dropout's keep/drop decisions:
// as a float mask, or as keep bits, one per element.
//
// Element i of a run is kept when its Philox uniform (seed, base, i) is >= p;
// kept values are scaled by 1/(1-p). One Philox block gives the uniforms of
// four consecutive elements; blocks are computed sixteen at a time
// (philox_simd.hpp), 64 elements per pass. The test is done on the raw 32-bit
// lane: with u = (x + 0.5)/2³² (Philox::to_open01, exact in double), u >= p
// exactly when x >= ⌈p·2³² − 0.5⌉, so the masks are bit-identical to comparing
// Philox::uniform(seed, base, i) with p.
//
// Keep bits are what the training step keeps for the backward: 64 elements
// per word, which is what each Philox pass yields. A float mask is 4 bytes an
// element, written by the forward and read again by the forward's product (in
// attention) and by the backward, most of it attention's [B, H, T, T] masks;
// bits took 1.5 ms off a 148 ms seemore step (docs/benchmarks.md). The float
// mask stays for the CUDA form's interface and as the tests' oracle.
#pragma once

#include <seemore/backend/cpu/isa.hpp>
#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/backend/cpu/philox_simd.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace seemore::backend::cpu {

inline uint64_t keep_threshold(double p) { return uint64_t(std::ceil(p * 4294967296.0 - 0.5)); }

namespace detail_dropout {
// One group: m = bit k of `bits` ? scale : 0 for k < count ≤ 64; mask[k] = m
// unless mask is null, y[k] = x[k]·m unless x is null. A bit test per element
// costs more than the Philox rounds, so the vector forms turn bits into
// lanes directly.
template <class T>
void scale_group(int64_t count, uint64_t bits, const T* x, T* y, T* mask, T scale) {
  for (int64_t k = 0; k < count; ++k) {
    const T m = (bits >> k) & 1 ? scale : T(0);
    if (mask) mask[k] = m;
    if (x) y[k] = x[k] * m;
  }
}
#if SEEMORE_X86_DISPATCH
SEEMORE_TARGET_AVX512 inline void scale_group_avx512(int64_t count, uint64_t bits, const float* x, float* y,
                                                     float* mask, float scale) {
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t k = 0; k < count; k += 16) {
    const __mmask16 in = tail16(count - k);
    const __m512 m = _mm512_maskz_mov_ps(__mmask16(bits >> k), vs);
    if (mask) _mm512_mask_storeu_ps(mask + k, in, m);
    if (x) _mm512_mask_storeu_ps(y + k, in, _mm512_mul_ps(_mm512_maskz_loadu_ps(in, x + k), m));
  }
}
SEEMORE_TARGET_AVX2 inline void scale_group_avx2(int64_t count, uint64_t bits, const float* x, float* y,
                                                 float* mask, float scale) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t k = 0; k < count; k += 8) {
    const __m256i on = _mm256_and_si256(_mm256_set1_epi32(int((bits >> k) & 0xFF)), lane_bit);
    const __m256 m = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(on, lane_bit)), vs);
    if (mask) store8(mask + k, count - k, m);
    if (x) store8(y + k, count - k, _mm256_mul_ps(load8(x + k, count - k), m));
  }
}
#endif
// scale_group in the processor's form.
template <class T>
inline void scale(Isa isa, int64_t count, uint64_t bits, const T* x, T* y, T* mask, T s) {
  (void)isa;
#if SEEMORE_X86_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    if (isa == Isa::avx512) return scale_group_avx512(count, bits, x, y, mask, s);
    if (isa == Isa::avx2) return scale_group_avx2(count, bits, x, y, mask, s);
  }
#endif
  scale_group(count, bits, x, y, mask, s);
}

// Over n elements in groups of 64, bit k of a group's bits keeping element
// 64g + k: the group's keep bits go to keep[g] unless keep is null, its mask
// values to mask unless mask is null, and y = x · mask unless x is null.
template <class T>
void apply(int64_t n, const T* x, T* y, T* mask, uint64_t* keep, double p, uint64_t seed, uint64_t base) {
  const T s = T(1.0 / (1.0 - p));
  const uint64_t threshold = keep_threshold(p);
  const int64_t groups = (n + 63) / 64;
  const Isa isa = active_isa();
  SEEMORE_PARALLEL_FOR_IF(n >= kParallelGrain)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t i0 = 64 * g, count = std::min<int64_t>(64, n - i0);
    const uint64_t bits = philox_keep_bits64(seed, base + uint64_t(16 * g), threshold, isa);
    if (keep) keep[g] = bits;
    if (mask || x) scale(isa, count, bits, x ? x + i0 : nullptr, x ? y + i0 : nullptr, mask ? mask + i0 : nullptr, s);
  }
}
}  // namespace detail_dropout

// `mask` receives 0 or 1/(1-p); y = x · mask.
// base_dev: the CUDA form's device-side counter (captured graphs); a CPU
// tensor's fill never has one.
template <class T>
void dropout_forward(int64_t n, const T* x, T* y, T* mask, double p, uint64_t seed, uint64_t base,
                     const uint64_t* base_dev = nullptr) {
  (void)base_dev;
  detail_dropout::apply(n, x, y, mask, static_cast<uint64_t*>(nullptr), p, seed, base);
}

// The mask alone: 0 or 1/(1-p) per element, same rule as dropout_forward.
template <class T>
void dropout_mask(int64_t n, T* mask, double p, uint64_t seed, uint64_t base, const uint64_t* base_dev = nullptr) {
  (void)base_dev;
  detail_dropout::apply<T>(n, nullptr, nullptr, mask, nullptr, p, seed, base);
}

// The keep bits of `runs` runs of `len` elements, each run ⌈len/64⌉ words:
// bit k of word g of run r keeps element 64g + k of that run (bits past a
// run's end are unspecified). ops/dropout.hpp makes a tensor one run, or one
// run per batch row when rows do not start on a Philox block.
struct KeepBits {
  const uint64_t* words = nullptr;
  int64_t runs = 0, len = 0;
  double p = 0;
  int64_t words_per_run() const { return (len + 63) / 64; }
  // The 64 keep bits of elements e, e + 1, … of run r.
  uint64_t from(int64_t r, int64_t e) const {
    const uint64_t* w = words + r * words_per_run() + e / 64;
    const int s = int(e % 64);
    return s == 0 ? w[0] : (w[0] >> s) | (e / 64 + 1 < words_per_run() ? w[1] << (64 - s) : 0);
  }
};

// Run r of keep: y = x · mask, and its keep bits into keep_words (the run's
// ⌈len/64⌉ words), from Philox blocks base, base + 1, …
template <class T>
void dropout_forward_bits(int64_t len, const T* x, T* y, uint64_t* keep_words, double p, uint64_t seed,
                          uint64_t base) {
  detail_dropout::apply(len, x, y, static_cast<T*>(nullptr), keep_words, p, seed, base);
}

// Elements [e, e + count) of run r: out = x · mask (x null: out = the mask).
template <class T>
void keep_scale(const KeepBits& keep, int64_t r, int64_t e, int64_t count, const T* x, T* out) {
  const T s = T(1.0 / (1.0 - keep.p));
  const Isa isa = active_isa();
  for (int64_t k = 0; k < count; k += 64) {
    const uint64_t bits = keep.from(r, e + k);
    const int64_t c = std::min<int64_t>(64, count - k);
    if (x) detail_dropout::scale(isa, c, bits, x + k, out + k, static_cast<T*>(nullptr), s);
    else detail_dropout::scale(isa, c, bits, static_cast<const T*>(nullptr), static_cast<T*>(nullptr), out + k, s);
  }
}

// Causal attention's keep bits: the weights [B, H, T, T] laid out as
// ops/dropout.hpp lays them out in `keep` (keep.runs == 1: one run, batch row
// b from element b·H·T²; else a run per batch row), batch row b's element e
// from Philox block base + b·row_blocks + ⌊e/4⌋. Only the blocks holding a
// key some query sees (row i's first i + 1) are drawn: attention reads no
// other bit, and at T = 64 they are 544 blocks of a head's 1024. They are
// drawn sixteen at a time whatever their rows, so the passes shrink with them
// (a pass per 64-entry row would draw all of it). The bits of elements in
// drawn blocks are the full fill's; the rest stay as they were (zero from
// the caller). Batch rows are split over the threads; a word two rows share
// (a run whose length is not a multiple of 64) is written atomically.
inline void causal_keep_bits(const KeepBits& keep, uint64_t* words, int64_t B, int64_t H, int64_t Tn, uint64_t seed,
                             uint64_t base, uint64_t row_blocks) {
  const int64_t per = H * Tn * Tn, wpr = keep.words_per_run();
  const uint64_t threshold = keep_threshold(keep.p);
  const Isa isa = active_isa();
  SEEMORE_PARALLEL_FOR_IF(B > 1 && B * per >= kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    // Element e of batch row b is bit origin + e of `words`.
    const int64_t origin = keep.runs == 1 ? b * per : b * wpr * 64;
    const int64_t first_word = origin / 64, last_word = (origin + per - 1) / 64;
    auto put = [&](int64_t w, uint64_t v) {
      if (w == first_word || w == last_word) __atomic_fetch_or(words + w, v, __ATOMIC_RELAXED);
      else words[w] |= v;
    };
    // A pass's lanes hold a few runs of consecutive blocks (a row's live
    // ones), each of whose bits lands as one piece.
    struct Piece {
      int64_t q, n, lane;
    } pieces[16];
    uint64_t counters[16];
    int64_t count = 0, np = 0;
    auto flush = [&] {
      for (int64_t j = count; j < 16; ++j) counters[j] = counters[count - 1];
      const uint64_t bits = philox_keep_bits64_at(seed, counters, threshold, isa);
      for (int64_t k = 0; k < np; ++k) {
        const Piece& pc = pieces[k];
        const int64_t e = 4 * pc.q, n = std::min<int64_t>(4 * pc.n, per - e);
        uint64_t v = bits >> (4 * pc.lane);
        if (n < 64) v &= (uint64_t(1) << n) - 1;
        const int64_t at = origin + e, w = at / 64, s = at % 64;
        put(w, v << s);
        if (s > 0 && s + n > 64) put(w + 1, v >> (64 - s));
      }
      count = np = 0;
    };
    const uint64_t row_base = base + uint64_t(b) * row_blocks;
    int64_t next = 0;  // the first block not yet drawn
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Tn; ++i) {
        const int64_t e = (h * Tn + i) * Tn, last = (e + i) / 4;
        for (int64_t q = std::max(next, e / 4); q <= last;) {
          const int64_t n = std::min<int64_t>(last - q + 1, 16 - count);
          pieces[np++] = {q, n, count};
          for (int64_t j = 0; j < n; ++j) counters[count + j] = row_base + uint64_t(q + j);
          count += n, q += n;
          if (count == 16) flush();
        }
        next = std::max(next, last + 1);
      }
    if (count > 0) flush();
  }
}

// dx = dy · mask over every run of keep (dy and dx: runs · len elements).
template <class T>
void dropout_backward_bits(const KeepBits& keep, const T* dy, T* dx) {
  const int64_t per = keep.words_per_run(), groups = keep.runs * per;
  const T s = T(1.0 / (1.0 - keep.p));
  const Isa isa = active_isa();
  SEEMORE_PARALLEL_FOR_IF(keep.runs * keep.len >= kParallelGrain)
  for (int64_t t = 0; t < groups; ++t) {
    const int64_t r = t / per, i0 = r * keep.len + 64 * (t % per);
    const int64_t count = std::min<int64_t>(64, keep.len - 64 * (t % per));
    detail_dropout::scale(isa, count, keep.words[t], dy + i0, dx + i0, static_cast<T*>(nullptr), s);
  }
}

}  // namespace seemore::backend::cpu
