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

// A ViT of one's own, as a backbone:
//   nn::ViTOptions o;
//   o.img_size = 32; o.patch_size = 4; o.dim = 192; o.depth = 6; o.heads = 3;
//   nn::ViT<float> vit(o, gen);
//   vit.forward(images);        // [B, dim]: the CLS output
//   vit.patch_tokens(images);   // [B, P, dim]: every patch's output
struct ViTOptions {
  int64_t img_size = 96, patch_size = 16, in_channels = 3;
  int64_t dim = 512, depth = 3, heads = 8;
  double dropout = 0.0;
  double attn_scale = 0.0;        // 0: 1/√(dim/heads); the reference uses 1/√dim
  bool post_ln_residual = false;  // the reference's block order (nn/block.hpp)
  // encode(): "cls" → [B, 1, dim]; "patches" → [B, P, dim] pooled over patch_pool² squares
  std::string output = "cls";
  int64_t patch_pool = 1;

  int64_t grid() const { return img_size / patch_size; }
  int64_t num_patches() const { return grid() * grid(); }
  void check() const {
    SEEMORE_CHECK(img_size > 0 && patch_size > 0 && in_channels > 0 && depth >= 0, "ViT: img_size (", img_size,
                  "), patch_size (", patch_size, ") and in_channels (", in_channels, ") must be > 0, depth (", depth,
                  ") >= 0");
    SEEMORE_CHECK(img_size % patch_size == 0, "ViT: img_size ", img_size, " is not a multiple of patch_size ",
                  patch_size, ": the patches must tile the image");
    block().check();
    SEEMORE_CHECK(output == "cls" || output == "patches", "ViT: output must be \"cls\" or \"patches\", got \"",
                  output, "\"");
    SEEMORE_CHECK(patch_pool >= 1 && grid() % patch_pool == 0, "ViT: patch_pool ", patch_pool,
                  " must be >= 1 and divide the ", grid(), "x", grid(), " patch grid");
  }
  BlockOptions block() const {
    BlockOptions b;
    b.attn.dim = dim;
    b.attn.heads = heads;
    b.attn.dropout = dropout;
    b.attn.scale = attn_scale;
    b.post_ln_residual = post_ln_residual;
    return b;
  }
  // The vision half of a VLM's config.
  static ViTOptions from(const VLMConfig& c) {
    ViTOptions o;
    o.img_size = c.img_size;
    o.patch_size = c.patch_size;
    o.in_channels = c.in_channels;
    o.dim = c.image_embed_dim;
    o.depth = c.num_blks;
    o.heads = c.n_head;
    o.dropout = c.dropout;
    o.attn_scale = 1.0 / std::sqrt(double(c.attn_scale_by_width ? c.image_embed_dim : c.image_embed_dim / c.n_head));
    o.post_ln_residual = c.post_ln_ffn_residual;
    o.output = c.image_tokens;
    o.patch_pool = c.patch_pool;
    return o;
  }
};

template <class T>
class ViT : public Module<T> {
 public:
  ViT(const VLMConfig& c, Generator& g) : ViT(ViTOptions::from(c), g) {}
  ViT(const ViTOptions& o, Generator& g) : opt_(o) {
    o.check();
    const int64_t E = o.dim;
    patch_embedding = this->register_module("patch_embedding",
                                            std::make_shared<PatchEmbeddings<T>>(o.in_channels, o.patch_size, E, g));
    cls_token = this->register_parameter("cls_token", Tensor<T>::zeros({1, 1, E}), false);
    pos_embedding = this->register_parameter("pos_embedding", Tensor<T>::randn({1, o.num_patches() + 1, E}, g), false);
    drop = this->register_module("dropout", std::make_shared<Dropout<T>>(o.dropout));
    const BlockOptions bo = o.block();
    for (int64_t i = 0; i < o.depth; ++i)
      blocks.push_back(this->register_module("blocks." + std::to_string(i), std::make_shared<Block<T>>(bo, g)));
    layer_norm = this->register_module("layer_norm", std::make_shared<LayerNorm<T>>(E));
  }
  const ViTOptions& options() const { return opt_; }

  // images [B, Cin, img, img] → [B, E]: the CLS output after the final LayerNorm.
  Tensor<T> forward(const Tensor<T>& images) const {
    const int64_t B = images.size(0), E = opt_.dim;
    auto x = embed(images);
    // Only the CLS row leaves the encoder, so the last block computes only it
    // (every row still feeds its attention's keys and values).
    for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward(x, i + 1 == blocks.size() ? 1 : -1);
    if (x.size(1) > 1) x = slice(x, 1, 0, 1);  // no blocks
    return layer_norm->forward(reshape(x, {B, E}));
  }
  // Patch embeddings with the CLS token in front, positions added, dropout: [B, P+1, E].
  Tensor<T> embed(const Tensor<T>& images) const {
    SEEMORE_CHECK(images.ndim() == 4 && images.size(1) == opt_.in_channels && images.size(2) == opt_.img_size &&
                      images.size(3) == opt_.img_size,
                  "ViT: images must be [B, ", opt_.in_channels, ", ", opt_.img_size, ", ", opt_.img_size, "], got ",
                  to_string(images.shape()));
    const int64_t B = images.size(0), E = opt_.dim;
    auto x = patch_embedding->forward(images);
    x = concat<T>({broadcast_to(cls_token, {B, 1, E}), x}, 1);
    return drop->forward(x + pos_embedding);
  }
  // images → [B, P, E]: every patch's output after the final LayerNorm, in
  // row-major grid order (the CLS token only fed their attention).
  Tensor<T> patch_tokens(const Tensor<T>& images) const {
    auto x = embed(images);
    for (auto& b : blocks) x = b->forward(x);
    return layer_norm->forward(slice(x, 1, 1, opt_.num_patches() + 1));
  }

  // What a decoder sees, by options().output: [B, 1, E] or [B, P / pool², E] (see the file's comment).
  Tensor<T> encode(const Tensor<T>& images) const {
    const int64_t B = images.size(0), E = opt_.dim;
    if (opt_.output == "cls") return reshape(forward(images), {B, 1, E});
    auto x = patch_tokens(images);
    const int64_t k = opt_.patch_pool;
    if (k == 1) return x;
    const int64_t h = opt_.grid() / k;
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
  ViTOptions opt_;
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
