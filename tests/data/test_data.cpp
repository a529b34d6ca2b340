#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

using namespace seemore;

// The largest single allocation while `g_track` is on: the decompression-bomb
// test checks that a header claiming 16000×16000 pixels allocates nothing big.
static std::atomic<bool> g_track{false};
static std::atomic<size_t> g_largest{0};
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEEMORE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SEEMORE_TEST_ASAN)
// Under AddressSanitizer its allocator owns operator new; its hooks see every
// allocation (malloc inside libpng and libjpeg too).
#include <sanitizer/allocator_interface.h>
static void on_malloc(const volatile void*, size_t n) {
  if (g_track && n > g_largest) g_largest = n;
}
static void on_free(const volatile void*) {}
static const int g_hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
#else
// (malloc/free behind new/delete is the point here, so gcc's mismatch warning is silenced.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  if (g_track && n > g_largest) g_largest = n;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

namespace {
std::string bytes_of(const char* s, size_t n) { return std::string(s, n); }
// 69 bytes: a valid PNG whose header claims 16000×16000 RGB pixels.
const char kBomb[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x3e\x80\x00\x00\x3e\x80\x08\x02\x00\x00"
    "\x00\xce\x1c\x48\x89\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\x60\xa0\x3d\x00\x00\x00\x64\x00\x01\x86\x64\x3c"
    "\x35\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";
const char kZero[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x00\x00\x00\x00\x00\x08\x02\x00\x00"
    "\x00\xb4\xe9\xeb\x45";
void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }
}  // namespace

TEST_CASE("image: PNG round trip, errors, decompression bomb", "[data][image]") {
  data::Image img;
  img.width = 5;
  img.height = 3;
  for (int i = 0; i < 45; ++i) img.rgb.push_back(uint8_t(i * 5));
  auto png = io::encode_png(img.rgb.data(), 5, 3);
  auto back = data::decode_image(png, "mem.png");
  CHECK(back.width == 5);
  CHECK(back.height == 3);
  CHECK(back.rgb == img.rgb);
  CHECK_THROWS_WITH(data::decode_image(png.substr(0, png.size() / 2), "half.png"),
                    Catch::Contains("half.png: corrupt or truncated PNG"));
  CHECK_THROWS_WITH(data::decode_image("GIF90a....", "x.gif"),
                    Catch::Contains("x.gif: not a PNG, JPEG, GIF, WebP or BMP image"));
  CHECK_THROWS_WITH(data::decode_image("", "empty.png"), Catch::Contains("empty.png: empty file"));
  CHECK_THROWS_WITH(data::decode_image(std::string("\xff\xd8\xff\xe0garbage", 11), "bad.jpg"),
                    Catch::Contains("bad.jpg: corrupt or truncated JPEG"));
  CHECK_THROWS_WITH(data::decode_image(bytes_of(kZero, sizeof kZero - 1), "zero.png"),
                    Catch::Contains("zero.png: image has zero size (0x0)"));
  const std::string bomb = bytes_of(kBomb, sizeof kBomb - 1);
  REQUIRE(bomb.size() == 69);
  g_largest = 0;
  g_track = true;
  CHECK_THROWS_WITH(data::decode_image(bomb, "bomb.png"),
                    Catch::Contains("bomb.png: image of 16000x16000 pixels exceeds the limit"));
  g_track = false;
  CHECK(g_largest < (size_t(4) << 20));  // nothing above a few MB was allocated
  // A cap given by the caller applies the same way.
  data::ImageLimits small;
  small.max_pixels = 10;
  CHECK_THROWS_WITH(data::decode_image(png, "p.png", small), Catch::Contains("5x3 pixels exceeds the limit of 10"));
}

namespace {
// A 5×3 test picture with distinct channels at every pixel.
std::vector<uint8_t> picture(int w = 5, int h = 3) {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < w * h; ++i) rgb.insert(rgb.end(), {uint8_t(i * 13), uint8_t(255 - i * 7), uint8_t(i * i)});
  return rgb;
}
void put_le(std::string& b, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b += char(v >> (8 * i) & 0xff);
}
// A BMP written field by field: `rows` is the pixel array as stored (padded rows).
std::string bmp(int32_t w, int32_t h, int bpp, uint32_t compression, const std::string& palette,
                const std::string& masks, const std::string& rows, uint32_t colours = 0) {
  std::string info;
  put_le(info, 40, 4), put_le(info, uint32_t(w), 4), put_le(info, uint32_t(h), 4), put_le(info, 1, 2);
  put_le(info, uint32_t(bpp), 2), put_le(info, compression, 4), put_le(info, uint32_t(rows.size()), 4);
  put_le(info, 2835, 4), put_le(info, 2835, 4), put_le(info, colours, 4), put_le(info, 0, 4);
  std::string b = "BM";
  const uint32_t offset = uint32_t(14 + info.size() + masks.size() + palette.size());
  put_le(b, offset + uint32_t(rows.size()), 4), put_le(b, 0, 4), put_le(b, offset, 4);
  return b + info + masks + palette + rows;
}
}  // namespace

TEST_CASE("image: BMP of every bit depth and layout", "[data][image]") {
  const int w = 5, h = 3;
  const auto rgb = picture(w, h);
  auto px = [&](int x, int y, int c) { return rgb[size_t((y * w + x) * 3 + c)]; };
  auto stored = [&](int bpp, bool top_down, auto&& pixel_bytes) {
    std::string rows;
    const int stride = (w * bpp + 31) / 32 * 4;
    for (int r = 0; r < h; ++r) {
      std::string row = pixel_bytes(top_down ? r : h - 1 - r);
      row.resize(size_t(stride), '\0');
      rows += row;
    }
    return rows;
  };
  // 24 bits, bottom-up: BGR.
  auto b24 = bmp(w, h, 24, 0, "", "", stored(24, false, [&](int y) {
                   std::string r;
                   for (int x = 0; x < w; ++x) r += {char(px(x, y, 2)), char(px(x, y, 1)), char(px(x, y, 0))};
                   return r;
                 }));
  auto img = data::decode_image(b24, "a.bmp");
  CHECK(img.width == w);
  CHECK(img.height == h);
  CHECK(img.rgb == rgb);
  // 32 bits, top-down, explicit masks (alpha in the top byte, dropped).
  std::string masks;
  put_le(masks, 0xff0000, 4), put_le(masks, 0xff00, 4), put_le(masks, 0xff, 4);
  auto b32 = bmp(w, -h, 32, 3, "", masks, stored(32, true, [&](int y) {
                   std::string r;
                   for (int x = 0; x < w; ++x) r += {char(px(x, y, 2)), char(px(x, y, 1)), char(px(x, y, 0)), char(x)};
                   return r;
                 }));
  CHECK(data::decode_image(b32, "b.bmp").rgb == rgb);
  // 16 bits 5-6-5: each field scaled as v·255/max.
  std::string m565;
  put_le(m565, 0xf800, 4), put_le(m565, 0x7e0, 4), put_le(m565, 0x1f, 4);
  auto b16 = bmp(w, h, 16, 3, "", m565, stored(16, false, [&](int y) {
                   std::string r;
                   for (int x = 0; x < w; ++x)
                     put_le(r, uint32_t(px(x, y, 0) >> 3) << 11 | uint32_t(px(x, y, 1) >> 2) << 5 | uint32_t(px(x, y, 2) >> 3),
                            2);
                   return r;
                 }));
  auto img16 = data::decode_image(b16, "c.bmp");
  for (int i = 0; i < w * h; ++i) {
    CHECK(int(img16.rgb[size_t(3 * i)]) == (rgb[size_t(3 * i)] >> 3) * 255 / 31);
    CHECK(int(img16.rgb[size_t(3 * i + 1)]) == (rgb[size_t(3 * i + 1)] >> 2) * 255 / 63);
  }
  // 8, 4 and 1 bits through a palette of 3 colours; index 7 is past them and reads as grey 7.
  const std::string palette = std::string("\x10\x20\x30\x00\x40\x50\x60\x00\xf0\xe0\xd0\x00", 12);
  const uint8_t colour[3][3] = {{0x30, 0x20, 0x10}, {0x60, 0x50, 0x40}, {0xd0, 0xe0, 0xf0}};
  auto index = [&](int x, int y) { return (x + y) % 4 == 3 ? 7 : (x + 2 * y) % 3; };
  for (int bpp : {8, 4, 1}) {
    auto bytes = bmp(w, h, bpp, 0, palette, "", stored(bpp, false, [&](int y) {
                       std::string r(size_t((w * bpp + 7) / 8), '\0');
                       for (int x = 0; x < w; ++x) {
                         const int i = bpp == 1 ? index(x, y) % 2 : index(x, y);
                         r[size_t(x * bpp / 8)] = char(uint8_t(r[size_t(x * bpp / 8)]) | i << (8 - bpp - x * bpp % 8));
                       }
                       return r;
                     }),
                     3);
    auto got = data::decode_image(bytes, "p.bmp");
    INFO(bpp << " bits");
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int i = bpp == 1 ? index(x, y) % 2 : index(x, y);
        for (int c = 0; c < 3; ++c)
          CHECK(int(got.rgb[size_t((y * w + x) * 3 + c)]) == (i < 3 ? colour[i][c] : i));
      }
  }
  // Errors name the file and the problem; sizes are checked before anything is allocated.
  CHECK_THROWS_WITH(data::decode_image(b24.substr(0, b24.size() - 1), "t.bmp"),
                    Catch::Contains("t.bmp: truncated BMP") && Catch::Contains("need 48 bytes"));
  CHECK_THROWS_WITH(data::decode_image(b24.substr(0, 20), "h.bmp"), Catch::Contains("h.bmp: truncated BMP"));
  CHECK_THROWS_WITH(data::decode_image(bmp(w, h, 8, 1, palette, "", "", 3), "rle.bmp"),
                    Catch::Contains("rle.bmp: BMP compression 1 (RLE) is not supported"));
  CHECK_THROWS_WITH(data::decode_image(bmp(w, h, 12, 0, "", "", ""), "d.bmp"),
                    Catch::Contains("d.bmp: BMP with 12 bits per pixel"));
  g_largest = 0;
  g_track = true;
  CHECK_THROWS_WITH(data::decode_image(bmp(20000, 20000, 24, 0, "", "", ""), "bomb.bmp"),
                    Catch::Contains("bomb.bmp: image of 20000x20000 pixels exceeds the limit"));
  g_track = false;
  CHECK(g_largest < (size_t(1) << 20));
  CHECK_THROWS_WITH(data::decode_image(bmp(w, h, 24, 0, "", "", "") , "short.bmp"),
                    Catch::Contains("short.bmp: truncated BMP"));
  std::string bad_mask;
  put_le(bad_mask, 0xf0f0, 4), put_le(bad_mask, 0x0f00, 4), put_le(bad_mask, 0xf, 4);
  CHECK_THROWS_WITH(data::decode_image(bmp(1, 1, 16, 3, "", bad_mask, std::string(4, '\0')), "m.bmp"),
                    Catch::Contains("m.bmp: BMP colour mask 0xf0f0 is not one run of bits"));
}

namespace {
struct GifSink {
  std::string bytes;
};
int gif_write(GifFileType* gif, const GifByteType* p, int n) {
  static_cast<GifSink*>(gif->UserData)->bytes.append(reinterpret_cast<const char*>(p), size_t(n));
  return n;
}
// A GIF of one frame of `fw`×`fh` indices at (left, top) on a screen of sw×sh,
// with a 4-colour global table and optionally a transparent index.
std::string gif(int sw, int sh, int left, int top, int fw, int fh, bool interlace, int transparent,
                const std::vector<uint8_t>& idx) {
  GifSink sink;
  int err = 0;
  GifFileType* g = EGifOpen(&sink, gif_write, &err);
  REQUIRE(g);
  GifColorType colours[4] = {{1, 2, 3}, {200, 100, 50}, {10, 250, 90}, {77, 66, 55}};
  ColorMapObject* map = GifMakeMapObject(4, colours);
  EGifSetGifVersion(g, true);
  REQUIRE(EGifPutScreenDesc(g, sw, sh, 2, 0, map) == GIF_OK);
  if (transparent >= 0) {
    const GifByteType gce[4] = {1, 0, 0, GifByteType(transparent)};
    REQUIRE(EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, gce) == GIF_OK);
  }
  REQUIRE(EGifPutImageDesc(g, left, top, fw, fh, interlace, nullptr) == GIF_OK);
  // An interlaced frame's rows go in pass order.
  std::vector<int> order;
  if (interlace) {
    for (int pass = 0; pass < 4; ++pass)
      for (int y = (int[]){0, 4, 2, 1}[pass]; y < fh; y += (int[]){8, 8, 4, 2}[pass]) order.push_back(y);
  } else {
    for (int y = 0; y < fh; ++y) order.push_back(y);
  }
  for (int y : order) {
    std::vector<GifPixelType> line(idx.begin() + y * fw, idx.begin() + (y + 1) * fw);
    REQUIRE(EGifPutLine(g, line.data(), fw) == GIF_OK);
  }
  GifFreeMapObject(map);
  REQUIRE(EGifCloseFile(g, &err) == GIF_OK);
  return sink.bytes;
}
}  // namespace

TEST_CASE("image: GIF first frame as PIL reads it", "[data][image]") {
  const uint8_t colours[4][3] = {{1, 2, 3}, {200, 100, 50}, {10, 250, 90}, {77, 66, 55}};
  for (bool interlace : {false, true}) {
    INFO("interlaced " << interlace);
    const int w = 6, h = 11;  // 11 rows visit every interlace pass
    std::vector<uint8_t> idx;
    for (int i = 0; i < w * h; ++i) idx.push_back(uint8_t((i * 7 + i / w) % 4));
    auto img = data::decode_image(gif(w, h, 0, 0, w, h, interlace, -1, idx), "a.gif");
    REQUIRE(img.width == w);
    REQUIRE(img.height == h);
    for (int i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) CHECK(img.rgb[size_t(3 * i + c)] == colours[idx[size_t(i)]][c]);
  }
  // A 2×2 frame at (3, 1) on a 4×3 screen reaching one column past it: the
  // canvas grows to 5 wide, the rest is the transparent index (2) or index 0.
  const std::vector<uint8_t> small = {1, 3, 3, 1};
  for (int transparent : {-1, 2}) {
    INFO("transparent " << transparent);
    auto img = data::decode_image(gif(4, 3, 3, 1, 2, 2, false, transparent, small), "b.gif");
    REQUIRE(img.width == 5);
    REQUIRE(img.height == 3);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x) {
        const bool in = x >= 3 && y >= 1;
        const int i = in ? small[size_t((y - 1) * 2 + x - 3)] : (transparent >= 0 ? transparent : 0);
        for (int c = 0; c < 3; ++c) CHECK(img.rgb[size_t((y * 5 + x) * 3 + c)] == colours[i][c]);
      }
  }
  const auto good = gif(4, 4, 0, 0, 4, 4, false, -1, std::vector<uint8_t>(16, 1));
  CHECK_THROWS_WITH(data::decode_image(good.substr(0, good.size() - 6), "t.gif"),
                    Catch::Contains("t.gif: corrupt or truncated GIF"));
  CHECK_THROWS_WITH(data::decode_image(good.substr(0, 13 + 12) + ";", "none.gif"),
                    Catch::Contains("none.gif") && Catch::Contains("no image"));
  g_largest = 0;
  g_track = true;
  CHECK_THROWS_WITH(data::decode_image(gif(60000, 60000, 0, 0, 1, 1, false, -1, {0}), "bomb.gif"),
                    Catch::Contains("bomb.gif: image of 60000x60000 pixels exceeds the limit"));
  g_track = false;
  CHECK(g_largest < (size_t(1) << 20));
}

TEST_CASE("image: WebP (lossless round trip, errors)", "[data][image]") {
  const int w = 7, h = 4;
  const auto rgb = picture(w, h);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(rgb.data(), w, h, w * 3, &out);
  REQUIRE(n > 0);
  const std::string bytes(reinterpret_cast<const char*>(out), n);
  WebPFree(out);
  auto img = data::decode_image(bytes, "a.webp");
  CHECK(img.width == w);
  CHECK(img.height == h);
  CHECK(img.rgb == rgb);
  CHECK_THROWS_WITH(data::decode_image(bytes.substr(0, bytes.size() / 2), "t.webp"),
                    Catch::Contains("t.webp: corrupt or truncated WebP"));
  CHECK_THROWS_WITH(data::decode_image(bytes.substr(0, 16), "h.webp"), Catch::Contains("h.webp: corrupt or truncated WebP"));
  data::ImageLimits small;
  small.max_pixels = 20;
  CHECK_THROWS_WITH(data::decode_image(bytes, "c.webp", small), Catch::Contains("7x4 pixels exceeds the limit of 20"));
}

namespace {
// A 16-bit greyscale PNG through libpng's writer (stb writes only 8 bits).
std::string png_grey16(const std::vector<uint16_t>& v, uint32_t w, uint32_t h) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out, [](png_structp p, png_bytep d, png_size_t n) { static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<char*>(d), n); },
      nullptr);
  png_set_IHDR(png, info, w, h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<uint8_t> row(w * 2);
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) row[2 * x] = uint8_t(v[y * w + x] >> 8), row[2 * x + 1] = uint8_t(v[y * w + x]);
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}
// A CMYK JPEG (quality 100) of 8×8 blocks, each one flat colour given as the samples stored.
std::string jpeg_cmyk(const std::vector<std::array<uint8_t, 4>>& blocks) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(8 * blocks.size());
  c.image_height = 8;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(8 * blocks.size() * 4);
  for (size_t x = 0; x < 8 * blocks.size(); ++x) std::memcpy(&row[4 * x], blocks[x / 8].data(), 4);
  while (c.next_scanline < 8) {
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}
}  // namespace

TEST_CASE("image: 16-bit grey PNG and CMYK JPEG, as PIL converts them", "[data][image]") {
  // PIL reads 16-bit grey as integers and clips them at 255 (it does not take the high byte).
  const std::vector<uint16_t> grey = {0, 7, 254, 255, 256, 1000, 65535, 300};
  auto img = data::decode_image(png_grey16(grey, 4, 2), "g16.png");
  REQUIRE(img.width == 4);
  REQUIRE(img.height == 2);
  for (size_t i = 0; i < grey.size(); ++i)
    for (int c = 0; c < 3; ++c) CHECK(int(img.rgb[3 * i + size_t(c)]) == std::min<int>(grey[i], 255));
  // CMYK: samples inverted (Adobe's polarity), then nk − c·nk/255 per channel, nk the stored k.
  const std::vector<std::array<uint8_t, 4>> blocks = {{255, 255, 255, 255}, {0, 0, 0, 255}, {100, 150, 200, 128},
                                                      {30, 220, 90, 10}};
  img = data::decode_image(jpeg_cmyk(blocks), "cmyk.jpg");
  REQUIRE(img.width == 32);
  REQUIRE(img.height == 8);
  for (size_t b = 0; b < blocks.size(); ++b)
    for (int c = 0; c < 3; ++c) {
      const int nk = blocks[b][3], t = (255 - blocks[b][size_t(c)]) * nk + 128;
      const int want = nk - ((t + (t >> 8)) >> 8);
      INFO("block " << b << " channel " << c);
      CHECK(std::abs(int(img.rgb[(b * 8 + 4 + 3 * 32) * 3 + size_t(c)]) - want) <= 1);  // ±1: JPEG's rounding
    }
}

TEST_CASE("image: resize is PIL's antialiased bilinear; normalisation", "[data][image]") {
  data::Image img;
  img.width = 2;
  img.height = 1;
  img.rgb = {10, 20, 30, 20, 40, 60};
  auto r = data::resize_bilinear(img, 1, 1);  // a 2→1 shrink averages both pixels
  CHECK(r.rgb == std::vector<uint8_t>{15, 30, 45});
  auto up = data::resize_bilinear(img, 4, 1);  // PIL 9.4 gives 10, 13, 18, 20 in the red channel
  CHECK(up.rgb[0] == 10);
  CHECK(up.rgb[3] == 13);
  CHECK(up.rgb[6] == 18);
  CHECK(up.rgb[9] == 20);
  auto t = data::image_to_tensor<float>(img);
  CHECK(t.shape() == Shape{1, 3, 1, 2});
  CHECK(t.at({0, 0, 0, 0}) == Approx((10 / 255.0 - 0.485) / 0.229).epsilon(1e-6));
  CHECK(t.at({0, 2, 0, 1}) == Approx((60 / 255.0 - 0.406) / 0.225).epsilon(1e-6));
}

TEST_CASE("base64: padding, line breaks, errors", "[data][base64]") {
  CHECK(data::base64_decode("aGVsbG8=", "t") == "hello");
  CHECK(data::base64_decode("aGVsbG8", "t") == "hello");
  CHECK(data::base64_decode("aGVs\nbG8=\r\n", "t") == "hello");
  CHECK(data::base64_encode("hello") == "aGVsbG8=");
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", std::string("\0\xff\x10", 3)})
    CHECK(data::base64_decode(data::base64_encode(s), "t") == s);
  CHECK_THROWS_WITH(data::base64_decode("aGV*bG8=", "row 3"), Catch::Contains("row 3: invalid base64 character '*'"));
  CHECK_THROWS_WITH(data::base64_decode("aGVsb", "t"), Catch::Contains("truncated"));
  CHECK_THROWS_WITH(data::base64_decode("aG=Vs", "t"), Catch::Contains("after '=' padding"));
}

TEST_CASE("csv: RFC 4180 quoting", "[data][csv]") {
  auto r = data::parse_csv("a,b\r\n\"x, \"\"y\"\"\nz\",2\n\n3,\"\"\n", "t.csv");
  REQUIRE(r.size() == 3);
  CHECK(r[1].fields == std::vector<std::string>{"x, \"y\"\nz", "2"});
  CHECK(r[2].fields == std::vector<std::string>{"3", ""});
  CHECK(r[2].line == 5);
  CHECK_THROWS_WITH(data::parse_csv("a\n\"open", "t.csv"), Catch::Contains("t.csv: line 2: quoted field is never closed"));
}

TEST_CASE("datasets: CSV columns in any order, JSONL paths, batches per preset", "[data][dataset]") {
  data::Image img;
  img.width = img.height = 8;
  img.rgb.assign(8 * 8 * 3, 128);
  const std::string png = io::encode_png(img.rgb.data(), 8, 8), b64 = data::base64_encode(png);
  write("ds_test.csv", "extra,caption,b64string_images\r\n1,\"Hi, there.\"," + b64 + "\r\n2,Yo.,\"" +
                           b64.substr(0, 20) + "\n" + b64.substr(20) + "\"\r\n");
  auto raw = data::read_samples("ds_test.csv");
  REQUIRE(raw.size() == 2);
  CHECK(raw[0].caption == "Hi, there.");
  CHECK(raw[0].where == "ds_test.csv row 1 (line 2)");
  auto cfg = nn::VLMConfig::seemore();
  cfg.img_size = 4;
  data::CharTokenizer vocab;
  data::CaptionDataset<float> ds(raw, cfg, vocab);
  CHECK(ds.num_images() == 2);  // the base64 text differs (a line break), so two cache entries
  ds.repeat(3);
  CHECK(ds.size() == 6);
  auto [tr, va] = ds.split(0.34);
  CHECK(tr.size() == 3);
  CHECK(va == std::vector<int64_t>{3, 4, 5});
  auto b = ds.batch({0, 1});
  CHECK(b.images.shape() == Shape{2, 3, 4, 4});
  CHECK(b.tokens.shape() == Shape{2, 10});
  CHECK(b.targets.shape() == Shape{2, 10});  // seemore: shifted left, <pad> appended
  auto tok = b.tokens.to_vector(), tgt = b.targets.to_vector();
  CHECK(tgt[0] == tok[1]);
  CHECK(tgt[9] == 65);
  CHECK(tok[10 + 3] == 65);  // "Yo." padded
  auto std_cfg = nn::VLMConfig::standard();
  std_cfg.img_size = 4;
  data::CaptionDataset<float> sds(raw, std_cfg, data::CharTokenizer(data::reference_characters(), true));
  auto sb = sds.batch({1});
  CHECK(sb.targets.shape() == Shape{1, 4});  // standard: [Y, o, ., <eos>]
  CHECK(sb.targets.to_vector()[3] == 66);
  CHECK(sb.targets.to_vector()[0] == sb.tokens.to_vector()[0]);

  std::system("mkdir -p ds_dir/sub");
  io::write_png("ds_dir/sub/a.png", img.rgb.data(), 8, 8);
  write("ds_dir/m.jsonl", "{\"image\": \"sub/a.png\", \"caption\": \"ok\"}\n\n");
  auto j = data::read_samples("ds_dir/m.jsonl");
  REQUIRE(j.size() == 1);
  CHECK(j[0].image_path == "ds_dir/sub/a.png");
  write("ds_dir/bad.jsonl", "{\"image\": \"sub/a.png\"}\n");
  CHECK_THROWS_WITH(data::read_samples("ds_dir/bad.jsonl"), Catch::Contains("bad.jsonl line 1: field 'caption'"));
  write("ds_dir/x.txt", "");
  CHECK_THROWS_WITH(data::read_samples("ds_dir/x.txt"), Catch::Contains("unknown data format"));
}

TEST_CASE("synthetic scenes are deterministic and captioned", "[data][synthetic]") {
  auto a = data::synthetic_scene(1, 7, 64), b = data::synthetic_scene(1, 7, 64), c = data::synthetic_scene(1, 8, 64);
  CHECK(a.caption == b.caption);
  CHECK(a.image.rgb == b.image.rgb);
  CHECK(a.image.rgb != c.image.rgb);
  std::set<std::string> captions;
  for (uint64_t i = 0; i < 300; ++i) {
    auto s = data::synthetic_scene(2, i, 32);
    captions.insert(s.caption);
    auto w = s.caption.substr(0, s.caption.find(' '));
    CHECK((w == "a" || w == "two" || w == "three"));
  }
  CHECK(captions.size() > 100);  // many distinct captions: the image matters
  data::CharTokenizer vocab;
  for (auto& cap : captions) CHECK_NOTHROW(vocab.encode(cap));
}
