// Image decoding (PNG, JPEG, GIF, WebP, BMP, TIFF: every format decode_image takes), then the resize
// and normalisation every training image goes through.
#include "fuzz_common.hpp"

#include <seemore/data/image.hpp>

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return seemore::fuzz::run(data, size, [](const std::string& bytes) {
    seemore::data::ImageLimits lim;
    lim.max_pixels = int64_t(1) << 22;  // keeps each run fast; the cap logic is the same
    const auto img = seemore::data::decode_image(bytes, "fuzz input", lim);
    SEEMORE_FUZZ_ASSERT(img.width > 0 && img.height > 0 && img.width * img.height <= lim.max_pixels);
    SEEMORE_FUZZ_ASSERT(img.rgb.size() == size_t(img.width * img.height * 3));
    const auto small = seemore::data::resize_bilinear(img, 17, 9);
    SEEMORE_FUZZ_ASSERT(small.width == 17 && small.height == 9 && small.rgb.size() == 17 * 9 * 3);
    std::vector<float> x(small.rgb.size());
    seemore::data::normalize_into(small, x.data());
    for (float v : x) SEEMORE_FUZZ_ASSERT(v > -2.2f && v < 2.7f);  // (0 − mean)/std … (1 − mean)/std
  });
}
