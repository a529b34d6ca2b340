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
  Adam(std::vector<Tensor<T>> params, AdamOptions opt = {})
      : Optimizer<T>(std::move(params), opt.lr, opt.weight_decay), opt_(opt) {
    init();
  }
  // Groups with their own lr and weight decay; unset, they take `opt`'s.
  Adam(std::vector<ParamGroup<T>> groups, AdamOptions opt = {})
      : Optimizer<T>(std::move(groups), opt.lr, opt.weight_decay), opt_(opt) {
    init();
  }
  std::string type() const override { return "adam"; }
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
      const auto& grp = this->group_of(k);
      pending_[k] = {true, T(grp.lr / bc1), T(std::sqrt(bc2)), T(1 - grp.lr * grp.weight_decay), T(grp.weight_decay)};
#if SEEMORE_HAS_CUDA
      if (p.device().is_cuda()) {
        SEEMORE_CHECK(gpu_ < 0 || gpu_ == p.device().index(), "Adam: parameters on two GPUs");
        gpu_ = p.device().index();
        on_gpu.push_back({p.data(), g.data(), m_[k].data(), v_[k].data(), p.numel(), pending_[k].step_size,
                          pending_[k].bc2_sqrt, pending_[k].shrink, pending_[k].weight_decay});
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
    const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), eps = T(opt_.eps);
    for (size_t k = 0; k < this->params_.size(); ++k) {
      const Pending& q = pending_[k];
      auto& p = this->params_[k];
      if (!q.active || !p.device().is_cpu()) continue;
      const bool decay = q.weight_decay != 0;
      backend::cpu::adam_update(p.numel(), p.data(), p.grad().data(), m_[k].data(), v_[k].data(),
                                backend::cpu::AdamArgs<T>{b1, b2, eps, q.weight_decay, q.shrink, q.step_size,
                                                          q.bc2_sqrt, decay && !opt_.decoupled, decay && opt_.decoupled});
    }
#if SEEMORE_HAS_CUDA
    if (gpu_ >= 0) {  // every CUDA parameter in one launch (kernels/adam.cuh)
      backend::cuda::set_device(gpu_);
      table_.launch(kernels::AdamHyper<T>{b1, b2, eps, !opt_.decoupled, opt_.decoupled});
    }
#endif
  }
  // State for checkpoints: first/second moments and the step count per parameter.
  std::vector<Tensor<T>>& exp_avg() { return m_; }
  std::vector<Tensor<T>>& exp_avg_sq() { return v_; }
  std::vector<int64_t>& steps() { return t_; }
  // The defaults the groups started from (a group's own: groups()).
  const AdamOptions& options() const { return opt_; }

 protected:
  void save_extra(OptimizerState<T>& s) const override {
    for (size_t k = 0; k < m_.size(); ++k) {
      s.tensors.push_back({"exp_avg." + this->names_[k], m_[k].clone()});
      s.tensors.push_back({"exp_avg_sq." + this->names_[k], v_[k].clone()});
    }
    s.info["step"] = t_;
    s.info["betas"] = {opt_.beta1, opt_.beta2};
    s.info["eps"] = opt_.eps;
    s.info["decoupled"] = opt_.decoupled;
  }
  void load_extra(const std::map<std::string, Tensor<T>>& in, const nlohmann::json& info) override {
    SEEMORE_CHECK(info.contains("step") && info["step"].size() == m_.size(),
                  "optimizer state: Adam's step counts are missing or not one per parameter");
    SEEMORE_CHECK(info.value("decoupled", opt_.decoupled) == opt_.decoupled, "optimizer state: written by ",
                  opt_.decoupled ? "Adam" : "AdamW", "'s counterpart (", opt_.decoupled ? "Adam" : "AdamW",
                  " with the other weight decay); loading into ", opt_.decoupled ? "AdamW" : "Adam");
    std::vector<Tensor<T>> m, v;
    for (size_t k = 0; k < m_.size(); ++k) {
      m.push_back(this->state_tensor(in, "exp_avg", k));
      v.push_back(this->state_tensor(in, "exp_avg_sq", k));
    }
    auto t = info["step"].get<std::vector<int64_t>>();
    for (int64_t steps : t) SEEMORE_CHECK(steps >= 0, "optimizer state: a negative step count (", steps, ")");
    for (size_t k = 0; k < m_.size(); ++k) {  // into the same buffers: a CUDA graph may hold their addresses
      m_[k].copy_from(m[k]);
      v_[k].copy_from(v[k]);
    }
    t_ = std::move(t);
  }

 private:
  struct Pending {
    bool active = false;
    T step_size = 0, bc2_sqrt = 0, shrink = 0, weight_decay = 0;
  };
  void init() {
    SEEMORE_CHECK(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1 && opt_.eps >= 0,
                  "Adam: betas (", opt_.beta1, ", ", opt_.beta2, ") must be in [0, 1) and eps (", opt_.eps,
                  ") >= 0");
    for (auto& p : this->params_) {
      m_.push_back(Tensor<T>::zeros(p.shape(), p.device()));
      v_.push_back(Tensor<T>::zeros(p.shape(), p.device()));
      t_.push_back(0);
    }
  }
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
  AdamW(std::vector<ParamGroup<T>> groups, AdamOptions opt = {0.001, 0.9, 0.999, 1e-8, 0.01, true})
      : Adam<T>(std::move(groups), with_decoupled(opt)) {}

 private:
  static AdamOptions with_decoupled(AdamOptions o) {
    o.decoupled = true;
    return o;
  }
};

}  // namespace seemore::optim
