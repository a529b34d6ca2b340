// benchmarks/gemm_ab/side.cpp — one side of gemm-ab: the float GEMM of the
// headers this object was compiled against. scripts/gemm-ab.sh compiles it
// twice, against two trees, with `seemore` renamed (-Dseemore=...) so both
// live in one program, and SIDE naming the entry point.
#include <seemore/backend/cpu/gemm.hpp>

#include <cstdint>

void SIDE(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float* C, int64_t ldc) {
  seemore::backend::cpu::gemm<float>(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}
