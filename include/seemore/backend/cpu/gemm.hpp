// seemore/backend/cpu/gemm.hpp — GEMM on our packed-panel kernels, Eigen's
// matrix products, or a BLAS.
//
// All matrices are row-major with a leading dimension (elements between rows).
// C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or Xᵀ. Big products are
// split over the OpenMP threads here; each thread's block is one
// single-threaded product: for floats, by the BLAS's sgemm when one is loaded
// (blas.hpp), else by the AVX-512 or AVX2 kernel the processor runs
// (gemm_kernels.hpp); doubles, and floats on a processor with neither, by Eigen.
#pragma once

#include <seemore/backend/cpu/blas.hpp>
#include <seemore/backend/cpu/isa.hpp>
#include <seemore/backend/cpu/gemm_kernels.hpp>
#include <seemore/backend/cpu/parallel.hpp>

SEEMORE_AVX512_WARNINGS_OFF  // Eigen's AVX-512 code trips g++ 12's bug 105593 (isa.hpp)
#include <Eigen/Core>
SEEMORE_AVX512_WARNINGS_ON

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

namespace seemore::backend::cpu {

// Opt-in accounting of the GEMM work done outside parallel regions (the
// model's Linear and patch layers, not the per-head products inside
// attention), so a benchmark can report GEMM throughput inside a real step.
// Off by default: then it costs one relaxed load per call.
struct GemmStats {
  std::atomic<bool> enabled{false};
  std::atomic<int64_t> calls{0}, flops{0}, ns{0};
  // The attention's products (scores, weighted values and their gradients),
  // which run per head inside parallel regions and are not timed above: only
  // the FLOPs a causal mask leaves, so that a FLOP bound counts the step's
  // whole matrix work and no more (attention_flops below).
  std::atomic<int64_t> attention_flops{0};
  // Per shape (batch, M, N, K, op(A) transposed, op(B) transposed), for profiles.
  struct Shape {
    int64_t calls = 0, flops = 0, ns = 0;
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool>;
  std::map<Key, Shape> by_shape;
  std::mutex mutex;
  void reset() {
    calls = 0, flops = 0, ns = 0, attention_flops = 0;
    std::lock_guard<std::mutex> lock(mutex);
    by_shape.clear();
  }
  void add(const Key& key, int64_t f, int64_t t) {  // called only while accounting is on
    calls += 1, flops += f, ns += t;
    std::lock_guard<std::mutex> lock(mutex);
    auto& s = by_shape[key];
    s.calls += 1, s.flops += f, s.ns += t;
  }
};
inline GemmStats& gemm_stats() {
  static GemmStats s;
  return s;
}

// Counts `products` attention products over B·H heads of Tn positions and
// head size D: each is 2·D FLOPs per score the mask keeps (all Tn² of them,
// or Tn(Tn+1)/2 when causal; the CPU form computes 3/4 of the square at T = 64;
// queries·Tn when only the first `queries` positions ask).
inline void count_attention_flops(int64_t B, int64_t H, int64_t Tn, int64_t D, bool causal, int64_t products,
                                  int64_t queries = 0) {
  auto& st = gemm_stats();
  if (!st.enabled.load(std::memory_order_relaxed)) return;
  const int64_t scores = causal ? Tn * (Tn + 1) / 2 : (queries > 0 ? queries : Tn) * Tn;
  st.attention_flops += products * B * H * scores * 2 * D;
}

namespace detail_gemm {
inline thread_local int depth = 0;  // nested calls (batched_gemm → gemm) are counted once
// Times its scope when accounting is on and this is the outermost call.
class Account {
 public:
  Account(int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b) {
    auto& st = gemm_stats();
    active_ = st.enabled.load(std::memory_order_relaxed) && depth == 0 && !in_parallel();
    ++depth;
    if (!active_) return;
    key_ = {batch, M, N, K, trans_a, trans_b};
    flops_ = 2 * batch * M * N * K;
    t0_ = std::chrono::steady_clock::now();
  }
  ~Account() {
    --depth;
    if (!active_) return;
    gemm_stats().add(
        key_, flops_,
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_).count());
  }
  Account(const Account&) = delete;
  Account& operator=(const Account&) = delete;

 private:
  bool active_ = false;
  GemmStats::Key key_{};
  int64_t flops_ = 0;
  std::chrono::steady_clock::time_point t0_;
};
}  // namespace detail_gemm

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using MatMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

namespace detail_gemm {
inline bool fits_int(int64_t v) { return v >= 1 && v <= INT32_MAX; }

// The row-major C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a
// row-major matrix is its transpose in column-major: so B goes first, and each
// keeps its own transpose flag.
inline bool blas_gemm(detail_blas::Sgemm sgemm, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc) {
  // A BLAS rejects (and the reference one exits on) leading dimensions shorter
  // than a row; Eigen takes any stride, so such products stay there.
  if (!(fits_int(M) && fits_int(N) && fits_int(K) && fits_int(lda) && fits_int(ldb) && fits_int(ldc))) return false;
  if (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N) || ldc < N) return false;
  const int m = int(N), n = int(M), k = int(K), la = int(ldb), lb = int(lda), lc = int(ldc);
  sgemm(trans_b ? "T" : "N", trans_a ? "T" : "N", &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
  return true;
}

// One product on the calling thread: a float one on the BLAS when one is
// loaded (`blas`, from detail_blas::active()), else on `isa`'s packed kernel;
// anything else on Eigen.
template <class T>
void serial_gemm(detail_blas::Sgemm blas, Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                 T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  MatMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == T(0)) c.setZero(); else c *= beta;
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (blas && blas_gemm(blas, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
    if (detail_packed::small_gemm(isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
    if (detail_packed::packed_gemm(isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
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
}  // namespace detail_gemm

// Big products are split into one block of C per thread, each computed by a
// single-threaded product, instead of sharing packed panels between threads:
// that needs the threads to wait for each other, which at this model's sizes
// (hundreds of rows, K ≤ 2048) cost Eigen about a quarter of its throughput.
// Each thread packs the operand it shares with the others, so the split goes
// along the side that makes that one the smaller: rows (every thread packs
// all of op(B), K·N) when N ≤ M, else columns (all of op(A), M·K). The blocks
// are multiples of the register tile, so no thread gets a ragged tile in the
// middle. The packed kernels give every element of C the same operations
// whatever the split (gemm_kernels.hpp), so results do not depend on the
// thread count; Eigen's (doubles, or a processor without AVX2) may in the
// last bits, its blocking following the size.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  detail_gemm::Account acct(1, M, N, K, trans_a, trans_b);
  const detail_blas::Sgemm blas = std::is_same_v<T, float> ? detail_blas::active() : nullptr;
  const Isa isa = std::is_same_v<T, float> && !blas ? active_isa() : Isa::scalar;
  const int threads = max_threads();
  const bool big = threads > 1 && !in_parallel() && M * N * K >= (int64_t(1) << 22);
  if (!big)
    return detail_gemm::serial_gemm(blas, isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const int64_t row_grain = detail_packed::row_grain(isa), col_grain = detail_packed::col_grain(isa);
  const bool rows_enough = M >= 2 * row_grain * threads, cols_enough = N >= 2 * col_grain * threads;
  const bool by_rows = isa == Isa::scalar ? (M >= 64 * threads || M >= N)
                                          : rows_enough && (N <= M || !cols_enough);
  const int64_t extent = by_rows ? M : N;
  const int64_t grain = by_rows ? row_grain : col_grain;
  const int64_t per = ((extent + threads - 1) / threads + grain - 1) / grain * grain;
  const int64_t chunks = (extent + per - 1) / per;
  SEEMORE_PARALLEL_FOR_IF(chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t lo = ch * per, n = std::min(per, extent - lo);
    if (by_rows)
      detail_gemm::serial_gemm(blas, isa, trans_a, trans_b, n, N, K, alpha, trans_a ? A + lo : A + lo * lda, lda, B,
                               ldb, beta, C + lo * ldc, ldc);
    else
      detail_gemm::serial_gemm(blas, isa, trans_a, trans_b, M, n, K, alpha, A, lda,
                               trans_b ? B + lo * ldb : B + lo, ldb, beta, C + lo, ldc);
  }
}

// What float GEMMs run on: the BLAS SEEMORE_BLAS/use_blas loaded, else our
// packed kernels in the processor's form ("seemore avx512", "seemore avx2"),
// else Eigen.
inline std::string gemm_library() {
  const std::string blas = blas_library();
  if (!blas.empty()) return blas;
  const Isa isa = active_isa();
  return isa == Isa::scalar ? std::string("Eigen") : std::string("seemore ") + isa_name(isa);
}

// `batch` independent GEMMs; a stride of 0 reuses the same matrix for every batch.
template <class T>
void batched_gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c) {
  // Small matrices: one GEMM per thread beats splitting each GEMM.
  const bool per_thread = batch >= max_threads() && M * N * K <= (int64_t(1) << 21);
  detail_gemm::Account acct(batch, M, N, K, trans_a, trans_b);
  SEEMORE_PARALLEL_FOR_IF(per_thread)
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
}

}  // namespace seemore::backend::cpu
