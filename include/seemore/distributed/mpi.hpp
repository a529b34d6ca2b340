// seemore/distributed/mpi.hpp — MpiCommunicator: CPU ranks over MPI, one
// machine or many (CMake target seemore::mpi; needs <mpi.h>).
//
// The sum is rank-ordered: an all-to-all hands rank c the c-th chunk of every
// rank's buffer, rank c adds the N chunks in rank order (0 + 1 + ... + N−1,
// left to right), and an all-gather (on a communicator of its own, see Sum)
// returns the sums. That is the traffic of a
// ring all-reduce (each rank sends and receives 2·(N−1)/N of the buffer), but
// the bits do not depend on the MPI library's choice of algorithm: N ranks
// give exactly what one process gets by adding the same parts in order.
//
// Every wait polls with a deadline (Communicator::timeout()). A rank that
// times out tells every other rank so on a separate communicator and listens
// for the same from them for a few seconds; whoever stays silent is named as
// lost or stuck in the error. After a timeout the communicator is unusable:
// the caller reports the error and calls abort().
//
// Threads: MPI_THREAD_FUNNELED — OpenMP threads compute, only the thread that
// made the communicator talks to MPI.
#pragma once

#include <seemore/distributed/communicator.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <functional>
#include <thread>

namespace seemore::distributed {

namespace detail_mpi {
inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  seemore::detail::fail(call, " failed: ", std::string(msg, size_t(len)));
}
template <class T>
MPI_Datatype type_of();
template <>
inline MPI_Datatype type_of<float>() { return MPI_FLOAT; }
template <>
inline MPI_Datatype type_of<double>() { return MPI_DOUBLE; }

inline std::string bytes_str(size_t b) {
  char s[32];
  if (b >= (size_t(1) << 20)) std::snprintf(s, sizeof s, "%.1f MiB", double(b) / double(1 << 20));
  else std::snprintf(s, sizeof s, "%.1f KiB", double(b) / 1024.0);
  return s;
}
}  // namespace detail_mpi

class MpiCommunicator : public Communicator {
 public:
  // Initialises MPI unless the program already has (then it is left to the
  // program to finalise). argc/argv may be null.
  explicit MpiCommunicator(int* argc = nullptr, char*** argv = nullptr) {
    int inited = 0;
    detail_mpi::check(MPI_Initialized(&inited), "MPI_Initialized");
    if (!inited) {
      int provided = 0;
      detail_mpi::check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    // Our own communicators: errors come back as codes (and become exceptions),
    // and the probe traffic of a timeout can never match a collective's.
    detail_mpi::check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    detail_mpi::check(MPI_Comm_dup(MPI_COMM_WORLD, &gather_), "MPI_Comm_dup");
    detail_mpi::check(MPI_Comm_dup(MPI_COMM_WORLD, &probe_), "MPI_Comm_dup");
    for (MPI_Comm c : {comm_, gather_, probe_}) MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    if (broken_) return;  // requests are outstanding: freeing or finalising could hang
    MPI_Comm_free(&comm_);
    MPI_Comm_free(&gather_);
    MPI_Comm_free(&probe_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    std::string s(v, size_t(len));
    s = s.substr(0, s.find_first_of(",\n"));
    return "MPI (" + s + ")";
  }
  MPI_Comm comm() const { return comm_; }

  std::unique_ptr<Pending> start_all_reduce(float* data, size_t n) override { return start_sum(data, n); }
  std::unique_ptr<Pending> start_all_reduce(double* data, size_t n) override { return start_sum(data, n); }

  std::vector<std::string> all_gather(const std::string& mine) override {
    std::vector<uint64_t> sizes(size_t(size_), 0);
    uint64_t my = mine.size();
    MPI_Request r;
    detail_mpi::check(MPI_Iallgather(&my, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, comm_, &r), "MPI_Iallgather");
    wait_all(&r, 1, "exchange of sizes");
    std::vector<int> counts, displs;
    uint64_t total = 0;
    for (auto s : sizes) {
      SEEMORE_CHECK(total + s <= uint64_t(INT_MAX), "all_gather: more than 2 GiB in all");
      counts.push_back(int(s));
      displs.push_back(int(total));
      total += s;
    }
    std::string all(size_t(total), '\0');
    detail_mpi::check(MPI_Iallgatherv(mine.data(), int(my), MPI_BYTE, all.data(), counts.data(), displs.data(),
                                      MPI_BYTE, comm_, &r),
                      "MPI_Iallgatherv");
    wait_all(&r, 1, "all-gather of " + detail_mpi::bytes_str(size_t(total)));
    std::vector<std::string> out;
    for (int i = 0; i < size_; ++i) out.push_back(all.substr(size_t(displs[size_t(i)]), size_t(counts[size_t(i)])));
    return out;
  }

  std::string broadcast(const std::string& bytes, int root = 0) override {
    SEEMORE_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " outside the ", size_, " ranks");
    uint64_t n = rank_ == root ? bytes.size() : 0;
    MPI_Request r;
    detail_mpi::check(MPI_Ibcast(&n, 1, MPI_UINT64_T, root, comm_, &r), "MPI_Ibcast");
    wait_all(&r, 1, "broadcast of a size");
    std::string out = rank_ == root ? bytes : std::string(size_t(n), '\0');
    const size_t chunk = size_t(1) << 30;  // MPI counts are ints
    for (size_t at = 0; at < n; at += chunk) {
      const int len = int(std::min<uint64_t>(chunk, n - at));
      detail_mpi::check(MPI_Ibcast(out.data() + at, len, MPI_BYTE, root, comm_, &r), "MPI_Ibcast");
      wait_all(&r, 1, "broadcast of " + detail_mpi::bytes_str(size_t(n)));
    }
    return out;
  }

  void barrier() override {
    MPI_Request r;
    detail_mpi::check(MPI_Ibarrier(comm_, &r), "MPI_Ibarrier");
    wait_all(&r, 1, "barrier");
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; in case a library's does
  }

  // Waits for `n` requests until timeout(); on a timeout names the silent
  // ranks (see the file's comment) and throws.
  void wait_all(MPI_Request* reqs, int n, const std::string& what) {
    wait_until([&] {
      int done = 0;
      detail_mpi::check(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      return done != 0;
    }, what);
  }
  void wait_until(const std::function<bool()>& done, const std::string& what) {
    if (poll(done, timeout())) return;
    broken_ = true;
    const auto silent = silent_ranks();
    std::string who;
    for (int r : silent) who += (who.empty() ? "" : ", ") + std::to_string(r);
    if (silent.empty())
      seemore::detail::fail("rank ", rank_, ": ", what, " did not finish in ", timeout(),
                            " s although every rank answers: the ranks are not calling the same collectives");
    seemore::detail::fail("rank ", rank_, ": ", what, " did not finish in ", timeout(), " s; no answer from rank",
                          silent.size() > 1 ? "s " : " ", who, " (lost or stuck)");
  }

 private:
  // A sum in flight. Collectives must be issued in the same order on every
  // rank, but a sum's first phase may finish earlier on one rank than on
  // another: the second phases go on their own communicator and are issued
  // strictly in the order the sums were started (progress()), whatever order
  // their first phases finish in.
  class Sum : public Pending {
   public:
    Sum(MpiCommunicator& c, size_t bytes) : c_(c), bytes_(bytes) {}
    ~Sum() override { c_.forget(this); }
    bool test() override {
      c_.progress();
      return phase_ == 2;
    }
    void wait() override {
      c_.wait_until([this] { return test(); }, "all-reduce of " + detail_mpi::bytes_str(bytes_));
    }
    // Phase 0 → 1 when the all-to-all is done: add the parts, start the all-gather.
    virtual void reduce_and_gather() = 0;

    MpiCommunicator& c_;
    size_t bytes_;
    MPI_Request req_ = MPI_REQUEST_NULL;
    int phase_ = 0;  // 0: all-to-all in flight, 1: all-gather in flight, 2: done
  };
  template <class T>
  class RankOrderSum : public Sum {
   public:
    RankOrderSum(MpiCommunicator& c, T* data, size_t n) : Sum(c, n * sizeof(T)), data_(data) {
      const int N = c.size_, me = c.rank_;
      SEEMORE_CHECK(n <= size_t(INT_MAX), "all_reduce: ", n, " values at once (MPI counts are ints)");
      for (int r = 0; r < N; ++r) {
        displs_.push_back(int(n * size_t(r) / size_t(N)));
        counts_.push_back(int(n * size_t(r + 1) / size_t(N)) - displs_.back());
      }
      const int m = counts_[size_t(me)];
      parts_.resize(size_t(m) * size_t(N));
      rcounts_.assign(size_t(N), m);  // members: MPI may read them until the request completes
      for (int r = 0; r < N; ++r) rdispls_.push_back(r * m);
      detail_mpi::check(MPI_Ialltoallv(data, counts_.data(), displs_.data(), detail_mpi::type_of<T>(), parts_.data(),
                                       rcounts_.data(), rdispls_.data(), detail_mpi::type_of<T>(), c.comm_,
                                       &this->req_),
                        "MPI_Ialltoallv");
    }
    void reduce_and_gather() override {
      // This rank's chunk: the ranks' parts added left to right, rank 0 first.
      MpiCommunicator& c = this->c_;
      const size_t m = size_t(counts_[size_t(c.rank_)]);
      T* out = data_ + displs_[size_t(c.rank_)];
      std::copy(parts_.begin(), parts_.begin() + long(m), out);
      for (int r = 1; r < c.size_; ++r) {
        const T* p = parts_.data() + size_t(r) * m;
        for (size_t i = 0; i < m; ++i) out[i] += p[i];
      }
      detail_mpi::check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data_, counts_.data(), displs_.data(),
                                        detail_mpi::type_of<T>(), c.gather_, &this->req_),
                        "MPI_Iallgatherv");
    }

   private:
    T* data_;
    std::vector<int> counts_, displs_, rcounts_, rdispls_;
    std::vector<T> parts_;
  };

  // Moves every sum in flight along; second phases start in start order.
  void progress() {
    bool in_order = true;  // every earlier sum has started its second phase
    for (size_t i = 0; i < inflight_.size();) {
      Sum* s = inflight_[i];
      int flag = 0;
      if (s->phase_ == 0 && in_order) {
        detail_mpi::check(MPI_Test(&s->req_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (flag) {
          s->reduce_and_gather();
          s->phase_ = 1;
        }
      }
      if (s->phase_ == 0) in_order = false;
      if (s->phase_ == 1) {
        detail_mpi::check(MPI_Test(&s->req_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (flag) s->phase_ = 2;
      }
      if (s->phase_ == 2) {
        inflight_.erase(inflight_.begin() + long(i));
        continue;
      }
      ++i;
    }
  }
  void forget(Sum* s) { inflight_.erase(std::remove(inflight_.begin(), inflight_.end(), s), inflight_.end()); }

  template <class T>
  std::unique_ptr<Pending> start_sum(T* data, size_t n) {
    SEEMORE_CHECK(!broken_, "all_reduce: the communicator is unusable after a timed-out collective");
    if (size_ == 1 || n == 0) return std::make_unique<detail::Done>();
    auto sum = std::make_unique<RankOrderSum<T>>(*this, data, n);
    inflight_.push_back(sum.get());
    return sum;
  }

  // Polls `done` until it says yes or `seconds` pass. Spins first (a
  // collective among busy ranks is usually a few microseconds from done),
  // then sleeps between polls so that a waiting rank leaves its core to the
  // ranks still computing.
  static bool poll(const std::function<bool()>& done, double seconds) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    for (int spins = 0;; ++spins) {
      if (done()) return true;
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > seconds) return false;
      if (spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(waited < 0.01 ? 20 : 200));
    }
  }

  // After a timeout: every rank that timed out sends its number to every
  // other and listens for theirs; the ranks not heard from are returned.
  std::vector<int> silent_ranks() {
    // Members, not locals: the requests to silent ranks never complete, and
    // MPI may still write into their buffers until the run is aborted.
    auto& heard = probe_heard_;
    heard.assign(size_t(size_), -1);
    std::vector<MPI_Request> reqs;
    const int& me = rank_;
    heard[size_t(me)] = me;
    for (int r = 0; r < size_; ++r) {
      if (r == me) continue;
      MPI_Request q;
      if (MPI_Irecv(&heard[size_t(r)], 1, MPI_INT, r, kProbeTag, probe_, &q) == MPI_SUCCESS) reqs.push_back(q);
      if (MPI_Isend(const_cast<int*>(&me), 1, MPI_INT, r, kProbeTag, probe_, &q) == MPI_SUCCESS) reqs.push_back(q);
    }
    poll([&] {
      int done = 0;
      MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
      return done != 0 || std::none_of(heard.begin(), heard.end(), [](int h) { return h < 0; });
    }, std::min(10.0, std::max(2.0, timeout() / 4)));
    std::vector<int> silent;
    for (int r = 0; r < size_; ++r)
      if (heard[size_t(r)] < 0) silent.push_back(r);
    return silent;
  }

  static constexpr int kProbeTag = 7001;
  MPI_Comm comm_ = MPI_COMM_NULL, gather_ = MPI_COMM_NULL, probe_ = MPI_COMM_NULL;
  std::vector<Sum*> inflight_;  // in start order
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false, broken_ = false;
  std::vector<int> probe_heard_;
};

}  // namespace seemore::distributed
