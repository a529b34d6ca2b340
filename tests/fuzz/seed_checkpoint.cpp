// Writes the safetensors fuzzer's seed: a valid checkpoint of a model small
// enough that mutations stay fast (config and vocabulary in the metadata).
#include <seemore/io/checkpoint.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
    return 2;
  }
  auto c = seemore::nn::VLMConfig::standard();
  c.img_size = 8;
  c.patch_size = 4;
  c.image_embed_dim = 4;
  c.num_blks = 1;
  c.n_embd = 4;
  c.n_layer = 1;
  c.n_head = 1;
  c.block_size = 4;
  seemore::nn::VisionLanguageModel<float> m(c, 1);
  seemore::io::save_checkpoint(argv[1], m, seemore::io::default_vocab(c));
  return 0;
}
