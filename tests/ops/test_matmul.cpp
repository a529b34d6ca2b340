#include <catch2/catch.hpp>

#include <tuple>

#include "../support/gradcheck.hpp"

using namespace seemore;
using namespace seemore::testing;

namespace {
// Naive triple loop on explicit transposes: the oracle for the Eigen GEMM.
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
