// seemore/io/checkpoint.hpp — model checkpoints as safetensors.
//
// A checkpoint is one .safetensors file: the model's state dict under the
// reference's names (F32), and in "__metadata__":
//   "format": "seemore", "config": VLMConfig as JSON, "vocab": the tokenizer
//   as JSON ({"characters": ..., "eos": ...}).
// A checkpoint written by the PyTorch reference (its state_dict saved as
// safetensors, or by torch.save: io/torch_file.hpp) has no config and no
// vocabulary: its sizes are read from the tensors' shapes (infer_config), its
// quirks and dropout come from a preset (seemore unless the caller names one),
// and the reference vocabulary is used.
#pragma once

#include <seemore/data/tokenizer.hpp>
#include <seemore/io/safetensors.hpp>
#include <seemore/io/torch_file.hpp>
#include <seemore/nn/vlm.hpp>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <set>

namespace seemore::io {

template <class T>
void save_checkpoint(const std::string& path, const nn::VisionLanguageModel<T>& model, const data::CharTokenizer& vocab,
                     std::map<std::string, std::string> extra_metadata = {}) {
  extra_metadata["format"] = "seemore";
  extra_metadata["config"] = model.config().to_json().dump();
  extra_metadata["vocab"] = vocab.to_json().dump();
  save_safetensors(path, model.state_dict(), extra_metadata);
}

// The default vocabulary of a preset: the reference's 65 characters, plus
// <eos> when the config has one.
inline data::CharTokenizer default_vocab(const nn::VLMConfig& c) {
  return data::CharTokenizer(data::reference_characters(), c.eos_id >= 0);
}

namespace detail_ckpt {
// The indices i of names "<prefix><i>.<rest>", e.g. the blocks of
// "vision_encoder.blocks.". Indices must run 0..n-1 without a gap, so that a
// stray "blocks.7." cannot silently make a deeper model.
inline int64_t count_indexed(const SafeTensors& st, const std::string& prefix, const std::string& path) {
  std::set<int64_t> seen;
  for (auto& [name, t] : st.tensors) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    size_t i = prefix.size(), j = i;
    while (j < name.size() && j - i < 9 && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
    SEEMORE_CHECK(j > i && j < name.size() && name[j] == '.' && (name[i] != '0' || j == i + 1), path, ": tensor '",
                  name, "': expected '", prefix, "<index>.' with an index under 10^9");
    seen.insert(std::stoll(name.substr(i, j - i)));
  }
  const int64_t n = static_cast<int64_t>(seen.size());
  if (n > 0 && *seen.rbegin() != n - 1) {
    int64_t missing = 0;
    while (seen.count(missing)) ++missing;
    seemore::detail::fail(path, ": no tensors for '", prefix, missing, ".' although '", prefix, *seen.rbegin(),
                          ".' exists");
  }
  return n;
}

inline const Shape& shape_of(const SafeTensors& st, const std::string& name, size_t rank, const std::string& path) {
  const auto* t = st.find(name);
  SEEMORE_CHECK(t, path, ": no tensor '", name,
                "', so the model's sizes cannot be read from the file (not a seemore state dict?)");
  SEEMORE_CHECK(t->shape().size() == rank, path, ": tensor '", name, "' has ", t->shape().size(),
                " dimensions, expected ", rank);
  return t->shape();
}
}  // namespace detail_ckpt

// The config of a bare reference state dict: every size from the shapes of its
// tensors, everything the shapes cannot tell (the quirks, dropout, the token
// ids) from `base`. The PyTorch reference builds img_size // patch_size
// patches per side, so img_size is read back as that grid times the patch
// (a run whose img_size was not a multiple of its patch needs an explicit
// config). Only the sizes are read here: load_checkpoint then checks every
// tensor, by name and shape, against the model this config builds.
inline nn::VLMConfig infer_config(const SafeTensors& st, const std::string& path, nn::VLMConfig base) {
  using detail_ckpt::count_indexed;
  using detail_ckpt::shape_of;
  nn::VLMConfig c = std::move(base);
  const auto& conv = shape_of(st, "vision_encoder.patch_embedding.conv.weight", 4, path);
  SEEMORE_CHECK(conv[2] == conv[3], path, ": 'vision_encoder.patch_embedding.conv.weight' has a ", conv[2], "x",
                conv[3], " kernel; the patches are square");
  c.image_embed_dim = conv[0];
  c.in_channels = conv[1];
  c.patch_size = conv[2];
  const auto& pos = shape_of(st, "vision_encoder.pos_embedding", 3, path);
  const int64_t patches = pos[1] - 1;
  int64_t grid = 0;
  while (grid < (int64_t(1) << 20) && (grid + 1) * (grid + 1) <= patches) ++grid;
  SEEMORE_CHECK(patches >= 1 && grid * grid == patches, path, ": 'vision_encoder.pos_embedding' has ", pos[1],
                " positions: expected a square number of patches plus the CLS token");
  SEEMORE_CHECK(grid <= (int64_t(1) << 16) / std::max<int64_t>(c.patch_size, 1), path,
                ": 'vision_encoder.pos_embedding' implies an image of ", grid, "x", grid, " patches of ",
                c.patch_size, " pixels, beyond the limit");
  c.img_size = grid * c.patch_size;
  c.num_blks = count_indexed(st, "vision_encoder.blocks.", path);
  // A bare file carries no vocabulary: the preset's is the only one it can have.
  const auto& tok = shape_of(st, "decoder.token_embedding_table.weight", 2, path);
  SEEMORE_CHECK(tok[0] == c.vocab_size, path, ": its ", tok[0], "-token embedding does not fit the ", c.preset,
                " preset's ", c.vocab_size, " tokens (65 characters, <pad>", (c.eos_id >= 0 ? ", <eos>" : ""),
                ") and the file carries no vocabulary of its own");
  c.n_embd = tok[1];
  c.block_size = shape_of(st, "decoder.position_embedding_table.weight", 2, path)[0];
  c.n_layer = count_indexed(st, "decoder.blocks.", path);
  // One head count for both stacks, as the reference builds them.
  int64_t heads = -1;
  for (const char* stack : {"vision_encoder.blocks.0.", "decoder.blocks.0."}) {
    const std::string prefix = std::string(stack) + "attn.heads.";
    const int64_t h = count_indexed(st, prefix, path);
    if (h == 0) continue;
    SEEMORE_CHECK(heads < 0 || heads == h, path, ": the vision blocks have ", heads, " heads but the decoder's have ",
                  h, "; the model has one head count");
    heads = h;
  }
  if (heads > 0) c.n_head = heads;  // no block at all: any head count builds the same tensors
  try {
    c.validate();
  } catch (const Error& e) {
    seemore::detail::fail(path, ": the sizes read from its tensors do not make a model: ",
                          std::string(e.what()).substr(10));
  }
  return c;
}

template <class T>
struct LoadedModel {
  std::unique_ptr<nn::VisionLanguageModel<T>> model;
  data::CharTokenizer vocab;
  std::map<std::string, std::string> metadata;
};

// The model's tensors in a file that holds it under a name: the names a
// wrapper adds in front of every parameter (DataParallel and
// DistributedDataParallel "module.", torch.compile "_orig_mod.", both), or
// the attribute a training framework keeps the model under (Lightning's
// "model.", any other), maybe beside tensors of its own (a loss's weights).
// When no name is "vision_encoder.cls_token" (every model has it) and
// exactly one ends in ".vision_encoder.cls_token", the tensors under that
// prefix are the model's, read without it, and the rest are left alone. Two
// such prefixes (a model and its moving average, say) are an error naming
// them, not a guess.
inline SafeTensors model_tensors(const SafeTensors& st, const std::string& path) {
  const std::string key = "vision_encoder.cls_token";
  std::vector<std::string> prefixes;
  for (auto& [name, t] : st.tensors) {
    if (name == key) return st;
    if (name.size() > key.size() && name.compare(name.size() - key.size() - 1, key.size() + 1, "." + key) == 0)
      prefixes.push_back(name.substr(0, name.size() - key.size()));
  }
  if (prefixes.empty()) return st;  // loading names what is missing
  SEEMORE_CHECK(prefixes.size() == 1, path, ": holds ", prefixes.size(), " models, under '", prefixes[0], "' and '",
                prefixes[1], "': save the one to load on its own");
  SafeTensors out;
  out.metadata = st.metadata;
  for (auto& [name, t] : st.tensors)
    if (name.compare(0, prefixes[0].size(), prefixes[0]) == 0) out.tensors.emplace_back(name.substr(prefixes[0].size()), t);
  return out;
}

// Config: `config` when given (an explicit choice wins, and the tensors must
// then fit it), else the file's own, else (a bare reference state dict) the
// sizes of its tensors with the quirks of `bare_preset`. From parsed tensors;
// `path` names the source in messages. A model saved under a name (a
// training wrapper's, model_tensors) is read without it.
template <class T>
LoadedModel<T> load_checkpoint(const SafeTensors& file, const std::string& path,
                               std::optional<nn::VLMConfig> config = std::nullopt,
                               const std::string& bare_preset = "seemore") {
  const SafeTensors st = model_tensors(file, path);
  LoadedModel<T> out;
  out.metadata = st.metadata;
  nn::VLMConfig cfg;
  auto it = st.metadata.find("config");
  if (config) {
    cfg = *config;
  } else if (it != st.metadata.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
      seemore::detail::fail(path, ": metadata 'config' is not valid JSON: ", e.what());
    }
    cfg = nn::VLMConfig::from_json(j, path + " (metadata 'config')");
  } else {
    cfg = infer_config(st, path, nn::VLMConfig::from_preset(bare_preset));
  }
  auto vit = st.metadata.find("vocab");
  if (vit != st.metadata.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(vit->second);
    } catch (const nlohmann::json::exception& e) {
      seemore::detail::fail(path, ": metadata 'vocab' is not valid JSON: ", e.what());
    }
    out.vocab = data::CharTokenizer::from_json(j, path + " (metadata 'vocab')");
  } else {
    out.vocab = default_vocab(cfg);
  }
  SEEMORE_CHECK(out.vocab.vocab_size() == cfg.vocab_size, path, ": vocabulary of ", out.vocab.vocab_size(),
                " tokens but the config says vocab_size ", cfg.vocab_size);
  // A config (perhaps the file's own, perhaps hostile) must not make us
  // allocate a model much larger than the weights the file actually holds.
  // Up to 16M parameters we build the model anyway, so that load_state_dict
  // can name the exact missing or misshapen tensor.
  int64_t held = 0;
  for (auto& [name, t] : st.tensors) held += t.numel();
  SEEMORE_CHECK(cfg.parameter_count() <= std::max<int64_t>(held, int64_t(1) << 24), path, ": the config needs ",
                cfg.parameter_count(), " parameters but the file holds ", held,
                " values: tensors are missing or the config does not fit");
  out.model = std::make_unique<nn::VisionLanguageModel<T>>(cfg);
  std::map<std::string, Tensor<T>> state;
  for (auto& [name, t] : st.tensors) {
    if constexpr (std::is_same_v<T, float>) {
      state[name] = t;
    } else {
      auto v = t.to_vector();
      state[name] = Tensor<T>::from_vector(t.shape(), std::vector<T>(v.begin(), v.end()));
    }
  }
  try {
    out.model->load_state_dict(state);
  } catch (const Error& e) {
    seemore::detail::fail(path, ": ", std::string(e.what()).substr(10));
  }
  return out;
}

// The tensors of a checkpoint file, told apart by their first bytes: a torch.save
// archive (.pt/.pth, its state dict) or safetensors (with its metadata).
inline SafeTensors load_tensors(const std::string& path) {
  const std::string bytes = read_file_bytes(path);
  return is_zip(bytes) || is_legacy_torch(bytes) ? parse_torch_file(bytes, path) : parse_safetensors(bytes, path);
}

template <class T>
LoadedModel<T> load_checkpoint(const std::string& path, std::optional<nn::VLMConfig> config = std::nullopt,
                               const std::string& bare_preset = "seemore") {
  return load_checkpoint<T>(load_tensors(path), path, std::move(config), bare_preset);
}

}  // namespace seemore::io
