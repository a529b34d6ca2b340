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

// PIL's CMYK → RGB (its cmyk2rgb): with nk = 255 − k, each channel is
// nk − c·nk/255, the product rounded as its MULDIV255.
inline void cmyk_to_rgb(unsigned c, unsigned m, unsigned y, unsigned k, uint8_t* out) {
  const int nk = 255 - int(k);
  const unsigned in[3] = {c, m, y};
  for (int ch = 0; ch < 3; ++ch) {
    const int t = int(in[ch]) * nk + 128;
    const int v = nk - ((t + (t >> 8)) >> 8);
    out[ch] = uint8_t(v < 0 ? 0 : v);
  }
}

}  // namespace detail_img

}  // namespace seemore::data
