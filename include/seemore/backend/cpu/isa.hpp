// seemore/backend/cpu/isa.hpp — which x86 vector forms this processor runs,
// chosen at run time.
//
// A user builds against the installed headers without -march=native, yet the
// machine has AVX2 or AVX-512: the fast kernels are compiled for their own
// instruction set with target attributes, whatever the TU's flags, and picked
// here from the processor's features. The AVX2 and AVX-512 forms are
// bit-identical to their reference loops, so choosing between them changes
// speed, not results, except in GEMM (its forms block K differently, see
// gemm_kernels.hpp). The scalar choice runs Eigen's GEMM, exp and erf, which
// round differently again.
//
// SEEMORE_CPU=scalar|avx2|avx512 caps the choice (for comparisons and tests);
// set_isa_cap does the same from code. A cap above what the processor has is
// ignored.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

// The forms exist on x86-64 under g++ or clang. nvcc compiles the CPU paths of
// .cu files without them: its front end does not take every x86 builtin the
// intrinsics headers use, and those TUs run no CPU hot loop.
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__CUDACC__)
#define SEEMORE_X86_DISPATCH 1
#include <immintrin.h>
#define SEEMORE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define SEEMORE_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#else
#define SEEMORE_X86_DISPATCH 0
#endif

// g++ 12 warns that some AVX-512 intrinsics read their own
// _mm512_undefined_*() (its bug 105593); around the AVX-512 forms these keep
// users' builds quiet. Nothing there is uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#define SEEMORE_AVX512_WARNINGS_OFF                                  \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define SEEMORE_AVX512_WARNINGS_ON _Pragma("GCC diagnostic pop")
#else
#define SEEMORE_AVX512_WARNINGS_OFF
#define SEEMORE_AVX512_WARNINGS_ON
#endif

namespace seemore::backend::cpu {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

// The best form the processor (and the OS, for the wider registers' state) supports.
inline Isa supported_isa() {
#if SEEMORE_X86_DISPATCH
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
  }();
  return best;
#else
  return Isa::scalar;
#endif
}

namespace detail_isa {
inline Isa env_cap() {
  const char* s = std::getenv("SEEMORE_CPU");
  if (!s || !*s || !std::strcmp(s, "avx512") || !std::strcmp(s, "native")) return Isa::avx512;
  if (!std::strcmp(s, "avx2")) return Isa::avx2;
  if (!std::strcmp(s, "scalar")) return Isa::scalar;
  return Isa::avx512;  // an unknown name caps nothing; seemore-microbench prints what ran
}
inline Isa& cap() {
  static Isa c = env_cap();
  return c;
}
}  // namespace detail_isa

// Caps the forms used from now on (tests run each form in turn).
inline void set_isa_cap(Isa isa) { detail_isa::cap() = isa; }

// The form the kernels use: the processor's best, at most the cap.
inline Isa active_isa() {
  const Isa s = supported_isa(), c = detail_isa::cap();
  return int(c) < int(s) ? c : s;
}

#if SEEMORE_X86_DISPATCH
// The AVX2 forms' ragged ends: the first `left` floats of eight (all of them
// when left ≥ 8, none when left ≤ 0). A whole vector takes the plain
// instruction: vmaskmovps stores are microcoded on AMD processors, several
// times a plain store, and made the AVX2 forms slower than AVX-512 on Zen 4.
SEEMORE_TARGET_AVX2 inline __m256i first8(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left < 0 ? 0 : left < 8 ? left : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
SEEMORE_TARGET_AVX2 inline __m256 load8(const float* p, int64_t left) {
  return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first8(left));
}
SEEMORE_TARGET_AVX2 inline void store8(float* p, int64_t left, __m256 v) {
  if (left >= 8)
    _mm256_storeu_ps(p, v);
  else if (left > 0)
    _mm256_maskstore_ps(p, first8(left), v);
}
#endif

// Sets a cap for a scope and puts the previous one back.
class IsaCap {
 public:
  explicit IsaCap(Isa isa) : saved_(detail_isa::cap()) { set_isa_cap(isa); }
  ~IsaCap() { set_isa_cap(saved_); }
  IsaCap(const IsaCap&) = delete;
  IsaCap& operator=(const IsaCap&) = delete;

 private:
  Isa saved_;
};

#if SEEMORE_X86_DISPATCH
// The first `left` of 16 lanes (all from 16 up, none from 0 down): the mask
// of an array's ragged last vector in the AVX-512 forms.
SEEMORE_TARGET_AVX512 inline __mmask16 tail16(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}
#endif

}  // namespace seemore::backend::cpu
