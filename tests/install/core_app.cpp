// Built by the install test against seemore::core only: a small classifier
// composed from nn/ layers, trained with AdamW, weight-decay groups, warmup
// and cosine, clipping; saved and loaded (weights and optimizer) through
// safetensors. Exits non-zero if the loss does not fall or a reload differs.
#include <seemore/io/safetensors.hpp>
#include <seemore/nn/activation.hpp>
#include <seemore/nn/container.hpp>
#include <seemore/nn/linear.hpp>
#include <seemore/ops.hpp>
#include <seemore/optim/adam.hpp>
#include <seemore/optim/clip.hpp>
#include <seemore/optim/schedule.hpp>
#include <seemore/optim/state.hpp>

#include <cstdio>

using namespace seemore;

int main() {
  Generator gen(0);
  nn::Sequential<float> net(std::make_shared<nn::Linear<float>>(2, 16, true, gen), std::make_shared<nn::GELU<float>>(),
                            std::make_shared<nn::Linear<float>>(16, 2, true, gen));
  // Two classes: is x0 + x1 > 0?
  auto x = Tensor<float>::randn({64, 2}, gen);
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < 64; ++i) labels.push_back(x.to_vector()[size_t(2 * i)] + x.to_vector()[size_t(2 * i + 1)] > 0);
  auto y = Tensor<int32_t>::from_vector({64}, labels);
  optim::AdamW<float> opt(net.parameter_groups(0.01), {0.05, 0.9, 0.999, 1e-8, 0.01, true});
  const auto schedule = optim::linear_warmup(5, optim::cosine(95, 0.1));
  double first = 0, last = 0;
  for (int64_t step = 0; step < 100; ++step) {
    schedule.apply(opt, step);
    opt.zero_grad();
    auto loss = cross_entropy(net.forward(x), y);
    loss.backward();
    optim::clip_grad_norm(opt, 1.0);
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  io::save_safetensors("core_app.safetensors", net.state_dict());
  optim::save_optimizer_state("core_app_optim.safetensors", opt);
  Generator other(1);
  nn::Sequential<float> back(std::make_shared<nn::Linear<float>>(2, 16, true, other), std::make_shared<nn::GELU<float>>(),
                             std::make_shared<nn::Linear<float>>(16, 2, true, other));
  back.load_state_dict(io::load_safetensors("core_app.safetensors").as_map());
  optim::AdamW<float> opt2(back.parameter_groups(0.01));
  optim::load_optimizer_state("core_app_optim.safetensors", opt2);
  const bool same = back.forward(x).to_vector() == net.forward(x).to_vector();
  std::printf("core: loss %.4f -> %.4f over 100 steps; reloaded model %s\n", first, last, same ? "identical" : "DIFFERS");
  return last < 0.5 * first && same ? 0 : 1;
}
