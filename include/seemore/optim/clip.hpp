// seemore/optim/clip.hpp — gradient clipping by the global norm
// (torch.nn.utils.clip_grad_norm_).
//
//   total = (Σ over every gradient element |g|^p)^(1/p)   (p = ∞: max |g|)
//   if total > max_norm: every gradient ×= max_norm / (total + 1e-6)
//
// The norm is accumulated in double whatever T is. Unlike torch, a non-finite
// total leaves the gradients untouched (torch multiplies them all by NaN):
// the caller sees it in the result, with the first parameter at fault, and
// decides (skip the step, stop); ClipOptions::error_if_nonfinite throws
// instead, naming that parameter.
#pragma once

#include <seemore/ops/reduce.hpp>
#include <seemore/optim/optimizer.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace seemore::optim {

struct ClipOptions {
  double norm_type = 2.0;  // p ≥ 1, or infinity
  bool error_if_nonfinite = false;
};

struct ClipResult {
  double norm = 0;         // the total before clipping
  bool clipped = false;    // gradients were scaled
  std::string nonfinite;   // the first parameter whose gradient is not finite ("" when all are)
  bool finite() const { return nonfinite.empty(); }
};

namespace detail_clip {
// Σ|g|^p (or max |g| when p is infinite) of one gradient, in double.
template <class T>
double accumulate(const Tensor<T>& g, double p) {
  const bool inf = std::isinf(p);
  double acc = 0;
  if (g.device().is_cpu()) {
    const T* d = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) {
      const double a = std::abs(double(d[i]));
      acc = inf ? (a > acc || std::isnan(a) ? a : acc) : acc + (p == 2 ? a * a : p == 1 ? a : std::pow(a, p));
    }
    return acc;
  }
  // Off the CPU: a device reduction, one number back (accumulated in T there).
  NoGradGuard no_grad;
  SEEMORE_CHECK(p == 2, "clip_grad_norm: norm_type ", p, " is computed on the CPU only; use 2 for GPU gradients");
  return double(sum(mul(g, g)).item());
}
}  // namespace detail_clip

// Clips `params`' gradients (undefined gradients are skipped); `names`, when
// given, name them in the result and errors.
template <class T>
ClipResult clip_grad_norm(const std::vector<Tensor<T>>& params, double max_norm, ClipOptions o = {},
                          const std::vector<std::string>& names = {}) {
  SEEMORE_CHECK(max_norm >= 0 && !std::isnan(max_norm), "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  SEEMORE_CHECK(o.norm_type >= 1, "clip_grad_norm: norm_type must be >= 1 or infinity, got ", o.norm_type);
  SEEMORE_CHECK(names.empty() || names.size() == params.size(), "clip_grad_norm: ", names.size(), " names for ",
                params.size(), " parameters");
  const double p = o.norm_type;
  const bool inf = std::isinf(p);
  ClipResult r;
  double acc = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    auto g = params[k].grad();
    if (!g.defined()) continue;
    const double a = detail_clip::accumulate(g, p);
    if (!std::isfinite(a) && r.nonfinite.empty()) r.nonfinite = names.empty() ? std::to_string(k) : names[k];
    acc = inf ? std::max(acc, a) : acc + a;
  }
  r.norm = inf ? acc : p == 2 ? std::sqrt(acc) : p == 1 ? acc : std::pow(acc, 1.0 / p);
  // A finite sum can still overflow when p > 1: the total is then infinite too.
  if (r.nonfinite.empty() && !std::isfinite(r.norm)) r.nonfinite = "(the sum overflows)";
  if (!r.finite()) {
    SEEMORE_CHECK(!o.error_if_nonfinite, "clip_grad_norm: the total gradient norm is ", r.norm,
                  "; the first non-finite gradient is parameter '", r.nonfinite, "'");
    return r;
  }
  const double coef = max_norm / (r.norm + 1e-6);
  if (coef >= 1) return r;
  r.clipped = true;
  NoGradGuard no_grad;
  for (auto& param : params) {
    auto g = param.grad();
    if (!g.defined()) continue;
    if (g.device().is_cpu()) {
      T* d = g.data();
      const T c = T(coef);
      for (int64_t i = 0; i < g.numel(); ++i) d[i] *= c;
    } else {
      g.copy_from(affine(g, coef, 0.0));
    }
  }
  return r;
}

// Every parameter of an optimizer, named as its state names them.
template <class T>
ClipResult clip_grad_norm(const Optimizer<T>& opt, double max_norm, ClipOptions o = {}) {
  return clip_grad_norm(opt.params(), max_norm, o, opt.param_names());
}

}  // namespace seemore::optim
