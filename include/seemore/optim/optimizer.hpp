// seemore/optim/optimizer.hpp — what every optimizer shares: the parameter list.
#pragma once

#include <seemore/tensor.hpp>

#include <vector>

namespace seemore::optim {

template <class T>
class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor<T>> params) : params_(std::move(params)) {
    for (auto& p : params_) SEEMORE_CHECK(p.requires_grad(), "optimizer: a parameter does not require grad");
  }
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // Drops every parameter's gradient (set-to-none).
  void zero_grad() {
    for (auto& p : params_) p.zero_grad();
  }
  const std::vector<Tensor<T>>& params() const { return params_; }

 protected:
  std::vector<Tensor<T>> params_;
};

// Plain SGD: p -= lr·g.
template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Tensor<T>> params, double lr) : Optimizer<T>(std::move(params)), lr_(lr) {}
  void step() override {
    for (auto& p : this->params_) {
      auto g = p.grad();
      if (!g.defined()) continue;
#if SEEMORE_HAS_CUDA
      if (p.device().is_cuda()) {
        backend::cuda::set_device(p.device().index());
        backend::cuda::sgd_step(p.numel(), p.data(), g.data(), T(lr_));
        continue;
      }
#endif
      T* w = p.data();
      const T* d = g.data();
      for (int64_t i = 0; i < p.numel(); ++i) w[i] -= T(lr_) * d[i];
    }
  }

 private:
  double lr_;
};

}  // namespace seemore::optim
