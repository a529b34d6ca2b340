// seemore/optim/schedule.hpp — learning-rate schedules: a factor of each
// group's initial rate for every step (from 0), as torch.optim.lr_scheduler
// applies them, usable with any optimizer.
//
//   constant()                 1
//   linear_warmup(w, after)    (step + 1) / w for step < w, then after(step − w)
//   cosine(n, floor)           floor + (1 − floor)·(1 + cos(π·min(step, n)/n))/2
//                              (CosineAnnealingLR with eta_min = floor·lr, closed form)
//   step_decay(every, γ)       γ^⌊step / every⌋ (StepLR)
//
//   auto s = optim::linear_warmup(100, optim::cosine(900, 0.1));
//   for (int64_t step = 0; step < 1000; ++step) { s.apply(opt, step); ...; opt.step(); }
#pragma once

#include <seemore/optim/optimizer.hpp>

#include <cmath>
#include <functional>
#include <memory>

namespace seemore::optim {

class Schedule {
 public:
  explicit Schedule(std::function<double(int64_t)> factor) : factor_(std::move(factor)) {}
  // The factor at `step` (≥ 0).
  double operator()(int64_t step) const {
    SEEMORE_CHECK(step >= 0, "schedule: step must be >= 0, got ", step);
    return factor_(step);
  }
  // Sets every group of `opt` to its initial rate × the factor at `step`.
  template <class T>
  void apply(Optimizer<T>& opt, int64_t step) const {
    opt.set_lr_factor((*this)(step));
  }

 private:
  std::function<double(int64_t)> factor_;
};

inline Schedule constant() {
  return Schedule([](int64_t) { return 1.0; });
}

inline Schedule linear_warmup(int64_t warmup, Schedule after = constant()) {
  SEEMORE_CHECK(warmup >= 0, "linear_warmup: warmup steps must be >= 0, got ", warmup);
  return Schedule([warmup, after](int64_t step) {
    return step < warmup ? double(step + 1) / double(warmup) : after(step - warmup);
  });
}

inline Schedule cosine(int64_t steps, double floor = 0.0) {
  SEEMORE_CHECK(steps > 0, "cosine: the decay needs steps > 0, got ", steps);
  SEEMORE_CHECK(floor >= 0 && floor <= 1, "cosine: floor is a fraction of the initial rate, in [0, 1]; got ", floor);
  return Schedule([steps, floor](int64_t step) {
    const double p = double(std::min(step, steps)) / double(steps);
    return floor + (1 - floor) * 0.5 * (1 + std::cos(3.141592653589793 * p));
  });
}

inline Schedule step_decay(int64_t every, double gamma) {
  SEEMORE_CHECK(every > 0 && gamma > 0, "step_decay: every (", every, ") and gamma (", gamma, ") must be > 0");
  return Schedule([every, gamma](int64_t step) { return std::pow(gamma, double(step / every)); });
}

}  // namespace seemore::optim
