// Compose and train your own tiny VLM: a model from a config, a few Adam steps
// on made-up image/caption pairs, a checkpoint, and generation from it.
//
// The images are solid colours and the captions name the colour, so after a
// few hundred steps the model must look at the image to caption it.
#include <seemore/vlm.hpp>

#include <cstdio>

using namespace seemore;

int main() {
  // A small `standard` model: 32×32 images in 8×8 patches (any field of VLMConfig can be set).
  nn::VLMConfig cfg = nn::VLMConfig::standard();
  cfg.img_size = 32;
  cfg.patch_size = 8;
  cfg.image_embed_dim = 64;
  cfg.num_blks = 1;
  cfg.n_embd = 64;
  cfg.n_layer = 2;
  cfg.n_head = 4;
  cfg.dropout = 0.0;
  data::CharTokenizer vocab(data::reference_characters(), /*with_eos=*/true);
  nn::VisionLanguageModel<float> model(cfg, /*seed=*/0);
  std::printf("model: %lld parameters\n", static_cast<long long>(model.num_parameters()));

  // Four colours, one image each; the caption is the colour's name.
  const char* names[] = {"red", "green", "blue", "white"};
  const float rgb[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}};
  const int64_t B = 4, S = cfg.img_size, T = 5;
  auto images = Tensor<float>::empty({B, 3, S, S});
  std::vector<int32_t> tokens(B * T, vocab.pad_id()), targets(B * (T + 1), -100);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < S * S; ++i) images.data()[(b * 3 + c) * S * S + i] = rgb[b][c] * 2 - 1;
    auto ids = vocab.encode(names[b]);
    for (size_t t = 0; t < ids.size(); ++t) {
      tokens[size_t(b * T) + t] = ids[t];
      targets[size_t(b * (T + 1)) + t] = ids[t];  // standard: position t predicts character t
    }
    targets[size_t(b * (T + 1)) + ids.size()] = vocab.eos_id();
  }
  auto tok = Tensor<int32_t>::from_vector({B, T}, tokens);
  auto tgt = Tensor<int32_t>::from_vector({B, T + 1}, targets);

  optim::AdamW<float> opt(model.parameters(), {3e-3, 0.9, 0.999, 1e-8, 0.0});
  for (int step = 0; step <= 150; ++step) {
    auto out = model.forward(images, tok, tgt);
    opt.zero_grad();
    out.loss.backward();
    opt.step();
    if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, out.loss.item());
  }

  io::save_checkpoint("tiny_vlm.safetensors", model, vocab);
  auto loaded = io::load_checkpoint<float>("tiny_vlm.safetensors");
  loaded.model->eval();
  int correct = 0;
  for (int64_t b = 0; b < B; ++b) {
    auto img = images.rows(b, b + 1);
    auto caption = loaded.vocab.decode(loaded.model->generate(img, {}, {}));
    std::printf("%-5s image -> \"%s\"\n", names[b], caption.c_str());
    correct += caption == names[b];
  }
  std::printf("%d/4 captions right\n", correct);
  return correct == 4 ? 0 : 1;
}
