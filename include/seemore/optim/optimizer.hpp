// seemore/optim/optimizer.hpp — what every optimizer shares: parameters in
// groups with their own learning rate and weight decay (torch.optim's
// param_groups), the names its saved state uses, and that state.
//
// Learning rates: every group keeps the rate it was created with
// (initial_lr); a schedule (optim/schedule.hpp) sets each group to
// initial_lr × factor, as torch.optim.lr_scheduler does, so groups keep their
// ratios. set_lr() sets every group to one rate.
#pragma once

#include <seemore/autograd.hpp>
#include <seemore/ops/elementwise.hpp>
#include <seemore/tensor.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace seemore::optim {

// Parameters that share a learning rate and weight decay. Unset fields take
// the optimizer's. `names`, when given, name the parameters in saved states
// and messages (else their index in the optimizer: "0", "1", ...).
template <class T>
struct ParamGroup {
  std::vector<Tensor<T>> params;
  std::vector<std::string> names;
  std::optional<double> lr, weight_decay;
};

// An optimizer's state as tensors (named "<kind>.<parameter name>") and a
// JSON description (its type, groups, parameter names and counters).
template <class T>
struct OptimizerState {
  std::vector<std::pair<std::string, Tensor<T>>> tensors;
  nlohmann::json info;
};

template <class T>
class Optimizer {
 public:
  struct Group {
    size_t begin, end;  // its parameters: params()[begin, end)
    double lr, initial_lr, weight_decay;
  };

  Optimizer(std::vector<Tensor<T>> params, double lr, double weight_decay)
      : Optimizer(std::vector<ParamGroup<T>>{ParamGroup<T>{std::move(params), {}, {}, {}}}, lr, weight_decay) {}
  Optimizer(std::vector<ParamGroup<T>> groups, double lr, double weight_decay) {
    SEEMORE_CHECK(lr >= 0 && weight_decay >= 0, "optimizer: lr (", lr, ") and weight_decay (", weight_decay,
                  ") must be >= 0");
    std::set<const void*> seen;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      auto& g = groups[gi];
      SEEMORE_CHECK(g.names.empty() || g.names.size() == g.params.size(), "optimizer: group ", gi, " has ",
                    g.params.size(), " parameters but ", g.names.size(), " names");
      const double glr = g.lr.value_or(lr), gwd = g.weight_decay.value_or(weight_decay);
      SEEMORE_CHECK(glr >= 0 && gwd >= 0, "optimizer: group ", gi, ": lr (", glr, ") and weight_decay (", gwd,
                    ") must be >= 0");
      const size_t begin = params_.size();
      for (size_t k = 0; k < g.params.size(); ++k) {
        auto& p = g.params[k];
        const std::string name = g.names.empty() ? std::to_string(params_.size()) : g.names[k];
        SEEMORE_CHECK(p.defined() && p.requires_grad(), "optimizer: parameter '", name,
                      "' is undefined or does not require grad");
        SEEMORE_CHECK(p.numel() == 0 || seen.insert(p.data()).second, "optimizer: parameter '", name,
                      "' is given twice (in two groups, or twice in one)");
        params_.push_back(p);
        names_.push_back(name);
        group_of_.push_back(groups_.size());
      }
      groups_.push_back({begin, params_.size(), glr, glr, gwd});
    }
  }
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // "adam", "sgd": what a saved state must have been written by.
  virtual std::string type() const = 0;

  // Drops every parameter's gradient (set-to-none).
  void zero_grad() {
    for (auto& p : params_) p.zero_grad();
  }
  const std::vector<Tensor<T>>& params() const { return params_; }
  const std::vector<std::string>& param_names() const { return names_; }
  const std::vector<Group>& groups() const { return groups_; }
  const Group& group_of(size_t param) const { return groups_[group_of_[param]]; }

  // Every group's learning rate to `lr`.
  void set_lr(double lr) {
    SEEMORE_CHECK(lr >= 0, "set_lr: the learning rate must be >= 0, got ", lr);
    for (auto& g : groups_) g.lr = lr;
  }
  // Every group's learning rate to its initial rate × factor (what schedules call).
  void set_lr_factor(double factor) {
    SEEMORE_CHECK(factor >= 0, "set_lr_factor: the factor must be >= 0, got ", factor);
    for (auto& g : groups_) g.lr = g.initial_lr * factor;
  }
  // The first group's rate: the optimizer's, when there is one group.
  double lr() const { return groups_.empty() ? 0.0 : groups_[0].lr; }

  // The state to save, and to restore with load_state_dict on an optimizer of
  // the same type over parameters of the same names and shapes.
  OptimizerState<T> state_dict() const {
    OptimizerState<T> s;
    s.info["type"] = type();
    s.info["params"] = names_;
    for (auto& g : groups_)
      s.info["groups"].push_back({{"size", g.end - g.begin}, {"lr", g.lr}, {"initial_lr", g.initial_lr},
                                  {"weight_decay", g.weight_decay}});
    save_extra(s);
    return s;
  }
  void load_state_dict(const OptimizerState<T>& s) {
    const nlohmann::json& info = s.info;
    SEEMORE_CHECK(info.is_object() && info.contains("type") && info.contains("params") && info.contains("groups"),
                  "optimizer state: not an optimizer's state (no type, params or groups)");
    SEEMORE_CHECK(info["type"] == type(), "optimizer state: written by a '", info["type"].dump(),
                  "' optimizer, loading into '", type(), "'");
    const auto names = info["params"].get<std::vector<std::string>>();
    SEEMORE_CHECK(names == names_, "optimizer state: its ", names.size(), " parameters ",
                  describe_difference(names), "; the optimizer's must be the same, in the same order");
    SEEMORE_CHECK(info["groups"].size() == groups_.size(), "optimizer state: ", info["groups"].size(),
                  " parameter groups, the optimizer has ", groups_.size());
    std::vector<Group> groups = groups_;
    for (size_t i = 0; i < groups_.size(); ++i) {
      const auto& g = info["groups"][i];
      SEEMORE_CHECK(g.at("size").get<size_t>() == groups_[i].end - groups_[i].begin, "optimizer state: group ", i,
                    " has ", g.at("size").get<size_t>(), " parameters, the optimizer's has ",
                    groups_[i].end - groups_[i].begin);
      groups[i].lr = g.at("lr").get<double>();
      groups[i].initial_lr = g.at("initial_lr").get<double>();
      groups[i].weight_decay = g.at("weight_decay").get<double>();
      SEEMORE_CHECK(groups[i].lr >= 0 && groups[i].initial_lr >= 0 && groups[i].weight_decay >= 0,
                    "optimizer state: group ", i, " has a negative lr, initial_lr or weight_decay");
    }
    std::map<std::string, Tensor<T>> by_name(s.tensors.begin(), s.tensors.end());
    load_extra(by_name, info);  // checks everything before it changes anything
    groups_ = std::move(groups);
  }

 protected:
  // The subclass's per-parameter tensors and counters, into and out of a state.
  virtual void save_extra(OptimizerState<T>& s) const = 0;
  virtual void load_extra(const std::map<std::string, Tensor<T>>& tensors, const nlohmann::json& info) = 0;

  // in[kind + "." + name of parameter k], checked to have the parameter's
  // shape; an undefined tensor when absent and `optional`.
  Tensor<T> state_tensor(const std::map<std::string, Tensor<T>>& in, const std::string& kind, size_t k,
                         bool optional = false) const {
    const std::string name = kind + "." + names_[k];
    auto it = in.find(name);
    if (it == in.end()) {
      SEEMORE_CHECK(optional, "optimizer state: missing tensor '", name, "'");
      return Tensor<T>();
    }
    SEEMORE_CHECK(it->second.shape() == params_[k].shape(), "optimizer state: '", name, "' has shape ",
                  to_string(it->second.shape()), ", the parameter has ", to_string(params_[k].shape()));
    return it->second.to(params_[k].device());
  }

  std::vector<Tensor<T>> params_;
  std::vector<std::string> names_;
  std::vector<Group> groups_;
  std::vector<size_t> group_of_;

 private:
  std::string describe_difference(const std::vector<std::string>& names) const {
    for (size_t i = 0; i < std::min(names.size(), names_.size()); ++i)
      if (names[i] != names_[i])
        return "differ at position " + std::to_string(i) + ": '" + names[i] + "' where the optimizer has '" +
               names_[i] + "'";
    return names.size() == names_.size() ? "match" : "and the optimizer's " + std::to_string(names_.size()) + " differ";
  }
};

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.SGD, per parameter (g its gradient, b its momentum buffer):
//   g ← g + λ·p;  b ← g at the first step, else μ·b + (1 − dampening)·g;
//   g ← g + μ·b (Nesterov) or b;  p ← p − lr·g
template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Tensor<T>> params, double lr) : SGD(std::move(params), with_lr(lr)) {}
  SGD(std::vector<Tensor<T>> params, SGDOptions o) : Optimizer<T>(std::move(params), o.lr, o.weight_decay), opt_(o) {
    init();
  }
  SGD(std::vector<ParamGroup<T>> groups, SGDOptions o) : Optimizer<T>(std::move(groups), o.lr, o.weight_decay), opt_(o) {
    init();
  }
  std::string type() const override { return "sgd"; }
  const SGDOptions& options() const { return opt_; }
  // Momentum buffers (undefined until a parameter's first step with momentum).
  const std::vector<Tensor<T>>& momentum_buffers() const { return buf_; }

  void step() override {
    const T mu = T(opt_.momentum), damp = T(1 - opt_.dampening);
    for (size_t k = 0; k < this->params_.size(); ++k) {
      auto& p = this->params_[k];
      auto g = p.grad();
      if (!g.defined()) continue;
      const auto& grp = this->group_of(k);
      const T lr = T(grp.lr), wd = T(grp.weight_decay);
      const bool first = !buf_[k].defined();
      if (mu != 0 && first) buf_[k] = Tensor<T>::zeros(p.shape(), p.device());
      if (!p.device().is_cpu()) {
        step_on_device(p, g, buf_[k], first, lr, wd);
        continue;
      }
      T* w = p.data();
      const T* d = g.data();
      T* b = mu != 0 ? buf_[k].data() : nullptr;
      for (int64_t i = 0; i < p.numel(); ++i) {
        T gi = d[i];
        if (wd != 0) gi += wd * w[i];
        if (b) {
          b[i] = first ? gi : mu * b[i] + damp * gi;
          gi = opt_.nesterov ? gi + mu * b[i] : b[i];
        }
        w[i] -= lr * gi;
      }
    }
  }

 protected:
  void save_extra(OptimizerState<T>& s) const override {
    for (size_t k = 0; k < buf_.size(); ++k)
      if (buf_[k].defined()) s.tensors.push_back({"momentum_buffer." + this->names_[k], buf_[k].clone()});
    s.info["momentum"] = opt_.momentum;
    s.info["dampening"] = opt_.dampening;
    s.info["nesterov"] = opt_.nesterov;
  }
  void load_extra(const std::map<std::string, Tensor<T>>& in, const nlohmann::json& info) override {
    std::vector<Tensor<T>> bufs(buf_.size());
    for (size_t k = 0; k < buf_.size(); ++k)
      if (auto t = this->state_tensor(in, "momentum_buffer", k, true); t.defined()) bufs[k] = t.clone();
    buf_ = std::move(bufs);
  }

 private:
  static SGDOptions with_lr(double lr) {
    SGDOptions o;
    o.lr = lr;
    return o;
  }
  void init() {
    SEEMORE_CHECK(opt_.momentum >= 0 && opt_.dampening >= 0 && opt_.dampening <= 1,
                  "SGD: momentum (", opt_.momentum, ") must be >= 0 and dampening (", opt_.dampening, ") in [0, 1]");
    SEEMORE_CHECK(!opt_.nesterov || (opt_.momentum > 0 && opt_.dampening == 0),
                  "SGD: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ", opt_.momentum,
                  ", dampening ", opt_.dampening, ")");
    buf_.resize(this->params_.size());
  }
  // The same update from tensor ops, for parameters off the CPU.
  void step_on_device(Tensor<T>& p, const Tensor<T>& grad, Tensor<T>& buf, bool first, T lr, T wd) {
    NoGradGuard no_grad;
    const double mu = opt_.momentum;
    if (mu == 0 && wd == 0) {
#if SEEMORE_HAS_CUDA
      backend::cuda::set_device(p.device().index());
      backend::cuda::sgd_step(p.numel(), p.data(), grad.data(), lr);
      return;
#endif
    }
    auto g = wd != 0 ? add(grad, affine(p, double(wd), 0.0)) : grad;
    if (mu != 0) {
      buf.copy_from(first ? g : add(affine(buf, mu, 0.0), affine(g, 1 - opt_.dampening, 0.0)));
      g = opt_.nesterov ? add(g, affine(buf, mu, 0.0)) : buf;
    }
    p.copy_from(sub(p, affine(g, double(lr), 0.0)));
  }

  SGDOptions opt_;
  std::vector<Tensor<T>> buf_;
};

}  // namespace seemore::optim
