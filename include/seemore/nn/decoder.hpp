// seemore/nn/decoder.hpp — DecoderLanguageModel: the character decoder that
// reads the projected image tokens followed by the text.
//
// sequence = [P image tokens, token embeddings] (length P+T) + positions
// 0..P+T−1, causal blocks, ln_f, lm_head on the last T+1 positions (the last
// image token's, which may predict the first character, and the text's) →
// logits [B, T+1, V]. P = 1 (the CLS token) is the reference's model.
#pragma once

#include <seemore/nn/embedding.hpp>
#include <seemore/nn/vit.hpp>

namespace seemore::nn {

template <class T>
class DecoderLanguageModel : public Module<T> {
 public:
  DecoderLanguageModel(const VLMConfig& c, Generator& g) : cfg_(c) {
    token_embedding_table = this->register_module("token_embedding_table",
                                                  std::make_shared<Embedding<T>>(c.vocab_size, c.n_embd, g));
    position_embedding_table = this->register_module("position_embedding_table",
                                                     std::make_shared<Embedding<T>>(c.block_size, c.n_embd, g));
    image_projection = this->register_module(
        "image_projection", std::make_shared<MultiModalProjector<T>>(c.n_embd, c.image_embed_dim, c.dropout, g));
    BlockOptions bo;
    bo.attn.dim = c.n_embd;
    bo.attn.heads = c.n_head;
    bo.attn.causal = true;
    bo.attn.dropout = c.dropout;
    bo.attn.scale = 1.0 / std::sqrt(double(c.attn_scale_by_width ? c.n_embd : c.n_embd / c.n_head));
    bo.post_ln_residual = c.post_ln_ffn_residual;
    for (int64_t i = 0; i < c.n_layer; ++i)
      blocks.push_back(this->register_module("blocks." + std::to_string(i), std::make_shared<Block<T>>(bo, g)));
    ln_f = this->register_module("ln_f", std::make_shared<LayerNorm<T>>(c.n_embd));
    lm_head = this->register_module("lm_head", std::make_shared<Linear<T>>(c.n_embd, c.vocab_size, true, g));
  }

  // image_embeds [B, E] (one image token) or [B, P, E] (a prefix of P),
  // idx [B, T] → logits [B, T+1, V]
  Tensor<T> forward(const Tensor<T>& image_embeds, const Tensor<int32_t>& idx) const {
    SEEMORE_CHECK(idx.ndim() == 2 && (image_embeds.ndim() == 2 || image_embeds.ndim() == 3) &&
                      image_embeds.size(0) == idx.size(0),
                  "decoder: tokens ", to_string(idx.shape()), " and image embeddings ", to_string(image_embeds.shape()),
                  " must be [B, T] and [B, E] or [B, P, E]");
    const int64_t B = idx.size(0), P = image_embeds.ndim() == 3 ? image_embeds.size(1) : 1, Tn = idx.size(1);
    SEEMORE_CHECK(P + Tn <= cfg_.block_size, "decoder: sequence of ", P + Tn, " positions (", P,
                  " for the image) exceeds block_size ", cfg_.block_size);
    auto img = image_projection->forward(image_embeds);
    if (img.ndim() == 2) img = reshape(img, {B, 1, cfg_.n_embd});
    auto x = concat<T>({img, token_embedding_table->forward(idx)}, 1);
    x = x + position_embedding_table->forward(Tensor<int32_t>::arange(P + Tn, x.device()));
    for (auto& b : blocks) x = b->forward(x);
    if (P > 1) x = slice(x, 1, P - 1, P + Tn);  // the earlier image positions predict nothing
    return lm_head->forward(ln_f->forward(x));
  }

  // Inference with KV caches (one per block): x [B, Tn, C] are the embeddings
  // (token + position) of the next Tn positions. Returns logits [B, Tn, V].
  Tensor<T> forward_cached(Tensor<T> x, std::vector<KVCache<T>>& caches) const {
    for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward_cached(x, caches[i]);
    return lm_head->forward(ln_f->forward(x));
  }
  // Token + position embedding for ids [B, Tn] at positions start..start+Tn−1.
  Tensor<T> embed(const Tensor<int32_t>& ids, int64_t start) const {
    const int64_t Tn = ids.size(1);
    SEEMORE_CHECK(start + Tn <= cfg_.block_size, "decoder: position ", start + Tn - 1, " exceeds block_size ",
                  cfg_.block_size);
    std::vector<int32_t> pos(static_cast<size_t>(Tn));
    for (int64_t i = 0; i < Tn; ++i) pos[size_t(i)] = int32_t(start + i);
    return token_embedding_table->forward(ids) +
           position_embedding_table->forward(Tensor<int32_t>::from_vector({Tn}, pos, ids.device()));
  }

  std::shared_ptr<Embedding<T>> token_embedding_table, position_embedding_table;
  std::shared_ptr<MultiModalProjector<T>> image_projection;
  std::vector<std::shared_ptr<Block<T>>> blocks;
  std::shared_ptr<LayerNorm<T>> ln_f;
  std::shared_ptr<Linear<T>> lm_head;

 private:
  VLMConfig cfg_;
};

}  // namespace seemore::nn
