// CUDA microbenchmarks, one per kernel family, at the same shapes as the CPU's
// seemore-microbench (the `seemore` preset's training step, and head size 64
// at T = 256 and 1024).
//
// Each case first checks the GPU result against the CPU backend (the oracle)
// on the same inputs and stops with exit code 1 if they disagree; then it
// times the kernel with CUDA events (median of --reps runs after a warm-up)
// and reports TFLOP/s or GB/s next to this GPU's limits, measured at start-up:
// an fp32 FMA loop and a device-to-device copy.
//
//   seemore-microbench-cuda [--reps 50] [--json FILE]
#include <seemore/vlm.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

using namespace seemore;
namespace cu = seemore::backend::cuda;
namespace cpu = seemore::backend::cpu;

namespace {

int g_reps = 50;
bool g_failed = false;
double g_peak_tflops = 0, g_bw_gbs = 0;
// Bytes a call must move before its rate is called a share of the copy
// bandwidth: twice the L2 (set at start-up). Below that the data can stay in
// L2 between calls and run faster than the copy, a "share" over 100%.
double g_memory_bound = 0;
FILE* g_json = nullptr;

// Median milliseconds of fn over g_reps runs (after three warm-ups).
double time_ms(const std::function<void()>& fn) {
  cudaStream_t s = cu::current_stream();
  cudaEvent_t a, b;
  SEEMORE_CUDA_CHECK(cudaEventCreate(&a));
  SEEMORE_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) fn();
  std::vector<float> ms;
  for (int i = 0; i < g_reps; ++i) {
    SEEMORE_CUDA_CHECK(cudaEventRecord(a, s));
    fn();
    SEEMORE_CUDA_CHECK(cudaEventRecord(b, s));
    SEEMORE_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    SEEMORE_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// `tensor_cores`: the work ran on tensor cores (TF32), whose rate the fp32
// FMA loop does not bound, so no share of it is printed.
void report(const std::string& name, double ms, double flops, double bytes, bool tensor_cores = false) {
  const double tflops = flops / (ms * 1e-3) * 1e-12, gbs = bytes / (ms * 1e-3) * 1e-9;
  std::printf("%-44s %9.4f ms", name.c_str(), ms);
  if (flops > 0 && tensor_cores) std::printf("  %7.2f TFLOP/s (tensor cores)", tflops);
  else if (flops > 0) std::printf("  %7.2f TFLOP/s (%4.1f%% of fp32 peak)", tflops, 100 * tflops / g_peak_tflops);
  if (bytes > 0 && bytes >= g_memory_bound) std::printf("  %8.1f GB/s (%4.1f%% of copy bandwidth)", gbs, 100 * gbs / g_bw_gbs);
  else if (bytes > 0) std::printf("  %8.1f GB/s (within L2)", gbs);
  std::printf("\n");
  if (g_json)
    std::fprintf(g_json, "{\"name\": \"%s\", \"ms\": %.6f, \"tflops\": %.4f, \"gbs\": %.2f}\n", name.c_str(), ms,
                 flops > 0 ? tflops : 0.0, bytes > 0 ? gbs : 0.0);
}

// Worst |gpu − cpu| relative to the largest |cpu| value; fails the run past tol.
bool agree(const std::string& name, const Tensor<float>& gpu, const Tensor<float>& ref, double tol) {
  auto g = gpu.to_vector(), r = ref.to_vector();
  double mx = 1e-30, worst = 0;
  for (float v : r) mx = std::max(mx, double(std::abs(v)));
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(double(g[i]) - double(r[i])));
  if (!(worst <= tol * mx) || g.size() != r.size()) {
    std::printf("%-44s DISAGREES with the CPU: max error %.3g (%.3g relative, tolerance %.1g)\n", name.c_str(), worst,
                worst / mx, tol);
    g_failed = true;
    return false;
  }
  return true;
}

// ---- this GPU's limits
__global__ void fma_kernel(float* out, int iters) {
  float a0 = threadIdx.x, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
  const float m = 0.999f, c = 0.001f;
  for (int i = 0; i < iters; ++i) {
    a0 = fmaf(a0, m, c); a1 = fmaf(a1, m, c); a2 = fmaf(a2, m, c); a3 = fmaf(a3, m, c);
    a4 = fmaf(a4, m, c); a5 = fmaf(a5, m, c); a6 = fmaf(a6, m, c); a7 = fmaf(a7, m, c);
  }
  if (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 == 1234.5f) out[0] = 1;  // keeps the loop alive
}
void measure_limits() {
  int sms = 0;
  SEEMORE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  auto sink = Tensor<float>::zeros({1}, Device::cuda());
  const int blocks = sms * 8, threads = 256, iters = 4096;
  const double ms = time_ms([&] { fma_kernel<<<blocks, threads, 0, cu::current_stream()>>>(sink.data(), iters); });
  g_peak_tflops = double(blocks) * threads * iters * 8 * 2 / (ms * 1e-3) * 1e-12;
  const int64_t n = int64_t(1) << 28;  // 1 GiB
  auto a = Tensor<float>::zeros({n}, Device::cuda()), b = Tensor<float>::zeros({n}, Device::cuda());
  const double cms = time_ms([&] {
    SEEMORE_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), size_t(n) * 4, cudaMemcpyDeviceToDevice, cu::current_stream()));
  });
  g_bw_gbs = 2.0 * double(n) * 4 / (cms * 1e-3) * 1e-9;  // read + write
  int l2 = 0;
  SEEMORE_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  g_memory_bound = 2.0 * double(l2);
  cudaDeviceProp p{};
  SEEMORE_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  std::printf("GPU: %s, %d SMs; measured fp32 FMA peak %.1f TFLOP/s, copy bandwidth %.0f GB/s (a share of it "
              "only where a call moves %.0f MiB or more, twice the L2)\n",
              p.name, sms, g_peak_tflops, g_bw_gbs, g_memory_bound / (1 << 20));
}

Tensor<float> rnd(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor<float>::randn(s, g);
}

// ---- GEMM (cuBLAS, fp32; TF32 as a second line)
void bench_gemm(int64_t M, int64_t N, int64_t K, bool ta, const char* what) {
  auto A = rnd(ta ? Shape{K, M} : Shape{M, K}, 1), B = rnd({N, K}, 2);
  auto C = Tensor<float>::empty({M, N}), Cg = Tensor<float>::empty({M, N}, Device::cuda());
  auto Ag = A.to(Device::cuda()), Bg = B.to(Device::cuda());
  cpu::gemm(ta, true, M, N, K, 1.0f, A.data(), ta ? M : K, B.data(), K, 0.0f, C.data(), N);
  cu::gemm(ta, true, M, N, K, 1.0f, Ag.data(), ta ? M : K, Bg.data(), K, 0.0f, Cg.data(), N);
  const std::string name = "gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " + what;
  if (!agree(name, Cg, C, 1e-4)) return;
  auto run = [&] { cu::gemm(ta, true, M, N, K, 1.0f, Ag.data(), ta ? M : K, Bg.data(), K, 0.0f, Cg.data(), N); };
  report(name, time_ms(run), 2.0 * M * N * K, 0);
  cu::set_allow_tf32(true);
  report(name + " tf32", time_ms(run), 2.0 * M * N * K, 0, true);
  cu::set_allow_tf32(false);
}

// ---- attention: forward, and forward + backward, against the CPU op
void bench_attention(int64_t B, int64_t Tn, int64_t H, int64_t D, bool causal, const char* what) {
  const int64_t C = H * D;
  AttentionOptions o{H, 1.0 / std::sqrt(double(D)), causal, 0.0, false};
  const std::string name = std::string("attention ") + what + " B" + std::to_string(B) + " T" + std::to_string(Tn) +
                           " H" + std::to_string(H) + " D" + std::to_string(D) + (causal ? " causal" : "");
  {  // check one batch element against the CPU, forward and backward
    auto x = rnd({1, Tn, 3 * C}, 3), gup = rnd({1, Tn, C}, 4);
    auto xc = x.clone().requires_grad_(), xg = x.to(Device::cuda()).requires_grad_();
    auto oc = attention(xc, o), og = attention(xg, o);
    sum(mul(oc, gup)).backward();
    sum(mul(og, gup.to(Device::cuda()))).backward();
    if (!agree(name + " fwd", og, oc, 2e-4) || !agree(name + " bwd", xg.grad(), xc.grad(), 2e-4)) return;
  }
  auto qkv = rnd({B, Tn, 3 * C}, 5).to(Device::cuda());
  auto out = Tensor<float>::empty({B, Tn, C}, Device::cuda()), lse = Tensor<float>::empty({B, H, Tn}, Device::cuda());
  auto dout = rnd({B, Tn, C}, 6).to(Device::cuda()), dqkv = Tensor<float>::empty({B, Tn, 3 * C}, Device::cuda());
  auto delta = Tensor<float>::empty({B, H, Tn}, Device::cuda());
  auto fwd = [&] {
    cu::flash_attention_forward(B, Tn, H, D, qkv.data(), o.scale, causal, 0.0, 0, 0, lse.data(), out.data());
  };
  auto bwd = [&] {
    cu::flash_attention_backward(B, Tn, H, D, qkv.data(), o.scale, causal, 0.0, 0, 0, out.data(), lse.data(),
                                 dout.data(), delta.data(), dqkv.data());
  };
  const double frac = causal ? 0.5 : 1.0;  // useful share of the T×T scores
  const double f = 4.0 * B * H * double(Tn) * double(Tn) * D * frac;  // QKᵀ and PV
  report(name + " fwd", time_ms(fwd), f, 0);
  report(name + " fwd+bwd", time_ms([&] { fwd(); bwd(); }), 3.5 * f, 0);
}

// ---- row kernels (bytes: every input read once, every output written once)
void bench_layernorm(int64_t N, int64_t C) {
  auto x = rnd({N, C}, 7), w = rnd({C}, 8), b = rnd({C}, 9), dy = rnd({N, C}, 10);
  const std::string name = "layernorm fwd+bwd " + std::to_string(N) + "x" + std::to_string(C);
  {
    auto xc = x.clone().requires_grad_(), xg = x.to(Device::cuda()).requires_grad_();
    auto wc = w.clone().requires_grad_(), wg = w.to(Device::cuda()).requires_grad_();
    auto bc = b.clone().requires_grad_(), bg = b.to(Device::cuda()).requires_grad_();
    auto oc = layer_norm(xc, wc, bc), og = layer_norm(xg, wg, bg);
    sum(mul(oc, dy)).backward();
    sum(mul(og, dy.to(Device::cuda()))).backward();
    if (!agree(name + " out", og, oc, 1e-5) || !agree(name + " dx", xg.grad(), xc.grad(), 1e-4) ||
        !agree(name + " dw", wg.grad(), wc.grad(), 1e-4))
      return;
  }
  auto xg = x.to(Device::cuda()), wg = w.to(Device::cuda()), bg = b.to(Device::cuda()), dyg = dy.to(Device::cuda());
  auto out = Tensor<float>::empty({N, C}, Device::cuda()), dx = Tensor<float>::empty({N, C}, Device::cuda());
  auto mean = Tensor<float>::empty({N}, Device::cuda()), rstd = Tensor<float>::empty({N}, Device::cuda());
  auto dw = Tensor<float>::zeros({C}, Device::cuda()), db = Tensor<float>::zeros({C}, Device::cuda());
  report("layernorm fwd " + std::to_string(N) + "x" + std::to_string(C), time_ms([&] {
           cu::layernorm_forward(N, C, xg.data(), wg.data(), bg.data(), 1e-5f, out.data(), mean.data(), rstd.data());
         }), 0, 2.0 * N * C * 4);
  report("layernorm bwd " + std::to_string(N) + "x" + std::to_string(C), time_ms([&] {
           cu::layernorm_backward(N, C, dyg.data(), xg.data(), wg.data(), mean.data(), rstd.data(), dx.data(),
                                  dw.data(), db.data());
         }), 0, 3.0 * N * C * 4);
}

void bench_softmax(int64_t rows, int64_t n) {
  auto x = rnd({rows, n}, 11);
  const std::string name = "softmax " + std::to_string(rows) + "x" + std::to_string(n);
  auto xg = x.to(Device::cuda());
  if (!agree(name, softmax(xg), softmax(x), 1e-5)) return;
  auto y = Tensor<float>::empty({rows, n}, Device::cuda());
  report(name, time_ms([&] { cu::softmax_forward(1 * rows, n, 1, xg.data(), y.data(), false); }), 0,
         2.0 * rows * n * 4);
}

void bench_cross_entropy(int64_t N, int64_t V) {
  auto x = rnd({N, V}, 12);
  std::vector<int32_t> t(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) t[size_t(i)] = i % 7 == 0 ? -100 : int32_t((i * 31) % V);
  auto tc = Tensor<int32_t>::from_vector({N}, t);
  const std::string name = "cross_entropy " + std::to_string(N) + "x" + std::to_string(V);
  auto xc = x.clone().requires_grad_(), xg = x.to(Device::cuda()).requires_grad_();
  auto lc = cross_entropy(xc, tc), lg = cross_entropy(xg, tc.to(Device::cuda()));
  lc.backward();
  lg.backward();
  if (!agree(name + " loss", lg, lc, 1e-5) || !agree(name + " grad", xg.grad(), xc.grad(), 1e-5)) return;
  auto tg = tc.to(Device::cuda());
  auto losses = Tensor<float>::empty({N}, Device::cuda()), d = Tensor<float>::empty({N, V}, Device::cuda());
  report(name + " fwd", time_ms([&] { cu::cross_entropy_forward(N, V, xg.data(), tg.data(), -100, losses.data()); }),
         0, double(N) * V * 4);
  report(name + " bwd", time_ms([&] {
           cu::cross_entropy_backward(N, V, xg.data(), tg.data(), -100, 1.0f / float(N), d.data());
         }), 0, 2.0 * N * V * 4);
}

void bench_adam(int64_t total) {
  // The seemore preset's parameter sizes are many small tensors and a few big ones.
  std::vector<int64_t> sizes;
  for (int64_t left = total, k = 0; left > 0; ++k) {
    const int64_t n = std::min(left, k % 3 == 0 ? int64_t(512) : int64_t(786432));
    sizes.push_back(n);
    left -= n;
  }
  std::vector<Tensor<float>> pc, pg;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto p = rnd({sizes[i]}, 100 + i);
    pc.push_back(p.clone().requires_grad_());
    pg.push_back(p.to(Device::cuda()).requires_grad_());
    auto gr = rnd({sizes[i]}, 200 + i);
    pc.back().set_grad(gr);
    pg.back().set_grad(gr.to(Device::cuda()));
  }
  optim::Adam<float> oc(pc, {1e-3}), og(pg, {1e-3});
  oc.step();
  og.step();
  const std::string name = "adam " + std::to_string(total) + " params, " + std::to_string(sizes.size()) + " tensors";
  for (size_t i = 0; i < pc.size(); ++i)
    if (!agree(name, pg[i].detach(), pc[i].detach(), 1e-5)) return;
  report(name, time_ms([&] { og.step(); }), 0, 7.0 * double(total) * 4);  // read p g m v, write p m v
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) g_reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--json" && i + 1 < argc) json = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf("usage: seemore-microbench-cuda [--reps N] [--json FILE]\n"
                  "every CUDA kernel family checked against the CPU, then timed with CUDA events\n");
      return 0;
    } else {
      std::fprintf(stderr, "usage: seemore-microbench-cuda [--reps N] [--json FILE]\n");
      return 2;
    }
  }
  if (!cu::device_available()) {
    std::printf("skipped: no usable GPU (%s)\n", cu::device_status().c_str());
    return 77;
  }
  try {
    if (!json.empty()) {
      g_json = std::fopen(json.c_str(), "w");
      SEEMORE_CHECK(g_json, json, ": cannot open for writing");
    }
    measure_limits();
    bench_gemm(576, 512, 768, false, "(patch embedding)");
    bench_gemm(592, 1536, 512, false, "(ViT qkv)");
    bench_gemm(592, 2048, 512, false, "(ViT FFN up)");
    bench_gemm(592, 512, 2048, false, "(ViT FFN down)");
    bench_gemm(1024, 384, 128, false, "(decoder qkv)");
    bench_gemm(1024, 512, 128, false, "(decoder FFN up)");
    bench_gemm(1024, 66, 128, false, "(lm_head)");
    bench_gemm(512, 2048, 592, true, "(weight gradient, Aᵀ·B)");
    bench_attention(16, 37, 8, 64, false, "(ViT)");
    bench_attention(16, 64, 8, 16, true, "(decoder)");
    bench_attention(4, 256, 8, 64, true, "(D 64, T 256)");
    bench_attention(1, 1024, 8, 64, true, "(D 64, T 1024)");
    bench_attention(8, 1024, 8, 64, true, "(D 64, T 1024, B 8)");
    bench_layernorm(592, 512);
    bench_layernorm(1024, 128);
    bench_softmax(16 * 8 * 64, 64);
    bench_softmax(8 * 1024, 1024);
    bench_cross_entropy(1024, 66);
    bench_cross_entropy(16 * 1024, 66);
    bench_adam(12907970);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seemore-microbench-cuda: %s\n", e.what());
    return 1;
  }
  if (g_json) std::fclose(g_json);
  if (g_failed) std::printf("FAILED: a CUDA kernel disagrees with the CPU\n");
  return g_failed ? 1 : 0;
}
