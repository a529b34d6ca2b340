// seemore/data/sgi.hpp — SGI images (.sgi, .rgb, .bw) as 8-bit RGB, as PIL
// 9.4 reads and converts them.
//
// A 512-byte big-endian header (magic 474), then either the channels one
// after another (verbatim) or run-length-encoded rows found through two
// tables of offsets and lengths. Rows run bottom-up. PIL opens grey (one
// channel, 1 or 2 dimensions), RGB and RGBA (3 dimensions, 3 or 4
// channels), of 8 or 16 bits a sample; a 16-bit sample keeps its high byte.
//
// PIL's run-length reading, kept so that the pixels (and the refusals) are
// PIL's: rows are expanded row by row, each row's channels in turn; a row's
// table length counts down once per packet, not per byte, and when it
// reaches its last count on a packet that is not the 0 terminator PIL
// stops decoding without an error, leaving the whole image black; a packet
// of count 0 ends its row (the rest stays black); a run past the row's
// width, or any read past the end of the file, is an error (PIL's "buffer
// overrun").
#pragma once

#include <seemore/data/pixels.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace seemore::data {

inline bool is_sgi(const std::string& b) { return b.size() >= 2 && uint8_t(b[0]) == 0x01 && uint8_t(b[1]) == 0xda; }

namespace detail_sgi {
inline uint32_t be(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | uint8_t(b[at + size_t(i)]);
  return v;
}
enum class Row { Done, Abort, Overrun };
// One run-length row into out[x·stride] (the high byte of each `unit`-byte sample).
inline Row expand(const std::string& b, uint64_t p, uint64_t n, int unit, uint32_t width, uint8_t* out, int stride) {
  const uint64_t size = b.size();
  uint32_t x = 0;
  for (; n > 0; --n) {
    if (p + uint64_t(unit) > size) return Row::Overrun;
    const uint32_t head = be(b, size_t(p), unit);
    p += uint64_t(unit);
    if (n == 1 && head != 0) return Row::Abort;
    const uint32_t count = head & 0x7f;
    if (!count) return Row::Done;
    if (x + count > width) return Row::Overrun;
    if (head & 0x80) {
      if (p + uint64_t(count) * uint64_t(unit) > size) return Row::Overrun;
      for (uint32_t i = 0; i < count; ++i, p += uint64_t(unit)) out[size_t(x + i) * size_t(stride)] = uint8_t(b[size_t(p)]);
    } else {
      if (p + uint64_t(unit) > size) return Row::Overrun;
      for (uint32_t i = 0; i < count; ++i) out[size_t(x + i) * size_t(stride)] = uint8_t(b[size_t(p)]);
      p += uint64_t(unit);
    }
    x += count;
  }
  return Row::Done;
}
}  // namespace detail_sgi

inline Image decode_sgi(const std::string& b, const std::string& where, const ImageLimits& lim = {}) {
  using detail_sgi::be;
  SEEMORE_CHECK(is_sgi(b), where, ": not an SGI image");
  SEEMORE_CHECK(b.size() >= 512, where, ": truncated SGI header (", b.size(), " of 512 bytes)");
  const uint32_t compression = uint8_t(b[2]), bpc = uint8_t(b[3]), dims = be(b, 4, 2), w = be(b, 6, 2),
                 h = be(b, 8, 2), z = be(b, 10, 2);
  const bool grey = (dims == 1 || dims == 2) && z == 1, colour = dims == 3 && (z == 3 || z == 4);
  SEEMORE_CHECK((bpc == 1 || bpc == 2) && (grey || colour), where, ": SGI image of ", bpc, " bytes a sample, ", dims,
                " dimensions and ", z, " channels is not supported (PIL cannot load it either)");
  SEEMORE_CHECK(compression <= 1, where, ": SGI compression ", compression,
                " is not supported (PIL cannot load it either)");
  detail_img::check_dims(w, h, lim, where);

  // Samples as stored, bottom row first, channels interleaved (z a pixel).
  std::vector<uint8_t> px(size_t(w) * h * z, 0);
  const uint64_t page = uint64_t(w) * h * bpc;
  if (compression == 0) {
    SEEMORE_CHECK(b.size() - 512 >= page * z, where, ": truncated SGI image: ", z, " channels of ", w, "x", h, " need ",
                  page * z, " bytes, ", b.size() - 512, " are there");
    for (uint32_t c = 0; c < z; ++c)
      for (uint64_t i = 0; i < uint64_t(w) * h; ++i) px[size_t(i) * z + c] = uint8_t(b[size_t(512 + page * c + i * bpc)]);
  } else {
    const uint64_t rows = uint64_t(h) * z;
    SEEMORE_CHECK(b.size() - 512 >= 8 * rows, where, ": truncated SGI run-length tables (", 8 * rows, " bytes)");
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t c = 0; c < z; ++c) {
        const size_t at = 512 + 4 * size_t(y + uint64_t(c) * h);
        const auto r = detail_sgi::expand(b, be(b, at, 4), be(b, at + 4 * rows, 4), int(bpc), w,
                                          px.data() + (size_t(y) * w * z + c), int(z));
        SEEMORE_CHECK(r != detail_sgi::Row::Overrun, where, ": SGI run-length row ", y, " of channel ", c,
                      " runs past its width or the end of the file (PIL reports a buffer overrun)");
        if (r == detail_sgi::Row::Abort) {  // PIL stops here without an error: a black image
          std::fill(px.begin(), px.end(), uint8_t(0));
          y = h;
          break;
        }
      }
  }

  Image img;
  img.width = w, img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t* s = px.data() + (size_t(y) * w + x) * z;
      uint8_t* o = img.rgb.data() + (size_t(h - 1 - y) * w + x) * 3;
      o[0] = s[0], o[1] = s[z >= 3 ? 1 : 0], o[2] = s[z >= 3 ? 2 : 0];
    }
  return img;
}

}  // namespace seemore::data
