// The model config JSON (config files, and the config inside a checkpoint).
#include "fuzz_common.hpp"

#include <seemore/nn/vlm_config.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return seemore::fuzz::run(data, size, [](const std::string& text) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return;  // not JSON: from_file reports that before from_json runs
    const auto c = seemore::nn::VLMConfig::from_json(j, "fuzz.json");
    SEEMORE_FUZZ_ASSERT(c.parameter_count() > 0);
    // What was accepted survives a round trip unchanged.
    const auto back = seemore::nn::VLMConfig::from_json(c.to_json(), "round trip");
    SEEMORE_FUZZ_ASSERT(back.to_json() == c.to_json());
  });
}
