// seemore/kernels/adam.cuh — Adam/AdamW over every parameter in one launch.
//
// Contract (same as optim/adam.hpp on the CPU): per element, in place,
//   g ← g + λ·p (Adam with weight decay) | p ← p·(1 − lr·λ) (AdamW)
//   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//   p ← p − step_size · m / (√v / √(1−β2^t) + ε),  step_size = lr / (1−β1^t)
// written in torch's order, with the same fused multiply-adds as the CPU
// update (backend/cpu/adam.hpp), so the rounding matches.
//
// A model has ~100 parameter tensors, many tiny (biases, LayerNorm weights):
// one launch per tensor would be ~100 launches of a few hundred threads. The
// host instead cuts every tensor into chunks of kAdamChunk elements and sends
// one table of chunks; block b updates chunk b. The table (pointers and the
// per-tensor bias corrections) is copied to the device once per step.
#pragma once

#include <seemore/backend/cuda/allocator.hpp>
#include <seemore/kernels/common.cuh>

#include <vector>

#if SEEMORE_KERNELS
namespace seemore::kernels {

constexpr int64_t kAdamChunk = 8192;

template <class T>
struct AdamChunk {
  T* p;
  const T* g;
  T* m;
  T* v;
  int64_t n;          // elements in this chunk
  T step_size, bc2_sqrt;
};

template <class T>
struct AdamHyper {
  T beta1, beta2, eps, weight_decay, shrink;  // shrink = 1 − lr·λ (AdamW)
  bool l2, decoupled;
};

// ------------------------------------------------------------------ kernels

template <class T>
__global__ void adam_kernel(const AdamChunk<T>* chunks, AdamHyper<T> hp) {
  const AdamChunk<T> c = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    T w = c.p[i], gi = c.g[i];
    // The fused multiply-adds are written out, as in backend/cpu/adam.hpp, so
    // the rounding does not depend on what nvcc chooses to contract.
    if (hp.l2) gi = dfma(hp.weight_decay, w, gi);
    if (hp.decoupled) w *= hp.shrink;
    const T m = dfma(hp.beta1, c.m[i], (T(1) - hp.beta1) * gi);
    const T v = dfma(hp.beta2, c.v[i], (T(1) - hp.beta2) * gi * gi);
    c.m[i] = m;
    c.v[i] = v;
    c.p[i] = w - c.step_size * m / (dsqrt(v) / c.bc2_sqrt + hp.eps);
  }
}

// ------------------------------------------------------------------ launchers

// One tensor's part of the step, as the optimizer sees it.
template <class T>
struct AdamTensor {
  T* p;
  const T* g;
  T* m;
  T* v;
  int64_t n;
  T step_size, bc2_sqrt;
};

template <class T>
void launch_adam(const std::vector<AdamTensor<T>>& tensors, const AdamHyper<T>& hp) {
  std::vector<AdamChunk<T>> table;
  for (const auto& t : tensors)
    for (int64_t o = 0; o < t.n; o += kAdamChunk)
      table.push_back({t.p + o, t.g + o, t.m + o, t.v + o, std::min(kAdamChunk, t.n - o), t.step_size, t.bc2_sqrt});
  if (table.empty()) return;
  SEEMORE_CHECK(table.size() <= 0x7fffffffu, "adam: too many chunks");
  const int device = backend::cuda::current_device();
  cudaStream_t s = backend::cuda::current_stream();
  auto& alloc = backend::cuda::allocator();
  const size_t bytes = table.size() * sizeof(AdamChunk<T>);
  auto* dtable = static_cast<AdamChunk<T>*>(alloc.allocate(bytes, device));
  SEEMORE_CUDA_CHECK(cudaMemcpyAsync(dtable, table.data(), bytes, cudaMemcpyHostToDevice, s));
  launch(adam_kernel<T>, unsigned(table.size()), kThreads, 0, s, dtable, hp);
  SEEMORE_CUDA_LAUNCH_CHECK();
  // `table` is pageable host memory: wait until the copy has read it.
  SEEMORE_CUDA_CHECK(cudaStreamSynchronize(s));
  alloc.deallocate(dtable, device);
}

// p ← p − lr·g over one tensor (SGD).
template <class T>
__global__ void sgd_kernel(int64_t n, T* p, const T* g, T lr) {
  SEEMORE_GRID_STRIDE(i, n) p[i] -= lr * g[i];
}
template <class T>
void launch_sgd(int64_t n, T* p, const T* g, T lr) {
  if (n == 0) return;
  launch(sgd_kernel<T>, grid_for(n), kThreads, 0, backend::cuda::current_stream(), n, p, g, lr);
  SEEMORE_CUDA_LAUNCH_CHECK();
}

}  // namespace seemore::kernels
#endif
