// seemore/nn/embedding.hpp — rows of a [V, C] table, initialised N(0, 1) as torch.nn.Embedding.
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

template <class T>
class Embedding : public Module<T> {
 public:
  Embedding(int64_t V, int64_t C, Generator& g) {
    SEEMORE_CHECK(V > 0 && C > 0, "Embedding: ", V, " rows of ", C, " values; both must be > 0");
    weight = this->register_parameter("weight", Tensor<T>::randn({V, C}, g), /*decay=*/false);
  }
  Tensor<T> forward(const Tensor<int32_t>& ids) const { return embedding(weight, ids); }
  Tensor<T> weight;
};

}  // namespace seemore::nn
