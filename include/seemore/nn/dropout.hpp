// seemore/nn/dropout.hpp — inverted dropout, active only in training mode.
#pragma once

#include <seemore/nn/module.hpp>

namespace seemore::nn {

template <class T>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p) : p_(p) { SEEMORE_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p); }
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
