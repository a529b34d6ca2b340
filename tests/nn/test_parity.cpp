// Golden parity with the PyTorch reference (tests/reference/make_golden.py):
// the same weights and batch must give the same logits, loss, gradients and
// Adam trajectory, for both presets.
#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <cstdio>

using namespace seemore;

namespace {
std::string golden(const std::string& preset) {
  return std::string(SEEMORE_SOURCE_DIR) + "/tests/reference/golden_" + preset + ".safetensors";
}
bool is_weight(const std::string& n) {
  for (const char* p : {"input.", "out.", "grad.", "adam."})
    if (n.rfind(p, 0) == 0) return false;
  return true;
}
Tensor<int32_t> ints(const Tensor<float>& t) {
  std::vector<int32_t> v;
  for (float x : t.to_vector()) v.push_back(int32_t(x));
  return Tensor<int32_t>::from_vector(t.shape(), v);
}
// Relative error of a tensor: max|got − ref| / max|ref| (the ∞-norm). Both
// sides are fp32, so an entry that is ~0 carries absolute round-off of the
// tensor's scale; relating every error to that scale is what fp32 allows.
double rel_err(const Tensor<float>& got, const Tensor<float>& ref) {
  REQUIRE(got.shape() == ref.shape());
  auto g = got.to_vector(), r = ref.to_vector();
  double scale = 0, worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    scale = std::max(scale, double(std::abs(r[i])));
    worst = std::max(worst, std::abs(double(g[i]) - r[i]));
  }
  return worst / std::max(scale, 1e-30);
}

struct Golden {
  io::SafeTensors st;
  nn::VLMConfig cfg;
  std::map<std::string, Tensor<float>> weights;
  const Tensor<float>& at(const std::string& n) const {
    auto* t = st.find(n);
    if (!t) FAIL("golden file lacks " << n);
    return *t;
  }
};
Golden load(const std::string& preset) {
  Golden g;
  g.st = io::load_safetensors(golden(preset));
  g.cfg = nn::VLMConfig::from_json(nlohmann::json::parse(g.st.metadata.at("config")));
  for (auto& [n, t] : g.st.tensors)
    if (is_weight(n)) g.weights[n] = t;
  return g;
}
}  // namespace

TEST_CASE("parity: seemore preset has the reference's 12,907,970 parameters in 390 tensors", "[nn][parity]") {
  nn::VisionLanguageModel<float> m(nn::VLMConfig::seemore());
  CHECK(m.num_parameters() == 12907970);
  auto sd = m.state_dict();
  CHECK(sd.size() == 390);
  std::map<std::string, Shape> shapes;
  int64_t total = 0;
  for (auto& [n, t] : sd) {
    shapes[n] = t.shape();
    total += t.numel();
  }
  CHECK(total == 12907970);
  CHECK(shapes["vision_encoder.patch_embedding.conv.weight"] == Shape{512, 3, 16, 16});
  CHECK(shapes["vision_encoder.blocks.0.attn.heads.3.query.weight"] == Shape{64, 512});
  CHECK(shapes["vision_encoder.pos_embedding"] == Shape{1, 37, 512});
  CHECK(shapes["vision_encoder.cls_token"] == Shape{1, 1, 512});
  CHECK(shapes["decoder.blocks.7.attn.heads.7.value.weight"] == Shape{16, 128});
  CHECK(shapes["decoder.image_projection.net.0.weight"] == Shape{2048, 512});
  CHECK(shapes["decoder.image_projection.net.2.bias"] == Shape{128});
  CHECK(shapes["decoder.position_embedding_table.weight"] == Shape{1000, 128});
  CHECK(shapes["decoder.token_embedding_table.weight"] == Shape{66, 128});
  CHECK(shapes["decoder.lm_head.weight"] == Shape{66, 128});
  CHECK(shapes["decoder.blocks.0.ffn.2.weight"] == Shape{128, 512});
}

// patches_*: the patch-prefix model (image_tokens = "patches"), against its
// PyTorch twin (tests/reference/patches_torch.py), unpooled and pooled 2x2.
TEST_CASE("parity: logits, loss, gradients and 5 Adam steps equal PyTorch's", "[nn][parity]") {
  for (std::string preset : {"seemore", "standard", "patches_standard", "patches_seemore_pool2"}) {
    DYNAMIC_SECTION("preset " << preset) {
      Golden g = load(preset);
      nn::VisionLanguageModel<float> m(g.cfg);
      // The model's state dict names and shapes are exactly the reference's.
      auto sd = m.state_dict();
      CHECK(sd.size() == g.weights.size());
      for (auto& [n, t] : sd) {
        INFO(n);
        REQUIRE(g.weights.count(n));
        CHECK(g.weights[n].shape() == t.shape());
      }
      m.load_state_dict(g.weights);
      // Export gives back exactly the reference's tensors (the fused QKV splits per head losslessly).
      for (auto& [n, t] : m.state_dict()) {
        INFO(n);
        CHECK(t.to_vector() == g.weights[n].to_vector());
      }
      m.train();  // dropout is 0 in the golden config; train mode as PyTorch's
      auto images = g.at("input.images");
      auto tokens = ints(g.at("input.tokens")), targets = ints(g.at("input.targets"));
      auto out = m.forward(images, tokens, targets);
      const double e_logits = rel_err(out.logits, g.at("out.logits"));
      const double e_loss = std::abs(out.loss.item() - g.at("out.loss").item()) / g.at("out.loss").item();
      std::printf("[%s] logits rel err %.2e, loss rel err %.2e\n", preset.c_str(), e_logits, e_loss);
      CHECK(e_logits <= 1e-5);
      CHECK(e_loss <= 1e-5);
      out.loss.backward();
      double worst = 0;
      std::string worst_name;
      // Compare through the state dict so fused QKV gradients map to per-head names.
      std::map<std::string, Tensor<float>> grads;
      {
        // A model whose "parameters" are the gradients: export them by name.
        nn::VisionLanguageModel<float> gm(g.cfg);
        auto src = m.named_parameters(), dst = gm.named_parameters();
        REQUIRE(src.size() == dst.size());
        for (size_t i = 0; i < src.size(); ++i) {
          REQUIRE(src[i].second.grad().defined());
          std::copy(src[i].second.grad().data(), src[i].second.grad().data() + src[i].second.numel(), dst[i].second.data());
        }
        for (auto& [n, t] : gm.state_dict()) grads[n] = t;
      }
      for (auto& [n, t] : grads) {
        const double e = rel_err(t, g.at("grad." + n));
        if (e > worst) {
          worst = e;
          worst_name = n;
        }
        INFO(n);
        CHECK(e <= 1e-4);
      }
      std::printf("[%s] worst gradient rel err %.2e (%s)\n", preset.c_str(), worst, worst_name.c_str());
      // Five Adam steps from the golden weights: the same loss trajectory.
      nn::VisionLanguageModel<float> m2(g.cfg);
      m2.load_state_dict(g.weights);
      optim::Adam<float> opt(m2.parameters(), {1e-3});
      auto ref = g.at("adam.losses").to_vector();
      for (size_t s = 0; s < 5; ++s) {
        opt.zero_grad();
        auto l = m2.forward(images, tokens, targets).loss;
        const double e = std::abs(l.item() - ref[s]) / ref[s];
        INFO("step " << s << ": " << l.item() << " vs " << ref[s]);
        CHECK(e <= 1e-5);
        l.backward();
        opt.step();
      }
    }
  }
}

// Writes a checkpoint of the standard-size `seemore` preset plus a batch and
// its logits, for tests/reference/check_load.py to load into PyTorch.
TEST_CASE("parity: export a checkpoint for the PyTorch load check", "[export]") {
  nn::VisionLanguageModel<float> m(nn::VLMConfig::seemore(), 11);
  m.eval();
  Generator g(4);
  auto images = Tensor<float>::randn({2, 3, 96, 96}, g);
  auto tokens = Tensor<int32_t>::from_vector({2, 5}, {10, 20, 30, 40, 50, 1, 2, 3, 65, 65});
  auto logits = m.forward(images, tokens).logits;
  io::save_checkpoint("export_seemore.safetensors", m, data::CharTokenizer());
  std::vector<float> tf;
  for (auto v : tokens.to_vector()) tf.push_back(float(v));
  io::save_safetensors<float>("export_batch.safetensors", {{"input.images", images},
                                                          {"input.tokens", Tensor<float>::from_vector({2, 5}, tf)},
                                                          {"out.logits", logits}});
  CHECK(io::load_checkpoint<float>("export_seemore.safetensors").model->num_parameters() == 12907970);
}

TEST_CASE("parity: a checkpoint written by PyTorch loads as-is and gives its logits", "[nn][parity]") {
  Golden g = load("seemore");
  // The bare file has no metadata, as torch users write it: its sizes come
  // from its tensors (and equal the config it was made with), or the caller
  // names the config.
  const std::string path = std::string(SEEMORE_SOURCE_DIR) + "/tests/reference/reference_tiny_seemore.safetensors";
  auto inferred = io::load_checkpoint<float>(path);
  auto want = g.cfg;
  want.dropout = inferred.model->config().dropout;  // the one field the tensors cannot tell
  CHECK(inferred.model->config().to_json() == want.to_json());
  inferred.model->eval();
  CHECK(rel_err(inferred.model->forward(g.at("input.images"), ints(g.at("input.tokens"))).logits, g.at("out.logits")) <=
        1e-5);
  auto loaded = io::load_checkpoint<float>(path, g.cfg);
  CHECK(loaded.vocab.vocab_size() == 66);
  auto out = loaded.model->forward(g.at("input.images"), ints(g.at("input.tokens")), ints(g.at("input.targets")));
  CHECK(rel_err(out.logits, g.at("out.logits")) <= 1e-5);
  // In double precision too (the model is a template).
  auto d = io::load_checkpoint<double>(path, g.cfg);
  auto imgs = g.at("input.images").to_vector();
  auto od = d.model->forward(Tensor<double>::from_vector(g.at("input.images").shape(), {imgs.begin(), imgs.end()}),
                             ints(g.at("input.tokens")), ints(g.at("input.targets")));
  CHECK(std::abs(od.loss.item() - g.at("out.loss").item()) <= 1e-5 * g.at("out.loss").item());
}
