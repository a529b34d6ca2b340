// The JSONL manifest: one {"image": ..., "caption": ...} object per line.
#include "fuzz_common.hpp"

#include <seemore/data/dataset.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return seemore::fuzz::run(data, size, [](const std::string& text) {
    const auto rows = seemore::data::parse_jsonl_samples(text, "/data/", "fuzz.jsonl");
    SEEMORE_FUZZ_ASSERT(!rows.empty());
    const auto vocab = seemore::data::CharTokenizer::from_texts({"abc"}, true);
    for (const auto& r : rows) {
      SEEMORE_FUZZ_ASSERT(!r.image_path.empty() && r.image_key == "file:" + r.image_path);
      SEEMORE_FUZZ_ASSERT(r.where.rfind("fuzz.jsonl line ", 0) == 0);
      try {
        (void)vocab.encode(r.caption, r.where);
      } catch (const seemore::Error& e) {
        SEEMORE_FUZZ_ASSERT(std::string(e.what()).find(r.where) != std::string::npos);
      }
    }
  });
}
