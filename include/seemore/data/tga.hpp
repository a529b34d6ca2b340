// seemore/data/tga.hpp — Truevision TGA (Targa) images as 8-bit RGB, as
// PIL 9.4 reads and converts them.
//
// TGA has no magic number: PIL tries its 18-byte header after every format
// that has one, and takes the file when the colour-map type is 0 or 1, the
// width and height are positive, the depth is 1, 8, 16, 24 or 32 bits and
// the image type is colour-mapped (1), true-colour (2) or grey (3), each
// also run-length encoded (9, 10, 11). decode_image tries it last too.
//
// PIL's readings, kept so that the pixels are PIL's:
//  - rows run bottom-up unless flag 0x20 says top-down; flag 0x10 mirrors
//    them left to right; the alpha bits of the flags are ignored;
//  - grey of 1 bit (1 is white), 8 bits, or 16 (grey then alpha);
//    true-colour of 16 bits (x1R5G5B5, each channel c·255/31 truncated),
//    24 (BGR) or 32 (BGRA); colour-mapped of 8 bits. Other pairings
//    (true-colour of 8 bits, colour-mapped of 16...) PIL cannot load;
//  - the colour map is read only when its entries are 16 or 24 bits (32 is
//    an error in PIL), after `start` zero entries; indices past it keep the
//    grey ramp PIL starts every palette with (index i is grey i). A map of
//    any other entry size is not skipped: the pixels are read from where it
//    starts. A read map applies to grey images too (PIL makes them
//    colour-mapped); with true-colour or 1-bit grey PIL fails; more than 256
//    entries in all is an error;
//  - run-length packets: a run must end inside its row (PIL reports a
//    buffer overrun otherwise), a literal packet continues onto the next
//    rows, and what follows the last row is ignored. PIL cannot load a
//    run-length-encoded 1-bit image;
//  - data that ends before the last pixel is an error.
// Every size is checked against the limits before any pixel memory is
// allocated, and every read against the bytes there are.
#pragma once

#include <seemore/data/pixels.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace seemore::data {

namespace detail_tga {
inline uint32_t u8(const std::string& b, size_t at) { return uint8_t(b[at]); }
inline uint32_t u16(const std::string& b, size_t at) { return u8(b, at) | u8(b, at + 1) << 8; }
// x1R5G5B5, little-endian, as PIL's BGR;5 and BGR;15 unpack it.
inline void bgr15(const uint8_t* p, uint8_t* rgb) {
  const uint32_t v = uint32_t(p[0]) | uint32_t(p[1]) << 8;
  rgb[0] = uint8_t((v >> 10 & 31) * 255 / 31);
  rgb[1] = uint8_t((v >> 5 & 31) * 255 / 31);
  rgb[2] = uint8_t((v & 31) * 255 / 31);
}
}  // namespace detail_tga

// The header PIL accepts as TGA (decode_image asks only once no format with a magic number matched).
inline bool is_tga(const std::string& b) {
  using detail_tga::u16;
  using detail_tga::u8;
  if (b.size() < 18) return false;
  const uint32_t type = u8(b, 2), depth = u8(b, 16);
  return u8(b, 1) <= 1 && u16(b, 12) > 0 && u16(b, 14) > 0 &&
         (depth == 1 || depth == 8 || depth == 16 || depth == 24 || depth == 32) &&
         (type == 1 || type == 2 || type == 3 || type == 9 || type == 10 || type == 11);
}

inline Image decode_tga(const std::string& b, const std::string& where, const ImageLimits& lim = {}) {
  using detail_tga::u16;
  using detail_tga::u8;
  SEEMORE_CHECK(is_tga(b), where, ": not a TGA image");
  const uint32_t id_len = u8(b, 0), map_type = u8(b, 1), type = u8(b, 2), map_start = u16(b, 3),
                 map_len = u16(b, 5), map_depth = u8(b, 7), w = u16(b, 12), h = u16(b, 14), depth = u8(b, 16),
                 flags = u8(b, 17);
  const uint32_t kind = type & 7;  // 1 colour-mapped, 2 true-colour, 3 grey
  const bool rle = type & 8;
  const bool loadable = (kind == 1 && depth == 8) || (kind == 3 && (depth == 1 || depth == 8 || depth == 16)) ||
                        (kind == 2 && (depth == 16 || depth == 24 || depth == 32));
  SEEMORE_CHECK(loadable, where, ": TGA image type ", type, " with ", depth,
                " bits per pixel is not supported (PIL cannot load it either)");
  SEEMORE_CHECK(!(rle && depth == 1), where,
                ": run-length-encoded 1-bit TGA is not supported (PIL cannot load it either)");
  detail_img::check_dims(w, h, lim, where);

  size_t pos = 18 + size_t(id_len);
  // PIL's palette: a grey ramp, its first start + len entries replaced by the map (zeros, then the entries).
  uint8_t palette[256 * 3];
  for (int i = 0; i < 256; ++i) palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = uint8_t(i);
  bool mapped = kind == 1;
  if (map_type == 1 && (map_depth == 16 || map_depth == 24 || map_depth == 32)) {
    SEEMORE_CHECK(map_depth != 32, where, ": TGA colour map of 32-bit entries is not supported (PIL cannot load it either)");
    SEEMORE_CHECK(kind != 2 && depth != 1, where, ": TGA colour map on a ", kind == 2 ? "true-colour" : "1-bit",
                  " image is not supported (PIL cannot load it either)");
    SEEMORE_CHECK(map_start + map_len <= 256, where, ": TGA colour map of ", map_start, " + ", map_len,
                  " entries: more than 256");
    const size_t entry = map_depth / 8;
    SEEMORE_CHECK(pos <= b.size() && b.size() - pos >= entry * map_len, where, ": truncated TGA colour map");
    std::memset(palette, 0, 3 * size_t(map_start));
    for (uint32_t i = 0; i < map_len; ++i) {
      const auto* p = reinterpret_cast<const uint8_t*>(b.data()) + pos + entry * i;
      uint8_t* out = palette + 3 * size_t(map_start + i);
      if (entry == 2) {
        detail_tga::bgr15(p, out);
      } else {
        out[0] = p[2], out[1] = p[1], out[2] = p[0];
      }
    }
    pos += entry * map_len;
    mapped = true;
  }

  // The pixel rows as stored, in file order.
  const size_t px = (depth + 7) / 8, row = depth == 1 ? (size_t(w) + 7) / 8 : size_t(w) * px;
  std::vector<uint8_t> rows(row * h);
  const auto* src = reinterpret_cast<const uint8_t*>(b.data());
  auto truncated = [&] { detail::fail(where, ": truncated TGA pixel data"); };
  if (pos > b.size()) truncated();
  if (!rle) {
    if (b.size() - pos < rows.size()) truncated();
    std::memcpy(rows.data(), src + pos, rows.size());
  } else {
    size_t at = 0, x = 0;  // `at` the next byte of `rows`; `x` the byte within its row
    while (at < rows.size()) {
      if (pos >= b.size()) truncated();
      const uint8_t head = src[pos];
      const size_t n = px * ((head & 0x7f) + 1u);
      if (head & 0x80) {
        if (b.size() - pos < 1 + px) truncated();
        SEEMORE_CHECK(x + n <= row, where, ": TGA run of ", n / px, " pixels at byte ", pos,
                      " crosses the end of its row (PIL reports a buffer overrun)");
        for (size_t i = 0; i < n; i += px) std::memcpy(rows.data() + at + i, src + pos + 1, px);
        pos += 1 + px;
        at += n, x += n;
      } else {
        if (b.size() - pos < 1 + n) truncated();
        const size_t take = std::min(n, rows.size() - at);  // a literal packet runs on over rows
        std::memcpy(rows.data() + at, src + pos + 1, take);
        pos += 1 + n;
        at += take, x = (x + take) % row;
      }
      if (x == row) x = 0;
    }
  }

  Image img;
  img.width = w, img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  const bool top_down = flags & 0x20, mirrored = flags & 0x10;
  for (uint32_t r = 0; r < h; ++r) {
    const uint8_t* in = rows.data() + row * r;
    uint8_t* out = img.rgb.data() + size_t(top_down ? r : h - 1 - r) * w * 3;
    for (uint32_t i = 0; i < w; ++i) {
      uint8_t* o = out + 3 * size_t(mirrored ? w - 1 - i : i);
      if (depth == 1) {
        o[0] = o[1] = o[2] = (in[i / 8] >> (7 - i % 8) & 1) ? 255 : 0;
      } else if (kind == 2) {
        const uint8_t* p = in + px * i;
        if (depth == 16) {
          detail_tga::bgr15(p, o);
        } else {
          o[0] = p[2], o[1] = p[1], o[2] = p[0];
        }
      } else {  // an index or a grey level: the first byte (grey + alpha keeps the grey)
        const uint8_t v = in[px * i];
        if (mapped) {
          std::memcpy(o, palette + 3 * size_t(v), 3);
        } else {
          o[0] = o[1] = o[2] = v;
        }
      }
    }
  }
  return img;
}

}  // namespace seemore::data
