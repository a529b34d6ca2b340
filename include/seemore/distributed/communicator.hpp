// seemore/distributed/communicator.hpp — the ranks of a data-parallel run and
// the collectives they need: a sum over ranks (started, then waited for), and
// host-side gathers and broadcasts for the checks and the bootstrap.
//
// A Communicator is one rank's handle on the run. Backends:
//   LocalCommunicator       (here) one process; every collective is the identity
//   MpiCommunicator         (distributed/mpi.hpp, CMake target seemore::mpi) CPU ranks
//   NcclCommunicator        (distributed/nccl.hpp, seemore::nccl, nvcc) GPU ranks
//
// Contract of every backend:
// - Every rank calls the same collectives in the same order (as in MPI).
// - all_reduce sums in place. MPI sums in rank order — rank 0's values plus
//   rank 1's plus ... — whatever the library's own algorithms would do, so
//   that N ranks give the bits one process gets by adding the same N parts in
//   order. NCCL uses its own order (exact for one rank).
// - No wait is unbounded: a collective that has not finished after timeout()
//   seconds throws CollectiveError naming the ranks that did not respond.
// - abort() ends every rank of the run; a rank that hits an error the others
//   cannot see calls it, so that nobody waits for a rank that is gone.
#pragma once

#include <seemore/config.hpp>
#include <seemore/device.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace seemore::distributed {

// An error every rank sees at the same point (a failed check over ranks, a
// timed-out collective): ranks may end normally after it, no abort needed.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// A collective that has been started. test() lets it progress and says
// whether it is done; wait() returns once it is, or throws CollectiveError
// after the communicator's timeout.
class Pending {
 public:
  virtual ~Pending() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "local", "MPI (Open MPI v4.1.4)", "NCCL 2.27 over MPI": for logs.
  virtual std::string name() const = 0;
  // Where the buffers of all_reduce live: the CPU, or the rank's GPU for NCCL.
  virtual Device device() const { return Device::cpu(); }

  // In-place sum over ranks of n values at `data` (on device()).
  virtual std::unique_ptr<Pending> start_all_reduce(float* data, size_t n) = 0;
  virtual std::unique_ptr<Pending> start_all_reduce(double* data, size_t n) = 0;
  void all_reduce(float* data, size_t n) { start_all_reduce(data, n)->wait(); }
  void all_reduce(double* data, size_t n) { start_all_reduce(data, n)->wait(); }

  // Host bytes: every rank's `mine`, in rank order; root's `bytes` on every rank.
  virtual std::vector<std::string> all_gather(const std::string& mine) = 0;
  virtual std::string broadcast(const std::string& bytes, int root = 0) = 0;
  virtual void barrier() = 0;

  // Ends the whole run with `code` (MPI_Abort for MPI); does not return.
  [[noreturn]] virtual void abort(int code) = 0;

  // The bound on every wait, in seconds (a rank writing a large checkpoint
  // keeps the others waiting in their next collective: leave room for it).
  double timeout() const { return timeout_s_; }
  void set_timeout(double seconds) {
    SEEMORE_CHECK(seconds > 0, "collective timeout must be > 0 seconds, got ", seconds);
    timeout_s_ = seconds;
  }

 private:
  double timeout_s_ = 600;
};

namespace detail {
class Done : public Pending {
 public:
  bool test() override { return true; }
  void wait() override {}
};
}  // namespace detail

// One process: the run's only rank (its sums are the identity wherever the buffers live).
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(Device dev = Device::cpu()) : dev_(dev) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "local"; }
  Device device() const override { return dev_; }
  std::unique_ptr<Pending> start_all_reduce(float*, size_t) override { return std::make_unique<detail::Done>(); }
  std::unique_ptr<Pending> start_all_reduce(double*, size_t) override { return std::make_unique<detail::Done>(); }
  std::vector<std::string> all_gather(const std::string& mine) override { return {mine}; }
  std::string broadcast(const std::string& bytes, int root) override {
    SEEMORE_CHECK(root == 0, "broadcast: root ", root, " but the run has one rank");
    return bytes;
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

 private:
  Device dev_;
};

// Whether this process was started by an MPI launcher (mpirun/mpiexec of
// Open MPI, MPICH, Intel MPI or MVAPICH; srun with PMIx), and how many ranks
// it says the run has: 0 when not launched so, 1 when the launcher does not say.
inline int launcher_ranks() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"}) {
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  }
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

// Every rank's `value` must equal rank 0's: otherwise CollectiveError (on
// every rank alike) naming `what` and the ranks that differ, followed by `hint`. For the checks at
// the start of a run (config, vocabulary, data) and during it (parameters).
inline void check_same(Communicator& comm, const std::string& what, const std::string& value,
                       const std::string& hint = "") {
  const auto all = comm.all_gather(value);
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (differ.empty()) return;
  std::ostringstream os;
  os << "[seemore] rank" << (differ.find(',') == std::string::npos ? " " : "s ") << differ
     << " and rank 0 disagree on " << what;
  if (!hint.empty()) os << ": " << hint;
  throw CollectiveError(os.str());
}

}  // namespace seemore::distributed
