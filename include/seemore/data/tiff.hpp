// seemore/data/tiff.hpp — the first page of a TIFF as 8-bit RGB, as PIL 9.4
// reads it; libtiff (the library PIL uses for every compressed TIFF) does the
// container, the decompression, the predictor, byte order and fill order.
//
// The layouts are the ones PIL opens, converted as its convert("RGB") does:
//  - grey, 1/2/4/8 bits: levels scaled to 0–255 (×255, ×85, ×17), inverted
//    for min-is-white; 16 bits: clipped at 255 (PIL reads it as "I;16"; a
//    min-is-white 16-bit page is not inverted, as in PIL); grey + alpha:
//    alpha dropped;
//  - palette, 1/2/4/8 bits (+ alpha): the 16-bit colour map's high bytes;
//  - RGB, 8 or 16 bits (16: the high byte), with extra samples: unassociated
//    alpha or unspecified extras are dropped, associated (premultiplied)
//    alpha is first divided out the way PIL unpacks "RGBa" (v·255/a,
//    truncated, clipped; a = 0 gives black);
//  - CMYK, 8 or 16 bits: PIL's formula, nk − c·nk/255 with nk = 255 − k;
//  - YCbCr in JPEG compression: libjpeg's own conversion to RGB.
// Refused with a message naming the field: signed or floating-point
// samples, separate colour planes, 12 bits, YCbCr without JPEG, old-style
// JPEG, CIELab and any other photometric interpretation.
#pragma once

#include <seemore/data/pixels.hpp>

#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace seemore::data {

inline bool is_tiff(const std::string& b) {
  // Classic TIFF (42) or BigTIFF (43), little- or big-endian.
  return b.size() >= 4 && (b.compare(0, 4, "II*\0", 4) == 0 || b.compare(0, 4, "MM\0*", 4) == 0 ||
                           b.compare(0, 4, "II+\0", 4) == 0 || b.compare(0, 4, "MM\0+", 4) == 0);
}

namespace detail_tiff {

// libtiff reads through these callbacks from the bytes in memory; its
// messages land in `error` (the first one is kept: later ones are
// consequences) instead of on stderr.
struct Source {
  const std::string* bytes;
  uint64_t pos = 0;
  std::string error;
};
inline tmsize_t read(thandle_t h, void* out, tmsize_t n) {
  auto* s = static_cast<Source*>(h);
  if (n <= 0 || s->pos >= s->bytes->size()) return 0;
  const uint64_t k = std::min<uint64_t>(uint64_t(n), s->bytes->size() - s->pos);
  std::memcpy(out, s->bytes->data() + s->pos, k);
  s->pos += k;
  return tmsize_t(k);
}
inline tmsize_t write(thandle_t, void*, tmsize_t) { return -1; }
inline toff_t seek(thandle_t h, toff_t off, int whence) {
  auto* s = static_cast<Source*>(h);
  uint64_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->bytes->size() : 0;
  if (off > UINT64_MAX - base) return toff_t(-1);
  s->pos = base + off;  // past the end is allowed; reads there return nothing
  return s->pos;
}
inline int close(thandle_t) { return 0; }
inline toff_t size(thandle_t h) { return static_cast<Source*>(h)->bytes->size(); }
inline int map(thandle_t, void**, toff_t*) { return 0; }
inline void unmap(thandle_t, void*, toff_t) {}
inline int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* s = static_cast<Source*>(user);
  if (s->error.empty()) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    s->error = std::string(module ? module : "libtiff") + ": " + buf;
  }
  return 1;  // handled: nothing reaches libtiff's global handler (stderr)
}
inline int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct Handle {
  TIFF* tif = nullptr;
  ~Handle() {
    if (tif) TIFFClose(tif);
  }
};

// How one page's samples become RGB.
enum class Kind { Grey, Palette, Rgb, Cmyk };
struct Layout {
  Kind kind = Kind::Grey;
  int bits = 8, spp = 1;
  bool invert = false;         // min-is-white grey
  bool premultiplied = false;  // RGB with associated alpha in sample 3
  const uint16_t* map[3] = {nullptr, nullptr, nullptr};  // palette: colour map
};

// Sample i of a row (packed MSB first, as libtiff delivers them), as 8 bits.
inline unsigned sample(const uint8_t* row, int64_t i, int bits) {
  switch (bits) {
    case 1: return (row[i >> 3] >> (7 - (i & 7))) & 1u;
    case 2: return (row[i >> 2] >> (6 - 2 * (i & 3))) & 3u;
    case 4: return (row[i >> 1] >> (4 - 4 * (i & 1))) & 15u;
    case 8: return row[i];
    default: {  // 16: libtiff has already put them in the host's byte order
      uint16_t v;
      std::memcpy(&v, row + 2 * i, 2);
      return v;
    }
  }
}

// Converts n pixels of one decoded row (file layout) into RGB.
inline void convert_row(const Layout& L, const uint8_t* in, int64_t n, uint8_t* out) {
  for (int64_t x = 0; x < n; ++x, out += 3) {
    const int64_t i = x * L.spp;
    switch (L.kind) {
      case Kind::Grey: {
        unsigned v = sample(in, i, L.bits);
        if (L.bits == 16) v = std::min(v, 255u);
        else v = v * (255u / ((1u << L.bits) - 1));
        if (L.invert) v = 255 - v;
        out[0] = out[1] = out[2] = uint8_t(v);
        break;
      }
      case Kind::Palette: {
        const unsigned idx = sample(in, i, L.bits);  // < 2^bits: the map has 2^bits entries
        for (int c = 0; c < 3; ++c) out[c] = uint8_t(L.map[c][idx] >> 8);
        break;
      }
      case Kind::Rgb: {
        const int shift = L.bits == 16 ? 8 : 0;
        unsigned v[3];
        for (int c = 0; c < 3; ++c) v[c] = sample(in, i + c, L.bits) >> shift;
        if (L.premultiplied) {
          const unsigned a = sample(in, i + 3, L.bits) >> shift;
          for (auto& c : v) c = a == 0 ? 0 : a == 255 ? c : std::min(c * 255 / a, 255u);
        }
        for (int c = 0; c < 3; ++c) out[c] = uint8_t(v[c]);
        break;
      }
      case Kind::Cmyk: {
        const int shift = L.bits == 16 ? 8 : 0;
        unsigned v[4];
        for (int c = 0; c < 4; ++c) v[c] = sample(in, i + c, L.bits) >> shift;
        detail_img::cmyk_to_rgb(v[0], v[1], v[2], v[3], out);
        break;
      }
    }
  }
}

}  // namespace detail_tiff

inline Image decode_tiff(const std::string& bytes, const std::string& where, const ImageLimits& lim = {}) {
  using namespace detail_tiff;
  Source src{&bytes, 0, {}};
  // libtiff's own allocations (directories, codec state) are capped too: a
  // hostile header cannot make it ask for gigabytes.
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  SEEMORE_CHECK(opts, where, ": out of memory opening a TIFF");
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts, tmsize_t(512) << 20);
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &src);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, &src);
  Handle h;
  // "m": no memory mapping, so libtiff never touches the caller's bytes in place.
  h.tif = TIFFClientOpenExt(where.c_str(), "rm", &src, detail_tiff::read, detail_tiff::write, detail_tiff::seek,
                            detail_tiff::close, detail_tiff::size, detail_tiff::map, detail_tiff::unmap, opts);
  TIFFOpenOptionsFree(opts);
  auto fail = [&](const std::string& what) {
    detail::fail(where, ": corrupt or truncated TIFF (", what, src.error.empty() ? "" : ": " + src.error, ")");
  };
  if (!h.tif) fail("header or first directory");
  TIFF* tif = h.tif;

  uint32_t w = 0, hgt = 0;
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &hgt))
    fail("no ImageWidth or ImageLength");
  detail_img::check_dims(w, hgt, lim, where);

  uint16_t bits = 1, spp = 1, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, photo = 0, comp = 1;
  uint16_t n_extra = 0;
  uint16_t* extra = nullptr;
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &n_extra, &extra);
  TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo);  // absent: 0, as PIL assumes

  auto refuse = [&](const std::string& what) { detail::fail(where, ": unsupported TIFF: ", what); };
  if (format != SAMPLEFORMAT_UINT)
    refuse("SampleFormat " + std::to_string(format) + " (only unsigned integer samples are read)");
  if (planar != PLANARCONFIG_CONTIG) refuse("PlanarConfiguration 2 (separate colour planes)");
  if (comp == COMPRESSION_OJPEG) refuse("Compression 6 (old-style JPEG)");
  const uint16_t n_colour = spp >= n_extra ? uint16_t(spp - n_extra) : 0;
  auto extras_are = [&](std::initializer_list<uint16_t> e) {
    return n_extra == e.size() && std::equal(e.begin(), e.end(), extra);
  };
  const std::string layout = "Photometric " + std::to_string(photo) + " with " + std::to_string(spp) + " samples of " +
                             std::to_string(bits) + " bits";

  Layout L;
  L.bits = bits, L.spp = spp;
  switch (photo) {
    case PHOTOMETRIC_MINISWHITE:
    case PHOTOMETRIC_MINISBLACK: {
      const bool grey = spp == 1 && n_extra == 0 && (bits == 1 || bits == 2 || bits == 4 || bits == 8 || bits == 16);
      const bool grey_alpha = photo == PHOTOMETRIC_MINISBLACK && spp == 2 && bits == 8 && extras_are({2});
      if (!grey && !grey_alpha) refuse(layout);
      L.kind = Kind::Grey;
      L.invert = photo == PHOTOMETRIC_MINISWHITE && bits != 16;
      break;
    }
    case PHOTOMETRIC_PALETTE: {
      const bool index = spp == 1 && n_extra == 0 && (bits == 1 || bits == 2 || bits == 4 || bits == 8);
      const bool index_alpha = spp == 2 && bits == 8 && extras_are({2});
      if (!index && !index_alpha) refuse(layout);
      uint16_t *r = nullptr, *g = nullptr, *b = nullptr;
      if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b) || !r || !g || !b) fail("palette image without a ColorMap");
      L.kind = Kind::Palette;
      L.map[0] = r, L.map[1] = g, L.map[2] = b;
      break;
    }
    case PHOTOMETRIC_RGB: {
      // 3 colours, then nothing, or up to 3 extras (1 with 16 bits) whose
      // first is unspecified (0), associated (1) or unassociated (2) alpha, or
      // Corel's 999, and the rest unspecified; a 4th sample without
      // ExtraSamples is taken as alpha.
      const int max_extra = bits == 8 ? 3 : 1;
      bool ok = (bits == 8 || bits == 16) && spp >= 3 && spp <= 3 + max_extra;
      if (ok && spp > 3 && n_extra > 0) {
        ok = n_colour == 3 && (extra[0] <= 2 || (bits == 8 && spp == 4 && extra[0] == 999));
        for (int i = 1; ok && i < n_extra; ++i) ok = extra[i] == 0;
      } else if (ok && spp > 3) {
        ok = spp == 4;
      } else if (ok) {
        ok = n_extra == 0;
      }
      if (!ok) refuse(layout);
      L.kind = Kind::Rgb;
      L.premultiplied = spp > 3 && n_extra > 0 && extra[0] == EXTRASAMPLE_ASSOCALPHA;
      break;
    }
    case PHOTOMETRIC_SEPARATED: {
      const bool ok = (bits == 8 && spp >= 4 && spp <= 6 && n_colour == 4 &&
                       std::all_of(extra, extra + n_extra, [](uint16_t e) { return e == 0; })) ||
                      (bits == 16 && spp == 4 && n_extra == 0);
      if (!ok) refuse(layout);
      L.kind = Kind::Cmyk;
      break;
    }
    case PHOTOMETRIC_YCBCR:
      if (comp != COMPRESSION_JPEG || bits != 8 || spp != 3) refuse(layout + " (YCbCr is read only JPEG-compressed)");
      // libjpeg converts to RGB as it decodes, as in PIL; the strip sizes
      // below are asked for after this, so they describe RGB rows.
      if (!TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB)) fail("JPEG colour mode");
      L.kind = Kind::Rgb;
      break;
    default:
      refuse(layout);
  }

  // One strip or tile at a time; its buffer is bounded by the image itself
  // (twice the page's samples, or 64 MiB), so a hostile tile size is refused
  // before it is allocated.
  const uint64_t page_bytes = (uint64_t(w) * spp * bits + 7) / 8 * hgt;
  const uint64_t max_buffer = std::max<uint64_t>(uint64_t(64) << 20, 2 * page_bytes);
  Image img;
  img.width = w, img.height = hgt;
  img.rgb.assign(size_t(w) * hgt * 3, 0);
  std::vector<uint8_t> buf;
  auto reserve = [&](uint64_t n, const char* unit) {
    if (n == 0 || n > max_buffer)
      fail(std::string(unit) + " of " + std::to_string(n) + " bytes for a " + std::to_string(w) + "x" +
           std::to_string(hgt) + " page");
    buf.resize(n);
  };
  if (TIFFIsTiled(tif)) {
    uint32_t tw = 0, th = 0;
    if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th) || !tw || !th)
      fail("tiled page without TileWidth or TileLength");
    reserve(TIFFTileSize64(tif), "tile");
    const uint64_t row_bytes = TIFFTileRowSize64(tif);
    if (row_bytes * th > buf.size()) fail("tile rows larger than the tile");
    for (uint32_t y = 0; y < hgt; y += th)
      for (uint32_t x = 0; x < w; x += tw) {
        const uint32_t t = TIFFComputeTile(tif, x, y, 0, 0);
        if (TIFFReadEncodedTile(tif, t, buf.data(), tmsize_t(buf.size())) < 0) fail("tile " + std::to_string(t));
        const uint32_t rows = std::min(th, hgt - y), cols = std::min(tw, w - x);
        for (uint32_t r = 0; r < rows; ++r)
          convert_row(L, buf.data() + r * row_bytes, cols, img.rgb.data() + (size_t(y + r) * w + x) * 3);
      }
  } else {
    uint32_t rps = hgt;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    rps = std::max<uint32_t>(1, std::min(rps, hgt));
    const uint64_t row_bytes = TIFFScanlineSize64(tif);
    reserve(row_bytes * rps, "strip");
    for (uint32_t y = 0, s = 0; y < hgt; y += rps, ++s) {
      const uint32_t rows = std::min(rps, hgt - y);
      const tmsize_t got = TIFFReadEncodedStrip(tif, s, buf.data(), tmsize_t(row_bytes * rows));
      if (got < tmsize_t(row_bytes * rows)) fail("strip " + std::to_string(s));
      for (uint32_t r = 0; r < rows; ++r)
        convert_row(L, buf.data() + r * row_bytes, w, img.rgb.data() + size_t(y + r) * w * 3);
    }
  }
  return img;
}

}  // namespace seemore::data
