#include <catch2/catch.hpp>

#include "../support/gradcheck.hpp"

using namespace seemore;
using namespace seemore::testing;

TEST_CASE("softmax and log_softmax: values, stability, gradients", "[ops][softmax][grad]") {
  auto x = TensorD::from_vector({1, 3}, {1, 2, 3});
  auto s = softmax(x).to_vector();
  const double z = std::exp(1) + std::exp(2) + std::exp(3);
  CHECK(s[0] == Approx(std::exp(1) / z).epsilon(1e-14));
  CHECK(s[2] == Approx(std::exp(3) / z).epsilon(1e-14));
  CHECK(log_softmax(x).to_vector()[1] == Approx(2 - std::log(z)).epsilon(1e-14));
  // Huge logits must not overflow.
  auto big = softmax(TensorD::from_vector({2}, {1000, 1000})).to_vector();
  CHECK(big[0] == Approx(0.5));
  // Along a non-last dimension: columns sum to one.
  auto c = softmax(randn({4, 3}, 1), 0);
  for (int64_t j = 0; j < 3; ++j) CHECK(c.at({0, j}) + c.at({1, j}) + c.at({2, j}) + c.at({3, j}) == Approx(1.0));
  for (int64_t n : {1, 7, 65}) {
    auto a = randn({3, n}, 2, 3.0);
    CHECK_GRADS(gradcheck([](auto& v) { return softmax(v[0]); }, {a}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return log_softmax(v[0]); }, {a}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return softmax(v[0], 0); }, {a}), 1e-5);
  }
}

TEST_CASE("cross_entropy: equals -mean log_softmax at the targets; ignore_index", "[ops][loss][grad]") {
  for (int64_t n : {1, 7, 65}) {
    auto logits = randn({n, 5}, 3, 2.0);
    std::vector<int32_t> tv;
    for (int64_t i = 0; i < n; ++i) tv.push_back(i % 3 == 1 ? -100 : int32_t(i % 5));
    auto t = Tensor<int32_t>::from_vector({n}, tv);
    auto ls = log_softmax(logits);
    double ref = 0;
    int cnt = 0;
    for (int64_t i = 0; i < n; ++i)
      if (tv[size_t(i)] != -100) {
        ref -= ls.at({i, tv[size_t(i)]});
        ++cnt;
      }
    CHECK(cross_entropy(logits, t).item() == Approx(ref / cnt).epsilon(1e-13));
    CHECK_GRADS(gradcheck([&](auto& v) { return cross_entropy(v[0], t); }, {logits}), 1e-5);
    // Leading dims are flattened: [2, n, 5] with [2, n] targets.
    auto l3 = randn({2, n, 5}, 4);
    auto t2 = Tensor<int32_t>::from_vector({2, n}, [&] { auto v = tv; v.insert(v.end(), tv.begin(), tv.end()); return v; }());
    CHECK_GRADS(gradcheck([&](auto& v) { return cross_entropy(v[0], t2); }, {l3}), 1e-5);
  }
  auto logits = randn({3, 4}, 5);
  CHECK_THROWS_WITH(cross_entropy(logits, Tensor<int32_t>::from_vector({3}, {0, 4, 1})),
                    Catch::Contains("target 4 at row 1"));
  CHECK_THROWS_WITH(cross_entropy(logits, Tensor<int32_t>::from_vector({2}, {0, 1})), Catch::Contains("do not match"));
  auto all_ignored = cross_entropy(logits, Tensor<int32_t>::from_vector({3}, {-100, -100, -100}));
  CHECK(std::isnan(all_ignored.item()));
}

TEST_CASE("layer_norm: fused op equals the composite of elementwise ops", "[ops][layernorm][grad]") {
  for (int64_t C : {1, 7, 65}) {
    DYNAMIC_SECTION("C = " << C) {
      auto x = randn({3, 2, C}, 1, 2.0), w = randn({C}, 2), b = randn({C}, 3);
      auto reference = [](const std::vector<TensorD>& v) {
        auto mu = mean(v[0], {-1}, true);
        auto xc = v[0] - mu;
        auto var = mean(xc * xc, {-1}, true);
        return xc / sqrt(var + 1e-5) * v[1] + v[2];
      };
      auto fused = [](const std::vector<TensorD>& v) { return layer_norm(v[0], v[1], v[2], 1e-5); };
      CHECK(allclose(fused({x, w, b}), reference({x, w, b}), 1e-12, 1e-12));
      // Same gradients as the reference path...
      std::vector<TensorD> in1{x.clone(), w.clone(), b.clone()}, in2{x.clone(), w.clone(), b.clone()};
      for (auto& t : in1) t.requires_grad_();
      for (auto& t : in2) t.requires_grad_();
      auto R = randn(x.shape(), 9);
      sum(fused(in1) * R).backward();
      sum(reference(in2) * R).backward();
      for (int k = 0; k < 3; ++k) CHECK(allclose(in1[size_t(k)].grad(), in2[size_t(k)].grad(), 1e-9, 1e-11));
      // ...and against finite differences.
      if (C > 1) CHECK_GRADS(gradcheck(fused, {x, w, b}), 1e-5);
    }
  }
  CHECK_THROWS_WITH(layer_norm(randn({2, 4}, 1), randn({3}, 1), randn({3}, 1)), Catch::Contains("must be [4]"));
}

// Float rows take Eigen's vectorised exp and reorderable sums; double rows the
// plain strict-order loops. Tolerance, relative to the largest value: 2e-6 for
// forwards (a few float ulps), 1e-5 for backwards, whose differences such as
// dy − Σ dy·y cancel; a wrong reduction or a lost tail element is off by
// orders more. LayerNorm of one column has an exactly zero input gradient, so
// its rows start at 2 columns.
TEST_CASE("row kernels: vectorised float path equals the plain double loops", "[ops][softmax][loss][layernorm]") {
  namespace cpu = backend::cpu;
  constexpr double kTol = 2e-6;
  for (int64_t rows : {1, 7, 37})
    for (int64_t n : {1, 7, 37, 65, 129, 300}) {  // rows of 256 and more take the per-row path
      DYNAMIC_SECTION("rows " << rows << " n " << n) {
        auto x = random_float_double(size_t(rows * n), uint64_t(rows * 1000 + n), 3.0);
        if (n > 3) x.f[1] = -std::numeric_limits<float>::infinity(), x.d[1] = -std::numeric_limits<double>::infinity();
        auto g = random_float_double(size_t(rows * n), 7, 1.0);
        for (bool log : {false, true}) {
          std::vector<float> yf(x.f.size()), dxf(x.f.size());
          std::vector<double> yd(x.d.size()), dxd(x.d.size());
          cpu::softmax_forward(rows, n, 1, x.f.data(), yf.data(), log);
          cpu::softmax_forward(rows, n, 1, x.d.data(), yd.data(), log);
          CHECK(rel_error(yf, yd) < kTol);
          // The backward from the double forward's output, so only the backward differs.
          std::vector<float> yd_f(yd.begin(), yd.end());
          std::vector<double> yd_d(yd_f.begin(), yd_f.end());
          if (log) {  // −∞ log-probabilities have no finite gradient to compare
            for (auto& v : yd_f) v = std::max(v, -50.f);
            for (auto& v : yd_d) v = std::max(v, -50.0);
          }
          cpu::softmax_backward(rows, n, 1, yd_f.data(), g.f.data(), dxf.data(), log);
          cpu::softmax_backward(rows, n, 1, yd_d.data(), g.d.data(), dxd.data(), log);
          CHECK(rel_error(dxf, dxd) < 1e-5);
        }
        // Cross-entropy: every third row ignored.
        auto logits = random_float_double(size_t(rows * n), uint64_t(rows + n), 4.0);
        std::vector<int32_t> t(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) t[size_t(r)] = r % 3 == 1 ? -100 : int32_t((r * 5) % n);
        std::vector<float> lf(static_cast<size_t>(rows)), df(logits.f.size());
        std::vector<double> ld(static_cast<size_t>(rows)), dd(logits.d.size());
        CHECK(cpu::cross_entropy_forward(rows, n, logits.f.data(), t.data(), -100, lf.data()) ==
              cpu::cross_entropy_forward(rows, n, logits.d.data(), t.data(), -100, ld.data()));
        CHECK(rel_error(lf, ld) < kTol);
        cpu::cross_entropy_backward(rows, n, logits.f.data(), t.data(), -100, 0.25f, df.data());
        cpu::cross_entropy_backward(rows, n, logits.d.data(), t.data(), -100, 0.25, dd.data());
        CHECK(rel_error(df, dd) < kTol);
        // LayerNorm over rows of n.
        if (n > 1) {
          const size_t R = size_t(rows), N = size_t(n);
          auto w = random_float_double(N, 11, 1.0), b = random_float_double(N, 12, 1.0);
          std::vector<float> of(R * N), mf(R), sf(R), dif(R * N), dwf(N), dbf(N);
          std::vector<double> od(R * N), md(R), sd(R), did(R * N), dwd(N), dbd(N);
          auto xin = random_float_double(size_t(rows * n), 13, 2.0);
          cpu::layernorm_forward(rows, n, xin.f.data(), w.f.data(), b.f.data(), 1e-5f, of.data(), mf.data(), sf.data());
          cpu::layernorm_forward(rows, n, xin.d.data(), w.d.data(), b.d.data(), 1e-5, od.data(), md.data(), sd.data());
          CHECK(rel_error(of, od) < 1e-5);  // x − mean cancels as a backward does
          cpu::layernorm_backward(rows, n, g.f.data(), xin.f.data(), w.f.data(), mf.data(), sf.data(), dif.data(),
                                  dwf.data(), dbf.data());
          cpu::layernorm_backward(rows, n, g.d.data(), xin.d.data(), w.d.data(), md.data(), sd.data(), did.data(),
                                  dwd.data(), dbd.data());
          CHECK(rel_error(dif, did) < 1e-5);
          CHECK(rel_error(dwf, dwd) < 1e-5);
          CHECK(rel_error(dbf, dbd) < kTol);
        }
      }
    }
}
