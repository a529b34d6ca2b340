// The safetensors parser, then loading the parsed file as a checkpoint: the
// config and vocabulary in its metadata if any; else (a bare state dict) the
// sizes read from its tensors, or, when they do not make a model, a small
// fixed config; every tensor checked against the model. A file with an
// optimizer state ("optimizer" in its metadata) is first restored into a
// small Adam, and stepped once if it loads.
#include "fuzz_common.hpp"
#include "small_config.hpp"

#include <seemore/io/checkpoint.hpp>
#include <seemore/optim/adam.hpp>
#include <seemore/optim/state.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return seemore::fuzz::run(data, size, [](const std::string& bytes) {
    const auto st = seemore::io::parse_safetensors(bytes, "fuzz.safetensors");
    if (st.metadata.count("optimizer")) {
      seemore::optim::ParamGroup<float> g;
      g.params = {seemore::Tensor<float>::zeros({2}).requires_grad_(), seemore::Tensor<float>::zeros({3}).requires_grad_()};
      g.names = {"a", "b"};
      seemore::optim::Adam<float> opt(std::vector<seemore::optim::ParamGroup<float>>{g});
      seemore::optim::read_optimizer_state(opt, st, "fuzz.safetensors");
      for (auto p : opt.params()) p.set_grad(seemore::Tensor<float>::ones(p.shape()));  // a handle: the same tensor
      opt.step();
      return;
    }
    int64_t held = 0;
    for (const auto& [name, t] : st.tensors) held += t.numel();
    SEEMORE_FUZZ_ASSERT(uint64_t(held) <= bytes.size());  // no dtype is smaller than a byte
    std::optional<seemore::nn::VLMConfig> cfg;
    if (!st.metadata.count("config")) {
      try {
        // An inferred config is either refused or valid.
        const auto inferred = seemore::io::infer_config(st, "fuzz.safetensors", seemore::nn::VLMConfig::seemore());
        inferred.validate();
      } catch (const seemore::Error&) {
        cfg = seemore::fuzz::small_config("seemore");
      }
    }
    const auto loaded = seemore::io::load_checkpoint<float>(st, "fuzz.safetensors", cfg);
    SEEMORE_FUZZ_ASSERT(loaded.model->num_parameters() == held);
  });
}
