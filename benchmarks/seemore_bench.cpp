// seemore-bench: the end-to-end figures of a model.
//
//  * training step (forward, backward, Adam) on a realistic batch: median and
//    best time over --steps timed steps after --warmup, samples/s, and how
//    much of the step the model's GEMMs take and at what throughput;
//  * captioning one image: time per generated token with the KV cache, and
//    per token when the full forward is re-run for every new token;
//  * peak resident memory of the training part.
//
//   seemore-bench [--preset seemore|standard] [--config FILE] [--batch-size 16]
//                 [--text-len 63] [--steps 20] [--warmup 3] [--threads N] [--device cpu|cuda] [--json] [--gemm-shapes]
//
// On a GPU (--device cuda, run by seemore-bench-cuda) a step ends when its loss
// reaches the host, so the times include the whole queue; memory is the peak
// held by the caching allocator, and the GEMM share is not measured.
#include <seemore/vlm.hpp>
#if SEEMORE_HAS_CUDA
#include <seemore/train/step_graph.hpp>
#endif

#include "../examples/device_relaunch.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

using namespace seemore;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// This process's peak resident memory. VmHWM first: getrusage's ru_maxrss
// survives execve, so under a big parent (side_by_side.py with PyTorch
// loaded) it reported the parent's 800 MiB.
double peak_rss_mib() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    double kib = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
    std::fclose(f);
    if (kib >= 0) return kib / 1024.0;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

struct Args {
  std::string preset = "seemore", config, device = "cpu";
  int64_t batch = 16, text_len = 63, steps = 20, warmup = 3, caption_tokens = 60;
  int threads = 0;
  bool json = false, tf32 = false, gemm_shapes = false, cuda_graph = false;
};

// The step's GEMMs by shape, slowest total first: where the GEMM time goes.
void print_gemm_shapes(int64_t steps) {
  auto& gs = backend::cpu::gemm_stats();
  std::vector<std::pair<backend::cpu::GemmStats::Key, backend::cpu::GemmStats::Shape>> rows(gs.by_shape.begin(),
                                                                                         gs.by_shape.end());
  std::sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) { return x.second.ns > y.second.ns; });
  std::printf("  %-6s %6s %6s %6s %-4s %10s %12s %10s\n", "batch", "M", "N", "K", "op", "calls/step", "ms/step",
              "GFLOP/s");
  for (const auto& [k, v] : rows) {
    const auto [batch, M, N, K, ta, tb] = k;
    std::printf("  %-6lld %6lld %6lld %6lld %c%c   %10.1f %12.2f %10.1f\n", static_cast<long long>(batch),
                static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), ta ? 'T' : 'N',
                tb ? 'T' : 'N', double(v.calls) / double(steps), double(v.ns) * 1e-6 / double(steps),
                v.ns > 0 ? double(v.flops) / double(v.ns) : 0.0);
  }
}

int run(const Args& a) {
  const Device dev = tools::open_device(a.device, a.tf32);
  backend::cpu::tune_allocator();
  if (a.threads > 0) backend::cpu::set_num_threads(a.threads);
  const auto cfg = a.config.empty() ? nn::VLMConfig::from_preset(a.preset) : nn::VLMConfig::from_file(a.config, a.preset);
  SEEMORE_CHECK(a.text_len + 1 <= cfg.block_size, "--text-len ", a.text_len, " does not fit block_size ", cfg.block_size);

  nn::VisionLanguageModel<float> model(cfg, 0);
  model.to(dev);
  Generator g(1);
  const int64_t B = a.batch, T = a.text_len, S = cfg.img_size, V = cfg.vocab_size;
  auto images = Tensor<float>::randn({B, cfg.in_channels, S, S}, g, 0, 1, dev);
  std::vector<int32_t> ids(size_t(B * T)), next(size_t(B * T));
  for (auto& t : ids) t = int32_t(g.uniform() * double(V - 1));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) next[size_t(b * T + t)] = t + 1 < T ? ids[size_t(b * T + t + 1)] : cfg.pad_id;
  auto tokens = Tensor<int32_t>::from_vector({B, T}, ids, dev),
       targets = Tensor<int32_t>::from_vector({B, T}, next, dev);

  // ---- training steps
  model.train();
  optim::Adam<float> opt(model.parameters(), {1e-3});
  auto& gs = backend::cpu::gemm_stats();
  std::vector<double> times;
  double loss = 0;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    if (s == a.warmup) gs.reset(), gs.enabled = true;
    const auto t0 = Clock::now();
    opt.zero_grad();
    auto out = model.forward(images, tokens, targets);
    out.loss.backward();
    opt.step();
    if (s >= a.warmup) times.push_back(seconds_since(t0));
    loss = out.loss.item();
  }
  gs.enabled = false;
  // ---- the same steps replayed from a CUDA graph (train/step_graph.hpp)
  double graph_step_s = 0;
  std::string graph_note;
#if SEEMORE_HAS_CUDA
  if (a.cuda_graph && dev.is_cuda()) {
    nn::VisionLanguageModel<float> gm(cfg, 0);
    gm.to(dev);
    gm.train();
    optim::Adam<float> gopt(gm.parameters(), {1e-3});
    train::StepGraph<float> sg(gm, gopt, B, T);
    const auto full = Tensor<int32_t>::from_vector({B, T + 1}, gm.full_targets(targets.to(Device::cpu()), T + 1));
    const auto host_images = images.to(Device::cpu());
    const auto host_tokens = tokens.to(Device::cpu());
    std::vector<double> gt;
    for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
      const auto t1 = Clock::now();
      sg.step(host_images, host_tokens, full);
      if (s >= a.warmup) gt.push_back(seconds_since(t1));
    }
    graph_step_s = median(gt);
    graph_note = sg.graphed() ? "replayed" : "eager: " + sg.fallback_reason();
  }
#else
  SEEMORE_CHECK(!a.cuda_graph, "--cuda-graph: this binary was built without CUDA (seemore-bench-cuda has it)");
#endif
  const double step_s = median(times), best_s = *std::min_element(times.begin(), times.end());
  const double total_s = std::accumulate(times.begin(), times.end(), 0.0);
  const double gemm_s = double(gs.ns.load()) * 1e-9, gemm_gflop = double(gs.flops.load()) * 1e-9;
  const double attention_gflop = double(gs.attention_flops.load()) * 1e-9;
  double peak_mib = peak_rss_mib();
#if SEEMORE_HAS_CUDA
  if (dev.is_cuda()) peak_mib = double(backend::cuda::allocator_stats(dev.index()).peak_in_use) / (1 << 20);
#endif

  // ---- captioning one image: KV cache vs re-running the full forward per token
  model.eval();
  // The end tokens' logits are pushed far down so that generation runs the full length.
  for (auto& [name, p] : model.named_parameters())
    if (name == "decoder.lm_head.bias") {
      auto b = p.to_vector();
      b[size_t(cfg.pad_id)] = -1e4f;
      if (cfg.eos_id >= 0) b[size_t(cfg.eos_id)] = -1e4f;
      p.copy_from(Tensor<float>::from_vector(p.shape(), b));
    }
  auto image = slice(images, 0, 0, 1);
  const int64_t n_tok = std::min<int64_t>(a.caption_tokens, cfg.block_size - 2);
  nn::GenerateOptions go;
  go.max_tokens = n_tok;
  (void)model.generate(image, {ids[0]}, go);  // warm-up
  auto t0 = Clock::now();
  const auto gen = model.generate(image, {ids[0]}, go);
  const double cached_s = seconds_since(t0) / double(gen.size());
  std::vector<int32_t> seq = {ids[0]};
  {
    NoGradGuard ng;
    t0 = Clock::now();
    for (int64_t i = 0; i < n_tok; ++i) {
      auto logits = model.forward(image, Tensor<int32_t>::from_vector({1, int64_t(seq.size())}, seq, dev)).logits;
      seq.push_back(nn::VisionLanguageModel<float>::sample(
          slice(logits, 1, logits.size(1) - 1, logits.size(1)).view({V}), go, g));
    }
  }
  const double full_s = seconds_since(t0) / double(n_tok);
  SEEMORE_CHECK(std::vector<int32_t>(seq.begin() + 1, seq.end()) == gen,
                "the cached and the re-run generations differ: the KV cache is wrong");

  if (a.json) {
    std::printf(
        "{\"preset\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"batch\": %lld, \"text_len\": %lld, \"steps\": %lld, "
        "\"step_s_median\": %.6f, \"step_s_best\": %.6f, \"samples_per_s\": %.3f, \"loss\": %.6f, "
        "\"gemm_share\": %.4f, \"gemm_gflops\": %.2f, \"peak_rss_mib\": %.1f, "
        "\"caption_tokens\": %zu, \"caption_cached_ms_per_token\": %.4f, \"caption_full_ms_per_token\": %.4f, "
        "\"gemm_library\": %s, \"step_s_cuda_graph\": %.6f, \"gemm_gflop_per_step\": %.4f, "
        "\"attention_gflop_per_step\": %.4f}\n",
        cfg.preset.c_str(), dev.str().c_str(), backend::cpu::max_threads(), static_cast<long long>(B), static_cast<long long>(T),
        static_cast<long long>(a.steps), step_s, best_s, double(B) / step_s, loss, gemm_s / total_s,
        gemm_s > 0 ? gemm_gflop / gemm_s : 0.0, peak_mib, gen.size(), cached_s * 1e3, full_s * 1e3,
        nlohmann::json(backend::cpu::gemm_library()).dump().c_str(), graph_step_s, gemm_gflop / double(a.steps),
        attention_gflop / double(a.steps));
    return 0;
  }
  std::printf("model: %s preset, %lld parameters; batch %lld, %lld text tokens; %s, %d CPU threads\n",
              cfg.preset.c_str(), static_cast<long long>(model.num_parameters()), static_cast<long long>(B),
              static_cast<long long>(T), dev.str().c_str(), backend::cpu::max_threads());
  std::printf("training step: median %.4f s, best %.4f s over %lld steps (%.1f samples/s)\n", step_s, best_s,
              static_cast<long long>(a.steps), double(B) / step_s);
  if (graph_step_s > 0)
    std::printf("training step from a CUDA graph: median %.4f s (%.2fx the eager step; %s)\n", graph_step_s,
                step_s / graph_step_s, graph_note.c_str());
  if (dev.is_cpu())
    std::printf("  GEMMs of the layers: %.0f%% of the step, %.1f GFLOP/s (%.1f GFLOP per step) on %s\n",
                100 * gemm_s / total_s, gemm_gflop / gemm_s, gemm_gflop / double(a.steps),
                backend::cpu::gemm_library().c_str());
  if (dev.is_cpu())
    std::printf("  attention's products: %.2f GFLOP per step (not timed; causal ones counted at the half they need)\n",
                attention_gflop / double(a.steps));
  if (dev.is_cpu() && a.gemm_shapes) print_gemm_shapes(a.steps);
  std::printf("peak memory (training): %.0f MiB%s\n", peak_mib, dev.is_cpu() ? "" : " of GPU memory (allocator)");
  std::printf("captioning, %zu tokens: %.3f ms/token with the KV cache, %.3f ms/token re-running the forward (%.1fx)\n",
              gen.size(), cached_s * 1e3, full_s * 1e3, full_s / cached_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"seemore-bench: training-step, captioning and memory figures of a model"};
  app.add_option("--preset", a.preset, "seemore or standard")->check(CLI::IsMember({"seemore", "standard"}));
  app.add_option("--config", a.config, "model config JSON (overrides the preset)");
  app.add_option("--batch-size", a.batch, "training batch")->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--text-len", a.text_len, "caption length in tokens")->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--steps", a.steps, "timed training steps")->check(CLI::Range(int64_t(1), int64_t(100000)));
  app.add_option("--warmup", a.warmup, "untimed steps first")->check(CLI::Range(int64_t(0), int64_t(1000)));
  app.add_option("--caption-tokens", a.caption_tokens, "tokens to generate")->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--threads", a.threads, "CPU threads (default: OpenMP's)");
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_flag("--tf32", a.tf32, "cuda: TF32 tensor-core GEMMs");
  app.add_flag("--json", a.json, "one JSON line instead of text");
  app.add_flag("--cuda-graph", a.cuda_graph, "cuda: also time the step replayed from a CUDA graph");
  app.add_flag("--gemm-shapes", a.gemm_shapes, "cpu: the step's GEMM time and throughput by shape");
  CLI11_PARSE(app, argc, argv);
  try {
    tools::relaunch_for_device(a.device, argv);
    backend::cpu::use_blas_from_env();  // a bad SEEMORE_BLAS is reported before any work
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seemore-bench: %s\n", e.what());
    return 1;
  }
}
