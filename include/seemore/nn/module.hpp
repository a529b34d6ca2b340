// seemore/nn/module.hpp — the base of every layer: named parameters in
// PyTorch's dotted naming, child modules, train/eval mode, device moves, and
// the state dict (the reference's names and shapes, for checkpoints).
#pragma once

#include <seemore/ops.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace seemore::nn {

// Tensors by name, in the order a model lists them.
template <class T>
using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

template <class T>
class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Every trainable tensor, named as the module tree names it ("blocks.0.ln1.weight").
  NamedTensors<T> named_parameters() const {
    NamedTensors<T> out;
    collect_parameters(out, "");
    return out;
  }
  std::vector<Tensor<T>> parameters() const {
    std::vector<Tensor<T>> out;
    for (auto& [n, t] : named_parameters()) out.push_back(t);
    return out;
  }
  int64_t num_parameters() const {
    int64_t n = 0;
    for (auto& [name, t] : named_parameters()) n += t.numel();
    return n;
  }

  void train(bool on = true) {
    training_ = on;
    for (auto& [n, c] : children_) c->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter to `dev` (in place: handles held elsewhere follow).
  void to(Device dev) {
    for (auto& [n, t] : params_) t.move_to_(dev);
    for (auto& [n, c] : children_) c->to(dev);
    device_ = dev;
  }
  Device device() const { return device_; }

  // Dropout draws from this generator (shared by the whole tree).
  void set_generator(Generator* g) {
    gen_ = g;
    for (auto& [n, c] : children_) c->set_generator(g);
  }

  // The checkpoint view: names and shapes of the reference implementation. By
  // default the same as named_parameters(); modules that store a fused layout
  // (attention's QKV) override export_state/import_state.
  NamedTensors<T> state_dict() const {
    NamedTensors<T> out;
    export_state(out, "");
    return out;
  }
  // Copies values in from `state` (names as state_dict()). Every expected name
  // must be present with its shape; names this model does not use are reported.
  void load_state_dict(const std::map<std::string, Tensor<T>>& state, bool strict = true) {
    std::set<std::string> used;
    import_state(state, "", used);
    if (strict) {
      std::string extra;
      for (auto& [name, t] : state)
        if (!used.count(name)) extra += (extra.empty() ? "" : ", ") + name;
      SEEMORE_CHECK(extra.empty(), "load_state_dict: unexpected tensors not used by the model: ", extra);
    }
  }

 protected:
  Tensor<T> register_parameter(const std::string& name, Tensor<T> t) {
    t.requires_grad_(true);
    params_.push_back({name, t});
    return t;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.push_back({name, m});
    return m;
  }
  Generator* generator() const { return gen_; }

 public:
  // The recursive halves of state_dict()/load_state_dict(); override both to
  // store parameters in another layout than the checkpoint's.
  virtual void export_state(NamedTensors<T>& out, const std::string& prefix) const {
    for (auto& [n, t] : params_) out.push_back({prefix + n, t.detach()});
    for (auto& [n, c] : children_) c->export_state(out, prefix + n + ".");
  }
  virtual void import_state(const std::map<std::string, Tensor<T>>& in, const std::string& prefix,
                            std::set<std::string>& used) {
    for (auto& [n, t] : params_) copy_in(in, prefix + n, t, used);
    for (auto& [n, c] : children_) c->import_state(in, prefix + n + ".", used);
  }
 protected:
  // dst <- in[name], shape-checked.
  static void copy_in(const std::map<std::string, Tensor<T>>& in, const std::string& name, Tensor<T>& dst,
                      std::set<std::string>& used) {
    auto it = in.find(name);
    SEEMORE_CHECK(it != in.end(), "load_state_dict: missing tensor '", name, "' (expected shape ",
                  to_string(dst.shape()), ")");
    SEEMORE_CHECK(it->second.shape() == dst.shape(), "load_state_dict: tensor '", name, "' has shape ",
                  to_string(it->second.shape()), ", the model expects ", to_string(dst.shape()));
    auto src = it->second.to(dst.device());
    copy_into(dst, src);
    used.insert(name);
  }
  static void copy_into(Tensor<T>& dst, const Tensor<T>& src) {
    dst.copy_from(src);
  }

  bool training_ = true;
  Device device_ = Device::cpu();
  Generator* gen_ = nullptr;
  NamedTensors<T> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;

 private:
  void collect_parameters(NamedTensors<T>& out, const std::string& prefix) const {
    for (auto& [n, t] : params_) out.push_back({prefix + n, t});
    for (auto& [n, c] : children_) c->collect_parameters(out, prefix + n + ".");
  }
};

// torch.nn.Linear's default init: U(−1/√fan_in, 1/√fan_in) for weight and bias.
template <class T>
Tensor<T> kaiming_uniform(const Shape& s, int64_t fan_in, Generator& g) {
  const double b = 1.0 / std::sqrt(double(std::max<int64_t>(fan_in, 1)));
  return Tensor<T>::uniform(s, -b, b, g);
}

}  // namespace seemore::nn
