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
// one table of chunks; block b updates chunk b. The table (pointers, the
// per-tensor bias corrections and the learning rate's shrink) lives in a
// device buffer the optimizer keeps: AdamTable::upload refreshes it before a
// step, AdamTable::launch runs the update from it — so a captured CUDA graph,
// which holds the launch alone, reads each step's values.
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
  T step_size, bc2_sqrt, shrink;  // shrink = 1 − lr·λ (AdamW)
  T weight_decay;                 // λ of the tensor's group (Adam adds λ·p to g)
};

template <class T>
struct AdamHyper {
  T beta1, beta2, eps;
  bool l2, decoupled;  // Adam's weight decay or AdamW's (groups with λ = 0: neither changes anything)
};

// ------------------------------------------------------------------ kernels

template <class T>
__global__ void adam_kernel(const AdamChunk<T>* chunks, AdamHyper<T> hp) {
  const AdamChunk<T> c = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    T w = c.p[i], gi = c.g[i];
    // The fused multiply-adds are written out, as in backend/cpu/adam.hpp, so
    // the rounding does not depend on what nvcc chooses to contract.
    if (hp.l2 && c.weight_decay != T(0)) gi = dfma(c.weight_decay, w, gi);
    if (hp.decoupled) w *= c.shrink;
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
  T step_size, bc2_sqrt, shrink, weight_decay;
};

// The chunk table on the device, kept from step to step.
template <class T>
class AdamTable {
 public:
  AdamTable() = default;
  AdamTable(const AdamTable&) = delete;
  AdamTable& operator=(const AdamTable&) = delete;
  ~AdamTable() { reset(); }

  // This step's table to the device (waits for the copy: `host_` is pageable).
  void upload(const std::vector<AdamTensor<T>>& tensors) {
    host_.clear();
    for (const auto& t : tensors)
      for (int64_t o = 0; o < t.n; o += kAdamChunk)
        host_.push_back({t.p + o, t.g + o, t.m + o, t.v + o, std::min(kAdamChunk, t.n - o), t.step_size, t.bc2_sqrt,
                         t.shrink, t.weight_decay});
    SEEMORE_CHECK(host_.size() <= 0x7fffffffu, "adam: too many chunks");
    const int device = backend::cuda::current_device();
    if (host_.size() > capacity_ || device != device_) {
      reset();
      device_ = device;
      capacity_ = host_.size();
      // From the shared cache even inside a CUDA graph's pool (graph.hpp): the
      // table outlives the step, and the pool's blocks are the step's temporaries.
      auto& alloc = backend::cuda::allocator();
      const int pool = alloc.set_active_pool(device, 0);
      table_ = static_cast<AdamChunk<T>*>(alloc.allocate(capacity_ * sizeof(AdamChunk<T>), device));
      alloc.set_active_pool(device, pool);
    }
    chunks_ = host_.size();
    if (!chunks_) return;
    cudaStream_t s = backend::cuda::current_stream();
    SEEMORE_CUDA_CHECK(cudaMemcpyAsync(table_, host_.data(), chunks_ * sizeof(AdamChunk<T>), cudaMemcpyHostToDevice, s));
    SEEMORE_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  // The update, from the table last uploaded.
  void launch(const AdamHyper<T>& hp) const {
    if (!chunks_) return;
    kernels::launch(adam_kernel<T>, unsigned(chunks_), kThreads, 0, backend::cuda::current_stream(), table_, hp);
    SEEMORE_CUDA_LAUNCH_CHECK();
  }

 private:
  void reset() {
    if (table_) backend::cuda::allocator().deallocate(table_, device_);
    table_ = nullptr;
    capacity_ = 0;
  }
  std::vector<AdamChunk<T>> host_;
  AdamChunk<T>* table_ = nullptr;
  size_t capacity_ = 0, chunks_ = 0;
  int device_ = -1;
};

// One step in one go (tests, benchmarks): upload, then launch.
template <class T>
void launch_adam(const std::vector<AdamTensor<T>>& tensors, const AdamHyper<T>& hp) {
  AdamTable<T> table;
  table.upload(tensors);
  table.launch(hp);
  SEEMORE_CUDA_CHECK(cudaStreamSynchronize(backend::cuda::current_stream()));  // before the table is freed
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
