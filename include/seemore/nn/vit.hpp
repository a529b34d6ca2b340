// seemore/nn/vit.hpp — PatchEmbeddings and the ViT image encoder.
//
// PatchEmbeddings: Conv2d(Cin → E, kernel = stride = patch) → [B, P, E].
// ViT: prepend the CLS token, add position embeddings [1, P+1, E], dropout,
// the encoder blocks, then LayerNorm of the CLS output only → [B, E]. Since
// only the CLS row is read, the last block computes only that row.
// encode(): what the decoder sees, by the config's image_tokens — the CLS
// output as [B, 1, E], or the P patch outputs after the final LayerNorm
// [B, P, E], averaged over patch_pool × patch_pool squares of the grid.
#pragma once

#include <seemore/nn/block.hpp>
#include <seemore/nn/vlm_config.hpp>

namespace seemore::nn {

template <class T>
class PatchEmbeddings : public Module<T> {
 public:
  PatchEmbeddings(int64_t in_channels, int64_t patch, int64_t E, Generator& g) {
    conv = this->register_module("conv", std::make_shared<Conv>(in_channels, patch, E, g));
  }
  Tensor<T> forward(const Tensor<T>& images) const { return patch_conv2d(images, conv->weight, conv->bias); }

  // Holds the Conv2d parameters under the reference's names (conv.weight, conv.bias).
  struct Conv : Module<T> {
    Conv(int64_t cin, int64_t k, int64_t E, Generator& g) {
      const int64_t fan_in = cin * k * k;
      weight = this->register_parameter("weight", kaiming_uniform<T>({E, cin, k, k}, fan_in, g));
      bias = this->register_parameter("bias", kaiming_uniform<T>({E}, fan_in, g));
    }
    Tensor<T> weight, bias;
  };
  std::shared_ptr<Conv> conv;
};

template <class T>
class ViT : public Module<T> {
 public:
  ViT(const VLMConfig& c, Generator& g) : cfg_(c) {
    const int64_t E = c.image_embed_dim;
    patch_embedding = this->register_module("patch_embedding",
                                            std::make_shared<PatchEmbeddings<T>>(c.in_channels, c.patch_size, E, g));
    cls_token = this->register_parameter("cls_token", Tensor<T>::zeros({1, 1, E}));
    pos_embedding = this->register_parameter("pos_embedding", Tensor<T>::randn({1, c.num_patches() + 1, E}, g));
    drop = this->register_module("dropout", std::make_shared<Dropout<T>>(c.dropout));
    const double scale = 1.0 / std::sqrt(double(c.attn_scale_by_width ? E : E / c.n_head));
    for (int64_t i = 0; i < c.num_blks; ++i)
      blocks.push_back(this->register_module(
          "blocks." + std::to_string(i),
          std::make_shared<Block<T>>(E, c.n_head, false, c.dropout, scale, c.post_ln_ffn_residual, g)));
    layer_norm = this->register_module("layer_norm", std::make_shared<LayerNorm<T>>(E));
  }

  // images [B, Cin, img, img] → [B, E]
  Tensor<T> forward(const Tensor<T>& images) const {
    const int64_t B = images.size(0), E = cfg_.image_embed_dim;
    auto x = embed(images);
    // Only the CLS row leaves the encoder, so the last block computes only it
    // (every row still feeds its attention's keys and values).
    for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward(x, i + 1 == blocks.size() ? 1 : -1);
    if (x.size(1) > 1) x = slice(x, 1, 0, 1);  // no blocks
    return layer_norm->forward(reshape(x, {B, E}));
  }
  // Patch embeddings with the CLS token in front, positions added, dropout: [B, P+1, E].
  Tensor<T> embed(const Tensor<T>& images) const {
    SEEMORE_CHECK(images.ndim() == 4 && images.size(1) == cfg_.in_channels && images.size(2) == cfg_.img_size &&
                      images.size(3) == cfg_.img_size,
                  "ViT: images must be [B, ", cfg_.in_channels, ", ", cfg_.img_size, ", ", cfg_.img_size, "], got ",
                  to_string(images.shape()));
    const int64_t B = images.size(0), E = cfg_.image_embed_dim;
    auto x = patch_embedding->forward(images);
    x = concat<T>({broadcast_to(cls_token, {B, 1, E}), x}, 1);
    return drop->forward(x + pos_embedding);
  }

  // [B, prefix, E] (see the file's comment).
  Tensor<T> encode(const Tensor<T>& images) const {
    const int64_t B = images.size(0), E = cfg_.image_embed_dim;
    if (cfg_.image_tokens == "cls") return reshape(forward(images), {B, 1, E});
    auto x = embed(images);
    for (auto& b : blocks) x = b->forward(x);
    const int64_t P = cfg_.num_patches();
    x = layer_norm->forward(slice(x, 1, 1, P + 1));  // the patch rows; CLS only fed their attention
    const int64_t k = cfg_.patch_pool;
    if (k == 1) return x;
    const int64_t g = cfg_.img_size / cfg_.patch_size, h = g / k;
    // [B, g, g, E] → [B, h, k, h, k, E] → [B, h, h, k, k, E] → mean over each k×k square
    x = permute(reshape(x, {B, h, k, h, k, E}), {0, 1, 3, 2, 4, 5});
    return mean(reshape(x, {B, h * h, k * k, E}), {2});
  }

  std::shared_ptr<PatchEmbeddings<T>> patch_embedding;
  Tensor<T> cls_token, pos_embedding;
  std::shared_ptr<Dropout<T>> drop;
  std::vector<std::shared_ptr<Block<T>>> blocks;
  std::shared_ptr<LayerNorm<T>> layer_norm;

 private:
  VLMConfig cfg_;
};

// Linear(E, 4E) → GELU → Linear(4E, n_embd) → dropout, on each image token.
template <class T>
class MultiModalProjector : public Module<T> {
 public:
  MultiModalProjector(int64_t n_embd, int64_t E, double dropout, Generator& g) {
    fc = this->register_module("net.0", std::make_shared<Linear<T>>(E, 4 * E, true, g));
    out = this->register_module("net.2", std::make_shared<Linear<T>>(4 * E, n_embd, true, g));
    drop = this->register_module("net.3", std::make_shared<Dropout<T>>(dropout));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return drop->forward(out->forward(gelu(fc->forward(x)))); }
  std::shared_ptr<Linear<T>> fc, out;
  std::shared_ptr<Dropout<T>> drop;
};

}  // namespace seemore::nn
