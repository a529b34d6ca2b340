// Writes the safetensors fuzzer's seeds: a valid checkpoint of a model small
// enough that mutations stay fast (config and vocabulary in the metadata),
// and optionally the same kind of model as a bare state dict (no metadata,
// as PyTorch writes it), whose sizes the loader reads from the tensors.
#include "small_config.hpp"

#include <seemore/io/checkpoint.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s OUT.safetensors [BARE.safetensors]\n", argv[0]);
    return 2;
  }
  const auto c = seemore::fuzz::small_config("standard");
  seemore::nn::VisionLanguageModel<float> m(c, 1);
  seemore::io::save_checkpoint(argv[1], m, seemore::io::default_vocab(c));
  if (argc == 3) {
    seemore::nn::VisionLanguageModel<float> bare(seemore::fuzz::small_config("seemore"), 2);
    seemore::io::save_safetensors(argv[2], bare.state_dict());
  }
  return 0;
}
