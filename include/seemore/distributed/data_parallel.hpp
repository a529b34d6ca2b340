// seemore/distributed/data_parallel.hpp — one model trained over the ranks
// of a Communicator, and gradient accumulation (its one-process twin).
//
// A step trains on a global batch of B samples cut into M = ranks × accum
// micro-batches: micro-batch m holds samples [⌊m·B/M⌋, ⌊(m+1)·B/M⌋) and
// rank r computes micro-batches r·accum … r·accum + accum − 1. The caller's
// function computes a micro-batch's loss *divided by the global batch's
// count of targets* (cross_entropy's divide_by), so the micro-batches' losses
// and gradients add up to the global batch's mean. What is trained therefore
// does not depend on how B is split, up to float rounding; and with one
// micro-batch per rank, N ranks give the bits of one process with accum = N
// (MPI's sum is rank-ordered, the same left-to-right sum as accumulation).
//
// Gradients: every parameter's .grad is moved, as soon as its backward is
// done (a grad_ready_hook), into one flat fp32 buffer laid out in reverse
// parameter order — the order the backward produces them — and cut at
// parameter boundaries into fixed buckets of about bucket_bytes. Buckets are
// summed over ranks in bucket order; during the last micro-batch's backward
// each bucket's sum starts as soon as it is complete (overlap), the rest after.
// Afterwards each .grad is a view of the summed buffer, for any optimizer.
//
// Dropout: pass the model's generator. Each micro-batch runs with it at the
// step's starting counter and a BatchSlice of its rows, so that each sample's
// masks are those it would get in the whole batch (random.hpp).
#pragma once

#include <seemore/distributed/communicator.hpp>
#include <seemore/optim/optimizer.hpp>
#include <seemore/tensor.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

namespace seemore::distributed {

// One forward/backward's share of a global batch.
struct MicroBatch {
  int64_t index = 0;         // m: position in the global order, [0, ranks·accum)
  int64_t begin = 0, count = 0;  // samples [begin, begin + count) of the global batch
  int64_t total = 0;         // the global batch size B
  BatchSlice slice() const { return {begin, count, total}; }
};

// This rank's micro-batches of a global batch of B (see the file's comment).
inline std::vector<MicroBatch> micro_batches(int64_t B, int rank, int ranks, int64_t accum) {
  SEEMORE_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "micro_batches: rank ", rank, " of ", ranks);
  SEEMORE_CHECK(accum >= 1, "gradient accumulation: micro-batches per rank must be >= 1, got ", accum);
  const int64_t M = int64_t(ranks) * accum;
  SEEMORE_CHECK(B >= M, "a global batch of ", B, " samples cannot be cut into ", M, " micro-batches (", ranks,
                " rank", ranks > 1 ? "s" : "", " x ", accum, " accumulated): make the batch at least ", M);
  std::vector<MicroBatch> out;
  for (int64_t k = 0; k < accum; ++k) {
    const int64_t m = int64_t(rank) * accum + k, b0 = m * B / M, b1 = (m + 1) * B / M;
    out.push_back({m, b0, b1 - b0, B});
  }
  return out;
}

struct DataParallelOptions {
  size_t bucket_bytes = size_t(1) << 20;  // a bucket is cut once it holds this much (whole parameters)
  bool overlap = true;                    // start buckets during the last micro-batch's backward
  bool broadcast_parameters = true;       // rank 0's values to every rank, at construction
};

// Figures of the last step, for benchmarks and logs.
struct DataParallelStats {
  double compute_s = 0;   // forward and backward of this rank's micro-batches
  double wait_s = 0;      // after the last backward, until every sum had arrived
  size_t bytes = 0;       // summed over ranks per step (gradients, losses, flags)
  int buckets = 0;
  int started_in_backward = 0;  // buckets whose sum started before the backward ended
};

// In-place sum over ranks of host values (losses, counts), whichever device
// the communicator sums on.
inline void sum_over_ranks(Communicator& comm, std::vector<double>& v) {
  if (comm.size() == 1 || v.empty()) return;
  if (comm.device().is_cpu()) {
    comm.all_reduce(v.data(), v.size());
    return;
  }
  auto d = Tensor<double>::from_vector({int64_t(v.size())}, v, comm.device());
  comm.all_reduce(d.data(), v.size());
  v = d.to_vector();
}

template <class T>
class DataParallel {
 public:
  // Trains opt's parameters over comm's ranks. The parameters must live on
  // comm.device() (CPU for MPI, the rank's GPU for NCCL).
  DataParallel(optim::Optimizer<T>& opt, Communicator& comm, DataParallelOptions o = {})
      : opt_(opt), comm_(comm), o_(o), params_(opt.params()) {
    SEEMORE_CHECK(!params_.empty(), "DataParallel: the optimizer has no parameters");
    SEEMORE_CHECK(o_.bucket_bytes > 0, "DataParallel: bucket_bytes must be > 0");
    const Device dev = params_[0].device();
    for (auto& p : params_)
      SEEMORE_CHECK(p.device() == dev, "DataParallel: parameters on ", dev.str(), " and ", p.device().str());
    SEEMORE_CHECK(dev == comm.device(), "DataParallel: the parameters are on ", dev.str(), " but ", comm.name(),
                  " sums buffers on ", comm.device().str(),
                  dev.is_cuda() ? " (GPU parameters need the NCCL communicator)" : "");
    // Reverse parameter order: the backward finishes the last layers first.
    int64_t at = 0, in_bucket = 0;
    offset_.resize(params_.size());
    bucket_of_.resize(params_.size());
    for (size_t k = params_.size(); k-- > 0;) {
      if (in_bucket > 0 && size_t(in_bucket) * sizeof(T) >= o_.bucket_bytes) {
        bucket_start_.push_back(at - in_bucket);
        in_bucket = 0;
      }
      offset_[k] = at;
      bucket_of_[k] = bucket_start_.size();
      at += params_[k].numel();
      in_bucket += params_[k].numel();
    }
    bucket_start_.push_back(at - in_bucket);
    bucket_start_.push_back(at);  // end sentinel
    flat_ = Tensor<T>::zeros({at}, dev);
    have_.assign(params_.size(), false);
    for (size_t k = 0; k < params_.size(); ++k)
      params_[k].set_grad_ready_hook([this, k] { on_grad_ready(k); });
    if (o_.broadcast_parameters && comm_.size() > 1) broadcast_parameters();
  }
  ~DataParallel() {
    for (auto& p : params_) p.set_grad_ready_hook({});
  }
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  Communicator& communicator() const { return comm_; }
  int buckets() const { return int(bucket_start_.size()) - 1; }

  // One step's gradients over the global batch: micro(mb) is called for each
  // of this rank's micro-batches and returns its loss (divided by the global
  // batch's count); its backward runs here. On return every parameter's
  // .grad holds the global batch's gradient, and the result is the global
  // batch's loss (the micro-batches' losses added in global order, in double).
  // gen: the generator the model's dropout draws from, or null.
  template <class F>
  double compute_gradients(int64_t global_batch, int64_t accum, F&& micro, Generator* gen = nullptr) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    stats_ = {};
    stats_.buckets = buckets();
    const auto mine = micro_batches(global_batch, comm_.rank(), comm_.size(), accum);
    const int64_t M = int64_t(comm_.size()) * accum;
    // Losses of every micro-batch (zero where another rank computes it), then
    // one flag per parameter: how many micro-batches gave it a gradient.
    std::vector<double> side(size_t(M) + params_.size(), 0.0);
    for (auto& p : params_) p.zero_grad();
    std::fill(have_.begin(), have_.end(), false);
    remaining_.assign(size_t(buckets()), 0);
    for (size_t k = 0; k < params_.size(); ++k) ++remaining_[bucket_of_[k]];
    pending_.clear();
    pending_.resize(size_t(buckets()));
    next_bucket_ = 0;
    const uint64_t gen_seed = gen ? gen->seed() : 0, gen_start = gen ? gen->offset() : 0;
    for (size_t i = 0; i < mine.size(); ++i) {
      const MicroBatch& mb = mine[i];
      Tensor<T> loss;
      {
        std::optional<BatchSliceGuard> slice;
        if (gen) {
          gen->set_state(gen_seed, gen_start);  // every micro-batch draws the step's counters
          slice.emplace(*gen, mb.slice());
        }
        loss = micro(mb);
      }
      SEEMORE_CHECK(loss.defined() && loss.numel() == 1, "DataParallel: the micro-batch function must return the loss");
      side[size_t(mb.index)] = double(loss.item());
      backward_into_buckets(loss, o_.overlap && i + 1 == mine.size());
    }
    const auto t1 = Clock::now();
    stats_.compute_s = std::chrono::duration<double>(t1 - t0).count();
    while (next_bucket_ < size_t(buckets())) start_bucket(next_bucket_++);
    for (size_t k = 0; k < params_.size(); ++k) side[size_t(M) + k] = have_[k] ? 1.0 : 0.0;
    auto side_sum = comm_.size() > 1 ? start_side(side) : nullptr;
    for (auto& p : pending_) p->wait();
    if (side_sum) side_sum->wait();
    stats_.wait_s = std::chrono::duration<double>(Clock::now() - t1).count();
    stats_.bytes = comm_.size() > 1 ? size_t(flat_.numel()) * sizeof(T) + side.size() * sizeof(double) : 0;
    for (size_t k = 0; k < params_.size(); ++k)
      if (side[size_t(M) + k] > 0) set_grad_view(k);
    double loss = 0;
    for (int64_t m = 0; m < M; ++m) loss += side[size_t(m)];
    return loss;
  }

  // The device half of a one-rank step of one micro-batch: loss's backward
  // into the buckets and every .grad a view of them. Nothing is read on the
  // host and there is nothing to sum (one rank), so a CUDA graph can capture
  // it (train/step_graph.hpp); the .grad views stay at the same addresses
  // from step to step.
  void backward_local(const Tensor<T>& loss) {
    SEEMORE_CHECK(comm_.size() == 1, "DataParallel::backward_local: for one rank (", comm_.size(), " here)");
    for (auto& p : params_) p.zero_grad();
    std::fill(have_.begin(), have_.end(), false);
    backward_into_buckets(loss, false);
    for (size_t k = 0; k < params_.size(); ++k)
      if (have_[k]) set_grad_view(k);
  }

  // compute_gradients, then the optimizer's step.
  template <class F>
  double step(int64_t global_batch, int64_t accum, F&& micro, Generator* gen = nullptr) {
    const double loss = compute_gradients(global_batch, accum, std::forward<F>(micro), gen);
    opt_.step();
    return loss;
  }

  // A hash of every parameter's bytes (FNV-1a over 64-bit words).
  uint64_t parameter_hash() const {
    uint64_t h = 1469598103934665603ull;
    for (auto& p : params_) {
      const auto v = p.to_vector();
      const auto* b = reinterpret_cast<const unsigned char*>(v.data());
      const size_t n = v.size() * sizeof(T);
      for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        std::memcpy(&w, b + i, std::min<size_t>(8, n - i));
        h = (h ^ w) * 1099511628211ull;
      }
    }
    return h;
  }
  // Every rank's parameters equal rank 0's, or CollectiveError on every rank.
  void check_in_sync(const std::string& when) {
    char hex[24];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(parameter_hash()));
    check_same(comm_, "the parameters " + when, hex, "the ranks no longer train the same model; stopping");
  }

  // Rank 0's parameter values on every rank.
  void broadcast_parameters() {
    std::string bytes;
    if (comm_.rank() == 0)
      for (auto& p : params_) {
        const auto v = p.to_vector();
        bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
      }
    bytes = comm_.broadcast(bytes, 0);
    size_t at = 0;
    for (auto& p : params_) {
      const size_t n = size_t(p.numel()) * sizeof(T);
      SEEMORE_CHECK(at + n <= bytes.size(), "DataParallel: rank 0 has fewer parameter values than this rank needs");
      std::vector<T> v(size_t(p.numel()));
      std::memcpy(v.data(), bytes.data() + at, n);
      p.copy_from(Tensor<T>::from_vector(p.shape(), v));
      at += n;
    }
    SEEMORE_CHECK(at == bytes.size(), "DataParallel: rank 0 has ", bytes.size() / sizeof(T),
                  " parameter values, this rank ", at / sizeof(T), ": the models differ");
  }

  const DataParallelStats& stats() const { return stats_; }

 private:
  // The parameter's gradient into its range of the flat buffer (copied the
  // first time in a step, added after), and off the parameter.
  void take(size_t k) {
    Tensor<T> g = params_[k].grad();
    if (!g.defined()) return;
    const int64_t n = params_[k].numel();
    Tensor<T> dst = flat_.rows(offset_[k], offset_[k] + n);
    if (!have_[k]) {
      dst.copy_from(g);
    } else {
      const auto bc = backend::cpu::broadcast({n}, {n}, "gradient accumulation");
      SEEMORE_DISPATCH(dst.device(), add, bc, dst.data(), g.data(), dst.data());
    }
    have_[k] = true;
    params_[k].zero_grad();
  }
  void backward_into_buckets(const Tensor<T>& loss, bool launch) {
    launching_ = launch;
    collecting_ = true;
    try {
      loss.backward();
    } catch (...) {
      collecting_ = launching_ = false;
      throw;
    }
    collecting_ = launching_ = false;
    for (size_t k = 0; k < params_.size(); ++k)  // any gradient no hook handed over
      if (params_[k].grad().defined()) take(k);
  }
  void set_grad_view(size_t k) {
    params_[k].set_grad(flat_.detach().rows(offset_[k], offset_[k] + params_[k].numel()).view(params_[k].shape()));
  }
  void on_grad_ready(size_t k) {
    if (!collecting_) return;  // a backward outside compute_gradients: .grad stays where it is
    take(k);
    if (!launching_) return;
    if (--remaining_[bucket_of_[k]] == 0) {
      while (next_bucket_ < size_t(buckets()) && remaining_[next_bucket_] == 0) {
        start_bucket(next_bucket_++);
        ++stats_.started_in_backward;
      }
    }
    for (size_t b = 0; b < next_bucket_; ++b) pending_[b]->test();  // progress
  }
  void start_bucket(size_t b) {
    const int64_t lo = bucket_start_[b], hi = bucket_start_[b + 1];
    for (size_t k = 0; k < params_.size(); ++k)  // no gradient anywhere yet: its part of the sum is zero
      if (bucket_of_[k] == b && !have_[k]) flat_.rows(offset_[k], offset_[k] + params_[k].numel()).fill_(T(0));
    pending_[b] = comm_.start_all_reduce(flat_.data() + lo, size_t(hi - lo));
  }
  std::unique_ptr<Pending> start_side(std::vector<double>& side) {
    if (comm_.device().is_cpu()) return comm_.start_all_reduce(side.data(), side.size());
    sum_over_ranks(comm_, side);  // a GPU communicator sums device buffers: through one
    return nullptr;
  }

  optim::Optimizer<T>& opt_;
  Communicator& comm_;
  DataParallelOptions o_;
  std::vector<Tensor<T>> params_;
  std::vector<int64_t> offset_, bucket_start_;
  std::vector<size_t> bucket_of_;
  Tensor<T> flat_;
  std::vector<bool> have_;
  std::vector<int64_t> remaining_;
  std::vector<std::unique_ptr<Pending>> pending_;
  size_t next_bucket_ = 0;
  bool collecting_ = false, launching_ = false;
  DataParallelStats stats_;
};

}  // namespace seemore::distributed
