// The model behind the safetensors fuzzer: small enough that loading a
// mutated checkpoint stays fast, complete enough to have every kind of tensor.
#pragma once

#include <seemore/nn/vlm_config.hpp>

namespace seemore::fuzz {

inline nn::VLMConfig small_config(const std::string& preset) {
  auto c = nn::VLMConfig::from_preset(preset);
  c.img_size = 8;
  c.patch_size = 4;
  c.image_embed_dim = 4;
  c.num_blks = 1;
  c.n_embd = 4;
  c.n_layer = 1;
  c.n_head = 1;
  c.block_size = 4;
  return c;
}

}  // namespace seemore::fuzz
