#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

using namespace seemore;
using TD = Tensor<double>;

TEST_CASE("autograd: gradients accumulate through shared subexpressions", "[autograd]") {
  auto x = TD::from_vector({3}, {1, 2, 3}).requires_grad_();
  auto y = x * x;         // x²
  auto z = sum(y + x);    // Σ x² + x, y and x both feed the sum
  z.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 5, 7});
  // A second backward on a fresh graph adds into .grad.
  sum(x * 2.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{5, 7, 9});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: leaf gradients own their buffers", "[autograd]") {
  // add passes one gradient to both inputs, reshape a view of it: each .grad
  // must still be a buffer of its own (a gradient no one else holds is handed
  // over without a copy; one that is shared is copied).
  auto a = TD::from_vector({2, 2}, {1, 2, 3, 4}).requires_grad_();
  auto b = TD::from_vector({2, 2}, {5, 6, 7, 8}).requires_grad_();
  auto c = TD::from_vector({4}, {1, 1, 1, 1}).requires_grad_();
  auto w = TD::from_vector({2, 2}, {1, 2, 3, 4});
  sum((a + b + reshape(c, {2, 2})) * w).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{1, 2, 3, 4});
  a.grad().data()[0] = 100;
  CHECK(b.grad().to_vector() == std::vector<double>{1, 2, 3, 4});
  CHECK(c.grad().to_vector() == std::vector<double>{1, 2, 3, 4});
  // A handed-over gradient (matmul's, fresh) is still summed into by the next backward.
  auto x = TD::from_vector({2, 2}, {1, 0, 0, 1}).requires_grad_();
  sum(matmul(x, w)).backward();
  const auto first = x.grad().to_vector();
  sum(matmul(x, w)).backward();
  for (size_t i = 0; i < first.size(); ++i) CHECK(x.grad().to_vector()[i] == 2 * first[i]);
}

TEST_CASE("autograd: no_grad and detach record nothing", "[autograd]") {
  auto x = TD::ones({2}).requires_grad_();
  {
    NoGradGuard ng;
    auto y = x * 3.0;
    CHECK_FALSE(y.requires_grad());
  }
  auto d = (x * 3.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(grad_enabled());
}

TEST_CASE("autograd: misuse gives clear errors", "[autograd]") {
  auto x = TD::ones({2, 2}).requires_grad_();
  auto y = x * 2.0;
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("single value") && Catch::Contains("[2,2]"));
  auto c = TD::ones({1});
  CHECK_THROWS_WITH(c.backward(), Catch::Contains("does not require grad"));
  CHECK_THROWS_WITH(add(TD::ones({2, 3}), TD::ones({4})), Catch::Contains("add") && Catch::Contains("[2,3]") &&
                                                               Catch::Contains("[4]"));
  CHECK_THROWS_WITH(matmul(TD::ones({2, 3}), TD::ones({4, 5})), Catch::Contains("matmul") &&
                                                                   Catch::Contains("[2,3]") && Catch::Contains("[4,5]"));
  auto l = sum(x * 2.0);
  l.backward();
  CHECK_THROWS_WITH(l.backward(), Catch::Contains("already freed"));
  CHECK_THROWS_WITH(y.requires_grad_(), Catch::Contains("leaf"));
}

TEST_CASE("autograd: backward frees the graph's saved buffers", "[autograd]") {
  auto x = TD::ones({4, 4}).requires_grad_();
  auto h = gelu(x);
  std::weak_ptr<Node<double>> node = h.grad_fn();
  auto loss = sum(h);
  REQUIRE_FALSE(node.expired());
  loss.backward();
  // The node object stays reachable from h, but its closure (with the saved input) is gone.
  CHECK_THROWS_WITH(sum(h).backward(), Catch::Contains("already freed"));
  CHECK(node.lock()->inputs.empty());
}

TEST_CASE("autograd: an intermediate no backward saved is freed with its last handle", "[autograd]") {
  // GELU keeps its derivative on the CPU, not its input, and a sum keeps
  // nothing: y, the input of both, is needed by no backward once z exists.
  auto x = TD::from_vector({2, 3}, {-1.5, -0.2, 0.0, 0.3, 1.1, 2.5}).requires_grad_();
  auto y = x * 3.0;
  std::weak_ptr<Storage<double>> y_data = y.impl_shared()->storage;
  auto z = gelu(y) + y;
  y = TD();
  CHECK(y_data.expired());
  sum(z).backward();
  // d/dx (GELU(3x) + 3x) = 3·GELU'(3x) + 3
  const auto xs = x.to_vector(), gx = x.grad().to_vector();
  for (size_t i = 0; i < xs.size(); ++i) {
    const double v = 3 * xs[i], cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
    CHECK(gx[i] == Approx(3 * (cdf + v * pdf) + 3).epsilon(1e-12));
  }
  // A leaf stays whole in the graph: its gradient lands on it.
  auto w = TD::ones({3}).requires_grad_();
  std::weak_ptr<Storage<double>> w_data = w.impl_shared()->storage;
  auto l = sum(w * 2.0);
  auto w_grad_target = w.impl_shared();
  w = TD();
  CHECK_FALSE(w_data.expired());
  l.backward();
  CHECK(TD(w_grad_target).grad().to_vector() == std::vector<double>{2, 2, 2});
}

TEST_CASE("autograd: a long chain does not overflow the stack", "[autograd]") {
  auto x = TD::ones({1}).requires_grad_();
  TD y = x;
  for (int i = 0; i < 100000; ++i) y = y + 0.0;
  sum(y).backward();
  CHECK(x.grad().item() == 1.0);
}
