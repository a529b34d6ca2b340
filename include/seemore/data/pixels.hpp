// seemore/data/pixels.hpp — what every image decoder produces (8-bit RGB)
// and the size caps it checks before allocating pixels.
#pragma once

#include <seemore/config.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace seemore::data {

struct ImageLimits {
  int64_t max_pixels = int64_t(8192) * 8192;  // width·height
  int64_t max_side = 65535;
};

// 8-bit RGB, row-major, interleaved (H·W·3 bytes).
struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

namespace detail_img {

inline void check_dims(uint64_t w, uint64_t h, const ImageLimits& lim, const std::string& where) {
  SEEMORE_CHECK(w > 0 && h > 0, where, ": image has zero size (", w, "x", h, ")");
  SEEMORE_CHECK(w <= uint64_t(lim.max_side) && h <= uint64_t(lim.max_side) && w * h <= uint64_t(lim.max_pixels), where,
                ": image of ", w, "x", h, " pixels exceeds the limit of ", lim.max_pixels,
                " pixels (decompression bomb guard; raise it with the image limits)");
}

}  // namespace detail_img

}  // namespace seemore::data
