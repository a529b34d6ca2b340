// seemore/data/image.hpp — images: decoding (PNG via libpng, JPEG via
// libjpeg-turbo, GIF via giflib, WebP via libwebp, TIFF via libtiff; BMP,
// PNM, SGI, PCX, ICO and TGA by data/bmp.hpp, pnm.hpp, sgi.hpp, pcx.hpp,
// ico.hpp and tga.hpp), conversion to RGB, PIL-compatible antialiased
// bilinear resizing, and normalisation into a [3, S, S] float tensor.
//
// Why these libraries and not stb_image: they are continuously fuzzed
// upstream, while Debian 12's stb_image 2.27 has known out-of-bounds reads on
// crafted JPEGs. Decoders read the header first and refuse images whose
// dimensions exceed the caps before any pixel buffer is allocated.
#pragma once

#include <seemore/config.hpp>
#include <seemore/data/bmp.hpp>
#include <seemore/data/gif.hpp>
#include <seemore/data/ico.hpp>
#include <seemore/data/pcx.hpp>
#include <seemore/data/pixels.hpp>
#include <seemore/data/pnm.hpp>
#include <seemore/data/sgi.hpp>
#include <seemore/data/tga.hpp>
#include <seemore/data/tiff.hpp>
#include <seemore/data/webp.hpp>
#include <seemore/io/file.hpp>
#include <seemore/tensor.hpp>

#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

namespace seemore::data {

namespace detail_img {

// ---- PNG. libpng reports errors by longjmp; everything that lives across the
// setjmp below is plain data owned by the caller, so nothing is skipped.
struct PngSource {
  const uint8_t* data;
  size_t size, pos;
  char message[256];
};
inline void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "unexpected end of data (truncated file)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}
inline void png_on_error(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "%s", msg);
  png_longjmp(png, 1);
}
inline void png_on_warning(png_structp, png_const_charp) {}

// Returns 0 on success; otherwise src.message says why. Header sizes go to
// w/h before any pixel memory is asked for; `alloc` is called once with them.
template <class Alloc>
int png_decode(PngSource& src, uint32_t& w, uint32_t& h, Alloc&& alloc, std::vector<png_bytep>& rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (!png) return std::snprintf(src.message, sizeof src.message, "out of memory"), 1;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return std::snprintf(src.message, sizeof src.message, "out of memory"), 1;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return 1;
  }
  png_set_read_fn(png, &src, png_read_mem);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max(png, 64u << 20);  // ancillary chunks (text, ICC) cannot ask for more
  png_read_info(png, info);
  w = png_get_image_width(png, info);
  h = png_get_image_height(png, info);
  if (!alloc(w, h)) {  // refused by the caller's limits: stop before any pixel buffer
    png_destroy_read_struct(&png, &info, nullptr);
    return 2;
  }
  // Everything to 8-bit RGB the way PIL's convert("RGB") does: palette and grey
  // expanded, 16-bit reduced to its high byte, alpha dropped (not composited).
  // Except 16-bit grey: PIL reads it as 32-bit integers (mode "I") and
  // converts those to 8 bits by clipping at 255, not by taking the high byte.
  const int color = png_get_color_type(png, info);
  const bool grey16 = color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) == 16;
  if (!grey16) {
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != size_t(w) * (grey16 ? 2 : 3))
    png_error(png, "unexpected row layout after conversion");
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  if (grey16)  // big-endian samples at the start of each RGB row, widened from the back so none is overwritten unread
    for (png_bytep row : rows)
      for (uint32_t x = w; x-- > 0;) {
        const unsigned v = unsigned(row[2 * x]) << 8 | row[2 * x + 1];
        row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = png_byte(v < 255 ? v : 255);
      }
  png_destroy_read_struct(&png, &info, nullptr);
  return 0;
}

// ---- JPEG: the same setjmp discipline.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 1];
};
inline void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}
inline void jpeg_quiet(j_common_ptr, int) {}

template <class Alloc>
int jpeg_decode(const uint8_t* data, size_t size, JpegError& err, uint32_t& w, uint32_t& h, Alloc&& alloc,
                uint8_t*& out) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_quiet;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = 512L << 20;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  w = cinfo.image_width;
  h = cinfo.image_height;
  // Four-channel JPEGs: PIL reads them as CMYK with Adobe's inverted polarity
  // (libjpeg turns YCCK into that CMYK), then converts to RGB below.
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  if (!alloc(w, h)) {
    jpeg_destroy_decompress(&cinfo);
    return 2;
  }
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  // PIL decodes with libjpeg's defaults (islow DCT, fancy upsampling); so do we.
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != (cmyk ? 4 : 3) || cinfo.output_width != w || cinfo.output_height != h) {
    std::snprintf(err.message, sizeof err.message, "unexpected output layout");
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  // A CMYK row goes through a buffer of libjpeg's pool, freed with it on every way out.
  JSAMPARRAY cmyk_row =
      cmyk ? (*cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&cinfo), JPOOL_IMAGE, w * 4, 1) : nullptr;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + size_t(cinfo.output_scanline) * w * 3;
    if (!cmyk) {
      jpeg_read_scanlines(&cinfo, &row, 1);
      continue;
    }
    jpeg_read_scanlines(&cinfo, cmyk_row, 1);
    // Adobe's inverted samples, which PIL always assumes: the stored values are 255 − c, …, 255 − k.
    const JSAMPLE* in = cmyk_row[0];
    for (uint32_t x = 0; x < w; ++x, in += 4, row += 3)
      cmyk_to_rgb(255u - in[0], 255u - in[1], 255u - in[2], 255u - in[3], row);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return 0;
}

}  // namespace detail_img

inline bool is_png(const std::string& b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }
inline bool is_jpeg(const std::string& b) { return b.size() >= 3 && std::memcmp(b.data(), "\xff\xd8\xff", 3) == 0; }

// Decodes PNG, JPEG, GIF (first frame), WebP, BMP, TIFF (first page), PNM,
// SGI, PCX, ICO (the icon PIL opens), CUR or TGA bytes to RGB, told apart by their first
// bytes, not by a file name; TGA, which has no magic number, is tried last,
// as PIL tries it. `where` names the source in errors.
inline Image decode_image(const std::string& bytes, const std::string& where, const ImageLimits& lim = {}) {
  Image img;
  uint32_t w = 0, h = 0;
  bool refused = false;
  std::string refusal;
  auto alloc = [&](uint32_t ww, uint32_t hh) {
    try {
      detail_img::check_dims(ww, hh, lim, where);
    } catch (const Error& e) {
      refused = true;
      refusal = e.what();
      return false;
    }
    img.width = ww;
    img.height = hh;
    img.rgb.assign(size_t(ww) * hh * 3, 0);
    return true;
  };
  if (is_png(bytes)) {
    // The IHDR chunk must come first: check its size claims before libpng sees the file.
    if (bytes.size() >= 24 && bytes.compare(12, 4, "IHDR") == 0) {
      auto be32 = [&](size_t o) {
        return uint32_t(uint8_t(bytes[o])) << 24 | uint32_t(uint8_t(bytes[o + 1])) << 16 |
               uint32_t(uint8_t(bytes[o + 2])) << 8 | uint32_t(uint8_t(bytes[o + 3]));
      };
      detail_img::check_dims(be32(16), be32(20), lim, where);
    }
    detail_img::PngSource src{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 0, {0}};
    // Row pointers are filled after allocation; the vector lives outside the setjmp frame.
    std::vector<png_bytep> rows;
    auto alloc_rows = [&](uint32_t ww, uint32_t hh) {
      if (!alloc(ww, hh)) return false;
      rows.resize(hh);
      for (uint32_t y = 0; y < hh; ++y) rows[y] = img.rgb.data() + size_t(y) * ww * 3;
      return true;
    };
    const int rc = detail_img::png_decode(src, w, h, alloc_rows, rows);
    if (refused) throw Error(refusal);
    SEEMORE_CHECK(rc == 0, where, ": corrupt or truncated PNG (", src.message, ")");
    return img;
  }
  if (is_jpeg(bytes)) {
    detail_img::JpegError err{};
    uint8_t* out = nullptr;
    auto alloc_buf = [&](uint32_t ww, uint32_t hh) {
      if (!alloc(ww, hh)) return false;
      out = img.rgb.data();
      return true;
    };
    const int rc = detail_img::jpeg_decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), err, w, h,
                                           alloc_buf, out);
    if (refused) throw Error(refusal);
    SEEMORE_CHECK(rc == 0, where, ": corrupt or truncated JPEG (", err.message, ")");
    return img;
  }
  if (is_gif(bytes)) return decode_gif(bytes, where, lim);
  if (is_webp(bytes)) return decode_webp(bytes, where, lim);
  if (is_bmp(bytes)) return decode_bmp(bytes, where, lim);
  if (is_tiff(bytes)) return decode_tiff(bytes, where, lim);
  if (is_pnm(bytes)) return decode_pnm(bytes, where, lim);
  if (is_sgi(bytes)) return decode_sgi(bytes, where, lim);
  if (is_pcx(bytes)) return decode_pcx(bytes, where, lim);
  if (is_ico(bytes) && (detail_ico::whole_directory(bytes) || !is_tga(bytes))) {  // the icon PIL opens, as PNG or BMP
    const std::string inner = detail_ico::chosen_image(bytes, where);
    if (is_png(inner)) return decode_image(inner, where + " (icon image)", lim);
    return decode_bmp(inner, where + " (icon image)", lim);
  }
  // A cursor without a whole directory is not one to PIL either: it goes on to TGA.
  if (detail_ico::is_cur(bytes) && detail_ico::whole_directory(bytes))
    return decode_bmp(detail_ico::cursor_image(bytes, where), where + " (cursor image)", lim);
  if (is_tga(bytes)) return decode_tga(bytes, where, lim);
  SEEMORE_CHECK(!bytes.empty(), where, ": empty file, not an image");
  detail::fail(where, ": not a PNG, JPEG, GIF, WebP, BMP, TIFF, PNM, SGI, PCX, ICO, CUR or TGA image");
}

// ---- resizing, exactly as PIL's Image.resize(..., BILINEAR) on 8-bit RGB:
// a separable triangle filter whose support widens with the downscale factor
// (antialiasing), fixed-point coefficients with 22 fractional bits, the
// horizontal pass first into an 8-bit intermediate, then the vertical pass.
namespace detail_img {
struct Coeffs {
  int64_t ksize = 0;
  std::vector<int64_t> bounds;  // per output: first input index, count
  std::vector<int32_t> k;       // per output: ksize fixed-point weights
};
inline Coeffs precompute(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = int64_t(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(out) * 2);
  c.k.assign(size_t(out * c.ksize), 0);
  std::vector<double> w(size_t(c.ksize));
  for (int64_t x = 0; x < out; ++x) {
    const double center = (double(x) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = int64_t(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = int64_t(center + support + 0.5);
    if (xmax > in) xmax = in;
    xmax -= xmin;
    double total = 0;
    for (int64_t j = 0; j < xmax; ++j) {
      double t = (double(j + xmin) - center + 0.5) * ss;
      t = t < 0 ? -t : t;
      const double v = t < 1.0 ? 1.0 - t : 0.0;
      w[size_t(j)] = v;
      total += v;
    }
    for (int64_t j = 0; j < c.ksize; ++j) {
      double v = j < xmax && total != 0 ? w[size_t(j)] / total : 0.0;
      // round half away from zero, as PIL's fixed-point conversion
      c.k[size_t(x * c.ksize + j)] = int32_t(v < 0 ? std::trunc(-0.5 + v * (1 << 22)) : std::trunc(0.5 + v * (1 << 22)));
    }
    c.bounds[size_t(2 * x)] = xmin;
    c.bounds[size_t(2 * x + 1)] = xmax;
  }
  return c;
}
inline uint8_t clip8(int64_t v) {
  v >>= 22;
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}
}  // namespace detail_img

inline Image resize_bilinear(const Image& src, int64_t out_w, int64_t out_h) {
  SEEMORE_CHECK(out_w > 0 && out_h > 0, "resize: target size must be positive");
  if (src.width == out_w && src.height == out_h) return src;
  using namespace detail_img;
  // PIL resamples only the rows the vertical pass reads; the result is the same.
  Image tmp;
  const Image* h_in = &src;
  if (src.width != out_w) {
    Coeffs c = precompute(src.width, out_w);
    tmp.width = out_w;
    tmp.height = src.height;
    tmp.rgb.resize(size_t(out_w * src.height * 3));
    for (int64_t y = 0; y < src.height; ++y)
      for (int64_t x = 0; x < out_w; ++x) {
        const int64_t xmin = c.bounds[size_t(2 * x)], xn = c.bounds[size_t(2 * x + 1)];
        const int32_t* k = &c.k[size_t(x * c.ksize)];
        for (int ch = 0; ch < 3; ++ch) {
          int64_t ss = int64_t(1) << 21;
          for (int64_t j = 0; j < xn; ++j) ss += int64_t(src.rgb[size_t(((y * src.width) + xmin + j) * 3 + ch)]) * k[j];
          tmp.rgb[size_t((y * out_w + x) * 3 + ch)] = clip8(ss);
        }
      }
    h_in = &tmp;
  }
  if (h_in->height == out_h) return h_in == &tmp ? tmp : *h_in;
  Coeffs c = precompute(h_in->height, out_h);
  Image out;
  out.width = out_w;
  out.height = out_h;
  out.rgb.resize(size_t(out_w * out_h * 3));
  for (int64_t y = 0; y < out_h; ++y) {
    const int64_t ymin = c.bounds[size_t(2 * y)], yn = c.bounds[size_t(2 * y + 1)];
    const int32_t* k = &c.k[size_t(y * c.ksize)];
    for (int64_t x = 0; x < out_w; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        int64_t ss = int64_t(1) << 21;
        for (int64_t j = 0; j < yn; ++j) ss += int64_t(h_in->rgb[size_t(((ymin + j) * out_w + x) * 3 + ch)]) * k[j];
        out.rgb[size_t((y * out_w + x) * 3 + ch)] = clip8(ss);
      }
  }
  return out;
}

// The reference's transform: /255, then per channel (x − mean)/std; CHW layout.
// Writes 3·H·W floats into `out`.
template <class T>
void normalize_into(const Image& img, T* out) {
  static const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
  const int64_t n = img.width * img.height;
  for (int ch = 0; ch < 3; ++ch)
    for (int64_t i = 0; i < n; ++i) {
      // float arithmetic in torchvision's order: (x/255 − mean) / std
      const float v = float(img.rgb[size_t(i * 3 + ch)]) / 255.0f;
      out[ch * n + i] = T((v - float(mean[ch])) / float(stdv[ch]));
    }
}
template <class T>
Tensor<T> image_to_tensor(const Image& img) {
  auto t = Tensor<T>::empty({1, 3, img.height, img.width});
  normalize_into(img, t.data());
  return t;
}

inline Image load_image(const std::string& path, const ImageLimits& lim = {}) {
  return decode_image(io::read_file_bytes(path, uint64_t(1) << 30), path, lim);
}

}  // namespace seemore::data
