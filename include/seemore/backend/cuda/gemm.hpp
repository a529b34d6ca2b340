// seemore/backend/cuda/gemm.hpp — row-major GEMMs through cuBLAS (nvcc only).
//
// Same signatures as backend/cpu/gemm.hpp: C[M, N] = alpha·op(A)·op(B) + beta·C
// on row-major matrices with leading dimensions. cuBLAS is column-major, and a
// row-major matrix is its transpose read column-major, so Cᵀ = op(B)ᵀ·op(A)ᵀ
// is one cuBLAS call with the operands swapped and the same transpose flags.
//
// fp32 runs in full fp32 (CUBLAS_DEFAULT_MATH) unless set_allow_tf32(true):
// then tensor cores with TF32 inputs, ~10× the throughput, ~1e-3 relative error.
#pragma once

#include <seemore/backend/cuda/context.hpp>

#if SEEMORE_HAS_CUDA
#include <cstdint>

namespace seemore::backend::cuda {

namespace detail_gemm {
inline cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }
inline cublasHandle_t handle_for_current() {
  auto& c = context(current_device());
  if (c.tf32 != allow_tf32()) {
    SEEMORE_CUDA_CHECK(cublasSetMathMode(c.cublas, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    c.tf32 = allow_tf32();
  }
  return c.cublas;
}
inline int ci(int64_t v, const char* what) {
  SEEMORE_CHECK(v >= 0 && v <= 0x7fffffff, "gemm (cuBLAS): ", what, " = ", v, " does not fit cuBLAS's int");
  return int(v);
}
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const double* alpha, const double* A, int lda, const double* B, int ldb,
                           const double* beta, double* C, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const float* alpha, const float* A, int lda, long long sa, const float* B, int ldb,
                                   long long sb, const float* beta, float* C, int ldc, long long sc, int batch) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
inline cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const double* alpha, const double* A, int lda, long long sa, const double* B,
                                   int ldb, long long sb, const double* beta, double* C, int ldc, long long sc,
                                   int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
}  // namespace detail_gemm

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  using namespace detail_gemm;
  if (M == 0 || N == 0) return;
  // K == 0 is a valid product (C = beta·C); cuBLAS wants lda >= 1 even then.
  SEEMORE_CUDA_CHECK(gemm(handle_for_current(), op(trans_b), op(trans_a), ci(N, "N"), ci(M, "M"), ci(K, "K"), &alpha,
                          B, std::max(1, ci(ldb, "ldb")), A, std::max(1, ci(lda, "lda")), &beta, C, ci(ldc, "ldc")));
  if (sync_launches()) after_launch(__FILE__, __LINE__);
}

template <class T>
void batched_gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c) {
  using namespace detail_gemm;
  if (batch == 0 || M == 0 || N == 0) return;
  SEEMORE_CUDA_CHECK(gemm_batched(handle_for_current(), op(trans_b), op(trans_a), ci(N, "N"), ci(M, "M"), ci(K, "K"),
                                  &alpha, B, std::max(1, ci(ldb, "ldb")), stride_b, A, std::max(1, ci(lda, "lda")),
                                  stride_a, &beta, C, ci(ldc, "ldc"), stride_c, ci(batch, "batch")));
  if (sync_launches()) after_launch(__FILE__, __LINE__);
}

}  // namespace seemore::backend::cuda
#endif
