// seemore/nn/module.hpp — the base of every layer: named parameters in
// PyTorch's dotted naming, child modules, train/eval mode, device moves, and
// the state dict (the reference's names and shapes, for checkpoints).
#pragma once

#include <seemore/ops.hpp>
#include <seemore/optim/optimizer.hpp>

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
  using scalar_type = T;
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
  // Every parameter as one optimizer group, named (the names its saved state uses).
  optim::ParamGroup<T> parameter_group() const {
    optim::ParamGroup<T> g;
    for (auto& [n, t] : named_parameters()) {
      g.names.push_back(n);
      g.params.push_back(t);
    }
    return g;
  }
  // Two optimizer groups by the usual weight-decay rule: weights of two or
  // more dimensions decay by `weight_decay`; biases, norm weights and
  // embeddings (any parameter registered with decay = false) do not.
  //   optim::AdamW<float> opt(model.parameter_groups(0.1), options);
  std::vector<optim::ParamGroup<T>> parameter_groups(double weight_decay) const {
    std::vector<optim::ParamGroup<T>> g(2);
    g[0].weight_decay = weight_decay;
    g[1].weight_decay = 0.0;
    std::vector<std::pair<std::string, bool>> decays;
    collect_decay(decays, "");
    auto named = named_parameters();
    for (size_t k = 0; k < named.size(); ++k) {
      auto& grp = g[decays[k].second ? 0 : 1];
      grp.names.push_back(named[k].first);
      grp.params.push_back(named[k].second);
    }
    return g;
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
  // decay = false: never weight-decayed by parameter_groups() (embeddings, learned tokens).
  Tensor<T> register_parameter(const std::string& name, Tensor<T> t, bool decay = true) {
    SEEMORE_CHECK(!name.empty() && valid_name(name), "register_parameter: invalid name '", name, "'");
    for (auto& [n, p] : params_) SEEMORE_CHECK(n != name, "register_parameter: '", name, "' is registered twice");
    t.requires_grad_(true);
    params_.push_back({name, t});
    if (!decay || t.ndim() < 2) no_decay_.insert(name);
    return t;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    SEEMORE_CHECK(m, "register_module: '", name, "' is null");
    SEEMORE_CHECK(!name.empty() && valid_name(name), "register_module: invalid name '", name, "'");
    for (auto& [n, c] : children_) SEEMORE_CHECK(n != name, "register_module: '", name, "' is registered twice");
    children_.push_back({name, m});
    return m;
  }
  // Dotted paths of non-empty parts ("blocks.0" is a fine child name).
  static bool valid_name(const std::string& n) {
    return n.front() != '.' && n.back() != '.' && n.find("..") == std::string::npos;
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
  std::set<std::string> no_decay_;
  std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;

 private:
  void collect_decay(std::vector<std::pair<std::string, bool>>& out, const std::string& prefix) const {
    for (auto& [n, t] : params_) out.push_back({prefix + n, !no_decay_.count(n)});
    for (auto& [n, c] : children_) c->collect_decay(out, prefix + n + ".");
  }
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
