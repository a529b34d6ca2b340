// seemore/backend/cpu/blas.hpp — an optional BLAS for float GEMMs, loaded at run time.
//
// By default float GEMMs run on our packed kernels (gemm_kernels.hpp; Eigen on
// a processor without AVX2) and the library needs nothing else. A user who has
// another single-precision GEMM (Intel's MKL, OpenBLAS or BLIS built for the
// CPU) can hand float products to it without rebuilding:
//
//   SEEMORE_BLAS=/path/to/libmkl_rt.so.2 ./my_trainer     (read at the first GEMM)
//   seemore::backend::cpu::use_blas("/path/to/libopenblas.so.0");
//
// The library is opened with dlopen and must export the Fortran `sgemm_` with
// 32-bit integers (the LP64 interface every one of them ships by default).
// Doubles stay on Eigen: they are the reference path the float kernels are
// tested against, and must not change with the BLAS.
#pragma once

#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/config.hpp>

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

namespace seemore::backend::cpu {

namespace detail_blas {
// Fortran BLAS: column-major, every argument by pointer.
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

struct State {
  std::mutex mutex;
  std::atomic<Sgemm> sgemm{nullptr};
  std::atomic<bool> env_read{false}, env_failed{false};
  std::string name;       // the path in use, or "" for the built-in kernels
  std::string env_error;  // why SEEMORE_BLAS could not be used
};
inline State& state() {
  static State s;
  return s;
}

// Our gemm splits a product over the OpenMP threads itself and calls the BLAS
// once per thread, so a BLAS that starts threads of its own would put two on
// each core. Each library reads its thread setting when it is loaded; a value
// the user has set is left alone. MKL's sequential layer also spares it the
// Intel OpenMP runtime, which its Python wheel does not include.
inline void single_threaded_blas_env() {
  setenv("MKL_THREADING_LAYER", "SEQUENTIAL", 0);
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  setenv("BLIS_NUM_THREADS", "1", 0);
}

// [1 2 3; 4 5 6] · [1 2; 3 4; 5 6] = [22 28; 49 64], column-major. A library
// whose `sgemm_` is not a GEMM with 32-bit integers gets this wrong.
inline bool computes_known_product(Sgemm f) {
  const float a[6] = {1, 4, 2, 5, 3, 6}, b[6] = {1, 3, 5, 2, 4, 6};
  float c[4] = {-1, -1, -1, -1};
  const int m = 2, n = 2, k = 3, lda = 2, ldb = 3, ldc = 2;
  const float alpha = 1, beta = 0;
  f("N", "N", &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
  return c[0] == 22 && c[1] == 49 && c[2] == 28 && c[3] == 64;
}

inline Sgemm open_sgemm(const std::string& path, const std::string& where) {
  single_threaded_blas_env();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    ::seemore::detail::fail(where, ": cannot load '", path, "': ", why ? why : "dlopen failed");
  }
  // Never dlclose'd: GEMMs on other threads may still hold the function.
  auto f = reinterpret_cast<Sgemm>(dlsym(lib, "sgemm_"));
  SEEMORE_CHECK(f, where, ": '", path, "' has no sgemm_ (the Fortran BLAS single-precision GEMM)");
  SEEMORE_CHECK(computes_known_product(f), where, ": sgemm_ in '", path,
                "' gets a 2x3 by 3x2 product wrong; an LP64 BLAS (32-bit integers) is needed");
  return f;
}

// A bad SEEMORE_BLAS is kept as an error rather than thrown here: the first
// read may happen on a thread inside a parallel region, where a throw would
// end the program without its message.
inline void read_env_locked(State& s) {
  if (s.env_read.load(std::memory_order_acquire)) return;
  const char* env = std::getenv("SEEMORE_BLAS");
  if (env && *env) {
    try {
      s.sgemm.store(open_sgemm(env, "SEEMORE_BLAS"), std::memory_order_release);
      s.name = env;
    } catch (const Error& e) {
      s.env_error = e.what();
      s.env_failed.store(true, std::memory_order_release);
    }
  }
  s.env_read.store(true, std::memory_order_release);
}
}  // namespace detail_blas

// Float GEMMs go to the BLAS at `path` from now on; "" returns them to the
// built-in kernels.
// Throws seemore::Error naming the path when the library cannot be used, and
// then leaves the current choice as it was. Overrides SEEMORE_BLAS.
inline void use_blas(const std::string& path) {
  auto& s = detail_blas::state();
  std::lock_guard<std::mutex> lock(s.mutex);
  detail_blas::Sgemm f = path.empty() ? nullptr : detail_blas::open_sgemm(path, "use_blas");
  s.sgemm.store(f, std::memory_order_release);
  s.name = path;
  s.env_error.clear();
  s.env_failed.store(false, std::memory_order_release);
  s.env_read.store(true, std::memory_order_release);
}

// Reads SEEMORE_BLAS if nothing has yet, and throws seemore::Error if it names
// a library that cannot be used. Programs call it at start-up so that a bad
// value is reported there.
inline void use_blas_from_env() {
  auto& s = detail_blas::state();
  std::lock_guard<std::mutex> lock(s.mutex);
  detail_blas::read_env_locked(s);
  if (!s.env_error.empty()) throw Error(s.env_error);
}

// The BLAS float GEMMs are handed to, or "" (gemm.hpp's gemm_library names
// what runs them then).
inline std::string blas_library() {
  use_blas_from_env();
  auto& s = detail_blas::state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.name;
}

namespace detail_blas {
// The BLAS float GEMMs use, or nullptr for the built-in kernels. While
// SEEMORE_BLAS names a library that cannot be used, every GEMM outside a
// parallel region throws (inside one, the built-in kernels are used) until
// use_blas() makes a choice.
inline Sgemm active() {
  auto& s = state();
  if (Sgemm f = s.sgemm.load(std::memory_order_acquire)) return f;
  if (!s.env_read.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(s.mutex);
    read_env_locked(s);
  }
  if (s.env_failed.load(std::memory_order_acquire) && !in_parallel()) {
    std::lock_guard<std::mutex> lock(s.mutex);
    throw Error(s.env_error);
  }
  return s.sgemm.load(std::memory_order_acquire);
}
}  // namespace detail_blas

}  // namespace seemore::backend::cpu
