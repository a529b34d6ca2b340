// examples/device_relaunch.hpp — `--device cuda` for the command-line tools.
//
// The tools are built by g++ (the fast CPU path: -march=native, Eigen, OpenMP).
// When the CUDA toolkit is found, the same sources are also built by nvcc as
// <tool>-cuda. A g++-built tool asked for a CUDA device hands over to that
// sibling with the same arguments, so `seemore-train --device cuda` works in
// any build that can run it, and says why when it cannot.
#pragma once

#include <seemore/config.hpp>
#include <seemore/device.hpp>
#if SEEMORE_HAS_CUDA
#include <seemore/backend/cuda/context.hpp>
#endif

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace seemore::tools {

inline void relaunch_for_device(const std::string& device, char** argv) {
#if !SEEMORE_HAS_CUDA
  if (device.rfind("cuda", 0) != 0) return;
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string self = n > 0 ? std::string(buf, size_t(n)) : std::string(argv[0]);
  const std::string sibling = self + "-cuda";
  if (::access(sibling.c_str(), X_OK) == 0) {
    ::execv(sibling.c_str(), argv);
    detail::fail("--device ", device, ": could not start ", sibling, ": ", std::strerror(errno));
  }
  detail::fail("--device ", device, ": this binary was built without CUDA and there is no ", sibling,
               " next to it (it is built when CMake finds the CUDA toolkit)");
#else
  (void)device;
  (void)argv;
#endif
}

// `--ranks N`: the same command again as N MPI ranks, under mpirun (Open
// MPI's flags: as root it needs --allow-run-as-root; more ranks than cores
// need --oversubscribe; each rank gets cores/N OpenMP threads unless
// OMP_NUM_THREADS is set). Does not return when it starts mpirun. Started by
// a launcher already, or N <= 1: nothing to do.
inline void relaunch_as_ranks(int64_t ranks, int argc, char** argv) {
  SEEMORE_CHECK(ranks >= 1, "--ranks must be >= 1, got ", ranks);
  if (ranks == 1 || std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE")) return;
  std::string mpirun;
  for (const char* cand : {"mpirun", "mpiexec"}) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t at = 0; at <= dirs.size() && mpirun.empty();) {
      const size_t end = std::min(dirs.find(':', at), dirs.size());
      const std::string f = dirs.substr(at, end - at) + "/" + cand;
      if (end > at && ::access(f.c_str(), X_OK) == 0) mpirun = f;
      at = end + 1;
    }
    if (!mpirun.empty()) break;
  }
  SEEMORE_CHECK(!mpirun.empty(), "--ranks ", ranks, ": mpirun is not on the PATH (Debian: apt-get install openmpi-bin "
                "libopenmpi-dev, then rebuild so that the tools use MPI)");
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  std::vector<std::string> args{mpirun, "-np", std::to_string(ranks)};
  if (::geteuid() == 0) args.push_back("--allow-run-as-root");
  if (ranks > cores) args.push_back("--oversubscribe");
  if (!std::getenv("OMP_NUM_THREADS"))
    ::setenv("OMP_NUM_THREADS", std::to_string(std::max<long>(1, cores / ranks)).c_str(), 1);
  args.insert(args.end(), {"-x", "OMP_NUM_THREADS"});
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  args.push_back(n > 0 ? std::string(buf, size_t(n)) : std::string(argv[0]));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ranks") {
      ++i;
      continue;
    }
    if (a.rfind("--ranks=", 0) == 0) continue;
    args.push_back(a);
  }
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  ::execv(mpirun.c_str(), cargs.data());
  detail::fail("--ranks: could not start ", mpirun, ": ", std::strerror(errno));
}

// Parses --device and --tf32 and fails early, before a tool creates any
// output, when the device cannot be used.
inline Device open_device(const std::string& name, bool tf32 = false) {
  const Device dev = Device::parse(name);
  SEEMORE_CHECK(!tf32 || dev.is_cuda(), "--tf32 applies to --device cuda only");
#if SEEMORE_HAS_CUDA
  if (dev.is_cuda()) backend::cuda::require_device(dev.index());
  backend::cuda::set_allow_tf32(tf32);
#endif
  return dev;
}

}  // namespace seemore::tools
