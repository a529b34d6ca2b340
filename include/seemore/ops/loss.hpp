// seemore/ops/loss.hpp — cross-entropy fused with log-softmax, mean over the
// rows whose target is not ignore_index (torch.nn.functional.cross_entropy).
#pragma once

#include <seemore/backend/cpu/cross_entropy.hpp>
#include <seemore/ops/common.hpp>

namespace seemore {

#if SEEMORE_HAS_CUDA
namespace detail {
// The CUDA form reads nothing back: the divisor is counted on the device and
// kept there for the backward, which reads the upstream gradient there too,
// so a training step can be captured into a CUDA graph. The targets' range
// check is the one host read, skipped while capturing (the caller checks).
template <class T>
Tensor<T> cross_entropy_cuda(const Tensor<T>& logits, const Tensor<int32_t>& targets, int32_t ignore_index,
                             int64_t divide_by, int64_t N, int64_t V) {
  const Device dev = logits.device();
  if (host_checks(dev)) {
    auto tv = targets.to_vector();
    backend::cpu::check_targets(N, V, tv.data(), ignore_index);
  }
  backend::cuda::set_device(dev.index());
  auto losses = Tensor<T>::empty({N}, dev), out = Tensor<T>::empty({}, dev);
  auto count = Tensor<double>::empty({1}, dev);
  backend::cuda::cross_entropy_forward(N, V, logits.data(), targets.data(), ignore_index, losses.data());
  backend::cuda::loss_mean_counted(N, losses.data(), targets.data(), ignore_index, divide_by, out.data(), count.data());
  auto sl = logits.detach();
  autograd::record(out, "cross_entropy", {logits}, [=](const Tensor<T>& g) {
    backend::cuda::set_device(dev.index());
    auto gl = Tensor<T>::empty(sl.shape(), dev);
    backend::cuda::cross_entropy_backward_dev(N, V, sl.data(), targets.data(), ignore_index, g.data(), count.data(),
                                              gl.data());
    return std::vector<Tensor<T>>{gl};
  });
  return out;
}
}  // namespace detail
#endif

// logits [..., V], targets [...] (int32). Returns a scalar. If every target is
// ignored the mean is 0/0 = NaN, as in PyTorch.
// divide_by > 0 replaces the count of targets as the divisor: a slice of a
// batch (a micro-batch, a data-parallel rank's share) divides its sum by the
// whole batch's count, so that the slices' losses and gradients add up to
// the batch's mean exactly as if it had been computed whole.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<int32_t>& targets, int32_t ignore_index = -100,
                        int64_t divide_by = 0) {
  SEEMORE_CHECK(divide_by >= 0, "cross_entropy: divide_by must be >= 0 (0: the count of targets), got ", divide_by);
  SEEMORE_CHECK(logits.ndim() >= 1, "cross_entropy: logits must have a class dimension");
  const int64_t V = logits.size(-1), N = logits.numel() / std::max<int64_t>(V, 1);
  Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  SEEMORE_CHECK(targets.shape() == lead, "cross_entropy: targets ", to_string(targets.shape()),
                " do not match logits ", to_string(logits.shape()), " (expected ", to_string(lead), ")");
  detail::check_same_device("cross_entropy", logits, targets);
#if SEEMORE_HAS_CUDA
  if (logits.device().is_cuda()) return detail::cross_entropy_cuda(logits, targets, ignore_index, divide_by, N, V);
#endif
  auto tv = targets.to_vector();
  backend::cpu::check_targets(N, V, tv.data(), ignore_index);
  int64_t count = 0;
  for (auto t : tv) count += t != ignore_index;
  if (divide_by > 0) count = divide_by;
  auto losses = Tensor<T>::empty({N}, logits.device());
  SEEMORE_DISPATCH(logits.device(), cross_entropy_forward, N, V, logits.data(), targets.data(), ignore_index,
                   losses.data());
  auto out = Tensor<T>::empty({}, logits.device());
  SEEMORE_DISPATCH(logits.device(), loss_mean, N, losses.data(), count, out.data());
  auto sl = logits.detach();
  autograd::record(out, "cross_entropy", {logits}, [=](const Tensor<T>& g) {
    auto gl = Tensor<T>::empty(sl.shape(), g.device());
    const T scale = T(double(g.item()) / double(count));
    SEEMORE_DISPATCH(g.device(), cross_entropy_backward, N, V, sl.data(), targets.data(), ignore_index, scale, gl.data());
    return std::vector<Tensor<T>>{gl};
  });
  return out;
}

}  // namespace seemore
