// seemore/optim/adam.hpp — Adam and AdamW with torch.optim's update rules.
//
// Per parameter, step t (from 1):
//   Adam  (weight_decay λ adds λ·p to the gradient first):
//   AdamW (λ shrinks p by lr·λ first: p ← p·(1 − lr·λ)):
//     m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//     p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
// The last line is written exactly as torch computes it (not with m̂, v̂), so
// that the rounding matches and parity tests over many steps stay tight.
// Parameters whose gradient is undefined are skipped (their state does not move).
#pragma once

#include <seemore/backend/cpu/adam.hpp>
#include <seemore/optim/optimizer.hpp>

#include <cmath>

namespace seemore::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = false;  // true: AdamW
};

template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Tensor<T>> params, AdamOptions opt = {}) : Optimizer<T>(std::move(params)), opt_(opt) {
    for (auto& p : this->params_) {
      m_.push_back(Tensor<T>::zeros(p.shape(), p.device()));
      v_.push_back(Tensor<T>::zeros(p.shape(), p.device()));
      t_.push_back(0);
    }
  }
  void step() override {
#if SEEMORE_HAS_CUDA
    // Every CUDA parameter in one fused launch (kernels/adam.cuh).
    std::vector<kernels::AdamTensor<T>> on_gpu;
    int gpu = -1;
#endif
    for (size_t k = 0; k < this->params_.size(); ++k) {
      auto& p = this->params_[k];
      auto g = p.grad();
      if (!g.defined()) continue;
      SEEMORE_CHECK(g.device() == p.device() && m_[k].device() == p.device(), "Adam: parameter ", k, " is on ",
                    p.device().str(), " but its gradient or state is on ", g.device().str(), "/",
                    m_[k].device().str(), " (move the model before creating the optimizer)");
      const int64_t t = ++t_[k];
      const double bc1 = 1 - std::pow(opt_.beta1, double(t)), bc2 = 1 - std::pow(opt_.beta2, double(t));
      const T step_size = T(opt_.lr / bc1), bc2_sqrt = T(std::sqrt(bc2));
      const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), eps = T(opt_.eps), wd = T(opt_.weight_decay);
      const T shrink = T(1 - opt_.lr * opt_.weight_decay);
#if SEEMORE_HAS_CUDA
      if (p.device().is_cuda()) {
        SEEMORE_CHECK(gpu < 0 || gpu == p.device().index(), "Adam: parameters on two GPUs");
        gpu = p.device().index();
        on_gpu.push_back({p.data(), g.data(), m_[k].data(), v_[k].data(), p.numel(), step_size, bc2_sqrt});
        continue;
      }
#endif
      const bool decay = opt_.weight_decay != 0;
      backend::cpu::adam_update(p.numel(), p.data(), g.data(), m_[k].data(), v_[k].data(),
                                backend::cpu::AdamArgs<T>{b1, b2, eps, wd, shrink, step_size, bc2_sqrt,
                                                          decay && !opt_.decoupled, decay && opt_.decoupled});
    }
#if SEEMORE_HAS_CUDA
    if (!on_gpu.empty()) {
      backend::cuda::set_device(gpu);
      const bool l2 = opt_.weight_decay != 0 && !opt_.decoupled, decay = opt_.weight_decay != 0 && opt_.decoupled;
      backend::cuda::adam_step(on_gpu, kernels::AdamHyper<T>{T(opt_.beta1), T(opt_.beta2), T(opt_.eps),
                                                             T(opt_.weight_decay), T(1 - opt_.lr * opt_.weight_decay),
                                                             l2, decay});
    }
#endif
  }
  // State for checkpoints: first/second moments and the step count per parameter.
  std::vector<Tensor<T>>& exp_avg() { return m_; }
  std::vector<Tensor<T>>& exp_avg_sq() { return v_; }
  std::vector<int64_t>& steps() { return t_; }
  const AdamOptions& options() const { return opt_; }
  void set_lr(double lr) { opt_.lr = lr; }

 private:
  AdamOptions opt_;
  std::vector<Tensor<T>> m_, v_;
  std::vector<int64_t> t_;
};

// AdamW: Adam with decoupled weight decay (torch.optim.AdamW; its default λ is 0.01).
template <class T>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Tensor<T>> params, AdamOptions opt = {0.001, 0.9, 0.999, 1e-8, 0.01, true})
      : Adam<T>(std::move(params), with_decoupled(opt)) {}

 private:
  static AdamOptions with_decoupled(AdamOptions o) {
    o.decoupled = true;
    return o;
  }
};

}  // namespace seemore::optim
