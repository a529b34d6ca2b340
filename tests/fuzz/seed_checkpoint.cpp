// Writes the safetensors fuzzer's seed: a valid checkpoint of a model small
// enough that mutations stay fast (config and vocabulary in the metadata).
#include "small_config.hpp"

#include <seemore/io/checkpoint.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
    return 2;
  }
  const auto c = seemore::fuzz::small_config("standard");
  seemore::nn::VisionLanguageModel<float> m(c, 1);
  seemore::io::save_checkpoint(argv[1], m, seemore::io::default_vocab(c));
  return 0;
}
