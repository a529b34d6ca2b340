// seemore/distributed/nccl.hpp — NcclCommunicator: GPU ranks, one GPU each,
// summing device buffers with NCCL (CMake target seemore::nccl; nvcc only).
//
// NCCL needs a unique id handed to every rank before it starts. A host
// communicator does that (MpiCommunicator for several ranks, as llm.c does;
// LocalCommunicator for one) and also carries the host-side collectives (the
// checks, the bootstrap of a resumed state). The sums are queued on the
// device's seemore stream, so they are ordered after the kernels that made
// the gradients and before the optimizer's, with no host synchronisation;
// waiting on one polls an event with the timeout. NCCL adds in its own order
// (not rank order): with several ranks the bits depend on its algorithm.
#pragma once

#include <seemore/distributed/communicator.hpp>

#if SEEMORE_HAS_CUDA
#include <seemore/backend/cuda/context.hpp>

#include <nccl.h>

#include <chrono>
#include <thread>

namespace seemore::distributed {

namespace detail_nccl {
inline void check(ncclResult_t r, const char* call) {
  if (r != ncclSuccess) seemore::detail::fail(call, " failed: ", ncclGetErrorString(r));
}
template <class T>
ncclDataType_t type_of();
template <>
inline ncclDataType_t type_of<float>() { return ncclFloat32; }
template <>
inline ncclDataType_t type_of<double>() { return ncclFloat64; }
}  // namespace detail_nccl

class NcclCommunicator : public Communicator {
 public:
  // Every rank of `host` calls this with the GPU it trains on; the second
  // form keeps the host communicator alive as long as this one.
  NcclCommunicator(std::unique_ptr<Communicator> host, Device dev) : NcclCommunicator(*host, dev) {
    owned_host_ = std::move(host);
  }
  NcclCommunicator(Communicator& host, Device dev) : host_(host), dev_(dev) {
    SEEMORE_CHECK(dev.is_cuda(), "NcclCommunicator: needs a CUDA device, got ", dev.str());
    backend::cuda::set_device(dev.index());
    ncclUniqueId id;
    std::string bytes;
    if (host.rank() == 0) {
      detail_nccl::check(ncclGetUniqueId(&id), "ncclGetUniqueId");
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
    }
    bytes = host.broadcast(bytes, 0);
    SEEMORE_CHECK(bytes.size() == sizeof id, "NcclCommunicator: rank 0 sent a unique id of ", bytes.size(),
                  " bytes, expected ", sizeof id, " (different NCCL versions?)");
    std::memcpy(&id, bytes.data(), sizeof id);
    detail_nccl::check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
    set_timeout(host.timeout());
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  Communicator& host() const { return host_; }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string name() const override {
    int v = 0;
    ncclGetVersion(&v);
    return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100) +
           " over " + host_.name();
  }
  Device device() const override { return dev_; }

  std::unique_ptr<Pending> start_all_reduce(float* data, size_t n) override { return start_sum(data, n); }
  std::unique_ptr<Pending> start_all_reduce(double* data, size_t n) override { return start_sum(data, n); }

  std::vector<std::string> all_gather(const std::string& mine) override { return host_.all_gather(mine); }
  std::string broadcast(const std::string& bytes, int root = 0) override { return host_.broadcast(bytes, root); }
  void barrier() override { host_.barrier(); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_.abort(code);
    std::_Exit(code);  // not reached
  }

 private:
  // Done when an event recorded after the sum has passed; NCCL's own
  // asynchronous errors (a peer gone) are checked while polling.
  class Queued : public Pending {
   public:
    Queued(NcclCommunicator& c, cudaEvent_t ev, size_t bytes) : c_(c), ev_(ev), bytes_(bytes) {}
    ~Queued() override { cudaEventDestroy(ev_); }
    bool test() override {
      const cudaError_t e = cudaEventQuery(ev_);
      if (e == cudaSuccess) return true;
      if (e != cudaErrorNotReady) SEEMORE_CUDA_CHECK(e);
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(c_.comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress)
        seemore::detail::fail("rank ", c_.rank(), ": NCCL all-reduce failed: ", ncclGetErrorString(async));
      return false;
    }
    void wait() override {
      const auto start = std::chrono::steady_clock::now();
      while (!test()) {
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited > c_.timeout()) {
          ncclCommAbort(c_.comm_);
          c_.comm_ = nullptr;
          seemore::detail::fail("rank ", c_.rank(), ": NCCL all-reduce of ", bytes_, " bytes did not finish in ",
                                c_.timeout(), " s (a rank lost or stuck)");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }

   private:
    NcclCommunicator& c_;
    cudaEvent_t ev_;
    size_t bytes_;
  };

  template <class T>
  std::unique_ptr<Pending> start_sum(T* data, size_t n) {
    SEEMORE_CHECK(comm_, "all_reduce: the NCCL communicator was aborted");
    backend::cuda::set_device(dev_.index());
    cudaStream_t s = backend::cuda::stream(dev_.index());
    if (n) detail_nccl::check(ncclAllReduce(data, data, n, detail_nccl::type_of<T>(), ncclSum, comm_, s), "ncclAllReduce");
    cudaEvent_t ev;
    SEEMORE_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    SEEMORE_CUDA_CHECK(cudaEventRecord(ev, s));
    return std::make_unique<Queued>(*this, ev, n * sizeof(T));
  }

  Communicator& host_;
  std::unique_ptr<Communicator> owned_host_;
  Device dev_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace seemore::distributed
#endif
