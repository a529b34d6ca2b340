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
