// seemore-allreduce-bench: the sum over MPI ranks that data parallelism uses
// (MpiCommunicator's rank-ordered all-to-all + add + all-gather) against the
// MPI library's own MPI_Allreduce, on buffers of the sizes gradients come in.
//
//   mpirun -np 2 seemore-allreduce-bench [--reps N] [--max-mib M]
//
// Prints, per size, the median time of each and the "bus bandwidth"
// 2·(N−1)/N·bytes/time (what each rank sends and receives), the figure NCCL's
// tests report, so it can be compared with a link's speed.
#include <seemore/distributed.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace seemore;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  distributed::MpiCommunicator comm(&argc, &argv);
  int reps = 20;
  double max_mib = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--max-mib")) max_mib = std::atof(argv[i + 1]);
  }
  const int N = comm.size();
  if (comm.rank() == 0)
    std::printf("%d ranks, %s; median of %d\n%10s %14s %12s %14s %12s\n", N, comm.name().c_str(), reps, "size",
                "seemore (ms)", "bus GB/s", "MPI_Allreduce", "bus GB/s");
  for (size_t bytes = 4096; double(bytes) <= max_mib * (1 << 20); bytes *= 4) {
    const size_t n = bytes / sizeof(float);
    std::vector<float> buf(n, float(comm.rank() + 1));
    auto time = [&](auto&& fn) {
      std::vector<double> ts;
      for (int r = 0; r < reps + 2; ++r) {
        comm.barrier();
        const auto t0 = Clock::now();
        fn();
        ts.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      ts.erase(ts.begin(), ts.begin() + 2);  // warm-up
      std::sort(ts.begin(), ts.end());
      std::vector<double> med{ts[ts.size() / 2]};
      comm.all_reduce(med.data(), 1);  // the ranks' mean of medians
      return med[0] / N;
    };
    const double ours = time([&] { comm.all_reduce(buf.data(), n); });
    const double lib = time([&] {
      MPI_Allreduce(MPI_IN_PLACE, buf.data(), int(n), MPI_FLOAT, MPI_SUM, comm.comm());
    });
    const double bus = 2.0 * (N - 1) / N * double(bytes) / 1e9;
    if (comm.rank() == 0) {
      char sz[32];
      if (bytes >= (1u << 20)) std::snprintf(sz, sizeof sz, "%zu MiB", bytes >> 20);
      else std::snprintf(sz, sizeof sz, "%zu KiB", bytes >> 10);
      std::printf("%10s %14.3f %12.2f %14.3f %12.2f\n", sz, ours * 1e3, bus / ours, lib * 1e3, bus / lib);
    }
  }
  return 0;
}
