// seemore/data/webp.hpp — still WebP images (lossy or lossless, with or
// without alpha) as 8-bit RGB through libwebp, the decoder PIL uses: its RGB
// output, alpha dropped, equals the colour channels PIL reads.
#pragma once

#include <seemore/data/pixels.hpp>

#include <webp/decode.h>

#include <cstdint>
#include <string>

namespace seemore::data {

inline bool is_webp(const std::string& b) {
  return b.size() >= 12 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0;
}

inline Image decode_webp(const std::string& bytes, const std::string& where, const ImageLimits& lim = {}) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures f;
  const VP8StatusCode rc = WebPGetFeatures(data, bytes.size(), &f);
  SEEMORE_CHECK(rc == VP8_STATUS_OK, where, ": corrupt or truncated WebP (",
                rc == VP8_STATUS_NOT_ENOUGH_DATA ? "not enough data" : "bad header", ")");
  SEEMORE_CHECK(!f.has_animation, where, ": animated WebP is not supported");
  detail_img::check_dims(uint64_t(f.width), uint64_t(f.height), lim, where);
  Image img;
  img.width = f.width, img.height = f.height;
  img.rgb.resize(size_t(f.width) * size_t(f.height) * 3);
  SEEMORE_CHECK(WebPDecodeRGBInto(data, bytes.size(), img.rgb.data(), img.rgb.size(), int(f.width) * 3), where,
                ": corrupt or truncated WebP (pixel data)");
  return img;
}

}  // namespace seemore::data
