// seemore/data/pcx.hpp — PCX (ZSoft Paintbrush) images as 8-bit RGB, as PIL
// 9.4 reads and converts them.
//
// A 128-byte little-endian header, then run-length-encoded lines, each the
// planes of one row one after another. PIL opens 1 bit in 1 plane (1 is
// white), 1 bit in 2 or 4 planes (a 4- or 16-colour palette in the header),
// and, in version 5 files, 8 bits in 1 plane (grey, or colour-mapped when
// the file ends with 0x0C and a 256-colour palette that is not the grey
// ramp) or in 3 planes (RGB).
//
// PIL's readings, kept so that the pixels are PIL's:
//  - the bytes a plane takes are computed from the width, and rounded up
//    to even only when the header's own figure differs;
//  - when a line's bytes are not a multiple of the width but exceed it,
//    PIL moves planes 1, 2... from their place in the line to multiples of
//    the width (which drops even-padding for RGB, and shuffles bits of the
//    narrowest planar images);
//  - bit planes are then read at multiples of ⌈width/8⌉ bytes, and RGB
//    planes at multiples of the width, whatever the line's own layout;
//  - a run that goes past the end of a line is an error (PIL's "buffer
//    overrun"), as is data that ends before the last line.
// Every size is checked against the limits before any pixel memory is
// allocated, and every read against the bytes there are.
#pragma once

#include <seemore/data/pixels.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace seemore::data {

// What PIL takes for PCX: its first two bytes, then a header long enough to
// read and a positive size. A file that fails the last two is not PCX to
// PIL either: it goes on to the formats after (here, TGA).
inline bool is_pcx(const std::string& b) {
  if (b.size() < 68 || b[0] != 10 || !(b[1] == 0 || b[1] == 2 || b[1] == 3 || b[1] == 5)) return false;
  auto u16 = [&](size_t at) { return int64_t(uint8_t(b[at])) | int64_t(uint8_t(b[at + 1])) << 8; };
  return u16(8) >= u16(4) && u16(10) >= u16(6);
}

inline Image decode_pcx(const std::string& b, const std::string& where, const ImageLimits& lim = {}) {
  auto u16 = [&](size_t at) { return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8; };
  SEEMORE_CHECK(is_pcx(b), where, ": not a PCX image");
  const int64_t w = int64_t(u16(8)) + 1 - int64_t(u16(4)), h = int64_t(u16(10)) + 1 - int64_t(u16(6));
  const uint32_t version = uint8_t(b[1]), bits = uint8_t(b[3]), planes = uint8_t(b[65]);
  enum { Bilevel, Planar, Grey, Rgb } kind;
  if (bits == 1 && planes == 1) {
    kind = Bilevel;
  } else if (bits == 1 && (planes == 2 || planes == 4)) {
    kind = Planar;
  } else if (version == 5 && bits == 8 && (planes == 1 || planes == 3)) {
    kind = planes == 1 ? Grey : Rgb;
  } else {
    detail::fail(where, ": PCX of ", bits, " bits in ", planes, " planes (version ", version,
                 ") is not supported (PIL cannot load it either)");
  }
  detail_img::check_dims(uint64_t(w), uint64_t(h), lim, where);

  // The palette: the header's 16 colours, or for 8 bits the 256 after a 0x0C at the end of the file.
  uint8_t palette[256 * 3];
  bool mapped = kind == Planar;
  std::memcpy(palette, b.data() + 16, 48);
  if (kind == Grey && b.size() >= 769 && b[b.size() - 769] == 12) {
    const char* p = b.data() + b.size() - 768;
    for (int i = 0; i < 256 && !mapped; ++i) mapped = uint8_t(p[3 * i]) != i || uint8_t(p[3 * i + 1]) != i || uint8_t(p[3 * i + 2]) != i;
    if (mapped) std::memcpy(palette, p, 768);
  }

  size_t stride = (size_t(w) * bits + 7) / 8;
  if (u16(66) != stride) stride += stride % 2;
  const size_t line = planes * stride, width = size_t(w);
  std::vector<uint8_t> buf(line);
  Image img;
  img.width = w, img.height = h;
  img.rgb.resize(width * size_t(h) * 3);

  size_t pos = 128, x = 0;  // past the end of a header cut short: no data
  bool overrun = false;  // PIL notes it and goes on; the error comes when the image is complete
  for (int64_t y = 0; y < h;) {
    SEEMORE_CHECK(pos < b.size(), where, ": truncated PCX data (", y, " of ", h, " lines)");
    const uint8_t c = uint8_t(b[pos]);
    if ((c & 0xc0) == 0xc0) {
      SEEMORE_CHECK(pos + 1 < b.size(), where, ": truncated PCX data (", y, " of ", h, " lines)");
      for (uint32_t n = c & 0x3f; n > 0; --n) {
        if (x >= line) {
          overrun = true;
          break;
        }
        buf[x++] = uint8_t(b[pos + 1]);
      }
      pos += 2;
    } else {
      buf[x++] = c;
      ++pos;
    }
    if (x < line) continue;
    if (line % width && line > width) {  // planes moved to multiples of the width
      const size_t bands = line / width, step = line / bands;
      for (size_t i = 1; i < bands; ++i) std::memmove(buf.data() + i * width, buf.data() + i * step, width);
    }
    uint8_t* out = img.rgb.data() + size_t(y) * width * 3;
    const size_t s = (width + 7) / 8;
    for (size_t i = 0; i < width; ++i, out += 3) {
      const int bit = 7 - int(i % 8);
      switch (kind) {
        case Bilevel: out[0] = out[1] = out[2] = (buf[i / 8] >> bit & 1) ? 255 : 0; break;
        case Planar: {
          unsigned v = 0;
          for (uint32_t p = 0; p < planes; ++p) v |= unsigned(buf[i / 8 + p * s] >> bit & 1) << p;
          std::memcpy(out, palette + 3 * v, 3);
          break;
        }
        case Grey:
          if (mapped) {
            std::memcpy(out, palette + 3 * size_t(buf[i]), 3);
          } else {
            out[0] = out[1] = out[2] = buf[i];
          }
          break;
        case Rgb: out[0] = buf[i], out[1] = buf[i + width], out[2] = buf[i + 2 * width]; break;
      }
    }
    x = 0;
    ++y;
  }
  SEEMORE_CHECK(!overrun, where, ": PCX run goes past the end of a line (PIL reports a buffer overrun)");
  return img;
}

}  // namespace seemore::data
