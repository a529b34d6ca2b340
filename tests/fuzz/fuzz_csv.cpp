// The reference's CSV dataset: RFC 4180 parsing, header lookup, base64, the
// images inside it and the captions' tokens, as seemore-train reads them.
#include "fuzz_common.hpp"

#include <seemore/data/dataset.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return seemore::fuzz::run(data, size, [](const std::string& text) {
    const auto rows = seemore::data::parse_csv_samples(text, "fuzz.csv");
    SEEMORE_FUZZ_ASSERT(!rows.empty());
    seemore::data::ImageLimits lim;
    lim.max_pixels = int64_t(1) << 22;
    const seemore::data::CharTokenizer vocab;
    for (const auto& r : rows) {
      SEEMORE_FUZZ_ASSERT(r.image_bytes != nullptr && !r.where.empty());
      try {
        (void)vocab.encode(r.caption, r.where);
        (void)seemore::data::decode_image(*r.image_bytes, r.where, lim);
      } catch (const seemore::Error& e) {
        // Each row's error names its row.
        SEEMORE_FUZZ_ASSERT(std::string(e.what()).find(r.where) != std::string::npos);
      }
    }
  });
}
