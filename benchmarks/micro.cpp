// CPU microbenchmarks, one per kernel family, at the shapes of the `seemore`
// preset's training step (batch 16, 37 vision tokens of width 512, 64 text
// tokens of width 128) and at head size 64 with T = 256 and 1024.
//
// Before timing, each benchmark checks the kernel against a plain reference
// loop in double precision (and stops with an error if they disagree). Each
// reports GFLOP/s or GB/s and the fraction of this machine's limit, measured
// at start-up: fp32 FMA peak over all threads, and memory bandwidth (the best
// of memcpy and two in-place update streams, over arrays larger than the
// last-level cache).
//
//   seemore-microbench [--threads=N] [Google Benchmark flags]
#include <seemore/backend/cpu/attention.hpp>
#include <seemore/backend/cpu/cross_entropy.hpp>
#include <seemore/backend/cpu/dropout.hpp>
#include <seemore/backend/cpu/elementwise.hpp>
#include <seemore/backend/cpu/gemm.hpp>
#include <seemore/backend/cpu/isa.hpp>
#include <seemore/backend/cpu/layernorm.hpp>
#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/backend/cpu/softmax.hpp>
#include <seemore/optim/adam.hpp>
#include <seemore/random.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

namespace cpu = seemore::backend::cpu;
using Clock = std::chrono::steady_clock;

namespace {

double g_peak_gflops = 0, g_bw_gbs = 0;
bool g_failed = false;  // a kernel disagreed with its reference: exit non-zero

void fail(benchmark::State& state, const char* what) {
  g_failed = true;
  state.SkipWithError(what);
}

std::vector<float> random_vec(size_t n, uint64_t seed, float scale = 1) {
  seemore::Generator g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * (2 * g.uniform() - 1);
  return v;
}

// ---- the machine's limits
// The fp32 FMA peak: independent chains of fused multiply-adds, enough of
// them to hide the FMA latency and few enough to stay in registers (AVX-512:
// 12 of 32 zmm; AVX2: 10 of 16 ymm), one chain set per thread. Each form is
// written with intrinsics under a target attribute, so it is what runs
// whatever -march the program was built with (a generic vector type is split
// and spilled on AVX2 and is not contracted into FMAs under -std=c++17), and
// the peak is the best of the forms this processor has (backend/cpu/isa.hpp),
// whatever SEEMORE_CPU caps the kernels at: it is the machine's limit (Eigen,
// built with -march=native, may use the wider form under a cap).
#if SEEMORE_X86_DISPATCH
SEEMORE_TARGET_AVX512 float fma_chains_avx512(int64_t n) {
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.0001f);
  __m512 a[12];
  for (auto& r : a) r = y;
  for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) a[k] = _mm512_fmadd_ps(a[k], x, y);
  __m512 t = a[0];
  for (int k = 1; k < 12; ++k) t = _mm512_add_ps(t, a[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, t);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}
SEEMORE_TARGET_AVX2 float fma_chains_avx2(int64_t n) {
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.0001f);
  __m256 a[10];
  for (auto& r : a) r = y;
  for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 10
    for (int k = 0; k < 10; ++k) a[k] = _mm256_fmadd_ps(a[k], x, y);
  __m256 t = a[0];
  for (int k = 1; k < 10; ++k) t = _mm256_add_ps(t, a[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, t);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}
#endif
// Portable: 8 scalar chains of std::fma (a floor on machines without either).
float fma_chains_scalar(int64_t n) {
  float a[8];
  for (auto& r : a) r = 0.0001f;
  for (int64_t i = 0; i < n; ++i)
    for (auto& r : a) r = std::fma(r, 0.999f, 0.0001f);
  float sum = 0;
  for (float v : a) sum += v;
  return sum;
}

struct FmaForm {
  const char* name;
  float (*run)(int64_t);
  int flops_per_iter;  // 2 per lane per chain
};
std::vector<FmaForm> fma_forms() {
  std::vector<FmaForm> f{{"scalar", fma_chains_scalar, 2 * 8}};
#if SEEMORE_X86_DISPATCH
  const cpu::Isa isa = cpu::supported_isa();
  if (int(isa) >= int(cpu::Isa::avx2)) f.push_back({"avx2", fma_chains_avx2, 2 * 8 * 10});
  if (isa == cpu::Isa::avx512) f.push_back({"avx512", fma_chains_avx512, 2 * 16 * 12});
#endif
  return f;
}

std::string g_peak_form, g_peak_forms;  // the best form; every form's figure
std::map<std::string, double> g_form_peak;  // every form's figure by name
double measure_peak_gflops() {
  const int threads = cpu::max_threads();
  double best = 0;
  for (const auto& form : fma_forms()) {
    double form_best = 0;
    const int64_t iters = form.flops_per_iter >= 64 ? 20'000'000 : 2'000'000;  // ~30 ms a vector run
    for (int rep = 0; rep < 5; ++rep) {  // best of five: the host's noise only ever slows it down
      const auto t0 = Clock::now();
      float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
      sink += form.run(iters);
      benchmark::DoNotOptimize(sink);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      const double gflops = double(form.flops_per_iter) * double(iters) * threads / s / 1e9;
      form_best = std::max(form_best, gflops);
      if (gflops > best) best = gflops, g_peak_form = form.name;
    }
    char line[64];
    std::snprintf(line, sizeof line, "%s%s %.0f", g_peak_forms.empty() ? "" : ", ", form.name, form_best);
    g_peak_forms += line;
    g_form_peak[form.name] = form_best;
  }
  return best;
}

// The register kernel's own ceiling: the packed kernel that float GEMMs run
// on (cpu::active_isa()), over one A and one B sliver that stay in L1 (12 +
// 32 KiB for AVX-512, 6 + 16 for AVX2), one pair per thread, so nothing but
// its loads and FMAs. Where this is well under the FMA loop, the core itself
// runs load-fed FMAs slower than register ones (a 2-core Xeon, model 167:
// 80–91% for the AVX-512 kernel, for MKL too, where the AVX2 one reaches 99%
// of the AVX2 loop; docs/benchmarks.md), and no blocking recovers it.
// 0 when GEMMs run on neither form.
double measure_kernel_gflops() {
#if SEEMORE_X86_DISPATCH
  namespace pk = cpu::detail_packed;
  const cpu::Isa isa = cpu::active_isa();
  if (isa != cpu::Isa::avx512 && isa != cpu::Isa::avx2) return 0;
  const pk::Geometry g = isa == cpu::Isa::avx512 ? pk::kAvx512 : pk::kAvx2;
  const int threads = cpu::max_threads();
  const int64_t calls = 4000;  // ~10 ms a thread
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      pk::Buffer a, b;
      float* ap = a.get(size_t(g.mr * g.kc));
      float* bp = b.get(size_t(g.nr * g.kc));
      std::fill(ap, ap + g.mr * g.kc, 0.001f);
      std::fill(bp, bp + g.nr * g.kc, 0.001f);
      std::vector<float> c(size_t(g.mr * g.nr));
      for (int64_t i = 0; i < calls; ++i) {
        if (isa == cpu::Isa::avx512)
          pk::kernel_avx512(g.kc, ap, bp, c.data(), g.nr, g.mr, g.nr, 1.0f, 1.0f, false);
        else
          pk::kernel_avx2(g.kc, ap, bp, c.data(), g.nr, g.mr, g.nr, 1.0f, 1.0f, false);
      }
      benchmark::DoNotOptimize(c.data());
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * double(g.mr * g.nr * g.kc) * double(calls) * threads / s / 1e9);
  }
  return best;
#else
  return 0;
#endif
}

// The last-level cache's size in bytes (0 when the system does not say).
// Servers lend VMs a share of an L3 of hundreds of MiB, which holds whole
// arrays a laptop would stream from memory.
int64_t last_level_cache_bytes() {
  for (int name : {_SC_LEVEL4_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long v = sysconf(name);
    if (v > 0) return int64_t(v);
  }
  return 0;
}

// The memory bandwidth: the best of three streams, each split over the
// threads, over arrays of at least 128 MiB and of the last-level cache's size
// each, so that they come from memory:
//  - memcpy, counted as read + write;
//  - an in-place update, a[i] = a[i]/2 + b[i] (two reads, one write back to a
//    line just read);
//  - three in-place updates from one read stream (four reads, three writes:
//    Adam's pattern, which outruns the other two, more streams in flight).
// memcpy alone undercounts: unless it streams past the caches, each line it
// writes is read first, a third transfer nobody counts.
double measure_bandwidth_gbs(int64_t llc_bytes) {
  const int64_t n = std::max<int64_t>(int64_t(32) << 20, llc_bytes / int64_t(sizeof(float)));  // floats an array
  const int64_t chunks = cpu::max_threads(), per = n / chunks;
  std::vector<float> a(size_t(n), 1.0f), b(size_t(n), 2.0f);
  double best = 0;
  auto stream = [&](double bytes_per_float, auto&& body) {
    const auto t0 = Clock::now();
#pragma omp parallel for
    for (int64_t c = 0; c < chunks; ++c) body(c * per);
    benchmark::DoNotOptimize(a.data());
    benchmark::DoNotOptimize(b.data());
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, bytes_per_float * double(per * chunks) / s / 1e9);
  };
  for (int rep = 0; rep < 6; ++rep) {
    stream(8, [&](int64_t o) { std::memcpy(b.data() + o, a.data() + o, size_t(per) * sizeof(float)); });
    stream(12, [&](int64_t o) {
      float* x = a.data() + o;
      const float* y = b.data() + o;
      for (int64_t i = 0; i < per; ++i) x[i] = 0.5f * x[i] + y[i];
    });
  }
  // The third stream updates the three thirds of a from the first third of
  // b: still at least the cache's size, as a alone is.
  const int64_t third = per / 3;
  for (int rep = 0; rep < 6; ++rep)
    stream(28.0 / 3, [&](int64_t o) {
      float* x = a.data() + o;
      float* y = x + third;
      float* z = y + third;
      const float* g = b.data() + o;
      for (int64_t i = 0; i < third; ++i) {
        x[i] = 0.5f * x[i] + g[i];
        y[i] = 0.5f * y[i] + g[i];
        z[i] = 0.5f * z[i] + g[i];
      }
    });
  return best;
}

// Bytes an iteration must move before its rate is called a share of the
// memory bandwidth: 64 MiB, and twice the last-level cache (set in main).
double g_memory_bound = 64.0 * (1 << 20);

// Times the benchmark loop itself and reports work per second and the share of the limit.
template <class F>
void timed(benchmark::State& state, double flops, double bytes, F&& body) {
  const auto t0 = Clock::now();
  for (auto _ : state) body();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double it = double(state.iterations());
  if (flops > 0) {
    state.counters["GFLOP/s"] = flops * it / s / 1e9;
    state.counters["%peak"] = 100 * flops * it / s / 1e9 / g_peak_gflops;
  }
  if (bytes > 0) {
    state.counters["GB/s"] = bytes * it / s / 1e9;
    // A share of the memory bandwidth only where the data cannot stay in
    // the caches between iterations: the model's activations (a few MiB)
    // are read from L2 or L3, faster than memory, and would show more than
    // 100% of a limit that is not theirs.
    if (bytes >= g_memory_bound) state.counters["%bw"] = 100 * bytes * it / s / 1e9 / g_bw_gbs;
  }
}

bool close(double got, double want, double tol) { return std::abs(got - want) <= tol * (1 + std::abs(want)); }

// ---- GEMM: C[M,N] = A[M,K] · B, B stored [N,K] (a Linear's weight) or [K,N].
void BM_Gemm(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const bool tb = state.range(3) != 0;
  auto A = random_vec(size_t(M * K), 1), B = random_vec(size_t(N * K), 2);
  std::vector<float> C(static_cast<size_t>(M * N));
  cpu::gemm<float>(false, tb, M, N, K, 1.f, A.data(), K, B.data(), tb ? K : N, 0.f, C.data(), N);
  for (int64_t i = 0; i < M; i += std::max<int64_t>(1, M / 7))
    for (int64_t j = 0; j < N; j += std::max<int64_t>(1, N / 5)) {
      double ref = 0;
      for (int64_t k = 0; k < K; ++k) ref += double(A[size_t(i * K + k)]) * B[size_t(tb ? j * K + k : k * N + j)];
      if (!close(C[size_t(i * N + j)], ref, 1e-4)) return fail(state, "GEMM disagrees with the reference loop");
    }
  timed(state, 2.0 * M * N * K, 0, [&] {
    cpu::gemm<float>(false, tb, M, N, K, 1.f, A.data(), K, B.data(), tb ? K : N, 0.f, C.data(), N);
    benchmark::ClobberMemory();
  });
}
// The step's GEMM shapes (forward; backward has the same sizes transposed).
BENCHMARK(BM_Gemm)->ArgNames({"M", "N", "K", "Bt"})
    ->Args({576, 512, 768, 1})     // patch embedding (im2col)
    ->Args({592, 1536, 512, 1})    // ViT qkv
    ->Args({592, 512, 512, 1})     // ViT attention projection
    ->Args({592, 2048, 512, 1})    // ViT FFN up
    ->Args({592, 512, 2048, 1})    // ViT FFN down
    ->Args({16, 2048, 512, 1})     // projector up (the CLS token only)
    ->Args({1024, 384, 128, 1})    // decoder qkv
    ->Args({1024, 512, 128, 1})    // decoder FFN up
    ->Args({1024, 128, 512, 1})    // decoder FFN down
    ->Args({1024, 66, 128, 1})     // lm_head
    ->Args({512, 2048, 592, 0})    // weight gradient shape (Aᵀ·B) of the ViT FFN
    ->Unit(benchmark::kMicrosecond);

// ---- GEMM packing: one KC block of op(B) into the register kernel's
// slivers, as each thread does per block (gemm_kernels.hpp). Sixteen source
// blocks are taken in turn, 8 MiB or more read in all, so the source comes from
// L3 as in a step (there every packed operand was last written by another
// layer or by Adam); GB/s counts the floats read.
void BM_Pack(benchmark::State& state) {
  const int64_t lines = state.range(0), kc = state.range(1), ld = state.range(2);
  const bool strided = state.range(3) != 0;  // each line contiguous along k (a transposed B, a row-major A)
  const cpu::Isa isa = cpu::active_isa();
  if (isa == cpu::Isa::scalar) return state.SkipWithError("no packed kernels on this processor");
  const int64_t w = cpu::detail_packed::col_grain(isa), slivers = (lines + w - 1) / w;
  const int64_t block = strided ? lines * ld : kc * ld, blocks = 16;
  auto src = random_vec(size_t(block * blocks), 15);
  cpu::detail_packed::Buffer buffer;  // 64-byte aligned, as the GEMM's own
  float* dst = buffer.get(size_t(slivers * w * kc));
  auto pack = [&](const float* from) {
    if (w == 32) cpu::detail_packed::pack<32>(strided, from, ld, lines, kc, dst);
    else cpu::detail_packed::pack<16>(strided, from, ld, lines, kc, dst);
  };
  pack(src.data());
  for (int64_t l = 0; l < lines; l += std::max<int64_t>(1, lines / 11))
    for (int64_t k = 0; k < kc; k += std::max<int64_t>(1, kc / 7)) {
      const float want = strided ? src[size_t(l * ld + k)] : src[size_t(k * ld + l)];
      if (dst[size_t(((l / w) * kc + k) * w + l % w)] != want) return fail(state, "packing misplaced an element");
    }
  int64_t next = 0;
  timed(state, 0, 4.0 * double(lines * kc), [&] {
    pack(src.data() + (next++ % blocks) * block);
    benchmark::ClobberMemory();
  });
}
BENCHMARK(BM_Pack)->ArgNames({"lines", "kc", "ld", "strided"})
    ->Args({1024, 256, 512, 1})   // a Linear's weight [2048, 512] in the forward (op(B) = Wᵀ), one thread's half
    ->Args({512, 256, 2048, 1})   // the FFN down weight [512, 2048] in the forward
    ->Args({1024, 256, 2048, 0})  // a row-major op(B): the FFN up weight in dX = dY·W, one thread's half
    ->Args({512, 256, 512, 0})    // a row-major op(B) of 512 columns
    ->Unit(benchmark::kMicrosecond);

// ---- attention on packed QKV [B, T, 3C], forward and backward
// Weight e's dropout factor: 1 without keep bits, else 0 or 1/(1−p) by bit e
// of one run.
double keep_value(const cpu::KeepBits* keep, int64_t e) {
  if (!keep) return 1.0;
  return (keep->words[e / 64] >> (e % 64)) & 1 ? 1.0 / (1.0 - keep->p) : 0.0;
}
// Query i of head (b, h), each weight (i, j) times its dropout factor,
// element (b·H + h)·T² + i·T + j.
void attention_reference(int64_t T, int64_t H, int64_t D, const float* qkv, float scale, bool causal, int64_t b,
                         int64_t h, int64_t i, const cpu::KeepBits* keep, std::vector<double>& out) {
  const int64_t C = H * D, C3 = 3 * C;
  const float* q = qkv + b * T * C3 + i * C3 + h * D;
  std::vector<double> s(static_cast<size_t>(T));
  double mx = -1e300, sum = 0;
  const int64_t n = causal ? i + 1 : T;
  for (int64_t j = 0; j < n; ++j) {
    const float* k = qkv + b * T * C3 + j * C3 + C + h * D;
    double a = 0;
    for (int64_t d = 0; d < D; ++d) a += double(q[d]) * k[d];
    s[size_t(j)] = a * scale;
    mx = std::max(mx, s[size_t(j)]);
  }
  for (int64_t j = 0; j < n; ++j) sum += (s[size_t(j)] = std::exp(s[size_t(j)] - mx));
  out.assign(size_t(D), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const float* v = qkv + b * T * C3 + j * C3 + 2 * C + h * D;
    const double m = keep_value(keep, (b * H + h) * T * T + i * T + j);
    for (int64_t d = 0; d < D; ++d) out[size_t(d)] += s[size_t(j)] / sum * m * v[d];
  }
}

void BM_Attention(benchmark::State& state) {
  const int64_t B = state.range(0), T = state.range(1), H = state.range(2), D = state.range(3);
  const bool causal = state.range(4) != 0, backward = state.range(5) != 0, dropout = state.range(6) != 0;
  const int64_t C = H * D;
  // The training step's attention drops weights (p = 0.1): the bits made as
  // ops/dropout.hpp makes them, one run over the B·H·T² weights.
  std::vector<uint64_t> words(dropout ? static_cast<size_t>((B * H * T * T + 63) / 64) : 0);
  const cpu::KeepBits bits{words.data(), 1, B * H * T * T, 0.1};
  if (dropout) cpu::dropout_forward_bits<float>(bits.len, nullptr, nullptr, words.data(), bits.p, 7, 0);
  const cpu::KeepBits* keep = dropout ? &bits : nullptr;
  const float scale = 1.f / std::sqrt(float(D));
  auto qkv = random_vec(size_t(B * T * 3 * C), 3);
  auto dout = random_vec(size_t(B * T * C), 4);
  std::vector<float> probs(static_cast<size_t>(B * H * T * T)), out(static_cast<size_t>(B * T * C)), dqkv(qkv.size());
  cpu::attention_forward<float>(B, T, H, D, qkv.data(), scale, causal, keep, probs.data(), out.data());
  std::vector<double> ref;
  for (int64_t b : {int64_t(0), B - 1})
    for (int64_t i : {int64_t(0), T / 2, T - 1}) {
      const int64_t h = (b + i) % H;
      attention_reference(T, H, D, qkv.data(), scale, causal, b, h, i, keep, ref);
      for (int64_t d = 0; d < D; ++d)
        if (!close(out[size_t(b * T * C + i * C + h * D + d)], ref[size_t(d)], 1e-4))
          return fail(state, "attention forward disagrees with the reference loop");
    }
  if (backward) {
    // dV of the last position (causal: only the last query sees it): Σ_i P̃[i,j]·dO[i].
    cpu::attention_backward<float>(B, T, H, D, qkv.data(), scale, causal, keep, probs.data(), dout.data(),
                                   dqkv.data());
    const int64_t j = T - 1, h = 0;
    for (int64_t d = 0; d < D; ++d) {
      double want = 0;
      for (int64_t i = causal ? j : 0; i < T; ++i) {
        const int64_t e = h * T * T + i * T + j;  // b = 0
        want += double(probs[size_t(e)]) * keep_value(keep, e) * dout[size_t(i * C + h * D + d)];
      }
      if (!close(dqkv[size_t(j * 3 * C + 2 * C + h * D + d)], want, 1e-4))
        return fail(state, "attention backward disagrees with the reference sum");
    }
  }
  // FLOPs of the scores the mask keeps (causal: T(T+1)/2, as the step's bound
  // counts them); the CPU form computes causal heads in blocks of 32 queries.
  const double scores = causal ? double(T) * double(T + 1) / 2 : double(T) * double(T);
  const double flops = double(B * H) * scores * D * (backward ? 8 : 4);
  timed(state, flops, 0, [&] {
    if (backward)
      cpu::attention_backward<float>(B, T, H, D, qkv.data(), scale, causal, keep, probs.data(), dout.data(),
                                     dqkv.data());
    else
      cpu::attention_forward<float>(B, T, H, D, qkv.data(), scale, causal, keep, probs.data(), out.data());
    benchmark::ClobberMemory();
  });
}
BENCHMARK(BM_Attention)->ArgNames({"B", "T", "H", "D", "causal", "bwd", "drop"})
    ->Args({16, 37, 8, 64, 0, 0, 0})->Args({16, 37, 8, 64, 0, 1, 0})    // ViT
    ->Args({16, 37, 8, 64, 0, 0, 1})->Args({16, 37, 8, 64, 0, 1, 1})    // ViT, as in training
    ->Args({16, 64, 8, 16, 1, 0, 0})->Args({16, 64, 8, 16, 1, 1, 0})    // decoder
    ->Args({16, 64, 8, 16, 1, 0, 1})->Args({16, 64, 8, 16, 1, 1, 1})    // decoder, as in training
    ->Args({4, 256, 8, 64, 1, 0, 0})->Args({4, 256, 8, 64, 1, 1, 0})    // head size 64, T = 256
    ->Args({1, 1024, 8, 64, 1, 0, 0})->Args({1, 1024, 8, 64, 1, 1, 0})  // head size 64, T = 1024
    ->Unit(benchmark::kMicrosecond);

// ---- LayerNorm forward and backward over rows of C
void BM_LayerNorm(benchmark::State& state) {
  const int64_t N = state.range(0), C = state.range(1);
  const bool backward = state.range(2) != 0;
  auto x = random_vec(size_t(N * C), 5, 3), w = random_vec(size_t(C), 6), b = random_vec(size_t(C), 7);
  auto dy = random_vec(size_t(N * C), 8);
  std::vector<float> y(x.size()), mean(static_cast<size_t>(N)), rstd(static_cast<size_t>(N)), dx(x.size()), dw(static_cast<size_t>(C)), db(static_cast<size_t>(C));
  cpu::layernorm_forward<float>(N, C, x.data(), w.data(), b.data(), 1e-5f, y.data(), mean.data(), rstd.data());
  for (int64_t r : {int64_t(0), N - 1}) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mu += x[size_t(r * C + c)];
    mu /= double(C);
    for (int64_t c = 0; c < C; ++c) var += (x[size_t(r * C + c)] - mu) * (x[size_t(r * C + c)] - mu);
    var /= double(C);
    for (int64_t c = 0; c < C; ++c)
      if (!close(y[size_t(r * C + c)], (x[size_t(r * C + c)] - mu) / std::sqrt(var + 1e-5) * w[size_t(c)] + b[size_t(c)], 1e-4))
        return fail(state, "LayerNorm disagrees with the reference loop");
  }
  // Floats moved: forward reads x, writes y; backward reads dy and x, writes dx.
  const double bytes = 4.0 * N * C * (backward ? 3 : 2);
  timed(state, 0, bytes, [&] {
    if (backward)
      cpu::layernorm_backward<float>(N, C, dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(),
                                     dw.data(), db.data());
    else
      cpu::layernorm_forward<float>(N, C, x.data(), w.data(), b.data(), 1e-5f, y.data(), mean.data(), rstd.data());
    benchmark::ClobberMemory();
  });
}
BENCHMARK(BM_LayerNorm)->ArgNames({"N", "C", "bwd"})
    ->Args({592, 512, 0})->Args({592, 512, 1})->Args({1024, 128, 0})->Args({1024, 128, 1})
    ->Unit(benchmark::kMicrosecond);

// ---- softmax over the last dimension (rows of n)
void BM_Softmax(benchmark::State& state) {
  const int64_t rows = state.range(0), n = state.range(1);
  auto x = random_vec(size_t(rows * n), 9, 4);
  std::vector<float> y(x.size());
  cpu::softmax_forward<float>(rows, n, 1, x.data(), y.data(), false);
  for (int64_t r : {int64_t(0), rows - 1}) {
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(x[size_t(r * n + j)]));
    for (int64_t j = 0; j < n; ++j) sum += std::exp(x[size_t(r * n + j)] - mx);
    for (int64_t j = 0; j < n; ++j)
      if (!close(y[size_t(r * n + j)], std::exp(x[size_t(r * n + j)] - mx) / sum, 1e-5))
        return fail(state, "softmax disagrees with the reference loop");
  }
  timed(state, 0, 8.0 * rows * n, [&] {
    cpu::softmax_forward<float>(rows, n, 1, x.data(), y.data(), false);
    benchmark::ClobberMemory();
  });
}
BENCHMARK(BM_Softmax)->ArgNames({"rows", "n"})
    ->Args({16 * 8 * 37, 37})->Args({16 * 8 * 64, 64})->Args({1024, 66})->Args({8 * 1024, 1024})
    ->Unit(benchmark::kMicrosecond);

// ---- GELU (erf form), forward and backward, over the MLPs' hidden activations
// mode 0: the forward alone (inference); 1: the training forward, GELU and
// its derivative d from one erf; 2: the training backward, dy·d; 3: the
// backward from x (erf and exp again), which training ran before mode 1.
void BM_Gelu(benchmark::State& state) {
  const int64_t n = state.range(0), mode = state.range(1);
  auto x = random_vec(size_t(n), 13, 4), dy = random_vec(size_t(n), 14);
  std::vector<float> y(x.size()), dx(x.size()), y2(x.size()), d(x.size()), dx2(x.size());
  cpu::gelu_forward<float>(n, x.data(), y.data(), false);
  cpu::gelu_backward<float>(n, x.data(), dy.data(), dx.data(), false);
  cpu::gelu_forward_grad<float>(n, x.data(), y2.data(), d.data());
  cpu::gelu_backward_saved<float>(n, d.data(), dy.data(), dx2.data());
  for (int64_t i = 0; i < n; i += n / 997 + 1) {
    const double v = x[size_t(i)], cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
    const double want_y = v * cdf, want_dx = dy[size_t(i)] * (cdf + v * pdf);
    if (!close(y[size_t(i)], want_y, 1e-5) || !close(dx[size_t(i)], want_dx, 1e-5) ||
        !close(y2[size_t(i)], want_y, 1e-5) || !close(dx2[size_t(i)], want_dx, 1e-5))
      return fail(state, "GELU disagrees with the reference formula");
  }
  // Elements per second: the erf and exp modes are compute-bound (erf's
  // polynomials and division, the exp) and the arrays stay in L3, so no
  // share of the memory bandwidth is claimed.
  timed(state, 0, 0, [&] {
    if (mode == 0) cpu::gelu_forward<float>(n, x.data(), y.data(), false);
    else if (mode == 1) cpu::gelu_forward_grad<float>(n, x.data(), y2.data(), d.data());
    else if (mode == 2) cpu::gelu_backward_saved<float>(n, d.data(), dy.data(), dx2.data());
    else cpu::gelu_backward<float>(n, x.data(), dy.data(), dx.data(), false);
    benchmark::ClobberMemory();
  });
  state.counters["elements/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Gelu)->ArgNames({"n", "mode"})
    ->ArgsProduct({{592 * 2048, 1024 * 512}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMicrosecond);

// ---- cross-entropy: fused log-softmax + NLL, forward and backward
void BM_CrossEntropy(benchmark::State& state) {
  const int64_t N = state.range(0), V = state.range(1);
  const bool backward = state.range(2) != 0;
  auto logits = random_vec(size_t(N * V), 10, 5);
  std::vector<int32_t> targets(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) targets[size_t(i)] = int32_t((i * 7) % V);
  std::vector<float> losses(static_cast<size_t>(N)), dlogits(logits.size());
  cpu::cross_entropy_forward<float>(N, V, logits.data(), targets.data(), -100, losses.data());
  for (int64_t r : {int64_t(0), N - 1}) {
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, double(logits[size_t(r * V + j)]));
    for (int64_t j = 0; j < V; ++j) sum += std::exp(logits[size_t(r * V + j)] - mx);
    const double want = std::log(sum) + mx - logits[size_t(r * V + targets[size_t(r)])];
    if (!close(losses[size_t(r)], want, 1e-5)) return fail(state, "cross-entropy disagrees with the reference");
  }
  timed(state, 0, 4.0 * N * V * (backward ? 2 : 1), [&] {
    if (backward)
      cpu::cross_entropy_backward<float>(N, V, logits.data(), targets.data(), -100, 1.f / float(N), dlogits.data());
    else
      cpu::cross_entropy_forward<float>(N, V, logits.data(), targets.data(), -100, losses.data());
    benchmark::ClobberMemory();
  });
}
BENCHMARK(BM_CrossEntropy)->ArgNames({"N", "V", "bwd"})
    ->Args({1024, 66, 0})->Args({1024, 66, 1})->Args({16 * 1024, 66, 0})->Args({16 * 1024, 66, 1})
    ->Unit(benchmark::kMicrosecond);

// ---- Adam over the seemore preset's 12.9M parameters (one tensor per range(1) split)
void BM_Adam(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto p = seemore::Tensor<float>::from_vector({n}, random_vec(size_t(n), 11));
  p.requires_grad_(true);
  const auto p0 = p.to_vector();
  const auto g = random_vec(size_t(n), 12);
  p.set_grad(seemore::Tensor<float>::from_vector({n}, g));
  seemore::optim::Adam<float> opt({p}, {});
  opt.step();
  // First step from zero moments: p − lr·g/(|g| + ε) = p − lr·sign(g), up to ε.
  for (int64_t i = 0; i < n; i += n / 97 + 1) {
    const double want = p0[size_t(i)] - 1e-3 * g[size_t(i)] / (std::abs(g[size_t(i)]) + 1e-8);
    if (!close(p.data()[i], want, 1e-5)) return fail(state, "Adam disagrees with the reference update");
  }
  // Reads p, g, m, v; writes p, m, v.
  timed(state, 0, 4.0 * 7 * n, [&] {
    opt.step();
    benchmark::ClobberMemory();
  });
}
BENCHMARK(BM_Adam)->ArgName("params")->Arg(12907970)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      cpu::set_num_threads(std::atoi(argv[i] + 10));
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  std::string gemm_library;
  try {
    gemm_library = cpu::gemm_library();  // Eigen, or the BLAS SEEMORE_BLAS names
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seemore-microbench: %s\n", e.what());
    return 1;
  }
  g_peak_gflops = measure_peak_gflops();
  const int64_t llc = last_level_cache_bytes();
  g_memory_bound = std::max(g_memory_bound, 2.0 * double(llc));
  g_bw_gbs = measure_bandwidth_gbs(llc);
  const double kernel_gflops = measure_kernel_gflops();
  std::printf("threads %d, measured fp32 FMA peak %.0f GFLOP/s (%s loop; by form: %s), memory bandwidth %.1f GB/s (best of memcpy and two update streams; "
              "%%bw only where an iteration moves %.0f MiB or more, twice the %.0f MiB last-level cache); float GEMMs on %s\n",
              cpu::max_threads(), g_peak_gflops, g_peak_form.c_str(), g_peak_forms.c_str(), g_bw_gbs,
              g_memory_bound / (1 << 20), double(llc) / (1 << 20), gemm_library.c_str());
  if (kernel_gflops > 0) {
    // Under a cap (SEEMORE_CPU=avx2) the kernel's own form's loop is its limit too.
    const std::string form = cpu::isa_name(cpu::active_isa());
    std::string own;
    if (form != g_peak_form && g_form_peak.count(form) && g_form_peak[form] > 0)
      own = "; " + std::to_string(int(std::lround(100 * kernel_gflops / g_form_peak[form]))) + "% of the " + form +
            " loop's";
    std::printf("the GEMM register kernel on L1-resident panels: %.0f GFLOP/s (%.0f%% of the FMA peak%s)\n",
                kernel_gflops, 100 * kernel_gflops / g_peak_gflops, own.c_str());
  }
  benchmark::AddCustomContext("kernel_l1_gflops", std::to_string(kernel_gflops));
  benchmark::AddCustomContext("peak_gflops", std::to_string(g_peak_gflops));
  benchmark::AddCustomContext("peak_loop", g_peak_form);
  benchmark::AddCustomContext("peak_by_loop", g_peak_forms);
  benchmark::AddCustomContext("bandwidth_gbs", std::to_string(g_bw_gbs));
  benchmark::AddCustomContext("gemm_library", gemm_library);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
