#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

using namespace seemore;

namespace {
// Three steps with fixed gradients; the expected values are what torch.optim
// (1.13, float64) gives for the same parameters, gradients and options.
std::vector<double> run(bool decoupled) {
  auto p = Tensor<double>::from_vector({3}, {1.0, -2.0, 0.5}).requires_grad_();
  optim::AdamOptions o{0.1, 0.8, 0.99, 1e-6, 0.05, decoupled};
  optim::Adam<double> opt({p}, o);
  for (auto g : std::vector<std::vector<double>>{{0.3, -1.0, 2.0}, {0.1, 0.5, -0.2}, {-0.4, 0.0, 1.0}}) {
    p.set_grad(Tensor<double>::from_vector({3}, g));
    opt.step();
  }
  return p.to_vector();
}
}  // namespace

TEST_CASE("optim: Adam and AdamW follow torch.optim", "[optim]") {
  auto adam = run(false), adamw = run(true);
  const std::vector<double> torch_adam = {0.8143434752145698, -1.839398179711867, 0.2762725707341229};
  const std::vector<double> torch_adamw = {0.8196475033010511, -1.8348397182747582, 0.2717155704231655};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(adam[i] == Approx(torch_adam[i]).epsilon(1e-13));
    CHECK(adamw[i] == Approx(torch_adamw[i]).epsilon(1e-13));
  }
  // AdamW's default weight decay is torch's 0.01.
  auto q = Tensor<float>::ones({1}).requires_grad_();
  optim::AdamW<float> w({q});
  CHECK(w.options().weight_decay == 0.01);
  CHECK(w.options().decoupled);
  // A parameter without a gradient does not move.
  w.step();
  CHECK(q.item() == 1.0f);
}
