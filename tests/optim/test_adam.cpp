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

TEST_CASE("optim: the vectorised Adam update matches the reference loop", "[optim][adam]") {
  // backend::cpu::adam_update (AVX-512 where the build has it, in chunks and
  // in parallel) against adam_update_reference, over five steps, for ragged
  // sizes and every weight-decay mode: bit-identical, since both fuse the same
  // multiply-adds and square root and division round exactly.
  for (int mode = 0; mode < 3; ++mode) {
    for (int64_t n : {1, 15, 16, 17, 70001}) {
      Generator gen(uint64_t(n) + uint64_t(mode));
      auto w0 = Tensor<float>::randn({n}, gen).to_vector();
      std::vector<float> w1 = w0, m0(size_t(n), 0.0f), m1 = m0, v0 = m0, v1 = m0;
      for (int t = 1; t <= 5; ++t) {
        auto g = Tensor<float>::randn({n}, gen).to_vector();
        const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.999, t);
        const backend::cpu::AdamArgs<float> a{0.9f, 0.999f, 1e-8f, 0.01f, float(1 - 1e-3 * 0.01),
                                              float(1e-3 / bc1), float(std::sqrt(bc2)), mode == 1, mode == 2};
        backend::cpu::adam_update_reference<float>(0, n, w0.data(), g.data(), m0.data(), v0.data(), a);
        backend::cpu::adam_update<float>(n, w1.data(), g.data(), m1.data(), v1.data(), a);
      }
      int64_t differ = 0;
      for (size_t i = 0; i < size_t(n); ++i) differ += w0[i] != w1[i] || m0[i] != m1[i] || v0[i] != v1[i];
      INFO("mode " << mode << ", n = " << n);
      CHECK(differ == 0);
    }
  }
}
