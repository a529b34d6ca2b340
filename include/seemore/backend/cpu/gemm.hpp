// seemore/backend/cpu/gemm.hpp — GEMM on Eigen's matrix products.
//
// All matrices are row-major with a leading dimension (elements between rows).
// C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or Xᵀ. Eigen's products
// are cache-blocked, vectorised, and multithreaded with OpenMP; inside an
// OpenMP parallel region they run single-threaded, which is what batched_gemm
// relies on when it parallelises over the batch.
#pragma once

#include <seemore/backend/cpu/parallel.hpp>

#include <Eigen/Core>

#include <cstdint>

namespace seemore::backend::cpu {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using MatMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  MatMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == T(0)) c.setZero(); else c *= beta;
    return;
  }
  ConstMatMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  ConstMatMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  auto run = [&](const auto& opa, const auto& opb) {
    if (beta == T(0)) {
      c.noalias() = alpha * opa * opb;
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * opa * opb;
    }
  };
  if (!trans_a && !trans_b) run(a, b);
  else if (!trans_a && trans_b) run(a, b.transpose());
  else if (trans_a && !trans_b) run(a.transpose(), b);
  else run(a.transpose(), b.transpose());
}

// `batch` independent GEMMs; a stride of 0 reuses the same matrix for every batch.
template <class T>
void batched_gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c) {
  // Small matrices: one GEMM per thread beats splitting each GEMM.
  const bool per_thread = batch >= max_threads() && M * N * K <= (int64_t(1) << 21);
  SEEMORE_PARALLEL_FOR_IF(per_thread)
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
}

}  // namespace seemore::backend::cpu
