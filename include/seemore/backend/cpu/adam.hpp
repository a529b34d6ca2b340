// seemore/backend/cpu/adam.hpp — the Adam/AdamW update of one parameter tensor.
//
// Contract (optim/adam.hpp, kernels/adam.cuh): per element, in place,
//   g ← g + λ·p (Adam with weight decay) | p ← p·(1 − lr·λ) (AdamW)
//   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//   p ← p − step_size · m / (√v / √(1−β2^t) + ε),  step_size = lr / (1−β1^t)
//
// adam_update_reference is the plain loop and the oracle. It does not
// vectorise: with errno-setting std::sqrt (g++'s default) the compiler keeps a
// scalar square root and two scalar divisions per element, about ten cycles,
// which made Adam over the seemore preset's 13M parameters compute-bound at
// ≈5% of a training step. The AVX-512 and AVX2 forms do sixteen and eight
// elements per instruction and are memory-bound (7 floats moved per element);
// the form is chosen at run time (isa.hpp).
//
// The forms are bit-identical to the reference loop compiled with FMA (the
// tests' -march=native build): every a·b + c the compiler could contract is
// written as an explicit fused multiply-add, and square root and division
// round exactly. Ragged ends stay in the form (masked), never the scalar loop,
// so a build without FMA, whose reference rounds a·b + c twice, still gets
// the same bits from every chunk.
#pragma once

#include <seemore/backend/cpu/isa.hpp>
#include <seemore/backend/cpu/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace seemore::backend::cpu {

template <class T>
struct AdamArgs {
  T beta1, beta2, eps, weight_decay, shrink;  // shrink = 1 − lr·λ (AdamW)
  T step_size, bc2_sqrt;                      // lr / (1−β1^t), √(1−β2^t)
  bool l2, decoupled;                         // λ ≠ 0: Adam adds λ·p to g, AdamW shrinks p
};

namespace detail_adam {
// a·b + c, rounded once where the hardware fuses it (a software std::fma would
// cost ~50 cycles on a target without FMA), else twice.
template <class T>
inline T madd(T a, T b, T c) {
  if constexpr (std::is_same_v<T, float>) {
#if defined(__FP_FAST_FMAF)
    return std::fma(a, b, c);
#endif
  } else if constexpr (std::is_same_v<T, double>) {
#if defined(__FP_FAST_FMA)
    return std::fma(a, b, c);
#endif
  }
  return a * b + c;  // without hardware FMA nothing is contracted
}
}  // namespace detail_adam

template <class T>
void adam_update_reference(int64_t lo, int64_t hi, T* w, const T* g, T* m, T* v, const AdamArgs<T>& a) {
  using detail_adam::madd;
  for (int64_t i = lo; i < hi; ++i) {
    T gi = g[i];
    if (a.l2) gi = madd(a.weight_decay, w[i], gi);
    if (a.decoupled) w[i] *= a.shrink;
    const T mg = (T(1) - a.beta1) * gi, vg = (T(1) - a.beta2) * gi * gi;
    m[i] = madd(a.beta1, m[i], mg);
    v[i] = madd(a.beta2, v[i], vg);
    const T den = std::sqrt(v[i]) / a.bc2_sqrt + a.eps;
    w[i] -= a.step_size * m[i] / den;
  }
}

namespace detail_adam {
#if SEEMORE_X86_DISPATCH
SEEMORE_TARGET_AVX512 inline void update_avx512(int64_t lo, int64_t hi, float* w, const float* g, float* m, float* v,
                          const AdamArgs<float>& a) {
  const __m512 b1 = _mm512_set1_ps(a.beta1), b1c = _mm512_set1_ps(1.0f - a.beta1);
  const __m512 b2 = _mm512_set1_ps(a.beta2), b2c = _mm512_set1_ps(1.0f - a.beta2);
  const __m512 wd = _mm512_set1_ps(a.weight_decay), shrink = _mm512_set1_ps(a.shrink);
  const __m512 step = _mm512_set1_ps(a.step_size), bc2 = _mm512_set1_ps(a.bc2_sqrt), eps = _mm512_set1_ps(a.eps);
  for (int64_t i = lo; i < hi; i += 16) {
    const __mmask16 k = tail16(hi - i);
    __m512 wi = _mm512_maskz_loadu_ps(k, w + i), gi = _mm512_maskz_loadu_ps(k, g + i);
    if (a.l2) gi = _mm512_fmadd_ps(wd, wi, gi);
    if (a.decoupled) wi = _mm512_mul_ps(wi, shrink);
    const __m512 mi = _mm512_fmadd_ps(b1, _mm512_maskz_loadu_ps(k, m + i), _mm512_mul_ps(b1c, gi));
    const __m512 vi = _mm512_fmadd_ps(b2, _mm512_maskz_loadu_ps(k, v + i), _mm512_mul_ps(_mm512_mul_ps(b2c, gi), gi));
    const __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
    wi = _mm512_sub_ps(wi, _mm512_div_ps(_mm512_mul_ps(step, mi), den));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    _mm512_mask_storeu_ps(w + i, k, wi);
  }
}
SEEMORE_TARGET_AVX2 inline void update_avx2(int64_t lo, int64_t hi, float* w, const float* g, float* m, float* v,
                                            const AdamArgs<float>& a) {
  const __m256 b1 = _mm256_set1_ps(a.beta1), b1c = _mm256_set1_ps(1.0f - a.beta1);
  const __m256 b2 = _mm256_set1_ps(a.beta2), b2c = _mm256_set1_ps(1.0f - a.beta2);
  const __m256 wd = _mm256_set1_ps(a.weight_decay), shrink = _mm256_set1_ps(a.shrink);
  const __m256 step = _mm256_set1_ps(a.step_size), bc2 = _mm256_set1_ps(a.bc2_sqrt), eps = _mm256_set1_ps(a.eps);
  for (int64_t i = lo; i < hi; i += 8) {
    const int64_t left = hi - i;
    __m256 wi = load8(w + i, left), gi = load8(g + i, left);
    if (a.l2) gi = _mm256_fmadd_ps(wd, wi, gi);
    if (a.decoupled) wi = _mm256_mul_ps(wi, shrink);
    const __m256 mi = _mm256_fmadd_ps(b1, load8(m + i, left), _mm256_mul_ps(b1c, gi));
    const __m256 vi = _mm256_fmadd_ps(b2, load8(v + i, left), _mm256_mul_ps(_mm256_mul_ps(b2c, gi), gi));
    const __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
    wi = _mm256_sub_ps(wi, _mm256_div_ps(_mm256_mul_ps(step, mi), den));
    store8(m + i, left, mi);
    store8(v + i, left, vi);
    store8(w + i, left, wi);
  }
}
#endif
}  // namespace detail_adam

template <class T>
void adam_update(int64_t n, T* w, const T* g, T* m, T* v, const AdamArgs<T>& a) {
  constexpr int64_t kChunk = 1 << 14;  // a multiple of 16: only the last chunk has a ragged end
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const Isa isa = active_isa();
  (void)isa;  // doubles, and builds without the x86 forms, use the reference loop
  SEEMORE_PARALLEL_FOR_IF(n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * kChunk, hi = std::min(n, lo + kChunk);
#if SEEMORE_X86_DISPATCH
    if constexpr (std::is_same_v<T, float>) {
      if (isa == Isa::avx512) {
        detail_adam::update_avx512(lo, hi, w, g, m, v, a);
        continue;
      }
      if (isa == Isa::avx2) {
        detail_adam::update_avx2(lo, hi, w, g, m, v, a);
        continue;
      }
    }
#endif
    adam_update_reference(lo, hi, w, g, m, v, a);
  }
}

}  // namespace seemore::backend::cpu
