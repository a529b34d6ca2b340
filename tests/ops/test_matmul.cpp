#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <atomic>
#include <cmath>
#include <tuple>
#include <vector>

#include "../support/gradcheck.hpp"

using namespace seemore;
using namespace seemore::testing;

namespace {
// Naive triple loop on explicit transposes: the oracle for the GEMM.
TensorD naive_mm(const TensorD& a, const TensorD& b, bool ta, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1), N = tb ? b.size(0) : b.size(1);
  auto out = TensorD::zeros({M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += (ta ? a.at({k, i}) : a.at({i, k})) * (tb ? b.at({j, k}) : b.at({k, j}));
      out.data()[i * N + j] = s;
    }
  return out;
}
TensorD small_ints(const Shape& s, uint64_t seed) {  // whole numbers: GEMM results are exact
  Generator g(seed);
  auto t = TensorD::uniform(s, -4, 5, g);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = std::floor(t.data()[i]);
  return t;
}
}  // namespace

TEST_CASE("matmul: exact on whole numbers, every transpose", "[ops][matmul]") {
  for (int64_t M : {1, 7, 65})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t K = 13, N = 9;
        auto a = small_ints(ta ? Shape{K, M} : Shape{M, K}, 1), b = small_ints(tb ? Shape{N, K} : Shape{K, N}, 2);
        CHECK(matmul(a, b, ta, tb).to_vector() == naive_mm(a, b, ta, tb).to_vector());
      }
  // Large enough to be split across threads: by rows (M=300), by columns (M=20),
  // with ragged last blocks. Still exact: whole numbers, sums far below 2^24.
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{300, 70, 256}, {20, 501, 512}, {1001, 33, 129}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb);
        auto a = small_ints(ta ? Shape{K, M} : Shape{M, K}, 6), b = small_ints(tb ? Shape{N, K} : Shape{K, N}, 7);
        CHECK(matmul(a, b, ta, tb).to_vector() == naive_mm(a, b, ta, tb).to_vector());
      }
  // Batched: each batch equals its own 2-d product.
  auto a = small_ints({3, 7, 5}, 3), b = small_ints({3, 5, 4}, 4), w = small_ints({5, 4}, 5);
  auto c = matmul(a, b), d = matmul(a, w);
  for (int64_t i = 0; i < 3; ++i) {
    auto ai = a.rows(i, i + 1).view({7, 5}).clone();
    CHECK(c.rows(i, i + 1).view({7, 4}).clone().to_vector() == naive_mm(ai, b.rows(i, i + 1).view({5, 4}).clone(), false, false).to_vector());
    CHECK(d.rows(i, i + 1).view({7, 4}).clone().to_vector() == naive_mm(ai, w, false, false).to_vector());
  }
}

TEST_CASE("matmul and linear: gradients", "[ops][matmul][grad]") {
  for (int64_t n : {1, 7, 65}) {
    DYNAMIC_SECTION("n = " << n) {
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          auto a = randn(ta ? Shape{2, 5, n} : Shape{2, n, 5}, 1), b = randn(tb ? Shape{2, 3, 5} : Shape{2, 5, 3}, 2);
          auto w = randn(tb ? Shape{3, 5} : Shape{5, 3}, 3);
          auto a2 = randn(ta ? Shape{5, n} : Shape{n, 5}, 4);
          CHECK_GRADS(gradcheck([=](auto& v) { return matmul(v[0], v[1], ta, tb); }, {a, b}), 1e-5);  // batched
          CHECK_GRADS(gradcheck([=](auto& v) { return matmul(v[0], v[1], ta, tb); }, {a, w}), 1e-5);  // shared b
          CHECK_GRADS(gradcheck([=](auto& v) { return matmul(v[0], v[1], ta, tb); }, {a2, b}), 1e-5); // shared a
        }
      auto x = randn({n, 2, 7}, 5), W = randn({3, 7}, 6), bias = randn({3}, 7);
      CHECK_GRADS(gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); }, {x, W, bias}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& v) { return linear(v[0], v[1]); }, {x, W}), 1e-5);
    }
  }
  // linear == matmul with the transposed weight, plus the bias
  auto x = randn({4, 6}, 8), W = randn({5, 6}, 9), b = randn({5}, 10);
  CHECK(allclose(linear(x, W, b), matmul(x, W, false, true) + b, 1e-12, 1e-12));
  CHECK_THROWS_WITH(linear(x, randn({5, 7}, 1)), Catch::Contains("linear") && Catch::Contains("[4,6]") &&
                                                     Catch::Contains("[5,7]"));
}

namespace {
// Puts float GEMMs back on the built-in kernels when a test that loaded a BLAS ends, passed or not.
struct BackToBuiltin {
  ~BackToBuiltin() { backend::cpu::use_blas(""); }
};
// C = alpha·op(A)·op(B) + beta·C through backend::cpu::gemm, on row-major
// matrices stored with a leading dimension 3 wider than their rows.
std::vector<float> run_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                            const std::vector<float>& c0) {
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  const int64_t lda = ac + 3, ldb = bc + 3, ldc = N + 3;
  std::vector<float> A(size_t(ar * lda)), B(size_t(br * ldb)), C = c0;
  for (size_t i = 0; i < A.size(); ++i) A[i] = float(int64_t(i * 7 % 9) - 4);  // whole numbers: exact products
  for (size_t i = 0; i < B.size(); ++i) B[i] = float(int64_t(i * 5 % 7) - 3);
  backend::cpu::gemm<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  return C;
}
}  // namespace

TEST_CASE("gemm: floats on a BLAS loaded at run time equal the built-in kernels'", "[ops][matmul][blas]") {
  BackToBuiltin restore;
  backend::cpu::use_blas("");
  REQUIRE(backend::cpu::blas_library().empty());
  auto* calls = static_cast<std::atomic<int64_t>*>(dlsym(dlopen(SEEMORE_FAKE_BLAS, RTLD_NOW), "fake_blas_calls"));
  REQUIRE(calls);
  // Small products, and products big enough to be split over the threads, by
  // rows (300) and by columns (20 rows, 501 columns), with ragged blocks; beta
  // 0 must overwrite a C full of NaN, beta 0.5 must scale it.
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 9, 13}, {300, 70, 256}, {20, 501, 512}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 0.5f}) {
          INFO("M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb << " beta " << beta);
          std::vector<float> c0(size_t(M * (N + 3)));
          for (size_t i = 0; i < c0.size(); ++i) c0[i] = beta == 0 ? std::nanf("") : float(int64_t(i % 11) - 5);
          backend::cpu::use_blas("");
          const auto builtin = run_gemm(ta, tb, M, N, K, 2.0f, beta, c0);
          backend::cpu::use_blas(SEEMORE_FAKE_BLAS);
          CHECK(backend::cpu::gemm_library() == SEEMORE_FAKE_BLAS);
          const int64_t before = calls->load();
          const auto blas = run_gemm(ta, tb, M, N, K, 2.0f, beta, c0);
          CHECK(calls->load() > before);
          bool same = true;  // the padding past each row of C is left as it was, too
          for (size_t i = 0; i < c0.size(); ++i)
            same = same && (blas[i] == builtin[i] || (std::isnan(blas[i]) && std::isnan(builtin[i])));
          CHECK(same);
          CHECK(std::isnan(blas[size_t(N)]) == (beta == 0));  // first padding element: untouched
        }
  // Doubles stay on Eigen: they are the reference the float kernels are tested against.
  const int64_t before = calls->load();
  auto a = small_ints({65, 13}, 1), b = small_ints({13, 9}, 2);
  CHECK(matmul(a, b).to_vector() == naive_mm(a, b, false, false).to_vector());
  CHECK(calls->load() == before);
  // The whole model runs the same on it: the layers' float products through the BLAS.
  auto x = Tensor<float>::from_vector({2, 3}, {1, 2, 3, 4, 5, 6}), w = Tensor<float>::from_vector({2, 3}, {1, 0, -1, 2, 1, 0});
  CHECK(linear(x, w).to_vector() == std::vector<float>{-2, 4, -2, 13});
  CHECK(calls->load() > before);
}

TEST_CASE("gemm: a BLAS that cannot be used is refused, and the choice stays", "[ops][matmul][blas]") {
  BackToBuiltin restore;
  CHECK_THROWS_WITH(backend::cpu::use_blas("/nonexistent/libblas.so"),
                    Catch::Contains("use_blas: cannot load '/nonexistent/libblas.so'"));
  CHECK_THROWS_WITH(backend::cpu::use_blas("libm.so.6"), Catch::Contains("'libm.so.6' has no sgemm_"));
  CHECK_THROWS_WITH(backend::cpu::use_blas(SEEMORE_WRONG_BLAS),
                    Catch::Contains("gets a 2x3 by 3x2 product wrong") && Catch::Contains(SEEMORE_WRONG_BLAS));
  CHECK(backend::cpu::blas_library().empty());
  backend::cpu::use_blas(SEEMORE_FAKE_BLAS);
  CHECK_THROWS(backend::cpu::use_blas(SEEMORE_WRONG_BLAS));
  CHECK(backend::cpu::gemm_library() == SEEMORE_FAKE_BLAS);
}

TEST_CASE("gemm: the machine's BLAS, when it has one, equals the built-in kernels", "[ops][matmul][blas]") {
  const char* path = "libblas.so.3";  // Debian's alternative: reference BLAS, OpenBLAS or BLIS
  void* probe = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (!probe) probe = dlopen(path, RTLD_NOW);
  if (!probe) {
    WARN("no " << path << " on this machine: skipped");
    return;
  }
  BackToBuiltin restore;
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{7, 9, 13}, {300, 70, 256}, {20, 501, 512}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb);
        std::vector<float> c0(size_t(M * (N + 3)), 1.0f);
        backend::cpu::use_blas("");
        const auto builtin = run_gemm(ta, tb, M, N, K, 1.0f, 1.0f, c0);
        backend::cpu::use_blas(path);
        CHECK(run_gemm(ta, tb, M, N, K, 1.0f, 1.0f, c0) == builtin);
      }
}
