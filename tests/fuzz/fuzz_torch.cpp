// torch.save files, ZIP and legacy: the ZIP reader, the restricted
// unpickler, the module walk and the tensor rebuild (io/torch_file.hpp),
// then loading the state dict as a checkpoint, its sizes read from its
// tensors or, when they do not make a model, a small fixed config.
#include "fuzz_common.hpp"
#include "small_config.hpp"

#include <seemore/io/checkpoint.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return seemore::fuzz::run(data, size, [](const std::string& bytes) {
    const auto st = seemore::io::parse_torch_file(bytes, "fuzz.pt");
    int64_t held = 0;
    for (const auto& [name, t] : st.tensors) held += t.numel();
    // Every element is in a storage of the file, ≥ 2 bytes each, viewed at most 16 times over (+ 65536).
    SEEMORE_FUZZ_ASSERT(uint64_t(held) <= 8 * uint64_t(bytes.size()) + 65536);
    std::optional<seemore::nn::VLMConfig> cfg;
    try {
      seemore::io::infer_config(st, "fuzz.pt", seemore::nn::VLMConfig::seemore()).validate();
    } catch (const seemore::Error&) {
      cfg = seemore::fuzz::small_config("seemore");
    }
    const auto loaded = seemore::io::load_checkpoint<float>(st, "fuzz.pt", cfg);
    SEEMORE_FUZZ_ASSERT(loaded.model->num_parameters() == held);
  });
}
