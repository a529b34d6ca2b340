#include <catch2/catch.hpp>

#include "../support/gradcheck.hpp"

using namespace seemore;
using namespace seemore::testing;

TEST_CASE("elementwise: broadcasting forward values", "[ops][elementwise]") {
  auto a = TensorD::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  auto b = TensorD::from_vector({3}, {10, 20, 30});
  auto c = TensorD::from_vector({2, 1}, {100, 200});
  CHECK((a + b).to_vector() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK((a - c).to_vector() == std::vector<double>{-99, -98, -97, -196, -195, -194});
  CHECK((b * c).shape() == Shape{2, 3});
  CHECK((b * c).to_vector() == std::vector<double>{1000, 2000, 3000, 2000, 4000, 6000});
  CHECK((a / b).at({1, 2}) == Approx(0.2));
  CHECK((a * 2.0 + 1.0).to_vector() == std::vector<double>{3, 5, 7, 9, 11, 13});
  CHECK((1.0 - a).at({0, 0}) == 0.0);
  CHECK((-a).at({1, 1}) == -5.0);
  CHECK(exp(TensorD::zeros({2})).to_vector() == std::vector<double>{1, 1});
  CHECK(sqrt(TensorD::full({1}, 9.0)).item() == 3.0);
  CHECK(broadcast_to(b, {2, 3}).to_vector() == std::vector<double>{10, 20, 30, 10, 20, 30});
  CHECK(sum_to(a, {1, 3}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(sum_to(a, {2, 1}).to_vector() == std::vector<double>{6, 15});
  CHECK_THROWS_WITH(broadcast_to(a, {3, 3}), Catch::Contains("cannot be broadcast"));
}

TEST_CASE("elementwise: gradients with broadcasting over awkward shapes", "[ops][elementwise][grad]") {
  for (int64_t n : {1, 7, 65}) {
    DYNAMIC_SECTION("n = " << n) {
      auto a = randn({n, 3, 5}, 1), b = randn({3, 1}, 2), c = randn({n, 1, 5}, 3);
      auto pos = add(mul(randn({3, 5}, 4), randn({3, 5}, 4)), TensorD::full({3, 5}, 0.5));  // away from 0 for div
      CHECK_GRADS(gradcheck([](auto& x) { return x[0] + x[1]; }, {a, b}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return x[0] - x[1]; }, {a, c}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return x[0] * x[1]; }, {b, c}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return x[0] / x[1]; }, {a, pos}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return x[0] * 3.0 - 2.0; }, {a}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return exp(x[0]); }, {b}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return log(x[0]); }, {pos}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return sqrt(x[0]); }, {pos}), 1e-5);
      CHECK_GRADS(gradcheck([n](auto& x) { return broadcast_to(x[0], {n, 3, 5}); }, {b}), 1e-5);
      CHECK_GRADS(gradcheck([](auto& x) { return sum_to(x[0], {3, 1}); }, {a}), 1e-5);
    }
  }
}

TEST_CASE("activations: values and gradients", "[ops][activation][grad]") {
  auto x = TensorD::from_vector({4}, {-2, -0.5, 0.5, 3});
  auto g = gelu(x).to_vector();
  // 0.5·x·(1 + erf(x/√2)) evaluated independently
  for (size_t i = 0; i < 4; ++i) {
    double v = x.to_vector()[i];
    CHECK(g[i] == Approx(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))).epsilon(1e-14));
  }
  CHECK(gelu(x, GeluApprox::Tanh).to_vector()[3] == Approx(2.996362607918227).epsilon(1e-14));
  CHECK(relu(x).to_vector() == std::vector<double>{0, 0, 0.5, 3});
  // In training the CPU op keeps GELU'(x) from the forward: its gradient is
  // the backward kernel's on x, bit for bit in floats (the processor's form;
  // test_cpu_forms.cpp checks every form), to rounding in doubles (Eigen may
  // contract the two expressions differently).
  for (int64_t n : {1, 15, 4099}) {
    const auto xv = random_float_double(size_t(n), 8, 3.0), gv = random_float_double(size_t(n), 9, 1.0);
    auto xf = Tensor<float>::from_vector({n}, xv.f), gf = Tensor<float>::from_vector({n}, gv.f);
    auto xr = xf.clone().requires_grad_();
    auto y = gelu(xr);
    sum(y * gf).backward();
    std::vector<float> want(static_cast<size_t>(n)), want_y(static_cast<size_t>(n));
    seemore::backend::cpu::gelu_backward<float>(n, xf.data(), gf.data(), want.data(), false);
    seemore::backend::cpu::gelu_forward<float>(n, xf.data(), want_y.data(), false);
    CHECK(xr.grad().to_vector() == want);
    CHECK(y.to_vector() == want_y);
    auto xd = TensorD::from_vector({n}, xv.d), gd = TensorD::from_vector({n}, gv.d);
    auto xdr = xd.clone().requires_grad_();
    sum(gelu(xdr) * gd).backward();
    std::vector<double> want_d(static_cast<size_t>(n));
    seemore::backend::cpu::gelu_backward<double>(n, xd.data(), gd.data(), want_d.data(), false);
    const auto got_d = xdr.grad().to_vector();
    for (int64_t i = 0; i < n; ++i) CHECK(got_d[size_t(i)] == Approx(want_d[size_t(i)]).margin(1e-14));
  }
  for (int64_t n : {1, 7, 65}) {
    auto a = randn({n, 7}, 5, 2.0);
    CHECK_GRADS(gradcheck([](auto& v) { return gelu(v[0]); }, {a}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return gelu(v[0], GeluApprox::Tanh); }, {a}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return relu(v[0]); }, {a}), 1e-5);
  }
}

TEST_CASE("dropout: seeded, scaled, identity in eval", "[ops][dropout][grad]") {
  auto x = TensorD::ones({1000});
  Generator g1(5), g2(5);
  auto a = dropout(x, 0.3, true, g1), b = dropout(x, 0.3, true, g2);
  CHECK(a.to_vector() == b.to_vector());
  int zeros = 0;
  for (double v : a.to_vector()) {
    if (v == 0) ++zeros;
    else CHECK(v == Approx(1 / 0.7));
  }
  CHECK(zeros > 240);
  CHECK(zeros < 360);
  Generator g3(5);
  CHECK(dropout(x, 0.3, false, g3).shares_storage_with(x));
  CHECK_THROWS_WITH(dropout(x, 1.0, true, g3), Catch::Contains("outside [0, 1)"));
  // Gradient: the same mask, so the check reseeds the generator at each call.
  auto in = randn({7, 65}, 9);
  CHECK_GRADS(gradcheck([](auto& v) { Generator g(11); return dropout(v[0], 0.25, true, g); }, {in}), 1e-5);
}

TEST_CASE("dropout: the mask is exactly Philox uniform(seed, base, i) >= p", "[ops][dropout]") {
  // The kernel tests raw 32-bit lanes against a threshold; the definition
  // compares the uniform in double. Probabilities on and next to a lane's
  // boundary (x + 0.5)/2^32 included.
  for (double p : {0.1, 0.25, 0.5, 0.9, 7.5 / 4294967296.0, std::nextafter(7.5 / 4294967296.0, 1.0),
                   std::nextafter(7.5 / 4294967296.0, 0.0)}) {
    const int64_t n = 4 * 40000 + 3;  // several blocks, a ragged end, parallel
    std::vector<float> mask(static_cast<size_t>(n));
    backend::cpu::dropout_mask<float>(n, mask.data(), p, 77, 1000);
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += (mask[size_t(i)] != 0) != (Philox::uniform(77, 1000, uint64_t(i)) >= p);
    INFO("p = " << p);
    CHECK(wrong == 0);
  }
  // Groups of 64 elements (16 blocks at once): ragged ends, a base whose 64-bit
  // counter carries into its high word inside a group, and the fused forward.
  for (uint64_t base : {uint64_t(0), uint64_t(0xFFFFFFFFull - 5), uint64_t(0xFFFFFFFFFFFFFFF0ull)}) {
    for (int64_t n : {1, 3, 63, 64, 65, 200}) {
      const double p = 0.37;
      std::vector<float> x(static_cast<size_t>(n)), y(x.size()), mask(x.size()), mask2(x.size());
      for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(i) - 20.5f;
      backend::cpu::dropout_forward<float>(n, x.data(), y.data(), mask.data(), p, 0x1234567890ABCDEFull, base);
      backend::cpu::dropout_mask<float>(n, mask2.data(), p, 0x1234567890ABCDEFull, base);
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i) {
        const bool keep = Philox::uniform(0x1234567890ABCDEFull, base, uint64_t(i)) >= p;
        const float m = keep ? float(1.0 / (1.0 - p)) : 0.0f;
        wrong += mask[size_t(i)] != m || mask2[size_t(i)] != m || y[size_t(i)] != x[size_t(i)] * m;
      }
      INFO("base " << base << ", n = " << n);
      CHECK(wrong == 0);
    }
  }
  // p = 0 keeps everything; a p whose threshold is 2^32 drops everything.
  for (double p : {0.0, 1.0 - 1e-12}) {
    std::vector<float> mask(100);
    backend::cpu::dropout_mask<float>(100, mask.data(), p, 5, 9);
    int64_t kept = 0;
    for (float m : mask) kept += m != 0;
    INFO("p = " << p);
    CHECK(kept == (p == 0.0 ? 100 : 0));
  }
  // On the boundary itself: every lane value x near the threshold of p.
  for (double p : {0.1, 0.3, 7.5 / 4294967296.0, std::nextafter(7.5 / 4294967296.0, 1.0), 0.999999}) {
    const uint64_t t = backend::cpu::keep_threshold(p);
    for (uint64_t x = t > 3 ? t - 3 : 0; x <= std::min<uint64_t>(t + 3, 0xffffffffu); ++x) {
      INFO("p = " << p << ", lane " << x);
      CHECK((x >= t) == (Philox::to_open01(uint32_t(x)) >= p));
    }
  }
}
