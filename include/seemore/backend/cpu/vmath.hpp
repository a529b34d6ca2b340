// seemore/backend/cpu/vmath.hpp — exp and erf on float arrays in the AVX2 and
// AVX-512 forms, for softmax and GELU.
//
// Eigen's vectorised exp and erf follow the TU's flags: built without
// -march=native (as an installed package's user builds) they ran on SSE2 and
// the step's softmax and GELU took three to six times longer. These run in
// the processor's form whatever the flags (isa.hpp). A processor without AVX2
// keeps Eigen's.
//
// exp: x = n·ln2 + r with n = round(x·log2 e) and r by a two-part ln 2
// (Cody–Waite), e^r by Cephes' degree-7 polynomial (within 2 ulp), times 2ⁿ
// built in the exponent bits. x is clamped to [−87.33654, 88.37626]; below
// it the result is 0 (so −∞ gives 0, as masked softmax needs), NaN stays NaN.
// erf: x·P(x²)/Q(x²), a rational interpolant of degrees 13 and 8 on x
// clamped to [−4, 4] (beyond which erf rounds to ±1 in float), with the
// coefficients of Eigen's and XLA's float erf: within 3.8e-7 of erf, and
// accurate relative to erf near 0. No exp: this replaced Abramowitz and
// Stegun 7.1.26 (1 − t·P(t)·e^(−x²), t = 1/(1 + px)), whose exp and division
// made GELU compute-bound at about 40 instructions per vector.
//
// exp_reference and erf_reference are the same operations one element at a
// time (every multiply-add an explicit std::fma): the oracle each form is
// tested against bit for bit. The row sums add element i into lane i mod 16
// and reduce the 16 lanes by halves, in every form, so they match too.
#pragma once

#include <seemore/backend/cpu/isa.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace seemore::backend::cpu::vmath {

namespace c {
constexpr float kExpHi = 88.3762626647949f, kExpLo = -87.33654f, kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
constexpr float kErfClamp = 4.0f;
constexpr float kErfA1 = -1.60960333262415e-02f, kErfA3 = -2.95459980854025e-03f, kErfA5 = -7.34990630326855e-04f,
                kErfA7 = -5.69250639462346e-05f, kErfA9 = -2.10102402082508e-06f, kErfA11 = 2.77068142495902e-08f,
                kErfA13 = -2.72614225801306e-10f;
constexpr float kErfB0 = -1.42647390514189e-02f, kErfB2 = -7.37332916720468e-03f, kErfB4 = -1.68282697438203e-03f,
                kErfB6 = -2.13374055278905e-04f, kErfB8 = -1.45660718464996e-05f;
constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace c

inline float exp_reference(float x) {
  if (std::isnan(x)) return x;
  if (x < c::kExpLo) return 0.0f;
  const float xc = std::min(x, c::kExpHi);
  const float n = std::nearbyint(xc * c::kLog2e);
  float r = std::fma(n, -c::kLn2Hi, xc);
  r = std::fma(n, -c::kLn2Lo, r);
  float p = std::fma(c::kP0, r, c::kP1);
  p = std::fma(p, r, c::kP2);
  p = std::fma(p, r, c::kP3);
  p = std::fma(p, r, c::kP4);
  p = std::fma(p, r, c::kP5);
  const float r2 = r * r;
  p = std::fma(p, r2, r) + 1.0f;
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// std::min and std::max keep a NaN x (the vector forms put x second).
inline float erf_reference(float x) {
  const float xc = std::max(std::min(x, c::kErfClamp), -c::kErfClamp), x2 = xc * xc;
  float p = std::fma(x2, c::kErfA13, c::kErfA11);
  p = std::fma(x2, p, c::kErfA9);
  p = std::fma(x2, p, c::kErfA7);
  p = std::fma(x2, p, c::kErfA5);
  p = std::fma(x2, p, c::kErfA3);
  p = std::fma(x2, p, c::kErfA1);
  float q = std::fma(x2, c::kErfB8, c::kErfB6);
  q = std::fma(x2, q, c::kErfB4);
  q = std::fma(x2, q, c::kErfB2);
  q = std::fma(x2, q, c::kErfB0);
  return (xc * p) / q;
}

// GELU (erf form) and its derivative, from the functions above:
// y = 0.5·x·(1 + erf(x/√2)),  dy/dx = 0.5·(1 + erf(x/√2)) + x·φ(x).
// φ(x) = e^(−x²/2)/√(2π) is taken as exp(−u²)/√(2π), u = x/√2, the
// argument erf gets.
inline float gelu_reference(float x) { return 0.5f * x * (1.0f + erf_reference(x * c::kInvSqrt2)); }
inline float gelu_grad_reference(float x, float g) {
  const float u = x * c::kInvSqrt2;
  const float cdf = 0.5f * (1.0f + erf_reference(u));
  const float pdf = exp_reference(-(u * u)) * c::kInvSqrt2Pi;
  return g * std::fma(x, pdf, cdf);
}
// Both at once, for a forward whose backward follows: y is gelu_reference(x)
// and d the derivative, so that dy·d is gelu_grad_reference(x, dy) to the
// bit. One erf serves both (the backward otherwise evaluates it again).
inline void gelu_forward_grad_reference(float x, float& y, float& d) {
  const float u = x * c::kInvSqrt2, e = erf_reference(u);
  y = 0.5f * x * (1.0f + e);
  d = std::fma(x, exp_reference(-(u * u)) * c::kInvSqrt2Pi, 0.5f * (1.0f + e));
}

// y[i] = exp(x[i] − shift) (y may be x, or null: nothing written); returns the
// sum in the 16-lane order.
inline float exp_shift_sum_reference(int64_t n, const float* x, float shift, float* y) {
  float lane[16] = {};
  for (int64_t i = 0; i < n; ++i) {
    const float e = exp_reference(x[i] - shift);
    if (y) y[i] = e;
    lane[i % 16] += e;
  }
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] += lane[j + w];
  return lane[0];
}

// A row of n whose first m entries are live (a causal row, m = i + 1; m = n
// unmasked): y[0, m) = softmax(x[0, m)), y[m, n) = 0, in one pass per step
// (max, exp and sum, scale) with no −∞ written. m = 0 gives a row of zeros;
// live entries that are all −∞ give 0/0 = NaN there, as softmax_contiguous
// does. y may be x.
inline void softmax_prefix_reference(int64_t n, int64_t m, const float* x, float* y) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < m; ++j) mx = std::max(mx, x[j]);
  if (mx == -INFINITY) mx = 0.0f;
  const float inv = 1.0f / exp_shift_sum_reference(m, x, mx, y);
  for (int64_t j = 0; j < m; ++j) y[j] *= inv;
  for (int64_t j = m; j < n; ++j) y[j] = 0.0f;
}

// The softmax's gradient on the same row, in place: with g = d ⊙ mask (no
// mask: g = d), d[j] = p[j]·(g[j] − Σ g·p) for j < m (the sum over those, each
// term one FMA into lane j mod 16, as above), d[m, n) = 0.
inline void softmax_grad_prefix_reference(int64_t n, int64_t m, const float* p, const float* mask, float* d) {
  float lane[16] = {};
  for (int64_t j = 0; j < m; ++j) {
    if (mask) d[j] *= mask[j];
    lane[j % 16] = std::fma(d[j], p[j], lane[j % 16]);
  }
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] += lane[j + w];
  for (int64_t j = 0; j < m; ++j) d[j] = p[j] * (d[j] - lane[0]);
  for (int64_t j = m; j < n; ++j) d[j] = 0.0f;
}

#if SEEMORE_X86_DISPATCH
SEEMORE_AVX512_WARNINGS_OFF
// ---- AVX-512: sixteen lanes, masked ends.
SEEMORE_TARGET_AVX512 inline __m512 exp16(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(c::kExpHi), x);  // min(hi, NaN) is NaN, as std::min(x, hi)
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(c::kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-c::kLn2Hi), xc);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-c::kLn2Lo), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(c::kP0), r, _mm512_set1_ps(c::kP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c::kP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c::kP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c::kP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c::kP5));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 e = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(c::kExpLo), _CMP_LT_OQ);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_mov_ps(_mm512_mask_mov_ps(e, under, _mm512_setzero_ps()), nan, x);
}
SEEMORE_TARGET_AVX512 inline __m512 erf16(__m512 x) {
  const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-c::kErfClamp), _mm512_min_ps(_mm512_set1_ps(c::kErfClamp), x));
  const __m512 x2 = _mm512_mul_ps(xc, xc);
  __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(c::kErfA13), _mm512_set1_ps(c::kErfA11));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(c::kErfA9));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(c::kErfA7));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(c::kErfA5));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(c::kErfA3));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(c::kErfA1));
  __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(c::kErfB8), _mm512_set1_ps(c::kErfB6));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(c::kErfB4));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(c::kErfB2));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(c::kErfB0));
  return _mm512_div_ps(_mm512_mul_ps(xc, p), q);
}
SEEMORE_TARGET_AVX512 inline float sum16(__m512 acc) {  // by halves, as the reference's lanes
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
SEEMORE_TARGET_AVX512 inline float exp_shift_sum_avx512(int64_t n, const float* x, float shift, float* y) {
  __m512 acc = _mm512_setzero_ps();
  const __m512 s = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    if (y) _mm512_mask_storeu_ps(y + i, k, e);
    acc = _mm512_add_ps(acc, e);
  }
  return sum16(acc);
}
SEEMORE_TARGET_AVX512 inline void softmax_prefix_avx512(int64_t n, int64_t m, const float* x, float* y) {
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < m; i += 16) {
    const __mmask16 k = tail16(m - i);
    mv = _mm512_mask_max_ps(mv, k, mv, _mm512_maskz_loadu_ps(k, x + i));
  }
  float mx = _mm512_reduce_max_ps(mv);
  if (mx == -INFINITY) mx = 0.0f;
  const __m512 inv = _mm512_set1_ps(1.0f / exp_shift_sum_avx512(m, x, mx, y));
  for (int64_t i = 0; i < n; i += 16) {  // past m: zero (the lanes' y is not read)
    const __mmask16 live = tail16(m - i);
    _mm512_mask_storeu_ps(y + i, tail16(n - i), _mm512_maskz_mul_ps(live, _mm512_maskz_loadu_ps(live, y + i), inv));
  }
}
SEEMORE_TARGET_AVX512 inline void softmax_grad_prefix_avx512(int64_t n, int64_t m, const float* p, const float* mask,
                                                             float* d) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < m; i += 16) {
    const __mmask16 k = tail16(m - i);
    __m512 g = _mm512_maskz_loadu_ps(k, d + i);
    if (mask) {
      g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(k, mask + i));
      _mm512_mask_storeu_ps(d + i, k, g);
    }
    acc = _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(k, p + i), acc);
  }
  const __m512 s = _mm512_set1_ps(sum16(acc));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(m - i);
    const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, d + i), s);
    _mm512_mask_storeu_ps(d + i, tail16(n - i), _mm512_maskz_mul_ps(k, _mm512_maskz_loadu_ps(k, p + i), g));
  }
}
SEEMORE_TARGET_AVX512 inline void gelu_forward_avx512(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    const __m512 cdf = _mm512_add_ps(_mm512_set1_ps(1.0f), erf16(_mm512_mul_ps(v, _mm512_set1_ps(c::kInvSqrt2))));
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), cdf));
  }
}
SEEMORE_TARGET_AVX512 inline void gelu_forward_grad_avx512(int64_t n, const float* x, float* y, float* d) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    const __m512 u = _mm512_mul_ps(v, _mm512_set1_ps(c::kInvSqrt2));
    const __m512 one_e = _mm512_add_ps(_mm512_set1_ps(1.0f), erf16(u));
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), one_e));
    const __m512 pdf = _mm512_mul_ps(exp16(_mm512_xor_ps(_mm512_mul_ps(u, u), _mm512_set1_ps(-0.0f))),
                                     _mm512_set1_ps(c::kInvSqrt2Pi));
    _mm512_mask_storeu_ps(d + i, k, _mm512_fmadd_ps(v, pdf, _mm512_mul_ps(_mm512_set1_ps(0.5f), one_e)));
  }
}
SEEMORE_TARGET_AVX512 inline void gelu_backward_avx512(int64_t n, const float* x, const float* dy, float* dx) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    const __m512 u = _mm512_mul_ps(v, _mm512_set1_ps(c::kInvSqrt2));
    const __m512 cdf = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.0f), erf16(u)));
    const __m512 pdf = _mm512_mul_ps(exp16(_mm512_xor_ps(_mm512_mul_ps(u, u), _mm512_set1_ps(-0.0f))),
                                     _mm512_set1_ps(c::kInvSqrt2Pi));
    _mm512_mask_storeu_ps(dx + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + i), _mm512_fmadd_ps(v, pdf, cdf)));
  }
}
SEEMORE_AVX512_WARNINGS_ON

// ---- AVX2: eight lanes, two registers for the sixteen sum lanes.
SEEMORE_TARGET_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(c::kExpHi), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(c::kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-c::kLn2Hi), xc);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-c::kLn2Lo), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(c::kP0), r, _mm256_set1_ps(c::kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c::kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c::kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c::kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c::kP5));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(c::kExpLo), _CMP_LT_OQ);
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_ps(_mm256_andnot_ps(under, e), x, nan);
}
SEEMORE_TARGET_AVX2 inline __m256 erf8(__m256 x) {
  const __m256 xc = _mm256_max_ps(_mm256_set1_ps(-c::kErfClamp), _mm256_min_ps(_mm256_set1_ps(c::kErfClamp), x));
  const __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(c::kErfA13), _mm256_set1_ps(c::kErfA11));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(c::kErfA9));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(c::kErfA7));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(c::kErfA5));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(c::kErfA3));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(c::kErfA1));
  __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(c::kErfB8), _mm256_set1_ps(c::kErfB6));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(c::kErfB4));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(c::kErfB2));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(c::kErfB0));
  return _mm256_div_ps(_mm256_mul_ps(xc, p), q);
}
SEEMORE_TARGET_AVX2 inline float sum16(__m256 lo, __m256 hi) {  // lanes 0–7 and 8–15, by halves as sum16 above
  const __m256 h = _mm256_add_ps(lo, hi);
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
SEEMORE_TARGET_AVX2 inline float exp_shift_sum_avx2(int64_t n, const float* x, float shift, float* y) {
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};  // lanes 0–7 and 8–15
  const __m256 s = _mm256_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(load8(x + i, n - i), s));
    if (n - i < 8) e = _mm256_and_ps(e, _mm256_castsi256_ps(first8(n - i)));  // lanes past n add nothing
    if (y) store8(y + i, n - i, e);
    acc[(i / 8) & 1] = _mm256_add_ps(acc[(i / 8) & 1], e);
  }
  return sum16(acc[0], acc[1]);
}
SEEMORE_TARGET_AVX2 inline void softmax_prefix_avx2(int64_t n, int64_t m, const float* x, float* y) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 mv = ninf;
  for (int64_t i = 0; i < m; i += 8)  // the lanes past m compare −∞
    mv = _mm256_max_ps(mv, _mm256_blendv_ps(ninf, load8(x + i, m - i), _mm256_castsi256_ps(first8(m - i))));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  float mx = _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
  if (mx == -INFINITY) mx = 0.0f;
  const __m256 inv = _mm256_set1_ps(1.0f / exp_shift_sum_avx2(m, x, mx, y));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 live = _mm256_castsi256_ps(first8(m - i));
    store8(y + i, n - i, m - i > 0 ? _mm256_and_ps(live, _mm256_mul_ps(load8(y + i, m - i), inv)) : _mm256_setzero_ps());
  }
}
SEEMORE_TARGET_AVX2 inline void softmax_grad_prefix_avx2(int64_t n, int64_t m, const float* p, const float* mask,
                                                          float* d) {
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};  // lanes 0–7 and 8–15
  for (int64_t i = 0; i < m; i += 8) {
    __m256 g = load8(d + i, m - i);  // zero past m
    if (mask) {
      g = _mm256_mul_ps(g, load8(mask + i, m - i));
      store8(d + i, m - i, g);
    }
    acc[(i / 8) & 1] = _mm256_fmadd_ps(g, load8(p + i, m - i), acc[(i / 8) & 1]);
  }
  const __m256 s = _mm256_set1_ps(sum16(acc[0], acc[1]));
  for (int64_t i = 0; i < n; i += 8) {  // past m: zero
    const __m256 live = _mm256_castsi256_ps(first8(m - i));
    const __m256 g = m - i > 0 ? _mm256_mul_ps(load8(p + i, m - i), _mm256_sub_ps(load8(d + i, m - i), s))
                               : _mm256_setzero_ps();
    store8(d + i, n - i, _mm256_and_ps(live, g));
  }
}
SEEMORE_TARGET_AVX2 inline void gelu_forward_avx2(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = load8(x + i, n - i);
    const __m256 cdf = _mm256_add_ps(_mm256_set1_ps(1.0f), erf8(_mm256_mul_ps(v, _mm256_set1_ps(c::kInvSqrt2))));
    store8(y + i, n - i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), cdf));
  }
}
SEEMORE_TARGET_AVX2 inline void gelu_forward_grad_avx2(int64_t n, const float* x, float* y, float* d) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = load8(x + i, n - i);
    const __m256 u = _mm256_mul_ps(v, _mm256_set1_ps(c::kInvSqrt2));
    const __m256 one_e = _mm256_add_ps(_mm256_set1_ps(1.0f), erf8(u));
    store8(y + i, n - i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), one_e));
    const __m256 pdf = _mm256_mul_ps(exp8(_mm256_xor_ps(_mm256_mul_ps(u, u), _mm256_set1_ps(-0.0f))),
                                     _mm256_set1_ps(c::kInvSqrt2Pi));
    store8(d + i, n - i, _mm256_fmadd_ps(v, pdf, _mm256_mul_ps(_mm256_set1_ps(0.5f), one_e)));
  }
}
SEEMORE_TARGET_AVX2 inline void gelu_backward_avx2(int64_t n, const float* x, const float* dy, float* dx) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = load8(x + i, n - i);
    const __m256 u = _mm256_mul_ps(v, _mm256_set1_ps(c::kInvSqrt2));
    const __m256 cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(_mm256_set1_ps(1.0f), erf8(u)));
    const __m256 pdf = _mm256_mul_ps(exp8(_mm256_xor_ps(_mm256_mul_ps(u, u), _mm256_set1_ps(-0.0f))),
                                     _mm256_set1_ps(c::kInvSqrt2Pi));
    store8(dx + i, n - i, _mm256_mul_ps(load8(dy + i, n - i), _mm256_fmadd_ps(v, pdf, cdf)));
  }
}
#endif  // SEEMORE_X86_DISPATCH

// The array functions in `isa`'s form; false when it has none (scalar: the
// caller keeps Eigen's functions).
inline bool exp_shift_sum(Isa isa, int64_t n, const float* x, float shift, float* y, float& sum) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return sum = exp_shift_sum_avx512(n, x, shift, y), true;
  if (isa == Isa::avx2) return sum = exp_shift_sum_avx2(n, x, shift, y), true;
#endif
  (void)isa, (void)n, (void)x, (void)shift, (void)y, (void)sum;
  return false;
}
inline bool softmax_prefix(Isa isa, int64_t n, int64_t m, const float* x, float* y) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return softmax_prefix_avx512(n, m, x, y), true;
  if (isa == Isa::avx2) return softmax_prefix_avx2(n, m, x, y), true;
#endif
  (void)isa, (void)n, (void)m, (void)x, (void)y;
  return false;
}
inline bool softmax_grad_prefix(Isa isa, int64_t n, int64_t m, const float* p, const float* mask, float* d) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return softmax_grad_prefix_avx512(n, m, p, mask, d), true;
  if (isa == Isa::avx2) return softmax_grad_prefix_avx2(n, m, p, mask, d), true;
#endif
  (void)isa, (void)n, (void)m, (void)p, (void)mask, (void)d;
  return false;
}
inline bool gelu_forward(Isa isa, int64_t n, const float* x, float* y) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return gelu_forward_avx512(n, x, y), true;
  if (isa == Isa::avx2) return gelu_forward_avx2(n, x, y), true;
#endif
  (void)isa, (void)n, (void)x, (void)y;
  return false;
}
inline bool gelu_forward_grad(Isa isa, int64_t n, const float* x, float* y, float* d) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return gelu_forward_grad_avx512(n, x, y, d), true;
  if (isa == Isa::avx2) return gelu_forward_grad_avx2(n, x, y, d), true;
#endif
  (void)isa, (void)n, (void)x, (void)y, (void)d;
  return false;
}
inline bool gelu_backward(Isa isa, int64_t n, const float* x, const float* dy, float* dx) {
#if SEEMORE_X86_DISPATCH
  if (isa == Isa::avx512) return gelu_backward_avx512(n, x, dy, dx), true;
  if (isa == Isa::avx2) return gelu_backward_avx2(n, x, dy, dx), true;
#endif
  (void)isa, (void)n, (void)x, (void)dy, (void)dx;
  return false;
}

}  // namespace seemore::backend::cpu::vmath
