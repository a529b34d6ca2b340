// seemore/optim/state.hpp — an optimizer's state in a safetensors file, to
// resume training bit for bit: its tensors (F32) under their state names and
// its description in the metadata ("format": "seemore-optimizer",
// "optimizer": the JSON). The file is replaced atomically, so a crash while
// saving leaves the previous one whole.
//
// A training state of one's own (model + optimizer + counters in one file)
// merges these with its own tensors and metadata: add_optimizer_state and
// read_optimizer_state below.
#pragma once

#include <seemore/io/safetensors.hpp>
#include <seemore/optim/optimizer.hpp>

#include <string>
#include <type_traits>

namespace seemore::optim {

// Appends `opt`'s state to a file's tensors and metadata ("optimizer").
template <class T>
void add_optimizer_state(const Optimizer<T>& opt, std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                         std::map<std::string, std::string>& metadata) {
  static_assert(std::is_same_v<T, float>, "optimizer states are stored as F32: only float optimizers resume exactly");
  auto s = opt.state_dict();
  for (auto& t : s.tensors) tensors.push_back(std::move(t));
  metadata["optimizer"] = s.info.dump();
}

// Restores `opt` from a file read with io::load_safetensors / parse_safetensors.
inline void read_optimizer_state(Optimizer<float>& opt, const io::SafeTensors& file, const std::string& where) {
  auto it = file.metadata.find("optimizer");
  SEEMORE_CHECK(it != file.metadata.end(), where, ": no optimizer state (no 'optimizer' in its metadata)");
  OptimizerState<float> s;
  try {
    s.info = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    detail::fail(where, ": the optimizer state's description is not JSON (", e.what(), ")");
  }
  s.tensors = file.tensors;
  try {
    opt.load_state_dict(s);
  } catch (const Error& e) {
    const std::string msg = e.what(), tag = "[seemore] ";
    detail::fail(where, ": ", msg.compare(0, tag.size(), tag) == 0 ? msg.substr(tag.size()) : msg);
  } catch (const nlohmann::json::exception& e) {
    detail::fail(where, ": the optimizer state's description is malformed (", e.what(), ")");
  }
}

inline void save_optimizer_state(const std::string& path, const Optimizer<float>& opt) {
  std::vector<std::pair<std::string, Tensor<float>>> tensors;
  std::map<std::string, std::string> metadata{{"format", "seemore-optimizer"}};
  add_optimizer_state(opt, tensors, metadata);
  io::save_safetensors(path, tensors, metadata);
}

inline void load_optimizer_state(const std::string& path, Optimizer<float>& opt) {
  read_optimizer_state(opt, io::load_safetensors(path), path);
}

}  // namespace seemore::optim
