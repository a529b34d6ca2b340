#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>

using namespace seemore;

namespace {
nn::VLMConfig tiny(const std::string& preset) {
  auto c = nn::VLMConfig::from_preset(preset);
  c.img_size = 16;
  c.patch_size = 8;
  c.image_embed_dim = 16;
  c.num_blks = 1;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.block_size = 64;
  return c;
}
Tensor<float> image(uint64_t seed, int64_t B = 1) {
  Generator g(seed);
  return Tensor<float>::randn({B, 3, 16, 16}, g);
}
}  // namespace

TEST_CASE("generate: KV-cached logits equal a full forward at every step", "[nn][generate]") {
  for (std::string preset : {"seemore", "standard"}) {
    DYNAMIC_SECTION(preset) {
      nn::VisionLanguageModel<float> m(tiny(preset), 7);
      m.eval();
      auto img = image(3);
      std::vector<int32_t> prompt = {20, 31};
      nn::GenerateOptions opt;
      opt.max_tokens = 12;
      opt.greedy = false;  // sampling, so the sequence wanders through many tokens
      opt.temperature = 1.5;
      opt.seed = 5;
      std::vector<Tensor<float>> steps;
      auto out = m.generate(img, prompt, opt, &steps);
      REQUIRE(steps.size() >= 2);
      std::vector<int32_t> seq = prompt;
      for (size_t s = 0; s < steps.size(); ++s) {
        auto full = m.forward(img, Tensor<int32_t>::from_vector({1, int64_t(seq.size())}, seq)).logits;
        auto last = slice(full, 1, full.size(1) - 1, full.size(1)).view({m.config().vocab_size}).clone();
        INFO("step " << s);
        CHECK(max_abs_diff(steps[s], last) <= 1e-5);
        if (s < out.size()) seq.push_back(out[s]);
      }
    }
  }
}

TEST_CASE("ViT: the CLS-only last block gives the full encoder's output and gradients", "[nn][vit]") {
  // The encoder computes only the CLS row in its last block; the oracle runs
  // every block on every row and slices afterwards, as the reference does.
  for (std::string preset : {"seemore", "standard"}) {
    DYNAMIC_SECTION(preset) {
      auto c = tiny(preset);
      c.num_blks = 2;
      nn::VisionLanguageModel<float> m(c, 11);
      m.eval();  // no dropout: both paths see the same numbers
      auto& vit = *m.vision_encoder;
      auto img = image(4, 3);
      Generator g(9);
      auto w = Tensor<float>::randn({3, c.image_embed_dim}, g);
      auto grads = [&](bool full) {
        for (auto& p : vit.parameters()) p.zero_grad();
        Tensor<float> out;
        if (!full) {
          out = vit.forward(img);
        } else {
          const int64_t B = img.size(0), E = c.image_embed_dim;
          auto x = vit.patch_embedding->forward(img);
          x = concat<float>({broadcast_to(vit.cls_token, {B, 1, E}), x}, 1) + vit.pos_embedding;
          for (auto& b : vit.blocks) x = b->forward(x);
          REQUIRE(x.size(1) == c.num_patches() + 1);
          out = vit.layer_norm->forward(reshape(slice(x, 1, 0, 1), {B, E}));
        }
        sum(out * w).backward();
        std::vector<Tensor<float>> gs{out.detach().clone()};
        for (auto& p : vit.parameters()) gs.push_back(p.grad().clone());
        return gs;
      };
      auto pruned = grads(false), full = grads(true);
      REQUIRE(pruned.size() == full.size());
      for (size_t i = 0; i < full.size(); ++i) {
        INFO("tensor " << i << " (0 is the output, then the parameters' gradients)");
        REQUIRE(full[i].defined());
        double scale = 0;
        for (double v : full[i].to_vector()) scale = std::max(scale, std::abs(v));
        CHECK(max_abs_diff(pruned[i], full[i]) <= 1e-5 * (1 + scale));
      }
    }
  }
}

TEST_CASE("Block: forward(x, keep) equals the full output's first keep positions", "[nn][vit]") {
  for (std::string preset : {"seemore", "standard"}) {
    DYNAMIC_SECTION(preset) {
      nn::VisionLanguageModel<float> m(tiny(preset), 5);
      m.eval();
      Generator g(2);
      for (bool causal : {false, true}) {
        auto& block = causal ? *m.decoder->blocks[0] : *m.vision_encoder->blocks[0];
        const int64_t C = causal ? m.config().n_embd : m.config().image_embed_dim;
        auto x = Tensor<float>::randn({2, 9, C}, g);
        auto full = block.forward(x);
        for (int64_t keep : {1, 4, 9}) {
          INFO((causal ? "causal" : "not causal") << ", keep " << keep);
          auto part = block.forward(x, keep);
          REQUIRE(part.shape() == Shape{2, keep, C});
          CHECK(max_abs_diff(part, slice(full, 1, 0, keep)) <= 1e-5);
        }
      }
    }
  }
}

TEST_CASE("Block: forward(x, keep)'s gradients are those of the full output's first keep positions", "[nn][vit]") {
  // The encoder's last block asks only the CLS query (on the CPU, one fused
  // op over a QKV projected for it alone); its gradients must be the whole
  // block's through the rows it keeps.
  nn::VisionLanguageModel<double> m(tiny("seemore"), 5);
  m.eval();
  auto& block = *m.vision_encoder->blocks[0];
  const int64_t C = m.config().image_embed_dim;
  Generator g(4);
  for (int64_t keep : {1, 3}) {
    INFO("keep " << keep);
    auto x = Tensor<double>::randn({2, 7, C}, g), R = Tensor<double>::randn({2, keep, C}, g);
    std::vector<Tensor<double>> grads[2];
    for (int way = 0; way < 2; ++way) {
      auto xi = x.clone();
      xi.requires_grad_();
      for (auto& p : block.parameters()) p.zero_grad();
      auto y = way == 0 ? block.forward(xi, keep) : slice(block.forward(xi), 1, 0, keep);
      sum(y * R).backward();
      grads[way].push_back(xi.grad());
      for (auto& p : block.parameters()) grads[way].push_back(p.grad());
    }
    REQUIRE(grads[0].size() == grads[1].size());
    for (size_t i = 0; i < grads[0].size(); ++i) {
      INFO("gradient " << i);
      CHECK(allclose(grads[0][i], grads[1][i], 1e-10, 1e-12));
    }
  }
}

TEST_CASE("generate: greedy is deterministic, sampling is seeded, stops at the end token", "[nn][generate]") {
  nn::VisionLanguageModel<float> m(tiny("seemore"), 1);
  m.eval();
  auto img = image(2);
  nn::GenerateOptions g;
  g.max_tokens = 20;
  auto a = m.generate(img, {30}, g), b = m.generate(img, {30}, g);
  CHECK(a == b);
  CHECK(a.size() <= 20);
  for (auto id : a) CHECK(id != m.config().pad_id);
  nn::GenerateOptions s = g;
  s.greedy = false;
  s.top_k = 5;
  s.top_p = 0.9;
  s.seed = 9;
  CHECK(m.generate(img, {30}, s) == m.generate(img, {30}, s));
  // With top_k = 1 sampling is greedy.
  nn::GenerateOptions k1 = s;
  k1.top_k = 1;
  CHECK(m.generate(img, {30}, k1) == a);
  // A model whose lm_head strongly prefers <pad> stops at once.
  m.decoder->lm_head->bias.data()[m.config().pad_id] = 1e4f;
  CHECK(m.generate(img, {30}, g).empty());
  m.train();
  CHECK_THROWS_WITH(m.generate(img, {30}, g), Catch::Contains("eval()"));
}

TEST_CASE("config: JSON round trip and errors that name the field", "[nn][config]") {
  auto c = nn::VLMConfig::standard();
  c.n_layer = 3;
  auto back = nn::VLMConfig::from_json(c.to_json());
  CHECK(back.to_json() == c.to_json());
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"n_embd", "128"}}, "cfg.json"),
                    Catch::Contains("cfg.json") && Catch::Contains("'n_embd'") && Catch::Contains("integer") &&
                        Catch::Contains("string"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"dropout", true}}), Catch::Contains("'dropout'") &&
                                                                                     Catch::Contains("number"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"n_head", 2.5}}), Catch::Contains("'n_head'"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"n_heads", 2}}), Catch::Contains("unknown field 'n_heads'"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"preset", "big"}}), Catch::Contains("unknown preset"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"n_embd", 100}, {"n_head", 8}}),
                    Catch::Contains("not divisible"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json::array()), Catch::Contains("JSON object"));
  // Integers that do not fit the field, and sizes beyond the caps.
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"pad_id", int64_t(1) << 40}}),
                    Catch::Contains("'pad_id'") && Catch::Contains("out of range"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"n_layer", uint64_t(1) << 63}}),
                    Catch::Contains("'n_layer'") && Catch::Contains("out of range"));
  CHECK_THROWS_WITH(nn::VLMConfig::from_json(nlohmann::json{{"img_size", int64_t(1) << 40}}),
                    Catch::Contains("'img_size'") && Catch::Contains("exceeds the limit"));
}

TEST_CASE("config: parameter_count equals the built model's", "[nn][config]") {
  for (auto c : {nn::VLMConfig::seemore(), nn::VLMConfig::standard(), tiny("seemore"), tiny("standard")}) {
    c.vocab_size += 3;
    c.in_channels = 1;
    nn::VisionLanguageModel<float> m(c);
    CHECK(c.parameter_count() == m.num_parameters());
  }
  CHECK(nn::VLMConfig::seemore().parameter_count() == 12907970);
}

TEST_CASE("tokenizer: reference vocabulary, errors name row and character", "[data][tokenizer]") {
  data::CharTokenizer t;
  CHECK(t.vocab_size() == 66);
  CHECK(t.pad_id() == 65);
  CHECK(t.encode("\n A") == std::vector<int32_t>{0, 1, 13});
  CHECK(t.decode(t.encode("Hello, world.")) == "Hello, world.");
  CHECK_THROWS_WITH(t.encode("caf\xc3\xa9", "inputs.csv row 4"),
                    Catch::Contains("inputs.csv row 4") && Catch::Contains("\\xc3") && Catch::Contains("position 3"));
  CHECK_THROWS_WITH(t.encode("a1"), Catch::Contains("'1'"));
  data::CharTokenizer s(data::reference_characters(), true);
  CHECK(s.vocab_size() == 67);
  CHECK(s.eos_id() == 66);
  auto b = data::CharTokenizer::from_texts({"cab", "bad"}, false);
  CHECK(b.characters() == "abcd");
  CHECK(data::CharTokenizer::from_json(b.to_json()).characters() == "abcd");
}

TEST_CASE("checkpoint: a bare state dict's sizes are read from its tensors", "[io][checkpoint]") {
  const std::string path = "bare_infer.safetensors";
  struct Sizes {
    int64_t img, patch, embed, blks, n_embd, layers, heads, block;
  };
  for (auto z : {Sizes{16, 8, 16, 1, 16, 2, 2, 64}, Sizes{24, 8, 32, 2, 24, 3, 4, 40}, Sizes{32, 16, 12, 0, 12, 1, 3, 9},
                 Sizes{12, 4, 8, 3, 8, 0, 1, 30}}) {
    auto c = nn::VLMConfig::seemore();
    c.img_size = z.img, c.patch_size = z.patch, c.image_embed_dim = z.embed, c.num_blks = z.blks;
    c.n_embd = z.n_embd, c.n_layer = z.layers, c.n_head = z.heads, c.block_size = z.block;
    nn::VisionLanguageModel<float> m(c, 11);
    io::save_safetensors(path, m.state_dict());
    auto got = io::infer_config(io::load_safetensors(path), path, nn::VLMConfig::seemore());
    INFO(c.to_json().dump());
    CHECK(got.to_json() == c.to_json());
    CHECK(io::load_checkpoint<float>(path).model->num_parameters() == m.num_parameters());
  }

  // A model saved under a name is read without it: a training wrapper's
  // (DistributedDataParallel around torch.compile)...
  nn::VisionLanguageModel<float> m(tiny("seemore"), 2);
  auto wrapped = m.state_dict();
  for (auto& [name, t] : wrapped) name = "module._orig_mod." + name;
  io::save_safetensors(path, wrapped);
  auto unwrapped = io::load_checkpoint<float>(path);
  CHECK(unwrapped.model->config().to_json() == m.config().to_json());
  auto back = unwrapped.model->state_dict(), orig = m.state_dict();
  REQUIRE(back.size() == orig.size());
  for (size_t i = 0; i < back.size(); ++i) CHECK(back[i].second.to_vector() == orig[i].second.to_vector());
  // A model kept under an attribute (Lightning's "model."), beside a tensor of the framework's own.
  auto lightning = m.state_dict();
  for (auto& [name, t] : lightning) name = "model." + name;
  lightning.emplace_back("criterion.weight", Tensor<float>::ones({3}));
  io::save_safetensors(path, lightning);
  back = io::load_checkpoint<float>(path).model->state_dict();
  REQUIRE(back.size() == orig.size());
  for (size_t i = 0; i < back.size(); ++i) CHECK(back[i].second.to_vector() == orig[i].second.to_vector());
  // Two models in one file (a model and its moving average): an error naming both, not a guess.
  auto two = lightning;
  for (auto& [name, t] : m.state_dict()) two.emplace_back("ema." + name, t);
  io::save_safetensors(path, two);
  CHECK_THROWS_WITH(io::load_checkpoint<float>(path), Catch::Contains("holds 2 models, under 'ema.' and 'model.'"));
  wrapped.front().first = "vision_encoder.cls_token";  // the model's own names win: nothing is stripped
  io::save_safetensors(path, wrapped);
  CHECK_THROWS_WITH(io::load_checkpoint<float>(path), Catch::Contains("no tensor"));

  // Files that are not a whole model say which tensor is wrong.
  auto edited = [&](auto&& edit) {
    auto sd = m.state_dict();
    edit(sd);
    io::save_safetensors(path, sd);
    return io::load_safetensors(path);
  };
  auto drop = [](const std::string& prefix) {
    return [prefix](std::vector<std::pair<std::string, Tensor<float>>>& sd) {
      sd.erase(std::remove_if(sd.begin(), sd.end(), [&](auto& p) { return p.first.rfind(prefix, 0) == 0; }), sd.end());
    };
  };
  const auto base = nn::VLMConfig::seemore();
  CHECK_THROWS_WITH(io::infer_config(edited(drop("decoder.token_embedding_table")), path, base),
                    Catch::Contains(path) && Catch::Contains("no tensor 'decoder.token_embedding_table.weight'"));
  CHECK_THROWS_WITH(io::infer_config(edited(drop("decoder.blocks.0.")), path, base),
                    Catch::Contains("no tensors for 'decoder.blocks.0.'") && Catch::Contains("'decoder.blocks.1.'"));
  CHECK_THROWS_WITH(io::infer_config(edited(drop("decoder.blocks.0.attn.heads.1.")), path, base),
                    Catch::Contains("vision blocks have 2 heads but the decoder's have 1"));
  CHECK_THROWS_WITH(io::infer_config(edited([](auto& sd) {
                      for (auto& [n, t] : sd)
                        if (n == "vision_encoder.pos_embedding") t = Tensor<float>::zeros({1, 6, 16});
                    }),
                                     path, base),
                    Catch::Contains("'vision_encoder.pos_embedding' has 6 positions"));
  CHECK_THROWS_WITH(io::infer_config(edited([](auto& sd) {
                      for (auto& [n, t] : sd)
                        if (n == "vision_encoder.patch_embedding.conv.weight") t = Tensor<float>::zeros({16, 3, 8});
                    }),
                                     path, base),
                    Catch::Contains("has 3 dimensions, expected 4"));
  CHECK_THROWS_WITH(io::infer_config(edited([](auto& sd) {
                      sd.push_back({"decoder.blocks.x1.ln1.weight", Tensor<float>::zeros({16})});
                    }),
                                     path, base),
                    Catch::Contains("'decoder.blocks.x1.ln1.weight'") && Catch::Contains("<index>"));
}

TEST_CASE("checkpoint: save and load give the same model; mismatches are named", "[io][checkpoint]") {
  const std::string dir = "ckpt_test_dir";
  std::system(("mkdir -p " + dir).c_str());
  const std::string path = dir + "/model.safetensors";
  nn::VisionLanguageModel<float> m(tiny("standard"), 3);
  io::save_checkpoint(path, m, io::default_vocab(m.config()));
  auto loaded = io::load_checkpoint<float>(path);
  CHECK(loaded.model->config().to_json() == m.config().to_json());
  CHECK(loaded.vocab.eos_id() == 66);
  auto a = m.state_dict(), b = loaded.model->state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector() == b[i].second.to_vector());
  }
  m.eval();
  loaded.model->eval();
  auto tok = Tensor<int32_t>::from_vector({1, 3}, {1, 2, 3});
  CHECK(max_abs_diff(m.forward(image(1), tok).logits, loaded.model->forward(image(1), tok).logits) == 0);

  // A bare checkpoint (no metadata, as the PyTorch reference writes): sizes
  // from its tensors, quirks from the preset named (seemore by default, whose
  // 66-token vocabulary does not fit this standard model's 67 rows).
  io::save_safetensors(dir + "/bare.safetensors", m.state_dict());
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir + "/bare.safetensors"),
                    Catch::Contains("bare.safetensors") && Catch::Contains("67-token embedding does not fit") &&
                        Catch::Contains("seemore preset's 66 tokens"));
  CHECK(io::load_checkpoint<float>(dir + "/bare.safetensors", std::nullopt, "standard").model->config().to_json() ==
        m.config().to_json());
  CHECK(io::load_checkpoint<float>(dir + "/bare.safetensors", tiny("standard")).model->num_parameters() ==
        m.num_parameters());
  // Shapes that do not match the config.
  auto other = tiny("standard");
  other.n_embd = 32;
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir + "/bare.safetensors", other),
                    Catch::Contains("bare.safetensors") && Catch::Contains("has shape"));
  // Missing tensor.
  auto sd = m.state_dict();
  sd.pop_back();
  io::save_safetensors(dir + "/missing.safetensors", sd);
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir + "/missing.safetensors", tiny("standard")),
                    Catch::Contains("missing tensor"));
  // Extra tensor.
  sd = m.state_dict();
  sd.push_back({"decoder.extra", Tensor<float>::zeros({2})});
  io::save_safetensors(dir + "/extra.safetensors", sd);
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir + "/extra.safetensors", tiny("standard")),
                    Catch::Contains("unexpected tensors") && Catch::Contains("decoder.extra"));
  // A file whose config asks for a huge model is refused before the model is built.
  auto huge = tiny("standard");
  huge.n_embd = 4096;
  huge.n_layer = 64;
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir + "/bare.safetensors", huge),
                    Catch::Contains("bare.safetensors") && Catch::Contains("the config needs"));
  // Not a file / missing file.
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir), Catch::Contains("is a directory"));
  CHECK_THROWS_WITH(io::load_checkpoint<float>(dir + "/nope.safetensors"), Catch::Contains("no such file"));
}
