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
    prepare();
    apply();
  }
  // A step in two halves. prepare(): the host's part — each parameter with a
  // gradient counts a step, and its bias corrections and the learning rate's
  // factors are computed (on a GPU, uploaded to the table the kernel reads).
  // apply(): the update itself, from what prepare() left, touching no host
  // state — so a captured CUDA graph can hold apply() alone and replay it
  // after a prepare() each step. A parameter without a gradient at prepare()
  // is skipped by both.
  void prepare() {
    pending_.assign(this->params_.size(), Pending{});
#if SEEMORE_HAS_CUDA
    std::vector<kernels::AdamTensor<T>> on_gpu;
    gpu_ = -1;
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
      pending_[k] = {true, T(opt_.lr / bc1), T(std::sqrt(bc2)), T(1 - opt_.lr * opt_.weight_decay)};
#if SEEMORE_HAS_CUDA
      if (p.device().is_cuda()) {
        SEEMORE_CHECK(gpu_ < 0 || gpu_ == p.device().index(), "Adam: parameters on two GPUs");
        gpu_ = p.device().index();
        on_gpu.push_back({p.data(), g.data(), m_[k].data(), v_[k].data(), p.numel(), pending_[k].step_size,
                          pending_[k].bc2_sqrt, pending_[k].shrink});
      }
#endif
    }
#if SEEMORE_HAS_CUDA
    if (gpu_ >= 0) {
      backend::cuda::set_device(gpu_);
      table_.upload(on_gpu);
    }
#endif
  }
  void apply() {
    SEEMORE_CHECK(pending_.size() == this->params_.size(), "Adam::apply: call prepare() first");
    const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), eps = T(opt_.eps), wd = T(opt_.weight_decay);
    const bool decay = opt_.weight_decay != 0;
    for (size_t k = 0; k < this->params_.size(); ++k) {
      const Pending& q = pending_[k];
      auto& p = this->params_[k];
      if (!q.active || !p.device().is_cpu()) continue;
      backend::cpu::adam_update(p.numel(), p.data(), p.grad().data(), m_[k].data(), v_[k].data(),
                                backend::cpu::AdamArgs<T>{b1, b2, eps, wd, q.shrink, q.step_size, q.bc2_sqrt,
                                                          decay && !opt_.decoupled, decay && opt_.decoupled});
    }
#if SEEMORE_HAS_CUDA
    if (gpu_ >= 0) {  // every CUDA parameter in one launch (kernels/adam.cuh)
      backend::cuda::set_device(gpu_);
      table_.launch(kernels::AdamHyper<T>{b1, b2, eps, wd, decay && !opt_.decoupled, decay && opt_.decoupled});
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
  struct Pending {
    bool active = false;
    T step_size = 0, bc2_sqrt = 0, shrink = 0;
  };
  AdamOptions opt_;
  std::vector<Tensor<T>> m_, v_;
  std::vector<int64_t> t_;
  std::vector<Pending> pending_;
#if SEEMORE_HAS_CUDA
  kernels::AdamTable<T> table_;
  int gpu_ = -1;
#endif
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
