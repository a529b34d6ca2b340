// seemore/io/checkpoint.hpp — model checkpoints as safetensors.
//
// A checkpoint is one .safetensors file: the model's state dict under the
// reference's names (F32), and in "__metadata__":
//   "format": "seemore", "config": VLMConfig as JSON, "vocab": the tokenizer
//   as JSON ({"characters": ..., "eos": ...}).
// A checkpoint written by the PyTorch reference has no config/vocab: load it
// with an explicit config (its preset), and the reference vocabulary is used.
#pragma once

#include <seemore/data/tokenizer.hpp>
#include <seemore/io/safetensors.hpp>
#include <seemore/nn/vlm.hpp>

#include <algorithm>
#include <memory>
#include <optional>

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

template <class T>
struct LoadedModel {
  std::unique_ptr<nn::VisionLanguageModel<T>> model;
  data::CharTokenizer vocab;
  std::map<std::string, std::string> metadata;
};

// Config: `config` when given (an explicit choice wins, and the tensors must
// then fit it), else the file's own; a bare reference checkpoint needs one.
// From parsed tensors; `path` names the source in messages.
template <class T>
LoadedModel<T> load_checkpoint(const SafeTensors& st, const std::string& path,
                               std::optional<nn::VLMConfig> config = std::nullopt) {
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
    seemore::detail::fail(path, ": checkpoint carries no config (a bare reference checkpoint?): give a preset or a config file");
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

template <class T>
LoadedModel<T> load_checkpoint(const std::string& path, std::optional<nn::VLMConfig> config = std::nullopt) {
  return load_checkpoint<T>(load_safetensors(path), path, std::move(config));
}

}  // namespace seemore::io
