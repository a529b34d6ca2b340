// seemore/nn/block.hpp — FeedForward and the transformer Block (encoder or
// causal decoder).
//
// Block, reference (post_ln_ffn_residual):  x = x + MHA(LN1(x)); x = LN2(x); x = x + FFN(x)
// Block, standard (pre-LN):                 x = x + MHA(LN1(x)); x = x + FFN(LN2(x))
#pragma once

#include <seemore/nn/attention.hpp>
#include <seemore/nn/layernorm.hpp>

namespace seemore::nn {

// Linear(C, hidden) → GELU (erf) → Linear(hidden, C), hidden = 4C by
// default; children named "0" and "2" as the reference's nn.Sequential.
template <class T>
class FeedForward : public Module<T> {
 public:
  FeedForward(int64_t C, Generator& g, int64_t hidden = 0) {
    SEEMORE_CHECK(C > 0 && hidden >= 0, "FeedForward: dim (", C, ") must be > 0 and hidden (", hidden,
                  ") >= 0 (0: 4·dim)");
    const int64_t Hd = hidden > 0 ? hidden : 4 * C;
    fc = this->register_module("0", std::make_shared<Linear<T>>(C, Hd, true, g));
    out = this->register_module("2", std::make_shared<Linear<T>>(Hd, C, true, g));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return out->forward(gelu(fc->forward(x))); }
  std::shared_ptr<Linear<T>> fc, out;
};

// A block's options: its attention's, and the layout around it.
//   nn::BlockOptions o;
//   o.attn.dim = 256;
//   o.attn.heads = 8;
//   nn::Block<float> block(o, gen);
struct BlockOptions {
  MultiHeadAttentionOptions attn;
  int64_t ffn_hidden = 0;          // 0: 4·dim
  bool post_ln_residual = false;   // the reference's order (see the file's comment)
  double ln_eps = 1e-5;
  void check() const {
    attn.check("Block");
    SEEMORE_CHECK(ffn_hidden >= 0 && ln_eps > 0, "Block: ffn_hidden (", ffn_hidden, ") must be >= 0 and ln_eps (",
                  ln_eps, ") > 0");
  }
};

template <class T>
class Block : public Module<T> {
 public:
  Block(const BlockOptions& o, Generator& g) : post_ln_(o.post_ln_residual) {
    o.check();
    const int64_t C = o.attn.dim;
    ln1 = this->register_module("ln1", std::make_shared<LayerNorm<T>>(C, o.ln_eps));
    attn = this->register_module("attn", std::make_shared<MultiHeadAttention<T>>(o.attn, g));
    ln2 = this->register_module("ln2", std::make_shared<LayerNorm<T>>(C, o.ln_eps));
    ffn = this->register_module("ffn", std::make_shared<FeedForward<T>>(C, g, o.ffn_hidden));
  }
  // x [B, T, C] → [B, keep, C]: the block's output at the first `keep`
  // positions only (all T when keep < 0). The ViT's last block needs just the
  // CLS row: its FFN, LayerNorm and projection then run on 1 row in T, and the
  // result is the same as slicing the full output.
  Tensor<T> forward(const Tensor<T>& x, int64_t keep = -1) const {
    auto a = attn->forward(ln1->forward(x), keep);
    return finish((keep >= 0 && keep < x.size(1) ? slice(x, 1, 0, keep) : x) + a);
  }
  Tensor<T> forward_cached(const Tensor<T>& x, KVCache<T>& cache) const {
    return finish(x + attn->forward_cached(ln1->forward(x), cache));
  }

  std::shared_ptr<LayerNorm<T>> ln1, ln2;
  std::shared_ptr<MultiHeadAttention<T>> attn;
  std::shared_ptr<FeedForward<T>> ffn;

 private:
  Tensor<T> finish(const Tensor<T>& x) const {
    if (post_ln_) {
      auto n = ln2->forward(x);
      return n + ffn->forward(n);
    }
    return x + ffn->forward(ln2->forward(x));
  }
  bool post_ln_;
};

}  // namespace seemore::nn
