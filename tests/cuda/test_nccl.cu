// The NCCL backend on one GPU: a training step of a small VLM through
// DataParallel over a one-rank NcclCommunicator equals the same step over the
// local communicator and a plain forward/backward/step, bit for bit (a sum
// over one rank is a copy). Built when nvcc finds nccl.h; exits 77 (skipped)
// without a GPU. Several GPUs or machines need several ranks under mpirun,
// which the GPU machine we test on does not have.
#include <seemore/distributed.hpp>
#include <seemore/vlm.hpp>

#include <cstdio>

using namespace seemore;

int main() {
  if (!backend::cuda::device_available()) {
    std::printf("skipped: no usable GPU (%s)\n", backend::cuda::device_status().c_str());
    return 77;
  }
  const Device gpu = Device::cuda(0);
  auto cfg = nn::VLMConfig::from_preset("standard");
  cfg.img_size = 32;
  cfg.patch_size = 8;
  cfg.image_embed_dim = 32;
  cfg.num_blks = 2;
  cfg.n_embd = 32;
  cfg.n_layer = 2;
  cfg.n_head = 4;
  cfg.block_size = 32;
  cfg.dropout = 0.1;
  cfg.validate();
  const int64_t B = 8, L = 10;
  Generator data(5);
  auto images = Tensor<float>::randn({B, 3, 32, 32}, data).to(gpu);
  std::vector<int32_t> tok, tgt;
  for (int64_t i = 0; i < B * L; ++i) tok.push_back(int32_t(3 + (i * 7) % 50));
  for (int64_t i = 0; i < B * (L + 1); ++i) tgt.push_back(i % (L + 1) == L ? int32_t(cfg.eos_id) : int32_t(4 + (i * 5) % 50));
  auto tokens = Tensor<int32_t>::from_vector({B, L}, tok, gpu), targets = Tensor<int32_t>::from_vector({B, L + 1}, tgt, gpu);

  struct Result {
    std::vector<double> losses;
    std::vector<float> weights;
  };
  // mode 0: plain; 1: DataParallel, local; 2: DataParallel, NCCL (one rank)
  auto train = [&](int mode) {
    nn::VisionLanguageModel<float> m(cfg, 3);
    m.to(gpu);
    m.train();
    optim::Adam<float> opt(m.parameters());
    std::unique_ptr<distributed::Communicator> comm;
    if (mode == 1) comm = std::make_unique<distributed::LocalCommunicator>(gpu);
    if (mode == 2)
      comm = std::make_unique<distributed::NcclCommunicator>(std::make_unique<distributed::LocalCommunicator>(), gpu);
    std::unique_ptr<distributed::DataParallel<float>> dp;
    if (comm) dp = std::make_unique<distributed::DataParallel<float>>(opt, *comm);
    if (mode == 2) std::printf("communicator: %s\n", comm->name().c_str());
    Result r;
    for (int step = 0; step < 3; ++step) {
      if (dp) {
        r.losses.push_back(dp->step(B, 1, [&](const distributed::MicroBatch&) {
          return m.forward(images, tokens, targets).loss;
        }, &m.dropout_generator()));
      } else {
        auto loss = m.forward(images, tokens, targets).loss;
        r.losses.push_back(loss.item());
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
    }
    for (auto& p : m.parameters()) {
      auto v = p.to_vector();
      r.weights.insert(r.weights.end(), v.begin(), v.end());
    }
    return r;
  };
  int failures = 0;
  try {
    const Result plain = train(0), local = train(1), nccl = train(2);
    for (auto [name, r] : {std::pair<const char*, const Result*>{"local", &local}, {"nccl", &nccl}}) {
      const bool same = r->losses == plain.losses && r->weights == plain.weights;
      std::printf("%s %s: 3 steps through DataParallel (%s) equal the plain step bit for bit (losses %.6f %.6f %.6f)\n",
                  same ? "ok    " : "FAILED", name, name, r->losses[0], r->losses[1], r->losses[2]);
      failures += !same;
    }
  } catch (const std::exception& e) {
    std::printf("FAILED: exception: %s\n", e.what());
    failures = 1;
  }
  return failures ? 1 : 0;
}
