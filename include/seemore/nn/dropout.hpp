// seemore/nn/dropout.hpp — inverted dropout, active only in training mode.
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

template <class T>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p) : p_(p) {}
  Tensor<T> forward(const Tensor<T>& x) const {
    if (!this->training_ || p_ == 0) return x;
    SEEMORE_CHECK(this->gen_, "Dropout: training needs a generator (Module::set_generator)");
    return dropout(x, p_, true, *this->gen_);
  }
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace seemore::nn
