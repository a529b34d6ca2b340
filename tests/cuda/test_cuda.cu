// GPU tests: every CUDA kernel against the CPU path (the oracle) on awkward
// shapes, then whole training steps of a small VLM on both devices.
//
// A tiny self-contained runner (not Catch2: its v2 header does not go through
// nvcc cleanly). Exits 77 when no GPU is present, which ctest reports as
// skipped. Tolerances: float results within rtol 1e-4 / atol 1e-5 of the CPU
// for elementwise and row kernels (different exp/erf implementations, different
// summation orders); GEMM-based results within 1e-4 relative to the largest
// value (cuBLAS and Eigen block the sums differently); the training step's
// loss within 1e-5 and gradients within 1e-3 of the largest gradient.
#include <seemore/train/step_graph.hpp>
#include <seemore/vlm.hpp>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

using namespace seemore;

namespace {
int failures = 0, checks = 0;

#define EXPECT(cond)                                                      \
  do {                                                                    \
    ++checks;                                                             \
    if (!(cond)) {                                                        \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

const Device gpu = Device::cuda(0);

// |got − ref| ≤ atol + rtol·|ref| everywhere; prints the worst element on failure.
template <class T>
bool close(const Tensor<T>& got, const Tensor<T>& ref, double rtol, double atol, const std::string& what) {
  ++checks;
  if (got.shape() != ref.shape()) {
    std::printf("FAILED %s: shape %s vs %s\n", what.c_str(), to_string(got.shape()).c_str(),
                to_string(ref.shape()).c_str());
    ++failures;
    return false;
  }
  auto g = got.to_vector(), r = ref.to_vector();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::abs(double(g[i]) - double(r[i])), lim = atol + rtol * std::abs(double(r[i]));
    const double ratio = std::isnan(d) ? 1e30 : d / lim;
    if (ratio > worst) worst = ratio, at = i;
  }
  if (worst > 1) {
    std::printf("FAILED %s: element %zu got %.8g want %.8g (%.2f× the tolerance)\n", what.c_str(), at,
                double(g[at]), double(r[at]), worst);
    ++failures;
    return false;
  }
  return true;
}
// Relative to the largest reference value (GEMM sums in another order).
template <class T>
bool close_scaled(const Tensor<T>& got, const Tensor<T>& ref, double rel, const std::string& what) {
  double mx = 0;
  for (auto v : ref.to_vector()) mx = std::max(mx, std::abs(double(v)));
  return close(got, ref, 0.0, rel * std::max(mx, 1e-30), what);
}

using Fn = std::function<Tensor<float>(const std::vector<Tensor<float>>&)>;

// Runs f on the CPU and on the GPU from the same random inputs, compares the
// outputs, then back-propagates the same random upstream gradient and compares
// every input's gradient.
void check_op(const std::string& name, const std::vector<Shape>& shapes, const Fn& f, double rtol, double atol,
              bool scaled = false, uint64_t seed = 1) {
  Generator g(seed);
  std::vector<Tensor<float>> cpu_in, gpu_in;
  for (auto& s : shapes) {
    auto t = Tensor<float>::randn(s, g);
    cpu_in.push_back(t.clone().requires_grad_());
    gpu_in.push_back(t.to(gpu).requires_grad_());
  }
  auto oc = f(cpu_in), og = f(gpu_in);
  EXPECT(og.device() == gpu);
  auto cmp = [&](const Tensor<float>& a, const Tensor<float>& b, const std::string& what) {
    return scaled ? close_scaled(a, b, rtol, what) : close(a, b, rtol, atol, what);
  };
  cmp(og, oc, name + " forward");
  auto r = Tensor<float>::randn(oc.shape(), g);
  sum(mul(oc, r)).backward();
  sum(mul(og, r.to(gpu))).backward();
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (!cpu_in[i].grad().defined()) continue;
    EXPECT(gpu_in[i].grad().defined());
    if (gpu_in[i].grad().defined()) cmp(gpu_in[i].grad(), cpu_in[i].grad(), name + " grad of input " + std::to_string(i));
  }
}

const std::vector<int64_t> kRows = {1, 7, 37, 65, 129};

// ------------------------------------------------------------------ plumbing
void test_round_trip() {
  Generator g(1);
  auto h = Tensor<float>::randn({7, 65}, g);
  auto d = h.to(gpu);
  EXPECT(d.device().is_cuda());
  EXPECT(d.to(Device::cpu()).to_vector() == h.to_vector());
  EXPECT(d.clone().to_vector() == h.to_vector());
  auto z = Tensor<double>::zeros({129, 3}, gpu);
  for (double v : z.to_vector()) EXPECT(v == 0.0);
  auto o = Tensor<int32_t>::full({37}, 5, gpu);
  o.fill_(-3);
  for (int32_t v : o.to_vector()) EXPECT(v == -3);
}

void test_out_of_memory_is_an_error() {
  bool threw = false;
  try {
    auto t = Tensor<float>::empty({int64_t(1) << 40}, gpu);  // 4 TiB
  } catch (const Error& e) {
    threw = std::string(e.what()).find("out of memory") != std::string::npos;
    if (!threw) std::printf("  message was: %s\n", e.what());
  }
  EXPECT(threw);
  auto after = Tensor<float>::ones({16}, gpu);  // the device still works
  EXPECT(after.to_vector()[15] == 1.0f);
}

// ------------------------------------------------------------------ elementwise
void test_elementwise() {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{7, 65}, {7, 65}}, {{37, 1}, {1, 129}}, {{2, 3, 65}, {65}}, {{129}, {1}}, {{1}, {5, 7}}};
  for (auto& [a, b] : pairs) {
    const std::string s = to_string(a) + "⊕" + to_string(b);
    check_op("add " + s, {a, b}, [](auto& v) { return add(v[0], v[1]); }, 1e-6, 1e-6);
    check_op("sub " + s, {a, b}, [](auto& v) { return sub(v[0], v[1]); }, 1e-6, 1e-6);
    check_op("mul " + s, {a, b}, [](auto& v) { return mul(v[0], v[1]); }, 1e-5, 1e-6);
    check_op("div " + s, {a, b}, [](auto& v) { return div(v[0], affine(mul(v[1], v[1]), 1.0, 0.5)); }, 1e-5, 1e-6);
  }
  for (int64_t n : kRows) {
    const Shape s{n, 33};
    check_op("exp", {s}, [](auto& v) { return exp(v[0]); }, 1e-5, 1e-6);
    check_op("log", {s}, [](auto& v) { return log(affine(mul(v[0], v[0]), 1.0, 0.1)); }, 1e-5, 1e-6);
    check_op("sqrt", {s}, [](auto& v) { return sqrt(affine(mul(v[0], v[0]), 1.0, 0.1)); }, 1e-5, 1e-6);
    check_op("affine", {s}, [](auto& v) { return affine(v[0], -1.5, 0.25); }, 1e-6, 1e-7);
    check_op("gelu erf", {s}, [](auto& v) { return gelu(v[0]); }, 1e-5, 1e-6);
    // The CPU's float tanh is Eigen's vectorised approximation; the backward's
    // (1 − t²) turns its last-bit differences into ~1e-6 absolute near |t| = 1.
    check_op("gelu tanh", {s}, [](auto& v) { return gelu(v[0], GeluApprox::Tanh); }, 1e-5, 1e-5);
    check_op("relu", {s}, [](auto& v) { return relu(v[0]); }, 0, 0);
    check_op("sum dims", {{n, 3, 5}}, [](auto& v) { return sum(v[0], {0, 2}); }, 1e-5, 1e-5);
    check_op("mean all", {{n, 7}}, [](auto& v) { return mean(v[0]); }, 1e-5, 1e-6);
  }
}

void test_dropout_same_mask() {
  for (int64_t n : {1, 7, 37, 65, 129 * 33}) {
    Generator gc(9), gg(9), gi(2);
    auto x = Tensor<float>::randn({n}, gi);
    auto yc = dropout(x, 0.3, true, gc);
    auto yg = dropout(x.to(gpu), 0.3, true, gg);
    close(yg, yc, 0, 0, "dropout n=" + std::to_string(n));
    EXPECT(gc.offset() == gg.offset());
  }
}

// ------------------------------------------------------------------ layout
void test_layout() {
  for (int64_t n : kRows) {
    check_op("permute", {{n, 3, 5}}, [](auto& v) { return permute(v[0], {2, 0, 1}); }, 0, 0);
    check_op("slice", {{3, n, 4}}, [n](auto& v) { return slice(v[0], 1, n / 3, n); }, 0, 0);
    check_op("concat", {{2, n, 3}, {2, 5, 3}}, [](auto& v) { return concat<float>({v[0], v[1]}, 1); }, 0, 0);
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < 2 * n + 3; ++i) ids.push_back(int32_t((i * 7 + 3) % 11));  // repeats
    auto cpu_ids = Tensor<int32_t>::from_vector({int64_t(ids.size())}, ids);
    check_op("embedding", {{11, 65}}, [&](auto& v) {
      return embedding(v[0], v[0].device().is_cuda() ? cpu_ids.to(gpu) : cpu_ids);
    }, 0, 1e-6);
    check_op("index_select", {{4, 11, 3}}, [&](auto& v) {
      return index_select(v[0], 1, v[0].device().is_cuda() ? cpu_ids.to(gpu) : cpu_ids);
    }, 0, 1e-6);
  }
  check_op("patch_conv2d", {{2, 3, 16, 16}, {8, 3, 4, 4}, {8}},
           [](auto& v) { return patch_conv2d(v[0], v[1], v[2]); }, 1e-4, 0, true);
}

// ------------------------------------------------------------------ rows
void test_rows() {
  for (int64_t n : kRows)
    for (int64_t C : {16, 65, 128}) {
      const std::string s = "[" + std::to_string(n) + "," + std::to_string(C) + "]";
      check_op("layer_norm " + s, {{n, C}, {C}, {C}}, [](auto& v) { return layer_norm(v[0], v[1], v[2]); }, 1e-4,
               1e-5);
      check_op("softmax " + s, {{n, C}}, [](auto& v) { return softmax(v[0]); }, 1e-5, 1e-6);
      check_op("log_softmax " + s, {{n, C}}, [](auto& v) { return log_softmax(v[0]); }, 1e-5, 1e-5);
      check_op("softmax dim 0 " + s, {{n, C}}, [](auto& v) { return softmax(v[0], 0); }, 1e-5, 1e-6);
    }
  for (int64_t n : kRows)
    for (int64_t V : {65, 1000}) {
      std::vector<int32_t> t;
      for (int64_t i = 0; i < n; ++i) t.push_back(i % 5 == 3 ? -100 : int32_t((i * 13) % V));
      auto tc = Tensor<int32_t>::from_vector({n}, t);
      check_op("cross_entropy [" + std::to_string(n) + "," + std::to_string(V) + "]", {{n, V}}, [&](auto& v) {
        return cross_entropy(v[0], v[0].device().is_cuda() ? tc.to(gpu) : tc);
      }, 1e-5, 1e-6);
    }
}

// ------------------------------------------------------------------ GEMM
void test_matmul() {
  for (int64_t M : {1, 7, 65})
    for (int64_t K : {1, 37, 129})
      for (int64_t N : {7, 64}) {
        const std::string s = std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N);
        check_op("matmul " + s, {{M, K}, {K, N}}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-5, 0, true);
        check_op("matmul ᵀᵀ " + s, {{K, M}, {N, K}}, [](auto& v) { return matmul(v[0], v[1], true, true); }, 1e-5, 0,
                 true);
        check_op("batched " + s, {{3, M, K}, {3, K, N}}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-5, 0, true);
        check_op("linear " + s, {{2, M, K}, {N, K}, {N}}, [](auto& v) { return linear(v[0], v[1], v[2]); }, 1e-5, 0,
                 true);
      }
}

// ------------------------------------------------------------------ attention
void test_attention() {
  for (int64_t D : {16, 64, 128})
    for (int64_t Tn : kRows)
      for (bool causal : {false, true}) {
        const int64_t B = 2, H = D == 128 ? 1 : 3, C = H * D;
        for (double scale : {1.0 / std::sqrt(double(C)), 1.0 / std::sqrt(double(D))}) {
          AttentionOptions o{H, scale, causal, 0.0, false};
          const std::string s = "attention D=" + std::to_string(D) + " T=" + std::to_string(Tn) +
                                (causal ? " causal" : "") + " scale=" + std::to_string(scale);
          check_op(s, {{B, Tn, 3 * C}}, [o](auto& v) { return attention(v[0], o); }, 2e-4, 0, true);
        }
      }
  // Dropout on the weights: the same Philox counters give the same mask on both devices.
  for (int64_t Tn : {7, 65}) {
    AttentionOptions o{2, 0.25, true, 0.2, true};
    Generator g0(1);
    auto x = Tensor<float>::randn({2, Tn, 3 * 32}, g0);
    auto xc = x.clone().requires_grad_(), xg = x.to(gpu).requires_grad_();
    Generator gc(4), gg(4);
    auto oc = attention(xc, o, &gc), og = attention(xg, o, &gg);
    close_scaled(og, oc, 2e-4, "attention dropout forward T=" + std::to_string(Tn));
    auto r = Tensor<float>::randn(oc.shape(), g0);
    sum(mul(oc, r)).backward();
    sum(mul(og, r.to(gpu))).backward();
    close_scaled(xg.grad(), xc.grad(), 2e-4, "attention dropout backward T=" + std::to_string(Tn));
    EXPECT(gc.offset() == gg.offset());
  }
}

// Double precision, head size 128: the flash kernels' largest tile, which
// needs more than the default 48 KiB of shared memory (74 KiB in double) and
// so the opt-in path; float at this size fits without it. With dropout, and a
// row of H·T·T = 8450 weights (not a whole number of Philox blocks). Tight
// tolerances: both sides compute in double, the sums in another order.
void test_attention_double() {
  for (int64_t Tn : {33, 65, 129})
    for (bool causal : {false, true})
      for (double p : {0.0, 0.2}) {
        const int64_t B = 2, H = 2, D = 128, C = H * D;
        AttentionOptions o{H, 1.0 / std::sqrt(double(D)), causal, p, p > 0};
        Generator g(7);
        auto x = Tensor<double>::randn({B, Tn, 3 * C}, g);
        auto xc = x.clone().requires_grad_(), xg = x.to(gpu).requires_grad_();
        Generator gc(3), gg(3);
        auto oc = attention(xc, o, &gc), og = attention(xg, o, &gg);
        const std::string s = "attention double D=128 T=" + std::to_string(Tn) + (causal ? " causal" : "") +
                              (p > 0 ? " dropout" : "");
        close_scaled(og, oc, 1e-12, s + " forward");
        auto r = Tensor<double>::randn(oc.shape(), g);
        sum(mul(oc, r)).backward();
        sum(mul(og, r.to(gpu))).backward();
        close_scaled(xg.grad(), xc.grad(), 1e-11, s + " backward");
        EXPECT(gc.offset() == gg.offset());
      }
}

// A few cases, for the sanitizer passes (racecheck runs every kernel ~100× slower).
void test_attention_small() {
  for (int64_t D : {16, 64})
    for (bool causal : {false, true}) {
      AttentionOptions o{2, 0.125, causal, 0.0, false};
      check_op("attention (small) D=" + std::to_string(D) + (causal ? " causal" : ""), {{2, 37, 3 * 2 * D}},
               [o](auto& v) { return attention(v[0], o); }, 2e-4, 0, true);
    }
  AttentionOptions o{2, 0.25, true, 0.2, true};
  Generator g0(1), gc(4), gg(4);
  auto x = Tensor<float>::randn({1, 7, 3 * 32}, g0);
  close_scaled(attention(x.to(gpu), o, &gg), attention(x, o, &gc), 2e-4, "attention (small) dropout");
}

// ------------------------------------------------------------------ optimizer
void test_adam() {
  for (bool decoupled : {false, true}) {
    Generator g(3);
    std::vector<Tensor<float>> pc, pg;
    for (int64_t n : {1, 7, 8193, 20000}) {
      auto t = Tensor<float>::randn({n}, g);
      pc.push_back(t.clone().requires_grad_());
      pg.push_back(t.to(gpu).requires_grad_());
    }
    optim::AdamOptions ao{1e-2, 0.9, 0.999, 1e-8, 0.1, decoupled};
    // Two groups: the last two tensors with their own rate and no weight decay (λ per tensor in the table).
    auto groups = [](const std::vector<Tensor<float>>& p) {
      std::vector<optim::ParamGroup<float>> g(2);
      g[0].params = {p[0], p[1]};
      g[1].params = {p[2], p[3]};
      g[1].lr = 3e-3;
      g[1].weight_decay = 0.0;
      return g;
    };
    optim::Adam<float> oc(groups(pc), ao), og(groups(pg), ao);
    for (int step = 0; step < 5; ++step) {
      for (size_t i = 0; i < pc.size(); ++i) {
        auto gr = Tensor<float>::randn(pc[i].shape(), g);
        pc[i].set_grad(gr);
        pg[i].set_grad(gr.to(gpu));
      }
      oc.step();
      og.step();
    }
    for (size_t i = 0; i < pc.size(); ++i)
      close(pg[i].detach(), pc[i].detach(), 1e-5, 1e-6, std::string(decoupled ? "AdamW" : "Adam") + " param " +
                                                            std::to_string(i));
  }
  // SGD with momentum, Nesterov and weight decay: on the device from tensor ops, against the CPU loop.
  for (bool nesterov : {false, true}) {
    Generator g(4);
    auto t = Tensor<float>::randn({1000}, g);
    auto pc = t.clone().requires_grad_(), pgpu = t.to(gpu).requires_grad_();
    optim::SGDOptions so;
    so.lr = 0.05;
    so.momentum = 0.9;
    so.dampening = nesterov ? 0.0 : 0.1;
    so.nesterov = nesterov;
    so.weight_decay = 0.01;
    optim::SGD<float> oc({pc}, so), og({pgpu}, so);
    for (int step = 0; step < 4; ++step) {
      auto gr = Tensor<float>::randn({1000}, g);
      pc.set_grad(gr);
      pgpu.set_grad(gr.to(gpu));
      oc.step();
      og.step();
    }
    close(pgpu.detach(), pc.detach(), 1e-5, 1e-6, nesterov ? "SGD Nesterov" : "SGD momentum");
  }
}

// ------------------------------------------------------------------ the model
nn::VLMConfig small(const std::string& preset) {
  auto c = nn::VLMConfig::from_preset(preset);
  c.img_size = 32;
  c.patch_size = 8;
  c.image_embed_dim = 64;
  c.num_blks = 2;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.block_size = 40;
#ifdef SEEMORE_CUDA_EMULATED_DEVICE
  // Under the CPU emulation every CUDA thread is a CPU thread: a smaller model.
  c.img_size = 16;
  c.image_embed_dim = 32;
  c.num_blks = 1;
  c.n_embd = 32;
  c.n_head = 2;
  c.block_size = 24;
#endif
  return c;
}

struct Batch {
  Tensor<float> images;
  Tensor<int32_t> tokens, targets;
};
Batch batch(const nn::VLMConfig& c, uint64_t seed) {
  Generator g(seed);
#ifdef SEEMORE_CUDA_EMULATED_DEVICE
  const int64_t B = 2, Tn = 9;
#else
  const int64_t B = 5, Tn = 37;
#endif
  std::vector<int32_t> tok, tgt;
  for (int64_t i = 0; i < B * Tn; ++i) {
    tok.push_back(int32_t(g.randint(uint64_t(c.vocab_size))));
    tgt.push_back(int32_t(g.randint(uint64_t(c.vocab_size))));
  }
  return {Tensor<float>::randn({B, 3, c.img_size, c.img_size}, g), Tensor<int32_t>::from_vector({B, Tn}, tok),
          Tensor<int32_t>::from_vector({B, Tn}, tgt)};
}

// The loss within 1e-5 relative and each gradient within 1e-3 of its largest
// element. Why not tighter: nvcc contracts a·b + c into one fused multiply-add
// in every kernel (-fmad=true, its default) where the CPU build rounds the
// product and the sum separately (g++ in ISO mode: -ffp-contract=off), and
// cuBLAS and Eigen add their products in other orders. Each differs from the
// CPU by an ulp or so per operation; through two ViT blocks, two decoder
// blocks, the softmaxes and the backward that grows to ~1e-4 relative on the
// smaller gradient elements (the emulated device, which runs the same kernels
// on the CPU, agrees with the CPU far more closely).
// The patch-prefix model (image_tokens = "patches"): the grid's patch outputs
// as decoder tokens, pooled 2×2 where the grid allows.
nn::VLMConfig small_patches(const std::string& preset) {
  auto c = small(preset);
  c.image_tokens = "patches";
  const int64_t grid = c.img_size / c.patch_size;
  c.patch_pool = grid % 2 == 0 && grid > 2 ? 2 : 1;
  c.block_size = std::max<int64_t>(c.block_size, c.image_prefix_len() + 40);
  c.validate();
  return c;
}

void test_training_step() {
  for (std::string name : {"seemore", "standard", "standard+patches"}) {
    const std::string preset = name.substr(0, name.find('+'));
    auto cfg = name.find("patches") != std::string::npos ? small_patches(preset) : small(preset);
    nn::VisionLanguageModel<float> mc(cfg, 11), mg(cfg, 11);
    mg.to(gpu);
    mc.train();
    mg.train();
    auto b = batch(cfg, 5);
    auto lc = mc.forward(b.images, b.tokens, b.targets).loss;
    auto lg = mg.forward(b.images.to(gpu), b.tokens.to(gpu), b.targets.to(gpu)).loss;
    close(lg, lc, 1e-5, 1e-6, name + " step loss");
    lc.backward();
    lg.backward();
    auto pc = mc.named_parameters(), pg = mg.named_parameters();
    EXPECT(pc.size() == pg.size());
    for (size_t i = 0; i < pc.size() && i < pg.size(); ++i)
      close_scaled(pg[i].second.grad(), pc[i].second.grad(), 1e-3, name + " grad " + pc[i].first);
  }
}

void test_ten_steps_and_allocator() {
  auto cfg = small("seemore");
  nn::VisionLanguageModel<float> mc(cfg, 3), mg(cfg, 3);
  mg.to(gpu);
  optim::Adam<float> oc(mc.parameters(), {1e-3}), og(mg.parameters(), {1e-3});
  std::vector<float> losses_c, losses_g;
  size_t mallocs_after_warmup = 0;
#ifdef SEEMORE_CUDA_EMULATED_DEVICE
  const int steps = 4;
#else
  const int steps = 10;
#endif
  for (int step = 0; step < steps; ++step) {
    auto b = batch(cfg, 100 + uint64_t(step));
    oc.zero_grad();
    og.zero_grad();
    auto lc = mc.forward(b.images, b.tokens, b.targets).loss;
    auto lg = mg.forward(b.images.to(gpu), b.tokens.to(gpu), b.targets.to(gpu)).loss;
    lc.backward();
    lg.backward();
    oc.step();
    og.step();
    losses_c.push_back(lc.item());
    losses_g.push_back(lg.item());
    if (step == 1) mallocs_after_warmup = backend::cuda::allocator_stats(0).mallocs;
  }
  const size_t mallocs_end = backend::cuda::allocator_stats(0).mallocs;
  if (mallocs_end != mallocs_after_warmup)
    std::printf("  cudaMalloc calls after warm-up: %zu\n", mallocs_end - mallocs_after_warmup);
  EXPECT(mallocs_end == mallocs_after_warmup);
  for (size_t i = 0; i < losses_c.size(); ++i) {
    const bool ok = std::abs(losses_c[i] - losses_g[i]) <= 1e-3 * std::abs(losses_c[i]);
    if (!ok) std::printf("  step %zu: cpu %.6f gpu %.6f\n", i, losses_c[i], losses_g[i]);
    EXPECT(ok);
  }
}

// A training step replayed from a CUDA graph is the eager step, bit for bit:
// the same kernels on the same data, with what changes per step (the Adam
// table, the dropout counter, the inputs) refreshed in device memory. Three
// models from one seed train on the same padded batches: plainly (forward,
// loss, backward, Adam), through StepGraph eagerly, and through StepGraph's
// graph (step 1 eager, step 2 captured and replayed, then replays), with
// dropout on and the learning rate changing every step.
void test_graph_step() {
  for (std::string preset : {"seemore", "standard"}) {
    auto cfg = small(preset);
    cfg.dropout = 0.1;
#ifdef SEEMORE_CUDA_EMULATED_DEVICE
    const int64_t B = 2, L = 7, steps = 3;
#else
    const int64_t B = 5, L = 30, steps = 6;
#endif
    std::vector<std::unique_ptr<nn::VisionLanguageModel<float>>> models;
    std::vector<std::unique_ptr<optim::Adam<float>>> opts;
    for (int i = 0; i < 3; ++i) {
      models.push_back(std::make_unique<nn::VisionLanguageModel<float>>(cfg, 21));
      models.back()->to(gpu);
      models.back()->train();
      opts.push_back(std::make_unique<optim::Adam<float>>(models.back()->parameters(), optim::AdamOptions{1e-3}));
    }
    train::StepGraph<float> eager(*models[1], *opts[1], B, L, false), graphed(*models[2], *opts[2], B, L, true);
    Generator g(17);
    for (int64_t step = 0; step < steps; ++step) {
      auto images = Tensor<float>::randn({B, 3, cfg.img_size, cfg.img_size}, g);
      std::vector<int32_t> tok, tgt;
      for (int64_t i = 0; i < B * L; ++i) tok.push_back(int32_t(g.randint(uint64_t(cfg.vocab_size))));
      for (int64_t i = 0; i < B * (L + 1); ++i) {
        const int64_t t = i % (L + 1);  // the last two positions: padding past this batch's length
        tgt.push_back(t >= L - 1 ? -100 : int32_t(g.randint(uint64_t(cfg.vocab_size))));
      }
      auto tokens = Tensor<int32_t>::from_vector({B, L}, tok), targets = Tensor<int32_t>::from_vector({B, L + 1}, tgt);
      for (auto& o : opts) o->set_lr(1e-3 * double(step + 1));
      // plainly
      opts[0]->zero_grad();
      auto lp = models[0]->loss_full(models[0]->forward(images.to(gpu), tokens.to(gpu)).logits, targets.to(gpu));
      lp.backward();
      opts[0]->step();
      const double l0 = lp.item(), l1 = eager.step(images, tokens, targets), l2 = graphed.step(images, tokens, targets);
      if (!(l0 == l1 && l1 == l2)) std::printf("  %s step %lld: plain %.9g eager %.9g graph %.9g\n", preset.c_str(),
                                               static_cast<long long>(step), l0, l1, l2);
      EXPECT(l0 == l1);
      EXPECT(l1 == l2);
    }
    EXPECT(graphed.graphed());
    EXPECT(graphed.replays() == steps - 1);
    if (!graphed.fallback_reason().empty()) std::printf("  fallback: %s\n", graphed.fallback_reason().c_str());
    for (int i = 1; i < 3; ++i) {
      EXPECT(models[i]->dropout_generator().offset() == models[0]->dropout_generator().offset());
      auto p0 = models[0]->parameters(), pi = models[i]->parameters();
      bool same = true;
      for (size_t k = 0; k < p0.size(); ++k) same = same && p0[k].to_vector() == pi[k].to_vector();
      if (!same) std::printf("  %s: the %s model's parameters differ from the plain one's\n", preset.c_str(),
                             i == 1 ? "eager StepGraph" : "graphed");
      EXPECT(same);
    }
  }
  // What a graph cannot hold is refused with the reason, and nothing is captured.
  backend::cuda::Graph graph(0);
  auto x = Tensor<float>::ones({4}, gpu);
  bool refused = false;
  try {
    graph.capture([&] { (void)sum(x).item(); });  // a read back to the host
  } catch (const Error& e) {
    refused = std::string(e.what()).find("CUDA graph capture failed") != std::string::npos;
    if (!refused) std::printf("  message was: %s\n", e.what());
  }
  EXPECT(refused);
  EXPECT(!graph.captured());
  // The device still works after the failed capture.
  EXPECT(sum(x).item() == 4.0f);
}

void test_generate() {
  for (bool patches : {false, true}) {
    auto cfg = patches ? small_patches("standard") : small("seemore");
    nn::VisionLanguageModel<float> mc(cfg, 8), mg(cfg, 8);
    mg.to(gpu);
    mc.eval();
    mg.eval();
    Generator g(1);
    auto img = Tensor<float>::randn({1, 3, cfg.img_size, cfg.img_size}, g);
    nn::GenerateOptions o;
    o.max_tokens = cfg.block_size - cfg.image_prefix_len() - 3;
    std::vector<Tensor<float>> sc, sg;
    auto tc = mc.generate(img, {3, 4}, o, &sc);
    auto tg = mg.generate(img.to(gpu), {3, 4}, o, &sg);
    EXPECT(tc == tg);
    for (size_t i = 0; i < sc.size() && i < sg.size(); ++i)
      close_scaled(sg[i], sc[i], 1e-4, std::string(patches ? "patches " : "") + "generate step " + std::to_string(i) +
                                           " logits");
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (!backend::cuda::device_available()) {
    std::printf("skipped: no usable GPU (%s)\n", backend::cuda::device_status().c_str());
    return 77;
  }
  const std::vector<std::pair<const char*, std::function<void()>>> tests = {
      {"round_trip", test_round_trip},
      {"out_of_memory_is_an_error", test_out_of_memory_is_an_error},
      {"elementwise", test_elementwise},
      {"dropout_same_mask", test_dropout_same_mask},
      {"layout", test_layout},
      {"rows", test_rows},
      {"matmul", test_matmul},
      {"attention_small", test_attention_small},
      {"attention", test_attention},
      {"attention_double", test_attention_double},
      {"adam", test_adam},
      {"training_step", test_training_step},
      {"ten_steps_and_allocator", test_ten_steps_and_allocator},
      {"generate", test_generate},
      {"graph_step", test_graph_step},
  };
  // Optional: a comma-separated list of test names to run (the sanitizer
  // passes of scripts/gpu-check.sh pick the short ones).
  const std::string filter = argc > 1 ? "," + std::string(argv[1]) + "," : "";
  int failed_tests = 0;
  for (auto& [name, fn] : tests) {
    if (!filter.empty() && filter.find("," + std::string(name) + ",") == std::string::npos) continue;
    const int before = failures;
    try {
      fn();
    } catch (const std::exception& e) {
      std::printf("FAILED %s: exception: %s\n", name, e.what());
      ++failures;
    }
    std::printf("%s %s\n", failures == before ? "ok    " : "FAILED", name);
    failed_tests += failures != before;
  }
  // Every tensor of the tests is gone: the allocator must hold no block in use
  // (a leak of ours); then the cache goes back to the driver.
  const auto st = backend::cuda::allocator_stats(0);
  if (st.bytes_in_use != 0) {
    std::printf("FAILED: %zu bytes of device memory still in use after the tests\n", st.bytes_in_use);
    ++failures;
  }
  backend::cuda::allocator().release_cache(0);
  std::printf("%d checks, %d failed checks, %d failed tests; %zu cudaMalloc calls, peak %.1f MiB\n", checks,
              failures, failed_tests, st.mallocs, double(st.peak_in_use) / (1 << 20));
  return failures ? 1 : 0;
}
