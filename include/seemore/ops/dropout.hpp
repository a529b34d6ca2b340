// seemore/ops/dropout.hpp — inverted dropout with a counter-based mask.
//
// Element i is dropped when Philox(seed, base + ⌊i/4⌋) lane i%4, as a uniform
// in (0,1), is < p; base is reserved from the generator, so a given seed and
// call order reproduce the same masks on every backend. Identity when not
// training or p == 0 (the input itself is returned, no copy).
#pragma once

#include <seemore/ops/elementwise.hpp>

namespace seemore {

template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen) {
  SEEMORE_CHECK(p >= 0 && p < 1, "dropout: probability ", p, " outside [0, 1)");
  if (!training || p == 0) return x;
  const int64_t n = x.numel();
  const uint64_t base = gen.reserve(uint64_t(n + 3) / 4);
  auto out = Tensor<T>::empty(x.shape(), x.device());
  auto mask = Tensor<T>::empty(x.shape(), x.device());
  SEEMORE_DISPATCH(x.device(), dropout_forward, n, x.data(), out.data(), mask.data(), p, gen.seed(), base);
  autograd::record(out, "dropout", {x}, [mask](const Tensor<T>& g) { return std::vector<Tensor<T>>{mul(g, mask)}; });
  return out;
}

}  // namespace seemore
