// seemore/data/webp.hpp — WebP images (lossy or lossless, with or without
// alpha) as 8-bit RGB through libwebp, the decoder PIL uses: its RGB output,
// alpha dropped, equals the colour channels PIL reads. An animated WebP gives
// its first frame as PIL does, through libwebpdemux's animation decoder: the
// frame on a canvas of the animation's size, transparent black (RGB 0)
// wherever the frame does not reach.
#pragma once

#include <seemore/data/pixels.hpp>

#include <webp/decode.h>
#include <webp/demux.h>

#include <cstdint>
#include <string>

namespace seemore::data {

namespace detail_webp {
struct AnimDecoder {
  WebPAnimDecoder* dec = nullptr;
  ~AnimDecoder() {
    if (dec) WebPAnimDecoderDelete(dec);
  }
};
}  // namespace detail_webp

inline bool is_webp(const std::string& b) {
  return b.size() >= 12 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0;
}

inline Image decode_webp(const std::string& bytes, const std::string& where, const ImageLimits& lim = {}) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures f;
  const VP8StatusCode rc = WebPGetFeatures(data, bytes.size(), &f);
  SEEMORE_CHECK(rc == VP8_STATUS_OK, where, ": corrupt or truncated WebP (",
                rc == VP8_STATUS_NOT_ENOUGH_DATA ? "not enough data" : "bad header", ")");
  detail_img::check_dims(uint64_t(f.width), uint64_t(f.height), lim, where);
  Image img;
  img.width = f.width, img.height = f.height;
  img.rgb.resize(size_t(f.width) * size_t(f.height) * 3);
  if (f.has_animation) {
    WebPAnimDecoderOptions opts;
    SEEMORE_CHECK(WebPAnimDecoderOptionsInit(&opts), where, ": libwebpdemux version mismatch");
    opts.color_mode = MODE_RGBA;  // not premultiplied: the colours as stored
    opts.use_threads = 0;
    const WebPData whole{data, bytes.size()};
    detail_webp::AnimDecoder anim;
    anim.dec = WebPAnimDecoderNew(&whole, &opts);
    SEEMORE_CHECK(anim.dec, where, ": corrupt or truncated animated WebP (container)");
    WebPAnimInfo info;
    SEEMORE_CHECK(WebPAnimDecoderGetInfo(anim.dec, &info) && info.canvas_width == uint32_t(f.width) &&
                      info.canvas_height == uint32_t(f.height) && info.frame_count > 0,
                  where, ": corrupt animated WebP (canvas or frame count)");
    uint8_t* canvas = nullptr;
    int timestamp = 0;
    SEEMORE_CHECK(WebPAnimDecoderGetNext(anim.dec, &canvas, &timestamp) && canvas, where,
                  ": corrupt or truncated animated WebP (first frame)");
    for (size_t i = 0, n = size_t(f.width) * size_t(f.height); i < n; ++i)
      for (int c = 0; c < 3; ++c) img.rgb[3 * i + size_t(c)] = canvas[4 * i + size_t(c)];
    return img;
  }
  SEEMORE_CHECK(WebPDecodeRGBInto(data, bytes.size(), img.rgb.data(), img.rgb.size(), int(f.width) * 3), where,
                ": corrupt or truncated WebP (pixel data)");
  return img;
}

}  // namespace seemore::data
