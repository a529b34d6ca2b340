// seemore::Captioner (captioner.hpp) and the synthetic caption parser that
// scores captions fact by fact (data/synthetic.hpp).
#include <catch2/catch.hpp>
#include <seemore/captioner.hpp>
#include <seemore/data/synthetic.hpp>
#include <seemore/io/png_write.hpp>

#include <cstdio>

using namespace seemore;

namespace {
nn::VLMConfig tiny(const std::string& preset, const std::string& image_tokens) {
  auto c = nn::VLMConfig::from_preset(preset);
  c.img_size = 16;
  c.patch_size = 4;
  c.image_embed_dim = 8;
  c.num_blks = 1;
  c.n_embd = 16;
  c.n_layer = 1;
  c.n_head = 2;
  c.block_size = 48;
  c.dropout = 0.0;
  c.image_tokens = image_tokens;
  c.validate();
  return c;
}
}  // namespace

TEST_CASE("Captioner: files and pixels in memory give the model's own captions", "[captioner]") {
  for (const std::string tokens : {"cls", "patches"}) {
    DYNAMIC_SECTION(tokens) {
      const auto cfg = tiny("standard", tokens);
      nn::VisionLanguageModel<float> m(cfg, 11);
      m.eval();
      const auto vocab = io::default_vocab(cfg);
      const std::string ckpt = "test_captioner_" + tokens + ".safetensors", png = "test_captioner_" + tokens + ".png";
      io::save_checkpoint(ckpt, m, vocab);
      const auto scene = data::synthetic_scene(3, 4, 40);  // not the model's size: resized as training resizes
      io::write_png(png, scene.image.rgb.data(), scene.image.width, scene.image.height);

      const Captioner cap(ckpt);
      CHECK(cap.config().image_tokens == tokens);
      CaptionOptions o;
      o.max_tokens = 12;
      const auto from_file = cap.caption(png, o);
      const auto from_memory = cap.caption_rgb(scene.image.rgb.data(), scene.image.width, scene.image.height, o);
      CHECK(from_file == from_memory);
      CHECK(from_file.size() <= 12);

      // The same as the model's own greedy generation on the same input.
      nn::GenerateOptions g;
      g.max_tokens = 12;
      const auto input = data::image_to_tensor<float>(data::resize_bilinear(scene.image, 16, 16));
      CHECK(from_file == vocab.decode(m.generate(input, {}, g)));

      // A prompt starts the caption; sampling is repeatable by seed and differs from greedy somewhere.
      o.prompt = "two";
      CHECK(cap.caption(png, o).rfind("two", 0) == 0);
      CaptionOptions s;
      s.greedy = false;
      s.max_tokens = 12;
      s.seed = 5;
      CHECK(cap.caption(png, s) == cap.caption(png, s));
      bool differs = false;
      for (uint64_t seed = 0; seed < 8 && !differs; ++seed) {
        s.seed = seed;
        differs = cap.caption(png, s) != from_file;
      }
      CHECK(differs);  // an untrained model's distribution is wide

      // score: the teacher-forced loss of the model on that text.
      const std::string text = "a red circle";
      auto ids = vocab.encode(text);
      std::vector<int32_t> tgt(ids.begin() + 1, ids.end());
      tgt.push_back(vocab.pad_id());
      const int64_t T = int64_t(ids.size());
      const double want = m.forward(input, Tensor<int32_t>::from_vector({1, T}, ids),
                                    Tensor<int32_t>::from_vector({1, T}, tgt))
                              .loss.item();
      CHECK(cap.score(png, text) == Approx(want).epsilon(1e-6));

      // Bad input names what was wrong.
      CHECK_THROWS_WITH(cap.caption_rgb(nullptr, 4, 4), Catch::Contains("is not an image"));
      CHECK_THROWS_WITH(cap.caption_rgb(scene.image.rgb.data(), 0, 4), Catch::Contains("is not an image"));
      CHECK_THROWS_WITH(cap.caption("test_captioner_missing.png"), Catch::Contains("test_captioner_missing.png"));
      CaptionOptions bad;
      bad.prompt = "\x01";
      CHECK_THROWS_WITH(cap.caption(png, bad), Catch::Contains("caption prompt"));
      CaptionerOptions other;
      other.preset = "seemore";
      CHECK_THROWS_WITH(Captioner(ckpt, other), Catch::Contains("not the seemore preset asked for"));
      std::remove(ckpt.c_str());
      std::remove(png.c_str());
    }
  }
}

TEST_CASE("Captioner: the seemore preset needs a first character", "[captioner]") {
  const auto cfg = tiny("seemore", "cls");
  nn::VisionLanguageModel<float> m(cfg, 2);
  const std::string ckpt = "test_captioner_seemore.safetensors";
  io::save_checkpoint(ckpt, m, io::default_vocab(cfg));
  const Captioner cap(ckpt);
  const auto scene = data::synthetic_scene(1, 1, 16);
  CHECK_THROWS_WITH(cap.caption(scene.image), Catch::Contains("give at least the first character"));
  CaptionOptions o;
  o.prompt = "a";
  o.max_tokens = 5;
  CHECK(cap.caption(scene.image, o).rfind("a", 0) == 0);
  std::remove(ckpt.c_str());
}

TEST_CASE("synthetic captions read back into their facts", "[data][synthetic]") {
  int singles = 0, groups = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    const auto s = data::synthetic_scene(9, i, 32);
    const auto f = data::parse_synthetic_caption(s.caption);
    INFO(s.caption);
    REQUIRE(f.valid);
    const bool single = f.count == "a";
    (single ? singles : groups)++;
    CHECK(single != f.position.empty());
    // Rebuilt from its facts, the caption is the same text.
    const std::string shape = single ? f.shape : f.shape + "s";
    CHECK(f.count + " " + f.size + " " + f.colour + " " + shape + (single ? " " + f.position : "") == s.caption);
  }
  CHECK(singles > 50);
  CHECK(groups > 50);
  for (const char* bad : {"", "a red", "a big red circle", "two big red circles at the top", "a big purple circle in the centre",
                          "two big red circle", "four big red circles", "a huge red circle on the left",
                          "a big red circle somewhere"})
    CHECK_FALSE(data::parse_synthetic_caption(bad).valid);
}
