// seemore/data/bmp.hpp — Windows BMP decoding to 8-bit RGB, as PIL reads it.
//
// Uncompressed files with a BITMAPCOREHEADER, BITMAPINFOHEADER or a V4/V5
// header: 1, 4 and 8 bits per pixel through a palette; 16, 24 and 32 bits
// directly, with the default 5-5-5 or 8-8-8 layouts or BI_BITFIELDS masks;
// bottom-up or top-down. A field of n bits becomes v·255/(2ⁿ−1) (integer
// division, PIL's unpackers for 5- and 6-bit fields), alpha is dropped, and
// a palette index past the file's colours reads as the grey level of that
// index (PIL's palettes start as a grey ramp). RLE8 and RLE4 as PIL 9.4
// decodes them, quirks included (see rle_indices); embedded JPEG/PNG
// compression is refused with a clear message.
//
// Every size comes from the file, so every one is checked against the bytes
// there are before it is used: the pixel array must fit the file.
#pragma once

#include <seemore/data/pixels.hpp>
#include <seemore/io/endian.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace seemore::data {

inline bool is_bmp(const std::string& b) { return b.size() >= 2 && b[0] == 'B' && b[1] == 'M'; }

namespace detail_bmp {
inline uint32_t le(const std::string& b, size_t o, int n) { return uint32_t(io::load_le(b.data() + o, n)); }
// The bitmap header sizes there are: core (12), info (40), its V2/V3
// extensions (52, 56), OS/2 2.x (64), V4 (108) and V5 (124).
inline bool known_header_size(uint32_t n) {
  return n == 12 || n == 40 || n == 52 || n == 56 || n == 64 || n == 108 || n == 124;
}
// A colour channel given by a bit mask: where it starts, how wide it is.
struct Field {
  int shift = 0, bits = 0;
  uint8_t operator()(uint32_t px) const {
    if (bits == 0) return 0;
    const uint32_t max = bits >= 32 ? 0xffffffffu : (1u << bits) - 1;
    return uint8_t(uint64_t((px >> shift) & max) * 255 / max);
  }
};
inline Field field(uint32_t mask, const std::string& where) {
  Field f;
  if (mask == 0) return f;
  while (!(mask >> f.shift & 1)) ++f.shift;
  while (f.shift + f.bits < 32 && (mask >> (f.shift + f.bits) & 1)) ++f.bits;
  SEEMORE_CHECK(f.shift + f.bits == 32 || (mask >> (f.shift + f.bits)) == 0, where,
                ": BMP colour mask 0x", std::hex, mask, " is not one run of bits");
  return f;
}

// The palette indices of an RLE8 or RLE4 pixel array (rows in file order, w
// per row), read the way PIL 9.4's BmpRleDecoder reads them, so that files it
// reads differently from the specification still give PIL's pixels:
//  - a run is cut at the end of its row; end-of-line pads the row with index
//    0 (and does nothing at the start of a row); end-of-bitmap stops;
//  - a delta escape consumes four bytes and moves by the last two
//    (right, up), filling the skipped pixels with index 0;
//  - an absolute run of n pixels is not cut at the end of its row, in RLE4
//    reads n/2 bytes (an odd last pixel is lost, though the row position
//    still advances by n), and is followed by a pad byte when the file
//    offset is odd;
//  - reading stops as soon as w·h pixels are there.
// Data that ends before every pixel is there is an error, as in PIL.
inline std::vector<uint8_t> rle_indices(const std::string& b, size_t at, int64_t w, int64_t h, bool rle4,
                                        const std::string& where) {
  const uint64_t total = uint64_t(w) * uint64_t(h);
  std::vector<uint8_t> data;  // grows with what the file holds: a truncated file allocates little
  size_t pos = at;
  auto left = [&] { return pos <= b.size() ? b.size() - pos : 0; };
  auto byte = [&](size_t i) { return uint8_t(b[i]); };
  uint64_t x = 0;
  while (data.size() < total) {
    if (left() < 2) break;
    const uint8_t count = byte(pos), value = byte(pos + 1);
    pos += 2;
    if (count) {  // a run: `count` pixels of one index (RLE4: two alternating nibbles)
      const uint64_t n = x + count > uint64_t(w) ? (x < uint64_t(w) ? uint64_t(w) - x : 0) : count;
      for (uint64_t i = 0; i < n; ++i) data.push_back(rle4 ? (i % 2 ? value & 15 : value >> 4) : value);
      x += n;
    } else if (value == 0) {  // end of line
      while (data.size() % uint64_t(w)) data.push_back(0);
      x = 0;
    } else if (value == 1) {  // end of bitmap
      break;
    } else if (value == 2) {  // delta
      if (left() < 2) break;
      pos += 2;
      SEEMORE_CHECK(left() >= 2, where, ": truncated RLE BMP (a delta escape at offset ", pos - 4, ")");
      const uint64_t right = byte(pos), up = byte(pos + 1);
      pos += 2;
      data.resize(data.size() + right + up * uint64_t(w), 0);
      x = data.size() % uint64_t(w);
    } else {  // absolute: `value` pixels as they are
      const size_t n_bytes = rle4 ? value / 2 : value, got = std::min(n_bytes, left());
      for (size_t i = 0; i < got; ++i) {
        const uint8_t v = byte(pos + i);
        if (rle4) data.push_back(v >> 4), data.push_back(v & 15);
        else data.push_back(v);
      }
      pos += got;
      if (got < n_bytes) break;
      x += value;
      if (pos % 2) ++pos;
    }
  }
  SEEMORE_CHECK(data.size() >= total, where, ": truncated RLE BMP: its data ends after ", data.size(), " of the ", w,
                "x", h, " pixels");
  return data;
}
}  // namespace detail_bmp

inline Image decode_bmp(const std::string& b, const std::string& where, const ImageLimits& lim = {}) {
  using detail_bmp::le;
  SEEMORE_CHECK(b.size() >= 14 + 12, where, ": truncated BMP (", b.size(), " bytes, shorter than its headers)");
  const uint32_t pixels_at = le(b, 10, 4), hsize = le(b, 14, 4);
  SEEMORE_CHECK(detail_bmp::known_header_size(hsize), where, ": unknown BMP header size ", hsize);
  SEEMORE_CHECK(b.size() >= 14 + uint64_t(hsize), where, ": truncated BMP header");
  int64_t w, h;
  uint32_t bpp, compression = 0, colours = 0;
  if (hsize == 12) {  // BITMAPCOREHEADER: 16-bit unsigned sizes, 3-byte palette entries
    w = le(b, 18, 2), h = le(b, 20, 2), bpp = le(b, 24, 2);
  } else {
    w = int32_t(le(b, 18, 4)), h = int32_t(le(b, 22, 4)), bpp = le(b, 28, 2);
    compression = le(b, 30, 4), colours = le(b, 46, 4);
  }
  const bool top_down = h < 0;
  if (top_down) h = -h;
  SEEMORE_CHECK(w > 0 && h > 0, where, ": BMP has a bad size (", w, "x", (top_down ? -h : h), ")");
  detail_img::check_dims(uint64_t(w), uint64_t(h), lim, where);
  SEEMORE_CHECK(bpp == 1 || bpp == 4 || bpp == 8 || bpp == 16 || bpp == 24 || bpp == 32, where, ": BMP with ", bpp,
                " bits per pixel is not supported (1, 4, 8, 16, 24 or 32)");
  SEEMORE_CHECK(compression <= 3 || compression == 6, where, ": BMP compression ", compression,
                (compression == 4 ? " (JPEG)" : compression == 5 ? " (PNG)" : ""),
                " is not supported; only uncompressed files, RLE8, RLE4 and colour masks are");
  const bool rle = compression == 1 || compression == 2;
  SEEMORE_CHECK(!rle || bpp == (compression == 1 ? 8u : 4u), where, ": BMP compression ", compression,
                compression == 1 ? " (RLE8)" : " (RLE4)", " with ", bpp, " bits per pixel");

  // Colour masks: right after the 40 bytes of the info header, inside a V2+
  // header and after a plain 40-byte one.
  uint32_t masks[3] = {0, 0, 0};
  if (bpp == 16) masks[0] = 0x7c00, masks[1] = 0x3e0, masks[2] = 0x1f;
  if (bpp >= 24) masks[0] = 0xff0000, masks[1] = 0xff00, masks[2] = 0xff;
  if (compression == 3 || compression == 6) {
    SEEMORE_CHECK(bpp == 16 || bpp == 32, where, ": BMP colour masks with ", bpp, " bits per pixel");
    SEEMORE_CHECK(b.size() >= 14 + 40 + 12, where, ": truncated BMP colour masks");
    for (int i = 0; i < 3; ++i) masks[i] = le(b, 14 + 40 + size_t(4 * i), 4);
  }
  const size_t palette_at = 14 + hsize;
  const detail_bmp::Field red = detail_bmp::field(masks[0], where), green = detail_bmp::field(masks[1], where),
                          blue = detail_bmp::field(masks[2], where);

  // Palette (1/4/8 bits): BGR or BGRX entries, the first `colours` (default 2^bpp) of them.
  uint8_t palette[256][3];
  for (int i = 0; i < 256; ++i) palette[i][0] = palette[i][1] = palette[i][2] = uint8_t(i);
  if (bpp <= 8) {
    const uint32_t n = colours ? colours : 1u << bpp;
    SEEMORE_CHECK(n <= 256, where, ": BMP palette of ", n, " colours (at most 256)");
    const size_t entry = hsize == 12 ? 3 : 4;
    SEEMORE_CHECK(b.size() >= palette_at + n * entry, where, ": truncated BMP palette");
    for (uint32_t i = 0; i < n; ++i) {
      const size_t o = palette_at + i * entry;
      palette[i][0] = uint8_t(b[o + 2]), palette[i][1] = uint8_t(b[o + 1]), palette[i][2] = uint8_t(b[o]);
    }
  }

  Image img;
  img.width = w, img.height = h;
  if (rle) {
    SEEMORE_CHECK(pixels_at <= b.size(), where, ": truncated BMP: pixel data offset ", pixels_at, " is past the end");
    const auto idx = detail_bmp::rle_indices(b, pixels_at, w, h, compression == 2, where);
    img.rgb.resize(size_t(w) * size_t(h) * 3);
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* row = idx.data() + size_t(top_down ? y : h - 1 - y) * size_t(w);
      uint8_t* out = img.rgb.data() + size_t(y) * size_t(w) * 3;
      for (int64_t x = 0; x < w; ++x, out += 3)
        out[0] = palette[row[x]][0], out[1] = palette[row[x]][1], out[2] = palette[row[x]][2];
    }
    return img;
  }
  // Rows are padded to 4 bytes; the whole array must be in the file.
  const uint64_t stride = (uint64_t(w) * bpp + 31) / 32 * 4;
  SEEMORE_CHECK(pixels_at <= b.size() && stride * uint64_t(h) <= b.size() - pixels_at, where,
                ": truncated BMP: ", w, "x", h, " pixels at ", bpp, " bits need ", stride * uint64_t(h),
                " bytes from offset ", pixels_at, ", the file has ", b.size());
  img.rgb.resize(size_t(w) * size_t(h) * 3);
  for (int64_t y = 0; y < h; ++y) {
    const auto* row = reinterpret_cast<const uint8_t*>(b.data()) + pixels_at + stride * uint64_t(top_down ? y : h - 1 - y);
    uint8_t* out = img.rgb.data() + size_t(y) * size_t(w) * 3;
    for (int64_t x = 0; x < w; ++x, out += 3) {
      if (bpp <= 8) {
        const uint64_t bit = uint64_t(x) * bpp;
        const int index = (row[bit / 8] >> (8 - bpp - int(bit % 8))) & ((1 << bpp) - 1);
        out[0] = palette[index][0], out[1] = palette[index][1], out[2] = palette[index][2];
      } else {
        const uint32_t px = uint32_t(io::load_le(row + size_t(x) * (bpp / 8), int(bpp / 8)));
        out[0] = red(px), out[1] = green(px), out[2] = blue(px);
      }
    }
  }
  return img;
}

}  // namespace seemore::data
