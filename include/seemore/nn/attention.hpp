// seemore/nn/attention.hpp — MultiHeadAttention: all heads in one fused QKV
// GEMM and one attention call, with an optional KV cache for generation.
//
// Internally the per-head key/query/value weights [D, C] of the reference are
// stacked into one qkv weight [3C, C]: rows [0, C) are the queries of heads
// 0..H−1, [C, 2C) the keys, [2C, 3C) the values (head h at rows h·D..(h+1)·D
// of each). The state dict still speaks the reference's names:
// heads.{h}.query.weight, heads.{h}.key.weight, heads.{h}.value.weight.
#pragma once

#include <seemore/nn/dropout.hpp>
#include <seemore/nn/linear.hpp>

namespace seemore::nn {

// Keys and values of every position seen so far, for one attention layer.
template <class T>
struct KVCache {
  Tensor<T> k, v;  // [B, Tmax, C]
  int64_t len = 0;
};

struct MultiHeadAttentionOptions {
  int64_t dim = 0;    // C, the model width: required
  int64_t heads = 1;  // H; each head is C / H wide
  bool causal = false;
  double dropout = 0.0;     // on the attention weights and the output
  double scale = 0.0;       // of the scores; 0: 1/√(C/H) (standard). The reference uses 1/√C.
  // Refuses what cannot work, saying what to change.
  void check(const char* who = "MultiHeadAttention") const {
    SEEMORE_CHECK(dim > 0 && heads > 0, who, ": dim (", dim, ") and heads (", heads, ") must be > 0");
    if (dim % heads != 0) {
      std::string fits;
      for (int64_t h = 1; h <= dim; ++h)
        if (dim % h == 0) fits += (fits.empty() ? "" : ", ") + std::to_string(h);
      detail::fail(who, ": dim ", dim, " is not divisible by heads ", heads, ": choose heads among {", fits,
                   "} or a dim that is a multiple of ", heads);
    }
    SEEMORE_CHECK(dropout >= 0 && dropout < 1, who, ": dropout must be in [0, 1), got ", dropout);
    SEEMORE_CHECK(scale >= 0, who, ": scale must be >= 0 (0: 1/sqrt(head width)), got ", scale);
  }
  double resolved_scale() const { return scale > 0 ? scale : 1.0 / std::sqrt(double(dim / heads)); }
};

template <class T>
class MultiHeadAttention : public Module<T> {
 public:
  MultiHeadAttention(const MultiHeadAttentionOptions& o, Generator& g)
      : C_(checked(o).dim), H_(o.heads), causal_(o.causal), p_(o.dropout), scale_(o.resolved_scale()) {
    const int64_t C = C_;
    qkv = this->register_parameter("qkv.weight", kaiming_uniform<T>({3 * C, C}, C, g));
    proj = this->register_module("proj", std::make_shared<Linear<T>>(C, C, true, g));
    drop = this->register_module("dropout", std::make_shared<Dropout<T>>(p_));
  }

  // x [B, T, C] → [B, keep, C]: the outputs at the first `keep` positions
  // (all T when keep < 0). Every position is still a key and a value.
  Tensor<T> forward(const Tensor<T>& x, int64_t keep = -1) const {
    const int64_t Tn = x.ndim() == 3 ? x.size(1) : 0;
    if (keep >= 0 && keep < Tn) {
      // Causal: the first `keep` positions see only each other.
      if (causal_) return forward(slice(x, 1, 0, keep));
      if (keep == 0 || !x.device().is_cpu()) return drop->forward(proj->forward(attend_prefix(x, keep)));
      // CPU: one fused op over the packed QKV with only `keep` queries in it.
      AttentionOptions o{H_, scale_, false, p_, this->training_, keep};
      return drop->forward(proj->forward(attention(qkv_projection(x, qkv, keep), o, this->gen_)));
    }
    AttentionOptions o{H_, scale_, causal_, p_, this->training_};
    return drop->forward(proj->forward(attention(linear(x, qkv), o, this->gen_)));
  }

  // Inference with a cache: x [B, Tn, C] are the next Tn positions.
  Tensor<T> forward_cached(const Tensor<T>& x, KVCache<T>& cache) const {
    SEEMORE_CHECK(causal_, "forward_cached: only causal attention can be cached");
    const int64_t B = x.size(0), Tn = x.size(1), D = C_ / H_, Tmax = cache.k.size(1);
    SEEMORE_CHECK(cache.len + Tn <= Tmax, "KV cache full: ", cache.len, " + ", Tn, " positions > ", Tmax);
    auto q = linear(x, qkv);  // [B, Tn, 3C]
    SEEMORE_DISPATCH(x.device(), kv_append, B, Tn, cache.len, Tmax, C_, q.data(), cache.k.data(), cache.v.data());
    auto out = Tensor<T>::empty({B, Tn, C_}, x.device());
    SEEMORE_DISPATCH(x.device(), attention_cached, B, Tn, cache.len, Tmax, H_, D, q.data(), 3 * C_, cache.k.data(),
                     cache.v.data(), T(scale_), out.data());
    cache.len += Tn;
    return proj->forward(out);
  }

  Tensor<T> qkv;
  std::shared_ptr<Linear<T>> proj;
  std::shared_ptr<Dropout<T>> drop;

 protected:
  // Non-causal attention of the first `keep` queries over all Tn keys, from
  // the generic ops (the devices without the fused op's few-queries form):
  // queries are projected for those rows only, keys and values for all.
  Tensor<T> attend_prefix(const Tensor<T>& x, int64_t keep) const {
    const int64_t B = x.size(0), D = C_ / H_;
    // part 0, 1, 2 = queries, keys, values of rows t: [B, rows, C] → [B, H, rows, D]
    auto project = [&](const Tensor<T>& t, int64_t part) {
      auto y = linear(t, slice(qkv, 0, part * C_, (part + 1) * C_));
      return permute(reshape(y, {B, t.size(1), H_, D}), {0, 2, 1, 3});
    };
    auto w = softmax(matmul(project(slice(x, 1, 0, keep), 0), project(x, 1), false, true) * scale_, -1);
    if (this->training_ && p_ > 0) {
      SEEMORE_CHECK(this->gen_, "attention: dropout in training needs a generator");
      w = dropout(w, p_, true, *this->gen_);
    }
    auto a = matmul(w, project(x, 2));  // [B, H, keep, D]
    return reshape(permute(a, {0, 2, 1, 3}), {B, keep, C_});
  }

  void export_state(NamedTensors<T>& out, const std::string& prefix) const override {
    const int64_t D = C_ / H_;
    static const char* parts[] = {"query", "key", "value"};
    for (int64_t h = 0; h < H_; ++h)
      for (int part : {1, 0, 2}) {  // the reference registers key, query, value
        auto w = qkv.detach().rows(part * C_ + h * D, part * C_ + (h + 1) * D).clone();
        out.push_back({prefix + "heads." + std::to_string(h) + "." + parts[part] + ".weight", w});
      }
    proj->export_state(out, prefix + "proj.");
  }
  static const MultiHeadAttentionOptions& checked(const MultiHeadAttentionOptions& o) {
    o.check();
    return o;
  }
  void import_state(const std::map<std::string, Tensor<T>>& in, const std::string& prefix,
                    std::set<std::string>& used) override {
    const int64_t D = C_ / H_;
    static const char* parts[] = {"query", "key", "value"};
    for (int64_t h = 0; h < H_; ++h)
      for (int part = 0; part < 3; ++part) {
        auto dst = qkv.detach().rows(part * C_ + h * D, part * C_ + (h + 1) * D);
        this->copy_in(in, prefix + "heads." + std::to_string(h) + "." + parts[part] + ".weight", dst, used);
      }
    proj->import_state(in, prefix + "proj.", used);
  }

 private:
  int64_t C_, H_;
  bool causal_;
  double p_, scale_;
};

}  // namespace seemore::nn
