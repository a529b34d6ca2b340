// A two-layer classifier trained with seemore's public API: tensors, autograd,
// ops and Adam. It learns which of three interleaved spirals a 2-d point
// belongs to; the loss printed every 50 steps falls from ~1.1 towards 0.
#include <seemore/vlm.hpp>

#include <cmath>
#include <cstdio>

using namespace seemore;
using Tf = Tensor<float>;

int main() {
  Generator gen(0);
  const int64_t N = 300, classes = 3, hidden = 64;

  // Data: three spirals of 100 points each, with a little noise.
  auto x = Tf::empty({N, 2});
  std::vector<int32_t> labels(N);
  auto noise = Tf::randn({N, 2}, gen, 0.0, 0.1);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t c = i / (N / classes);
    const double r = double(i % (N / classes)) / double(N / classes);
    const double t = 4.0 * c + 4.0 * r;
    x.data()[2 * i] = float(r * std::sin(t)) + noise.data()[2 * i];
    x.data()[2 * i + 1] = float(r * std::cos(t)) + noise.data()[2 * i + 1];
    labels[size_t(i)] = int32_t(c);
  }
  auto y = Tensor<int32_t>::from_vector({N}, labels);

  // Parameters, initialised like torch.nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  auto init = [&](Shape s, int64_t fan_in) {
    const double b = 1.0 / std::sqrt(double(fan_in));
    return Tf::uniform(s, -b, b, gen).requires_grad_();
  };
  Tf w1 = init({hidden, 2}, 2), b1 = init({hidden}, 2);
  Tf w2 = init({classes, hidden}, hidden), b2 = init({classes}, hidden);
  optim::Adam<float> opt({w1, b1, w2, b2}, {0.01});

  float first = 0, last = 0;
  for (int step = 0; step <= 300; ++step) {
    Tf logits = linear(gelu(linear(x, w1, b1)), w2, b2);
    Tf loss = cross_entropy(logits, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, loss.item());
    (step == 0 ? first : last) = loss.item();
  }
  return last < 0.5f * first ? 0 : 1;  // it must have learned something
}
