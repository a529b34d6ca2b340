// seemore/data/ico.hpp — Windows icons (.ico) and cursors (.cur): which of
// the file's images PIL 9.4 opens, and that image's bytes as a PNG or a BMP
// file for the decoders in data/image.hpp and data/bmp.hpp.
//
// PIL opens the entry with the most pixels (a width or height of 0 means
// 256), of those the one with the greatest colour depth (the bit count, or
// else ⌈log2(colours)⌉, or else 256; one colour counts as 256), and of
// those the last in the directory. A PNG entry is decoded as it is; a BMP
// entry is a DIB (a BMP without its file header) whose height counts the
// colour rows and the 1-bit transparency mask below them: PIL reads the top
// half, the colour rows (the mask only makes alpha, which RGB drops).
#pragma once

#include <seemore/config.hpp>
#include <seemore/data/bmp.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace seemore::data {

inline bool is_ico(const std::string& b) { return b.size() >= 4 && b.compare(0, 4, "\0\0\1\0", 4) == 0; }

namespace detail_ico {

using detail_bmp::le;

// Whether the directory has entries and all of them are there: PIL gives up
// on an icon or a cursor without (an IndexError or a TypeError) and goes on
// to try the formats after, which for a file starting 00 00 01 00 or
// 00 00 02 00 means TGA.
inline bool whole_directory(const std::string& b) {
  return b.size() >= 6 && le(b, 4, 2) > 0 && b.size() >= 6 + 16 * uint64_t(le(b, 4, 2));
}

// The DIB of entry `entry` at `offset` (header, palette for bit counts up to
// 8, colour rows, then the mask) as a BMP file of its colour rows: its height
// halved, a file header pointing at the rows.
inline std::string dib_as_bmp(const std::string& b, uint64_t offset, uint32_t entry, const char* kind,
                              const std::string& where) {
  SEEMORE_CHECK(b.size() - offset >= 16, where, ": truncated ", kind, " image header (entry ", entry, ")");
  const uint32_t hsize = le(b, offset, 4);
  SEEMORE_CHECK(detail_bmp::known_header_size(hsize), where, ": ", kind, " entry ", entry,
                ": unknown bitmap header size ", hsize);
  SEEMORE_CHECK(b.size() - offset >= hsize, where, ": truncated ", kind, " image header (entry ", entry, ")");
  std::string dib = b.substr(offset);
  uint32_t bpp, colours = 0, compression = 0;
  if (hsize == 12) {
    const uint32_t h = le(dib, 6, 2);
    bpp = le(dib, 10, 2);
    const uint16_t half = uint16_t(h / 2);
    dib[6] = char(half & 0xff), dib[7] = char(half >> 8);
  } else {
    const int32_t h = int32_t(le(dib, 8, 4));
    SEEMORE_CHECK(h > 0, where, ": ", kind, " entry ", entry, " has a bitmap height of ", h);
    bpp = le(dib, 14, 2), compression = le(dib, 16, 4), colours = le(dib, 32, 4);
    const uint32_t half = uint32_t(h / 2);
    for (int k = 0; k < 4; ++k) dib[8 + size_t(k)] = char(half >> (8 * k) & 0xff);
  }
  uint64_t pixels = 14 + uint64_t(hsize);
  if (hsize == 40 && compression == 3) pixels += 12;  // colour masks after a plain info header
  if (bpp <= 8) pixels += uint64_t(colours ? colours : 1u << bpp) * (hsize == 12 ? 3 : 4);
  SEEMORE_CHECK(pixels < (uint64_t(1) << 32), where, ": ", kind, " entry ", entry, ": palette too large");
  std::string bmp = "BM";
  for (uint64_t v : {uint64_t(14 + dib.size()), uint64_t(0), pixels})
    for (int k = 0; k < 4; ++k) bmp += char(v >> (8 * k) & 0xff);
  return bmp + dib;
}

// The chosen entry's image: a PNG file, or its DIB wrapped as a BMP file.
inline std::string chosen_image(const std::string& b, const std::string& where) {
  SEEMORE_CHECK(b.size() >= 6, where, ": truncated ICO header");
  const uint32_t count = le(b, 4, 2);
  SEEMORE_CHECK(count > 0, where, ": ICO file with no images");
  SEEMORE_CHECK(b.size() >= 6 + 16 * uint64_t(count), where, ": truncated ICO directory (", count, " entries)");
  uint32_t best = 0;
  uint64_t best_square = 0, best_depth = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = 6 + 16 * size_t(i);
    const uint64_t w = le(b, e, 1), h = le(b, e + 1, 1);
    const uint64_t square = (w ? w : 256) * (h ? h : 256);
    const uint32_t colours = le(b, e + 2, 1), bpp = le(b, e + 6, 2);
    uint64_t depth = bpp;
    if (!depth && colours) depth = uint64_t(std::ceil(std::log(double(colours)) / std::log(2.0)));
    if (!depth) depth = 256;
    if (i == 0 || square > best_square || (square == best_square && depth >= best_depth))
      best = i, best_square = square, best_depth = depth;
  }
  const size_t e = 6 + 16 * size_t(best);
  const uint64_t offset = le(b, e + 12, 4);
  SEEMORE_CHECK(offset < b.size(), where, ": ICO entry ", best, " starts at offset ", offset, ", past the end (",
                b.size(), " bytes)");
  if (b.compare(offset, 8, "\x89PNG\r\n\x1a\n") == 0) return b.substr(offset);
  return dib_as_bmp(b, offset, best, "ICO", where);
}

// Windows cursors (.cur): PIL's CurImagePlugin takes the first entry, then
// any later one both wider and taller by its raw directory bytes (0 is
// 0 here, not 256), and reads it as a DIB only (a PNG entry it cannot read).
inline bool is_cur(const std::string& b) { return b.size() >= 4 && b.compare(0, 4, "\0\0\2\0", 4) == 0; }
inline std::string cursor_image(const std::string& b, const std::string& where) {
  const uint32_t count = le(b, 4, 2);
  uint32_t best = 0;
  for (uint32_t i = 1; i < count; ++i)
    if (le(b, 6 + 16 * size_t(i), 1) > le(b, 6 + 16 * size_t(best), 1) &&
        le(b, 7 + 16 * size_t(i), 1) > le(b, 7 + 16 * size_t(best), 1))
      best = i;
  const uint64_t offset = le(b, 6 + 16 * size_t(best) + 12, 4);
  SEEMORE_CHECK(offset < b.size(), where, ": CUR entry ", best, " starts at offset ", offset, ", past the end (",
                b.size(), " bytes)");
  SEEMORE_CHECK(b.compare(offset, 8, "\x89PNG\r\n\x1a\n") != 0, where, ": CUR entry ", best,
                " is a PNG, which is not supported (PIL cannot load it either)");
  return dib_as_bmp(b, offset, best, "CUR", where);
}

}  // namespace detail_ico

}  // namespace seemore::data
