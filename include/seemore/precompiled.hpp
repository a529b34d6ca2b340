// seemore/precompiled.hpp — the instantiations that the optional compiled
// helper (CMake target seemore::precompiled, src/precompiled.cpp) holds for
// float and double: the ops, autograd's backward pass, the layers and the
// VLM, the optimizers, checkpoints and datasets.
//
// A program linked to seemore::precompiled is compiled with
// SEEMORE_PRECOMPILED=1; <seemore/vlm.hpp> then declares these instantiations
// `extern template`, so the program's translation units do not instantiate
// and optimise them again (a TU that trains a VLM compiles in about half the
// time: docs/benchmarks.md). Without it, the library stays header-only and
// this list is not used. Under nvcc (CUDA paths in the same templates) the
// declarations are off: the helper is a CPU build.
//
// SEEMORE_INSTANTIATE(kw, T) expands to each instantiation prefixed by `kw`:
// `extern template` here, `template` in src/precompiled.cpp — one list for both.
#pragma once

#define SEEMORE_INSTANTIATE_OPS(kw, T)                                                                         \
  kw Tensor<T> gelu<T>(const Tensor<T>&, GeluApprox);                                                          \
  kw Tensor<T> relu<T>(const Tensor<T>&);                                                                      \
  kw Tensor<T> attention<T>(const Tensor<T>&, const AttentionOptions&, Generator*);                            \
  kw Tensor<T> patch_conv2d<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&);                          \
  kw Tensor<T> dropout<T>(const Tensor<T>&, double, bool, Generator&);                                         \
  kw Tensor<T> broadcast_to<T>(const Tensor<T>&, const Shape&);                                                \
  kw Tensor<T> sum_to<T>(const Tensor<T>&, const Shape&);                                                      \
  kw Tensor<T> affine<T>(const Tensor<T>&, double, double);                                                    \
  kw Tensor<T> detail::arith<T>(const Tensor<T>&, const Tensor<T>&, detail::Arith);                            \
  kw Tensor<T> exp<T>(const Tensor<T>&);                                                                       \
  kw Tensor<T> log<T>(const Tensor<T>&);                                                                       \
  kw Tensor<T> sqrt<T>(const Tensor<T>&);                                                                      \
  kw Tensor<T> layer_norm<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, double);                    \
  kw Tensor<T> cross_entropy<T>(const Tensor<T>&, const Tensor<int32_t>&, int32_t, int64_t);                   \
  kw Tensor<T> matmul<T>(const Tensor<T>&, const Tensor<T>&, bool, bool);                                      \
  kw Tensor<T> linear<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&);                                \
  kw Tensor<T> sum<T>(const Tensor<T>&, std::vector<int>, bool);                                               \
  kw Tensor<T> sum<T>(const Tensor<T>&);                                                                       \
  kw Tensor<T> mean<T>(const Tensor<T>&, std::vector<int>, bool);                                              \
  kw Tensor<T> mean<T>(const Tensor<T>&);                                                                      \
  kw Tensor<T> reshape<T>(const Tensor<T>&, const Shape&);                                                     \
  kw Tensor<T> permute<T>(const Tensor<T>&, const std::vector<int>&);                                          \
  kw Tensor<T> transpose<T>(const Tensor<T>&, int, int);                                                       \
  kw Tensor<T> slice<T>(const Tensor<T>&, int, int64_t, int64_t);                                              \
  kw Tensor<T> concat<T>(const std::vector<Tensor<T>>&, int);                                                  \
  kw Tensor<T> index_select<T>(const Tensor<T>&, int, const Tensor<int32_t>&);                                 \
  kw Tensor<T> gather<T>(const Tensor<T>&, int, const Tensor<int32_t>&);                                       \
  kw Tensor<T> embedding<T>(const Tensor<T>&, const Tensor<int32_t>&);                                         \
  kw Tensor<T> detail::softmax_impl<T>(const Tensor<T>&, int, bool);                                           \
  kw void autograd::run_backward<T>(const Tensor<T>&, const Tensor<T>&);

#define SEEMORE_INSTANTIATE_MODEL(kw, T)                                                                       \
  kw class nn::Module<T>;                                                                                      \
  kw class nn::Linear<T>;                                                                                      \
  kw class nn::LayerNorm<T>;                                                                                   \
  kw class nn::Embedding<T>;                                                                                   \
  kw class nn::Dropout<T>;                                                                                     \
  kw class nn::MultiHeadAttention<T>;                                                                          \
  kw class nn::FeedForward<T>;                                                                                 \
  kw class nn::Block<T>;                                                                                       \
  kw class nn::PatchEmbeddings<T>;                                                                             \
  kw class nn::ViT<T>;                                                                                         \
  kw class nn::MultiModalProjector<T>;                                                                         \
  kw class nn::DecoderLanguageModel<T>;                                                                        \
  kw class nn::VisionLanguageModel<T>;                                                                         \
  kw class optim::Optimizer<T>;                                                                                \
  kw class optim::SGD<T>;                                                                                      \
  kw class optim::Adam<T>;                                                                                     \
  kw class optim::AdamW<T>;                                                                                    \
  kw optim::ClipResult optim::clip_grad_norm<T>(const std::vector<Tensor<T>>&, double, optim::ClipOptions,     \
                                                const std::vector<std::string>&);                              \
  kw std::string io::serialize_safetensors<T>(const std::vector<std::pair<std::string, Tensor<T>>>&,           \
                                              const std::map<std::string, std::string>&);                      \
  kw void io::save_checkpoint<T>(const std::string&, const nn::VisionLanguageModel<T>&,                        \
                                 const data::CharTokenizer&, std::map<std::string, std::string>);              \
  kw io::LoadedModel<T> io::load_checkpoint<T>(const io::SafeTensors&, const std::string&,                     \
                                               std::optional<nn::VLMConfig>, const std::string&);              \
  kw io::LoadedModel<T> io::load_checkpoint<T>(const std::string&, std::optional<nn::VLMConfig>,               \
                                               const std::string&);                                            \
  kw class data::CaptionDataset<T>;

#define SEEMORE_INSTANTIATE(kw, T) \
  SEEMORE_INSTANTIATE_OPS(kw, T)   \
  SEEMORE_INSTANTIATE_MODEL(kw, T)

#if defined(SEEMORE_PRECOMPILED) && SEEMORE_PRECOMPILED && !defined(SEEMORE_PRECOMPILED_BUILD) && !defined(__CUDACC__)
namespace seemore {
SEEMORE_INSTANTIATE(extern template, float)
SEEMORE_INSTANTIATE(extern template, double)
}  // namespace seemore
#endif
