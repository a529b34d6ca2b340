// tests/support/gradcheck.hpp — finite-difference gradient checks in double.
//
// For a function f of some tensors that returns any tensor y, the check uses
// the scalar L = Σ y ⊙ R with a fixed random R, so every output element's
// gradient is exercised. Analytic gradients come from backward(); numeric ones
// from central differences with step h. The error per element is
// |analytic − numeric| / max(|analytic|, |numeric|, floor), whose maximum the
// caller bounds (1e-5 in the op tests).
#pragma once

#include <seemore/vlm.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace seemore::testing {

using TensorD = Tensor<double>;

struct GradCheckResult {
  double max_rel_err = 0;
  std::string worst;  // "input i, element j: analytic a, numeric n"
};

inline GradCheckResult gradcheck(const std::function<TensorD(const std::vector<TensorD>&)>& f,
                                 std::vector<TensorD> inputs, double h = 1e-5, double floor = 1e-3,
                                 uint64_t seed = 1234) {
  for (auto& x : inputs) x = x.clone().requires_grad_(true);  // fresh leaves: no stale .grad
  TensorD y = f(inputs);
  Generator gen(seed);
  TensorD R = TensorD::randn(y.shape(), gen);
  auto scalar = [&](const TensorD& out) {
    long double s = 0;  // extended precision keeps the differences' round-off below 1e-12
    auto a = out.to_vector(), r = R.to_vector();
    for (size_t i = 0; i < a.size(); ++i) s += static_cast<long double>(a[i]) * r[i];
    return s;
  };
  sum(mul(y, R)).backward();
  GradCheckResult res;
  NoGradGuard ng;
  for (size_t k = 0; k < inputs.size(); ++k) {
    TensorD g = inputs[k].grad();
    std::vector<double> ga = g.defined() ? g.to_vector() : std::vector<double>(size_t(inputs[k].numel()), 0.0);
    double* p = inputs[k].data();
    for (int64_t i = 0; i < inputs[k].numel(); ++i) {
      const double orig = p[i];
      p[i] = orig + h;
      const long double fp = scalar(f(inputs));
      p[i] = orig - h;
      const long double fm = scalar(f(inputs));
      p[i] = orig;
      const double num = double((fp - fm) / (2 * h)), an = ga[size_t(i)];
      const double err = std::abs(an - num) / std::max({std::abs(an), std::abs(num), floor});
      if (err > res.max_rel_err || !(err == err)) {
        res.max_rel_err = err == err ? err : 1e300;
        res.worst = "input " + std::to_string(k) + ", element " + std::to_string(i) + ": analytic " +
                    std::to_string(an) + ", numeric " + std::to_string(num);
      }
    }
  }
  return res;
}

inline TensorD randn(const Shape& s, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  return TensorD::randn(s, g, 0.0, scale);
}

// The same random values as float and double, for kernels whose float path is
// the fast one and whose double path is the plain reference.
struct FloatDouble {
  std::vector<float> f;
  std::vector<double> d;
};
inline FloatDouble random_float_double(size_t n, uint64_t seed, double scale) {
  auto t = randn({int64_t(n)}, seed, scale).to_vector();
  FloatDouble p;
  for (double v : t) p.f.push_back(float(v)), p.d.push_back(double(float(v)));
  return p;
}
// max |f − d| / max |d| over the finite entries of d; an infinite d must be
// matched exactly.
inline double rel_error(const std::vector<float>& f, const std::vector<double>& d) {
  if (f.size() != d.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (std::isinf(d[i])) {
      if (double(f[i]) != d[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    num = std::max(num, std::abs(double(f[i]) - d[i]));
    den = std::max(den, std::abs(d[i]));
  }
  return den > 0 ? num / den : num;
}

}  // namespace seemore::testing

// Catch2 helper: CHECK the max error and print the worst element when it fails.
#define CHECK_GRADS(result, tol)            \
  do {                                      \
    auto _r = (result);                     \
    INFO(_r.worst);                         \
    CHECK(_r.max_rel_err <= (tol));         \
  } while (0)
