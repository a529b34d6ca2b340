// seemore/backend/cuda/graph.hpp — device work captured once as a CUDA graph
// and replayed with one launch (nvcc only).
//
// A training step of a small model is hundreds of short kernels: launched one
// by one, the GPU waits on the host. Captured into a graph, the step is one
// launch. What that asks of the captured code:
// - no host synchronisation and no host read of device data (ops skip their
//   host-side checks while capturing(): the caller checks inputs before
//   copying them in);
// - no cudaMalloc: warm_up() runs the work once eagerly with the graph's
//   memory pool active, so the pool holds every block the step needs, and the
//   capture draws on it alone (allocator.hpp);
// - nothing that changes from step to step baked into a kernel's arguments:
//   such values live in device memory the host refreshes before each replay
//   (Adam's table, the dropout counter: train/step_graph.hpp).
// A capture that breaks one of these throws, with the reason; the caller
// then stays eager.
#pragma once

#include <seemore/backend/cuda/allocator.hpp>
#include <seemore/backend/cuda/context.hpp>

#if SEEMORE_HAS_CUDA
#include <string>

namespace seemore::backend::cuda {

// Allocations on `device` come from `pool` within the scope.
class PoolScope {
 public:
  PoolScope(int device, int pool) : device_(device), prev_(allocator().set_active_pool(device, pool)) {}
  ~PoolScope() { allocator().set_active_pool(device_, prev_); }
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;

 private:
  int device_, prev_;
};

class Graph {
 public:
  explicit Graph(int device) : device_(device) {
    ensure_cublas_workspace(device);
    pool_ = allocator().create_pool(device);
  }
  ~Graph() {
    reset();
    allocator().release_pool(device_, pool_);
  }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Runs fn now, with the graph's pool active: what it allocates stays cached
  // in the pool for the capture.
  template <class F>
  void warm_up(F&& fn) {
    PoolScope scope(device_, pool_);
    fn();
  }

  // Records fn's device work (it does not run). Throws, capturing nothing,
  // when fn does what a graph cannot hold.
  template <class F>
  void capture(F&& fn) {
    reset();
    SEEMORE_CUDA_CHECK(cudaSetDevice(device_));
    cudaStream_t s = stream(device_);
    SEEMORE_CUDA_CHECK(cudaStreamSynchronize(s));  // earlier work is done, not captured
    std::string error;
    cudaGraph_t g = nullptr;
    {
      PoolScope scope(device_, pool_);
      allocator().set_no_malloc(device_, true);
      capturing_flag() = true;
      cudaError_t st = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
      if (st != cudaSuccess) {
        error = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(st);
      } else {
        try {
          fn();
        } catch (const std::exception& e) {
          error = e.what();
        }
        st = cudaStreamEndCapture(s, &g);
        if (error.empty() && st != cudaSuccess) error = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(st);
      }
      capturing_flag() = false;
      allocator().set_no_malloc(device_, false);
    }
    (void)cudaGetLastError();  // a failed capture's error must not stick to the next call
    if (error.empty() && g) {
      const cudaError_t st = cudaGraphInstantiate(&exec_, g, 0);
      if (st != cudaSuccess) {
        exec_ = nullptr;
        error = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(st);
      }
    }
    if (!error.empty()) {
      if (g) cudaGraphDestroy(g);
      (void)cudaGetLastError();
      detail::fail("CUDA graph capture failed: ", error);
    }
    graph_ = g;
  }

  // The captured work, queued on the device's stream.
  void replay() {
    SEEMORE_CHECK(exec_, "CUDA graph: nothing captured");
    SEEMORE_CUDA_CHECK(cudaSetDevice(device_));
    SEEMORE_CUDA_CHECK(cudaGraphLaunch(exec_, stream(device_)));
    if (sync_launches()) SEEMORE_CUDA_CHECK(cudaStreamSynchronize(stream(device_)));
  }

  bool captured() const { return exec_ != nullptr; }
  int pool() const { return pool_; }

 private:
  void reset() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
  }

  int device_, pool_ = 0;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace seemore::backend::cuda
#endif
