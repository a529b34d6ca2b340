// seemore/autograd.hpp — reverse-mode autodiff over an eager graph.
//
// Every differentiable op that sees an input needing a gradient (and grad mode
// on) gives its output a Node: the op's name, its inputs, and a closure that
// maps the output's gradient to one gradient per input. backward() sorts the
// nodes reachable from the loss topologically, walks them in reverse, sums the
// gradients flowing into each node, and adds the gradients of leaves into
// their `.grad`. Each node's closure (and with it every buffer it saved) is
// released as soon as it has run, so the graph is freed by its own backward.
#pragma once

#include <seemore/backend/cpu/elementwise.hpp>
#include <seemore/backend/dispatch.hpp>
#include <seemore/tensor.hpp>

#include <unordered_map>
#include <unordered_set>

namespace seemore {

template <class T>
struct Node {
  using Backward = std::function<std::vector<Tensor<T>>(const Tensor<T>& grad_out)>;
  const char* name = "";
  std::vector<Tensor<T>> inputs;  // as seen by the op (handles; keep the graph reachable)
  Backward backward;              // one gradient per input; undefined where not needed
};

namespace autograd {

template <class T>
bool any_requires_grad(std::initializer_list<const Tensor<T>*> ts) {
  if (!grad_enabled()) return false;
  for (auto* t : ts)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

// Attaches a node to `out` when any input needs a gradient. `fn` must not
// capture `out` itself (that would be a reference cycle); capture out.detach().
template <class T, class F>
void record(Tensor<T>& out, const char* name, std::vector<Tensor<T>> inputs, F&& fn) {
  bool need = false;
  if (grad_enabled())
    for (auto& t : inputs) need = need || (t.defined() && t.requires_grad());
  if (!need) return;
  // A CPU input that is an op's result is kept as an edge only: its shape
  // and grad_fn, no data (the backward walks nodes, not values; what a
  // backward needs, its closure saved). So an intermediate no closure saved
  // (the input of a GELU that keeps its derivative, a residual sum) is freed
  // with its last handle instead of living until the backward reaches it.
  // Leaves stay whole: their gradients accumulate there. CUDA tensors keep
  // the handle: that path, and the step graph captured from it, cannot be
  // tested without a GPU.
  for (auto& t : inputs)
    if (t.defined() && t.grad_fn() && t.device().is_cpu()) {
      auto edge = std::make_shared<TensorImpl<T>>();
      edge->storage = std::make_shared<Storage<T>>(0, t.device());
      edge->shape = t.shape();
      edge->requires_grad = true;
      edge->grad_fn = t.grad_fn();
      t = Tensor<T>(std::move(edge));
    }
  auto node = std::make_shared<Node<T>>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::forward<F>(fn);
  auto* impl = out.impl_ptr();
  impl->grad_fn = std::move(node);
  impl->requires_grad = true;
}

// a + b (same shape) into a fresh tensor, with no graph: sums gradients.
template <class T>
Tensor<T> accumulate(const Tensor<T>& a, const Tensor<T>& b) {
  auto out = Tensor<T>::empty(a.shape(), a.device());
  const auto bc = backend::cpu::broadcast(a.shape(), b.shape(), "gradient accumulation");
  SEEMORE_DISPATCH(a.device(), add, bc, a.data(), b.data(), out.data());
  return out;
}

// Whether `g` is the only handle on its whole buffer: no other tensor, view
// or saved copy shares it, so handing it over cannot alias anything.
template <class T>
bool sole_handle(const Tensor<T>& g) {
  const auto& impl = g.impl_shared();
  return impl.use_count() == 1 && impl->storage.use_count() == 1 && impl->offset == 0 &&
         impl->storage->size() == size_t(g.numel()) && !impl->grad_fn && !impl->requires_grad;
}

template <class T>
void run_backward(const Tensor<T>& root, const Tensor<T>& seed) {
  SEEMORE_CHECK(root.defined(), "backward: undefined tensor");
  SEEMORE_CHECK(root.requires_grad(), "backward: the tensor does not require grad (no input of its graph does)");
  NoGradGuard no_grad;  // closures compute with plain ops

  if (root.is_leaf()) {
    root.impl_ptr()->grad = root.impl_ptr()->grad ? accumulate(Tensor<T>(root.impl_ptr()->grad), seed).impl_shared()
                                                  : seed.clone().impl_shared();
    if (root.impl_ptr()->grad_ready_hook) root.impl_ptr()->grad_ready_hook();
    return;
  }
  // Topological order by iterative DFS (graphs of thousands of nodes must not recurse).
  // Owning handles: clearing a node's inputs below may drop the last other reference to its parents.
  std::vector<std::shared_ptr<Node<T>>> order;
  std::unordered_set<Node<T>*> seen;
  std::vector<std::pair<std::shared_ptr<Node<T>>, size_t>> stack{{root.grad_fn(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    SEEMORE_CHECK(node->backward, "backward: the graph through '", node->name,
                  "' was already freed by an earlier backward()");
    if (next < node->inputs.size()) {
      const auto& in = node->inputs[next++];
      if (in.defined() && in.grad_fn() && !seen.count(in.grad_fn().get())) {
        seen.insert(in.grad_fn().get());
        stack.push_back({in.grad_fn(), 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  // Leaves with a grad_ready_hook: how many edges into them are still to be
  // walked. A hook runs when its count reaches zero (its gradient is complete).
  std::unordered_map<TensorImpl<T>*, int64_t> pending;
  for (auto& n : order)
    for (auto& in : n->inputs)
      if (in.defined() && in.requires_grad() && !in.grad_fn() && in.impl_ptr()->grad_ready_hook)
        ++pending[in.impl_ptr()];
  auto release = [&](Node<T>* node) {
    for (auto& in : node->inputs) {
      if (!in.defined() || in.grad_fn()) continue;
      auto p = pending.find(in.impl_ptr());
      if (p != pending.end() && --p->second == 0) {
        pending.erase(p);
        in.impl_ptr()->grad_ready_hook();
      }
    }
  };

  std::unordered_map<Node<T>*, Tensor<T>> grads;
  grads[root.grad_fn().get()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node<T>* node = it->get();
    auto found = grads.find(node);
    if (found == grads.end()) {  // no gradient reached it
      if (!pending.empty()) release(node);
      continue;
    }
    Tensor<T> gout = found->second;
    grads.erase(found);
    std::vector<Tensor<T>> gin = node->backward(gout);
    SEEMORE_CHECK(gin.size() == node->inputs.size(), "backward of '", node->name, "' returned ", gin.size(),
                  " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < gin.size(); ++i) {
      const Tensor<T>& in = node->inputs[i];
      const Tensor<T>& g = gin[i];
      if (!in.defined() || !in.requires_grad() || !g.defined()) continue;
      SEEMORE_CHECK(g.shape() == in.shape(), "backward of '", node->name, "': gradient ", to_string(g.shape()),
                    " for input ", i, " of shape ", to_string(in.shape()));
      if (in.grad_fn()) {
        auto& slot = grads[in.grad_fn().get()];
        slot = slot.defined() ? accumulate(slot, g) : g;
      } else {
        auto* impl = in.impl_ptr();
        if (impl->grad) {
          impl->grad = accumulate(Tensor<T>(impl->grad), g).impl_shared();
        } else if (sole_handle(g)) {
          // Nothing else can see this buffer (a Linear's weight gradient, say):
          // it becomes .grad as it is, saving a copy of every parameter per step.
          impl->grad = g.impl_shared();
          gin[i] = Tensor<T>();
        } else {
          impl->grad = g.clone().impl_shared();  // g may alias another tensor's gradient
        }
      }
    }
    if (!pending.empty()) release(node);
    node->backward = nullptr;  // frees everything the op saved
    node->inputs.clear();
  }
}

}  // namespace autograd

template <class T>
void Tensor<T>::backward() const {
  if constexpr (!differentiable) {
    detail::fail("backward: integer tensors have no gradient");
  } else {
    SEEMORE_CHECK(defined(), "backward: undefined tensor");
    SEEMORE_CHECK(numel() == 1, "backward: the loss must be a single value, got shape ", to_string(shape()),
                  " (reduce it with sum() or mean() first)");
    autograd::run_backward(*this, Tensor<T>::ones(shape(), device()));
  }
}

}  // namespace seemore
