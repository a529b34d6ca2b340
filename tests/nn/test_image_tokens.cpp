// image_tokens = "patches": the decoder reads every patch output of the ViT
// (after its final LayerNorm, optionally pooled over k×k squares) as a prefix
// of tokens. Checked here: every parameter's gradient against central
// differences in double, generation with the KV cache against the full
// forward, pooling against the unpooled outputs, the config's rules, and the
// checkpoint round trip. The PyTorch twin's logits and loss: test_parity.cpp.
#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <cstdio>

using namespace seemore;

namespace {
nn::VLMConfig tiny_patches(const std::string& preset, int64_t pool) {
  auto c = nn::VLMConfig::from_preset(preset);
  c.img_size = 16;
  c.patch_size = 4;  // a 4×4 grid: 16 patch tokens, or 4 pooled over 2×2
  c.image_embed_dim = 8;
  c.num_blks = 2;
  c.n_embd = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.block_size = 32;
  c.dropout = 0.0;
  c.image_tokens = "patches";
  c.patch_pool = pool;
  c.validate();
  return c;
}
struct TinyBatch {
  Tensor<double> images;
  Tensor<int32_t> tokens, targets;
};
TinyBatch tiny_batch(const nn::VLMConfig& c, uint64_t seed) {
  Generator g(seed);
  const int64_t B = 2, L = 5;
  std::vector<int32_t> tok, tgt;
  for (int64_t i = 0; i < B * L; ++i) tok.push_back(int32_t(g.randint(60)));
  const int64_t Tt = c.image_predicts_first ? L + 1 : L;
  for (int64_t i = 0; i < B * Tt; ++i) tgt.push_back(i % Tt == Tt - 1 ? int32_t(c.pad_id) : int32_t(g.randint(60)));
  return {Tensor<double>::randn({B, 3, c.img_size, c.img_size}, g), Tensor<int32_t>::from_vector({B, L}, tok),
          Tensor<int32_t>::from_vector({B, Tt}, tgt)};
}
}  // namespace

TEST_CASE("image_tokens patches: every parameter's gradient against central differences (double)",
          "[nn][patches][gradcheck]") {
  for (std::string preset : {"seemore", "standard"})
    for (int64_t pool : {1, 2}) {
      DYNAMIC_SECTION(preset << ", patch_pool " << pool) {
        const auto c = tiny_patches(preset, pool);
        nn::VisionLanguageModel<double> m(c, 3);
        // Non-trivial LayerNorm parameters and CLS token, so their gradients are tested away from 1 and 0.
        Generator pert(9);
        for (auto& [name, p] : m.named_parameters())
          if (name.find("ln") != std::string::npos || name.find("layer_norm") != std::string::npos ||
              name.find("cls_token") != std::string::npos)
            p.copy_from(add(p.detach(), Tensor<double>::randn(p.shape(), pert, 0.0, 0.2)));
        const auto b = tiny_batch(c, 5);
        auto loss = m.forward(b.images, b.tokens, b.targets).loss;
        loss.backward();
        const double h = 1e-5;
        double worst = 0;
        std::string where;
        NoGradGuard ng;
        for (auto& [name, p] : m.named_parameters()) {
          REQUIRE(p.grad().defined());
          const auto ga = p.grad().to_vector();
          double* w = p.data();
          for (int64_t i = 0; i < p.numel(); ++i) {
            const double orig = w[i];
            w[i] = orig + h;
            const double fp = m.forward(b.images, b.tokens, b.targets).loss.item();
            w[i] = orig - h;
            const double fm = m.forward(b.images, b.tokens, b.targets).loss.item();
            w[i] = orig;
            const double num = (fp - fm) / (2 * h), an = ga[size_t(i)];
            const double err = std::abs(an - num) / std::max({std::abs(an), std::abs(num), 1e-3});
            if (err > worst) {
              worst = err;
              where = name + "[" + std::to_string(i) + "]: analytic " + std::to_string(an) + ", numeric " +
                      std::to_string(num);
            }
          }
        }
        INFO("worst: " << where);
        CHECK(worst < 1e-5);
      }
    }
}

TEST_CASE("image_tokens patches: generation with the KV cache equals the full forward", "[nn][patches][generate]") {
  for (int64_t pool : {1, 2}) {
    DYNAMIC_SECTION("patch_pool " << pool) {
      auto c = tiny_patches("standard", pool);
      nn::VisionLanguageModel<float> m(c, 7);
      m.eval();
      // The end tokens pushed far down, so that generation runs its full length.
      for (auto& [name, p] : m.named_parameters())
        if (name == "decoder.lm_head.bias") {
          auto v = p.to_vector();
          v[size_t(c.pad_id)] = v[size_t(c.eos_id)] = -1e4f;
          p.copy_from(Tensor<float>::from_vector(p.shape(), v));
        }
      Generator g(3);
      auto img = Tensor<float>::randn({1, 3, c.img_size, c.img_size}, g);
      nn::GenerateOptions opt;
      opt.max_tokens = 10;
      opt.greedy = false;
      opt.temperature = 1.5;
      opt.seed = 4;
      std::vector<Tensor<float>> steps;
      const std::vector<int32_t> prompt = {20, 31};
      auto out = m.generate(img, prompt, opt, &steps);
      REQUIRE(steps.size() >= 2);
      std::vector<int32_t> seq = prompt;
      for (size_t s = 0; s < steps.size(); ++s) {
        auto full = m.forward(img, Tensor<int32_t>::from_vector({1, int64_t(seq.size())}, seq)).logits;
        auto last = slice(full, 1, full.size(1) - 1, full.size(1)).view({c.vocab_size}).clone();
        INFO("step " << s);
        CHECK(max_abs_diff(steps[s], last) <= 1e-5);
        if (s < out.size()) seq.push_back(out[s]);
      }
      // The sequence cannot outgrow the position table: the image takes its
      // share of block_size (the last token is predicted from the last position).
      opt.max_tokens = 1000;
      opt.greedy = true;
      const auto long_out = m.generate(img, {}, opt);
      CHECK(int64_t(long_out.size()) == c.block_size - c.image_prefix_len() + 1);
    }
  }
}

TEST_CASE("image_tokens patches: a pooled token is the mean of its k x k patch outputs", "[nn][patches]") {
  auto c1 = tiny_patches("standard", 1), c2 = tiny_patches("standard", 2);
  nn::VisionLanguageModel<double> m1(c1, 11), m2(c2, 11);  // same seed, same weights
  Generator g(2);
  auto img = Tensor<double>::randn({2, 3, 16, 16}, g);
  auto a = m1.vision_encoder->encode(img), p = m2.vision_encoder->encode(img);  // [2, 16, 8], [2, 4, 8]
  REQUIRE(a.shape() == Shape{2, 16, 8});
  REQUIRE(p.shape() == Shape{2, 4, 8});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t q = 0; q < 2; ++q)
        for (int64_t e = 0; e < 8; ++e) {
          double s = 0;
          for (int64_t dy = 0; dy < 2; ++dy)
            for (int64_t dx = 0; dx < 2; ++dx) s += a.at({b, (2 * r + dy) * 4 + 2 * q + dx, e});
          CHECK(p.at({b, r * 2 + q, e}) == Approx(s / 4).margin(1e-14));
        }
  // cls: one token, the ViT's usual output.
  auto cc = c1;
  cc.image_tokens = "cls";
  nn::VisionLanguageModel<double> mc(cc, 11);
  CHECK(max_abs_diff(mc.vision_encoder->encode(img), reshape(mc.vision_encoder->forward(img), {2, 1, 8})) == 0);
}

TEST_CASE("image_tokens: the config's rules, and the choice travels with a checkpoint", "[nn][patches][config]") {
  auto c = nn::VLMConfig::from_json({{"preset", "standard"}, {"img_size", 16}, {"patch_size", 4},
                                     {"image_tokens", "patches"}, {"patch_pool", 2}, {"block_size", 32},
                                     {"image_embed_dim", 8}, {"n_embd", 8}, {"n_head", 2}});
  CHECK(c.image_prefix_len() == 4);
  CHECK(nn::VLMConfig::from_json(c.to_json()).to_json() == c.to_json());
  CHECK_THROWS_WITH(nn::VLMConfig::from_json({{"image_tokens", "grid"}}), Catch::Contains("'image_tokens' must be"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json({{"patch_pool", 2}}), Catch::Contains("needs \"image_tokens\": \"patches\""));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json({{"image_tokens", "patches"}, {"img_size", 16}, {"patch_size", 4},
                                              {"patch_pool", 3}}),
                    Catch::Contains("does not divide the 4x4 patch grid"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json({{"image_tokens", "patches"}, {"img_size", 16}, {"patch_size", 2},
                                              {"block_size", 64}}),
                    Catch::Contains("leaves none for text"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json({{"image_tokens", 1}}), Catch::Contains("must be a string"));

  // Saved and loaded: the same config, the same logits.
  auto cfg = tiny_patches("standard", 2);
  nn::VisionLanguageModel<float> m(cfg, 5);
  m.eval();
  const std::string path = "test_image_tokens_ckpt.safetensors";
  io::save_checkpoint(path, m, io::default_vocab(cfg));
  auto loaded = io::load_checkpoint<float>(path);
  std::remove(path.c_str());
  CHECK(loaded.model->config().image_tokens == "patches");
  CHECK(loaded.model->config().patch_pool == 2);
  loaded.model->eval();
  Generator g(1);
  auto img = Tensor<float>::randn({1, 3, 16, 16}, g);
  auto tok = Tensor<int32_t>::from_vector({1, 3}, {5, 6, 7});
  CHECK(max_abs_diff(loaded.model->forward(img, tok).logits, m.forward(img, tok).logits) == 0);
}
