// seemore/backend/cpu/philox_simd.hpp — Philox4x32-10 blocks sixteen (AVX-512)
// or eight (AVX2) at a time, for dropout's keep/drop decisions.
//
// Dropout draws one 32-bit lane per element, four per Philox block; ten rounds
// of two 32×32→64 multiplies per block made the scalar masks ≈5% of a
// training step. Here lane j of each register is block (counter + j), so one
// pass yields the lanes of 64 (32) elements, compared with the threshold and
// put back in element order as bits; the _at forms take sixteen counters
// instead, for a fill that draws only some blocks. Each form is bit-identical to
// Philox::block (seemore/random.hpp), which stays the definition and the
// test oracle; the form is chosen at run time (isa.hpp).
#pragma once

#include <seemore/backend/cpu/isa.hpp>
#include <seemore/random.hpp>

#include <cstdint>

namespace seemore::backend::cpu {

// Bit i (0 ≤ i < 64) set when element i of the 64 elements that use blocks
// counter … counter+15 is kept: its lane is >= threshold (a value < 2³²).
inline uint64_t philox_keep_bits64_reference(uint64_t key, uint64_t counter, uint64_t threshold) {
  uint64_t bits = 0;
  for (int j = 0; j < 16; ++j) {
    const Philox::Block r = Philox::block(key, counter + uint64_t(j));
    for (int l = 0; l < 4; ++l) bits |= uint64_t(uint64_t(r[size_t(l)]) >= threshold) << (4 * j + l);
  }
  return bits;
}

// As philox_keep_bits64_reference, with lane j drawing block counters[j]
// (sixteen counters, any order): what a fill that skips blocks draws.
inline uint64_t philox_keep_bits64_at_reference(uint64_t key, const uint64_t* counters, uint64_t threshold) {
  uint64_t bits = 0;
  for (int j = 0; j < 16; ++j) {
    const Philox::Block r = Philox::block(key, counters[j]);
    for (int l = 0; l < 4; ++l) bits |= uint64_t(uint64_t(r[size_t(l)]) >= threshold) << (4 * j + l);
  }
  return bits;
}

namespace detail_philox {
#if SEEMORE_X86_DISPATCH
SEEMORE_AVX512_WARNINGS_OFF
// hi:lo of the 32×32 product per 32-bit lane; mul_epu32 multiplies the even
// lanes only, so the odd ones are shifted down for a second multiply. (Plain
// functions, not lambdas: a lambda does not inherit its function's target.)
SEEMORE_TARGET_AVX512 inline void mulhilo(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i pe = _mm512_mul_epu32(a, m), po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}
SEEMORE_TARGET_AVX2 inline void mulhilo(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

// Blocks lo8[0..7], hi8[0..7] (64-bit counters): the counters are split into
// their low (c0) and high (c1) words.
SEEMORE_TARGET_AVX512 inline uint64_t keep_bits64_lanes_avx512(uint64_t key, __m512i lo8, __m512i hi8,
                                                               uint64_t threshold) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  __m512i c0 = _mm512_permutex2var_epi32(lo8, even, hi8), c1 = _mm512_permutex2var_epi32(lo8, odd, hi8);
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53), m1 = _mm512_set1_epi64(0xCD9E8D57);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; ++r) {
    __m512i hi0, lo0, hi1, lo1;
    mulhilo(c0, m0, hi0, lo0);
    mulhilo(c2, m1, hi1, lo1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(int32_t(k0)));
    c1 = lo1;
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(int32_t(k1)));
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  // Element 4j + l is lane l of block j: interleave (c0, c1) and (c2, c3) by
  // block, then the pairs, giving the elements in order 16 at a time.
  const __m512i pair_lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i pair_hi = _mm512_add_epi32(pair_lo, _mm512_set1_epi32(8));
  const __m512i a01 = _mm512_permutex2var_epi32(c0, pair_lo, c1), b01 = _mm512_permutex2var_epi32(c0, pair_hi, c1);
  const __m512i a23 = _mm512_permutex2var_epi32(c2, pair_lo, c3), b23 = _mm512_permutex2var_epi32(c2, pair_hi, c3);
  // From two interleaved vectors x = (c0,c1 pairs) and y = (c2,c3 pairs): blocks 0–3 are
  // x0 x1 y0 y1 x2 x3 y2 y3 …, i.e. 64-bit lanes taken alternately from x and y.
  const __m512i quad_lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i quad_hi = _mm512_add_epi64(quad_lo, _mm512_set1_epi64(4));
  const __m512i e0 = _mm512_permutex2var_epi64(a01, quad_lo, a23), e1 = _mm512_permutex2var_epi64(a01, quad_hi, a23);
  const __m512i e2 = _mm512_permutex2var_epi64(b01, quad_lo, b23), e3 = _mm512_permutex2var_epi64(b01, quad_hi, b23);
  const __m512i t = _mm512_set1_epi32(int32_t(uint32_t(threshold)));
  return uint64_t(_mm512_cmpge_epu32_mask(e0, t)) | uint64_t(_mm512_cmpge_epu32_mask(e1, t)) << 16 |
         uint64_t(_mm512_cmpge_epu32_mask(e2, t)) << 32 | uint64_t(_mm512_cmpge_epu32_mask(e3, t)) << 48;
}
SEEMORE_TARGET_AVX512 inline uint64_t keep_bits64_avx512(uint64_t key, uint64_t counter, uint64_t threshold) {
  const __m512i lo8 = _mm512_add_epi64(_mm512_set1_epi64(int64_t(counter)), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
  return keep_bits64_lanes_avx512(key, lo8, _mm512_add_epi64(lo8, _mm512_set1_epi64(8)), threshold);
}
SEEMORE_TARGET_AVX512 inline uint64_t keep_bits64_at_avx512(uint64_t key, const uint64_t* counters,
                                                            uint64_t threshold) {
  return keep_bits64_lanes_avx512(key, _mm512_loadu_si512(counters), _mm512_loadu_si512(counters + 8), threshold);
}

SEEMORE_AVX512_WARNINGS_ON

// Bit j of an 8-bit mask moved to bit 4j.
inline uint32_t spread4(uint32_t m) {
  m = (m | m << 12) & 0x000F000Fu;
  m = (m | m << 6) & 0x03030303u;
  return (m | m << 3) & 0x11111111u;
}

// Eight blocks per pass, two passes. AVX2 has no unsigned compare: lanes and
// threshold are both offset by 2³¹ and compared signed.
SEEMORE_TARGET_AVX2 inline uint64_t keep_bits64_at_avx2(uint64_t key, const uint64_t* counters, uint64_t threshold) {
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53), m1 = _mm256_set1_epi64x(0xCD9E8D57);
  const __m256i flip = _mm256_set1_epi32(int32_t(0x80000000u));
  // x >= t  ⇔  not (t > x), both flipped to signed.
  const __m256i t = _mm256_xor_si256(_mm256_set1_epi32(int32_t(uint32_t(threshold))), flip);
  uint64_t bits = 0;
  for (int half = 0; half < 2; ++half) {
    alignas(32) uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; ++j) {
      const uint64_t c = counters[8 * half + j];
      lo[j] = uint32_t(c), hi[j] = uint32_t(c >> 32);
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
    for (int r = 0; r < 10; ++r) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo(c0, m0, hi0, lo0);
      mulhilo(c2, m1, hi1, lo1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(int32_t(k0)));
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(int32_t(k1)));
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // Bit j of drop_l: lane l of block j is below the threshold.
    const __m256i c[4] = {c0, c1, c2, c3};
    uint32_t keep = 0;
    for (int l = 0; l < 4; ++l) {
      const __m256i below = _mm256_cmpgt_epi32(t, _mm256_xor_si256(c[l], flip));
      keep |= spread4(~uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(below))) & 0xFFu) << l;
    }
    bits |= uint64_t(keep) << (32 * half);
  }
  return bits;
}
SEEMORE_TARGET_AVX2 inline uint64_t keep_bits64_avx2(uint64_t key, uint64_t counter, uint64_t threshold) {
  uint64_t counters[16];
  for (int j = 0; j < 16; ++j) counters[j] = counter + uint64_t(j);
  return keep_bits64_at_avx2(key, counters, threshold);
}
#endif  // SEEMORE_X86_DISPATCH
}  // namespace detail_philox

// philox_keep_bits64_reference's bits, in the processor's form.
inline uint64_t philox_keep_bits64(uint64_t key, uint64_t counter, uint64_t threshold, Isa isa = active_isa()) {
  if (threshold > 0xFFFFFFFFull) return 0;  // no 32-bit lane reaches it
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return detail_philox::keep_bits64_avx512(key, counter, threshold);
  if (isa == Isa::avx2) return detail_philox::keep_bits64_avx2(key, counter, threshold);
#endif
  (void)isa;
  return philox_keep_bits64_reference(key, counter, threshold);
}
// philox_keep_bits64_at_reference's bits, in the processor's form.
inline uint64_t philox_keep_bits64_at(uint64_t key, const uint64_t* counters, uint64_t threshold,
                                      Isa isa = active_isa()) {
  if (threshold > 0xFFFFFFFFull) return 0;
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return detail_philox::keep_bits64_at_avx512(key, counters, threshold);
  if (isa == Isa::avx2) return detail_philox::keep_bits64_at_avx2(key, counters, threshold);
#endif
  (void)isa;
  return philox_keep_bits64_at_reference(key, counters, threshold);
}

}  // namespace seemore::backend::cpu
