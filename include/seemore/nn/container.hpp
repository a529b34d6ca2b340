// seemore/nn/container.hpp — Sequential and ModuleList: children named by
// their index, as torch.nn names them ("0.weight", "layers.3.attn.proj.bias"),
// so state dicts and checkpoints carry PyTorch's names.
//
//   nn::Sequential<float> mlp;
//   mlp.push_back(std::make_shared<nn::Linear<float>>(64, 256, true, gen))
//      .push_back(std::make_shared<nn::GELU<float>>())
//      .push_back(std::make_shared<nn::Linear<float>>(256, 64, true, gen));
//   auto y = mlp.forward(x);                      // parameters "0.weight", "2.bias", ...
#pragma once

#include <seemore/nn/module.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace seemore::nn {

// Modules applied in order; each must have Tensor<T> forward(const Tensor<T>&) const.
template <class T>
class Sequential : public Module<T> {
 public:
  Sequential() = default;
  template <class... M>
  explicit Sequential(std::shared_ptr<M>... modules) {
    (push_back(std::move(modules)), ...);
  }

  template <class M>
  Sequential& push_back(std::shared_ptr<M> m) {
    static_assert(std::is_base_of_v<Module<T>, M>, "Sequential<T> holds Module<T>s of the same T");
    this->register_module(std::to_string(items_.size()), m);
    items_.push_back(m);
    calls_.push_back([m](const Tensor<T>& x) { return m->forward(x); });
    return *this;
  }
  Tensor<T> forward(const Tensor<T>& x) const {
    SEEMORE_CHECK(!calls_.empty(), "Sequential: forward of an empty Sequential (push_back its modules first)");
    Tensor<T> y = x;
    for (auto& f : calls_) y = f(y);
    return y;
  }
  size_t size() const { return items_.size(); }
  std::shared_ptr<Module<T>> operator[](size_t i) const { return at<Module<T>>(i); }
  // Child i as its own type: seq.at<nn::Linear<float>>(0)->weight.
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    SEEMORE_CHECK(i < items_.size(), "Sequential: index ", i, " out of range (", items_.size(), " modules)");
    auto m = std::dynamic_pointer_cast<M>(items_[i]);
    SEEMORE_CHECK(m, "Sequential: module ", i, " is not of the type asked for");
    return m;
  }

 private:
  std::vector<std::shared_ptr<Module<T>>> items_;
  std::vector<std::function<Tensor<T>(const Tensor<T>&)>> calls_;
};

// A list of modules of one type M, registered as "0", "1", ...; the owner
// decides how to call them (a stack of blocks, heads).
template <class M>
class ModuleList : public Module<typename M::scalar_type> {
 public:
  ModuleList() = default;
  ModuleList& push_back(std::shared_ptr<M> m) {
    this->register_module(std::to_string(items_.size()), m);
    items_.push_back(std::move(m));
    return *this;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::shared_ptr<M>& operator[](size_t i) const {
    SEEMORE_CHECK(i < items_.size(), "ModuleList: index ", i, " out of range (", items_.size(), " modules)");
    return items_[i];
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace seemore::nn
