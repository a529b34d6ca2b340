// seemore/distributed.hpp — data-parallel training over many processes and
// machines: the communicator of this process's run, and DataParallel.
//
// The backends come with their CMake targets, which define the macros seen
// here: seemore::mpi (SEEMORE_WITH_MPI, <mpi.h>) and seemore::nccl
// (SEEMORE_WITH_NCCL, <nccl.h>, nvcc). A program is compiled with one set of
// them (as with CUDA: one mode per executable).
#pragma once

#include <seemore/distributed/communicator.hpp>
#include <seemore/distributed/data_parallel.hpp>
#if defined(SEEMORE_WITH_MPI)
#include <seemore/distributed/mpi.hpp>
#endif
#if defined(SEEMORE_WITH_NCCL)
#include <seemore/distributed/nccl.hpp>
#endif

namespace seemore::distributed {

// Whether this program can join a run of several processes.
inline bool built_with_mpi() {
#if defined(SEEMORE_WITH_MPI)
  return true;
#else
  return false;
#endif
}

// The run this process belongs to: MPI's when an MPI launcher started it,
// else a run of one. A launch of several ranks of a program built without
// MPI is an error (each rank would train alone, each writing the same files).
// `dev`: where the gradients live; a CUDA device joins the ranks' GPUs with
// NCCL (one rank: no NCCL needed).
inline std::unique_ptr<Communicator> connect(int* argc = nullptr, char*** argv = nullptr,
                                             Device dev = Device::cpu()) {
  const int launched = launcher_ranks();
#if defined(SEEMORE_WITH_MPI)
  if (launched > 0) {
    auto mpi = std::make_unique<MpiCommunicator>(argc, argv);
    if (dev.is_cpu() || mpi->size() == 1) {
      if (dev.is_cuda()) return std::make_unique<LocalCommunicator>(dev);
      return mpi;
    }
#if defined(SEEMORE_WITH_NCCL) && SEEMORE_HAS_CUDA
    return std::make_unique<NcclCommunicator>(std::move(mpi), dev);
#else
    seemore::detail::fail("rank ", mpi->rank(), ": ", mpi->size(), " GPU ranks need NCCL, and this program was built "
                          "without it (seemore::nccl: nvcc and nccl.h)");
#endif
  }
#else
  (void)argc;
  (void)argv;
  SEEMORE_CHECK(launched <= 1, "started by an MPI launcher as one of ", launched,
                " ranks, but this program was built without MPI, so every rank would train alone: install MPI "
                "(Debian: libopenmpi-dev openmpi-bin) and rebuild (CMake target seemore::mpi)");
#endif
  return std::make_unique<LocalCommunicator>(dev);
}

}  // namespace seemore::distributed
