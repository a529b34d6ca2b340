// seemore/nn/vlm.hpp — VisionLanguageModel: the ViT, the projector and the
// decoder end to end, the loss, and generation with a KV cache.
#pragma once

#include <seemore/data/tokenizer.hpp>
#include <seemore/nn/decoder.hpp>

#include <numeric>

namespace seemore::nn {

struct GenerateOptions {
  int64_t max_tokens = 100;  // new tokens at most
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;    // 0: off
  double top_p = 1.0;   // 1: off
  uint64_t seed = 0;
};

template <class T>
struct Output {
  Tensor<T> logits;  // [B, T+1, V]
  Tensor<T> loss;    // scalar; undefined without targets
};

template <class T>
class VisionLanguageModel : public Module<T> {
 public:
  explicit VisionLanguageModel(const VLMConfig& c, uint64_t seed = 0) : cfg_(c), init_gen_(seed), gen_(seed + 1) {
    cfg_.validate();
    vision_encoder = this->register_module("vision_encoder", std::make_shared<ViT<T>>(c, init_gen_));
    decoder = this->register_module("decoder", std::make_shared<DecoderLanguageModel<T>>(c, init_gen_));
    this->set_generator(&gen_);
  }
  const VLMConfig& config() const { return cfg_; }
  // The generator dropout draws from (part of a training checkpoint's state).
  Generator& dropout_generator() { return gen_; }

  // images [B, Cin, S, S] (normalised), tokens [B, T]. targets, optional:
  // [B, T] in the reference's convention (the image position's target −100 is
  // prepended), or [B, T+1] with one target per decoder position.
  // divide_by: as in loss().
  Output<T> forward(const Tensor<T>& images, const Tensor<int32_t>& tokens,
                    const Tensor<int32_t>& targets = Tensor<int32_t>(), int64_t divide_by = 0) const {
    Output<T> out;
    out.logits = decoder->forward(image_features(images), tokens);
    if (targets.defined()) out.loss = loss(out.logits, targets, divide_by);
    return out;
  }

  // What the decoder receives of the images: [B, E] (the CLS output) or [B, P, E] (patch tokens).
  Tensor<T> image_features(const Tensor<T>& images) const {
    return cfg_.image_tokens == "cls" ? vision_encoder->forward(images) : vision_encoder->encode(images);
  }

  // The mean cross-entropy over the targets that count (the reference's
  // convention and pad rule). divide_by > 0: the sum over this batch divided
  // by that instead, for a slice of a larger batch (see cross_entropy).
  Tensor<T> loss(const Tensor<T>& logits, const Tensor<int32_t>& targets, int64_t divide_by = 0) const {
    const int64_t B = logits.size(0), T1 = logits.size(1);
    SEEMORE_CHECK(targets.ndim() == 2 && targets.size(0) == B && (targets.size(1) == T1 || targets.size(1) == T1 - 1),
                  "loss: targets ", to_string(targets.shape()), " must be [", B, ", ", T1 - 1, "] or [", B, ", ", T1,
                  "]");
    return loss_full(logits, Tensor<int32_t>::from_vector({B, T1}, full_targets(targets, T1), logits.device()),
                     divide_by);
  }
  // The loss from targets already one per decoder position (full_targets'),
  // -100 where nothing counts: no host work, as a captured CUDA graph needs.
  Tensor<T> loss_full(const Tensor<T>& logits, const Tensor<int32_t>& full, int64_t divide_by = 0) const {
    return cross_entropy(logits, full, -100, divide_by);
  }
  // How many of `targets` (either convention) count in the loss: the divisor of the batch's mean.
  int64_t loss_count(const Tensor<int32_t>& targets) const {
    SEEMORE_CHECK(targets.ndim() == 2, "loss_count: targets must be [B, T], got ", to_string(targets.shape()));
    int64_t n = 0;
    for (auto v : full_targets(targets, targets.size(1))) n += v != -100;
    return n;
  }

  // `targets` (either convention, [B, T1 − 1] or [B, T1]) as one target per
  // decoder position, row by row ([B·T1] values), -100 where nothing counts
  // (the image position in the reference convention; <pad> unless the preset
  // counts it).
  std::vector<int32_t> full_targets(const Tensor<int32_t>& targets, int64_t T1) const {
    const int64_t B = targets.size(0);
    auto tv = targets.to_vector();
    std::vector<int32_t> full;
    full.reserve(size_t(B * T1));
    const int64_t Tt = targets.size(1);
    for (int64_t b = 0; b < B; ++b) {
      if (Tt == T1 - 1) full.push_back(-100);
      for (int64_t t = 0; t < Tt; ++t) {
        int32_t v = tv[size_t(b * Tt + t)];
        if (!cfg_.pad_counts_in_loss && v == cfg_.pad_id) v = -100;
        full.push_back(v);
      }
    }
    return full;
  }

  // Generation for one image [1, Cin, S, S] continuing `prompt` (ids). Stops at
  // <pad> (seemore) or <eos> (standard), or after max_tokens. Returns the new ids.
  // Each new token runs one position through the decoder, reading the others
  // from the KV cache: equal to re-running the full forward at every step.
  std::vector<int32_t> generate(const Tensor<T>& image, const std::vector<int32_t>& prompt,
                                const GenerateOptions& opt, std::vector<Tensor<T>>* step_logits = nullptr) const {
    NoGradGuard ng;
    SEEMORE_CHECK(image.ndim() == 4 && image.size(0) == 1, "generate: one image [1, C, H, W], got ",
                  to_string(image.shape()));
    SEEMORE_CHECK(this->training_ == false, "generate: call eval() first (dropout must be off)");
    const int64_t C = cfg_.n_embd, V = cfg_.vocab_size;
    const int64_t P = cfg_.image_prefix_len();
    const int64_t Tmax = std::min<int64_t>(cfg_.block_size, P + int64_t(prompt.size()) + opt.max_tokens);
    for (auto id : prompt) SEEMORE_CHECK(id >= 0 && id < V, "generate: prompt id ", id, " outside the vocabulary");
    SEEMORE_CHECK(P + int64_t(prompt.size()) <= cfg_.block_size, "generate: the image's ", P, " positions and a prompt of ",
                  prompt.size(), " exceed block_size ", cfg_.block_size);
    const Device dev = image.device();
    std::vector<KVCache<T>> caches(decoder->blocks.size());
    for (auto& c : caches) {
      c.k = Tensor<T>::zeros({1, Tmax, C}, dev);
      c.v = Tensor<T>::zeros({1, Tmax, C}, dev);
    }
    // The image prefix goes through the cache once; each new token then reads it there.
    auto img = decoder->image_projection->forward(image_features(image));
    if (img.ndim() == 2) img = reshape(img, {1, 1, C});
    Tensor<T> x = img + decoder->position_embedding_table->forward(Tensor<int32_t>::arange(P, dev));
    if (!prompt.empty())
      x = concat<T>({x, decoder->embed(Tensor<int32_t>::from_vector({1, int64_t(prompt.size())}, prompt, dev), P)}, 1);
    Tensor<T> logits = decoder->forward_cached(x, caches);
    Generator gen(opt.seed);
    std::vector<int32_t> out;
    int64_t pos = x.size(1);
    while (int64_t(out.size()) < opt.max_tokens) {
      auto last = slice(logits, 1, logits.size(1) - 1, logits.size(1)).view({V});
      if (step_logits) step_logits->push_back(last.clone());
      const int32_t next = sample(last, opt, gen);
      if (next == cfg_.pad_id || next == cfg_.eos_id) break;
      out.push_back(next);
      if (pos >= Tmax) break;
      logits = decoder->forward_cached(decoder->embed(Tensor<int32_t>::from_vector({1, 1}, {next}, dev), pos), caches);
      ++pos;
    }
    return out;
  }

  // One token from logits [V].
  static int32_t sample(const Tensor<T>& logits, const GenerateOptions& opt, Generator& gen) {
    auto l = logits.to_vector();
    const int64_t V = int64_t(l.size());
    if (opt.greedy || opt.temperature <= 0) return int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
    int64_t keep = opt.top_k > 0 ? std::min<int64_t>(opt.top_k, V) : V;
    std::vector<double> p(static_cast<size_t>(keep));
    const double mx = double(l[size_t(order[0])]);
    double z = 0;
    for (int64_t i = 0; i < keep; ++i) z += p[size_t(i)] = std::exp((double(l[size_t(order[size_t(i)])]) - mx) / opt.temperature);
    for (auto& v : p) v /= z;
    if (opt.top_p < 1.0) {  // smallest prefix whose mass reaches top_p
      double cum = 0;
      int64_t n = 0;
      while (n < keep && cum < opt.top_p) cum += p[size_t(n++)];
      keep = std::max<int64_t>(n, 1);
      p.resize(size_t(keep));
      z = std::accumulate(p.begin(), p.end(), 0.0);
      for (auto& v : p) v /= z;
    }
    double u = gen.uniform(), cum = 0;
    for (int64_t i = 0; i < keep; ++i) {
      cum += p[size_t(i)];
      if (u < cum) return order[size_t(i)];
    }
    return order[size_t(keep - 1)];
  }

  std::shared_ptr<ViT<T>> vision_encoder;
  std::shared_ptr<DecoderLanguageModel<T>> decoder;

 private:
  VLMConfig cfg_;
  Generator init_gen_, gen_;
};

}  // namespace seemore::nn
