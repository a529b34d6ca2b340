// A stand-in BLAS for the gemm tests (tests/ops/test_matmul.cpp), built as a
// shared library of its own: the Fortran sgemm_ as the reference BLAS defines
// it (column-major, op(A)·op(B)), in plain loops, counting its calls so that a
// test can see the work reached it.
// Built with FAKE_BLAS_WRONG it ignores its arguments and writes nothing: a
// library whose sgemm_ is not a GEMM.
#include <atomic>
#include <cstdint>

extern "C" {
std::atomic<int64_t> fake_blas_calls{0};  // our gemm calls it from several threads at once

void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) {
  ++fake_blas_calls;
#ifdef FAKE_BLAS_WRONG
  (void)transa, (void)transb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb,
      (void)beta, (void)c, (void)ldc;
#else
  const bool ta = *transa == 'T' || *transa == 't', tb = *transb == 'T' || *transb == 't';
  for (int j = 0; j < *n; ++j)
    for (int i = 0; i < *m; ++i) {
      double s = 0;
      for (int p = 0; p < *k; ++p)
        s += double(ta ? a[p + i * *lda] : a[i + p * *lda]) * double(tb ? b[j + p * *ldb] : b[p + j * *ldb]);
      float& out = c[i + j * *ldc];
      out = *beta == 0 ? float(*alpha * s) : float(*alpha * s + *beta * out);  // beta 0: C is not read
    }
#endif
}
}
