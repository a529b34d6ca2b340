#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>
#include <webp/encode.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <new>

using namespace seemore;
using namespace std::string_literals;

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
                    Catch::Contains("x.gif: not a PNG, JPEG, GIF, WebP, BMP, TIFF, PNM, SGI, PCX, ICO, CUR or TGA image"));
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
  CHECK_THROWS_WITH(data::decode_image(bmp(w, h, 8, 4, palette, "", "", 3), "jpeg.bmp"),
                    Catch::Contains("jpeg.bmp: BMP compression 4 (JPEG) is not supported"));
  CHECK_THROWS_WITH(data::decode_image(bmp(w, h, 24, 1, "", "", std::string(8, '\0')), "r24.bmp"),
                    Catch::Contains("r24.bmp: BMP compression 1 (RLE8) with 24 bits per pixel"));
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

TEST_CASE("image: ICO and CUR open the image PIL opens", "[data][image]") {
  // Three entries: 4×2 and 8×8 DIBs (24-bit) and a 4×4 PNG. PIL takes the
  // most pixels: the 8×8 one. Its DIB says height 16 (colour rows + mask).
  auto dib = [&](int w, int h, uint8_t shade) {
    std::string rows;
    const int stride = (w * 3 + 3) / 4 * 4, mask_stride = (w + 31) / 32 * 4;
    for (int y = 0; y < h; ++y) {
      std::string row;
      for (int x = 0; x < w; ++x) row += {char(shade), char(x * 16), char(y * 16)};  // B, G, R
      row.resize(size_t(stride), '\0');
      rows += row;
    }
    rows += std::string(size_t(mask_stride * h), '\x55');  // the AND mask: alpha only
    const std::string file = bmp(w, 2 * h, 24, 0, "", "", rows);
    return file.substr(14);  // a DIB has no file header
  };
  data::Image small;
  small.width = 4, small.height = 4;
  small.rgb.assign(48, 200);
  const std::string png = io::encode_png(small.rgb.data(), 4, 4);
  struct Entry {
    int w, h, colours, bpp;
    std::string data;
  };
  auto ico = [&](const std::vector<Entry>& entries) {
    std::string head, blobs;
    put_le(head, 0, 2), put_le(head, 1, 2), put_le(head, uint32_t(entries.size()), 2);
    const uint32_t at = uint32_t(6 + 16 * entries.size());
    for (const auto& e : entries) {
      head += {char(e.w % 256), char(e.h % 256), char(e.colours), '\0'};
      put_le(head, 1, 2), put_le(head, uint32_t(e.bpp), 2), put_le(head, uint32_t(e.data.size()), 4);
      put_le(head, at + uint32_t(blobs.size()), 4);
      blobs += e.data;
    }
    return head + blobs;
  };
  auto img = data::decode_image(ico({{4, 2, 0, 24, dib(4, 2, 1)}, {8, 8, 0, 24, dib(8, 8, 7)}, {4, 4, 0, 32, png}}),
                                "a.ico");
  REQUIRE(img.width == 8);
  REQUIRE(img.height == 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) {
      const uint8_t* p = img.rgb.data() + (y * 8 + x) * 3;
      CHECK(int(p[0]) == (7 - y) * 16);  // stored bottom-up
      CHECK(int(p[1]) == x * 16);
      CHECK(int(p[2]) == 7);
    }
  // Equal sizes: the greater colour depth, then the last entry.
  img = data::decode_image(ico({{4, 4, 0, 32, png}, {4, 4, 0, 24, dib(4, 4, 9)}}), "b.ico");
  CHECK(img.rgb == small.rgb);
  img = data::decode_image(ico({{4, 4, 0, 24, dib(4, 4, 9)}, {4, 4, 0, 24, dib(4, 4, 33)}}), "c.ico");
  CHECK(int(img.rgb[2]) == 33);
  CHECK_THROWS_WITH(data::decode_image(ico({{4, 4, 0, 24, "\x28\0\0\0"s}}).substr(0, 20), "d.ico"),
                    Catch::Contains("d.ico: truncated ICO directory") || Catch::Contains("d.ico: ICO entry 0 starts"));
  CHECK_THROWS_WITH(data::decode_image(ico({{4, 4, 0, 24, dib(4, 4, 9).substr(0, 60)}}), "e.ico"),
                    Catch::Contains("e.ico (icon image): truncated BMP"));
  CHECK_THROWS_WITH(data::decode_image("\0\0\1\0\0\0"s, "f.ico"), Catch::Contains("f.ico: ICO file with no images"));

  // Cursors: the first entry, then a later one only if both wider and taller
  // by its directory bytes; DIB entries only.
  auto cur = [&](const std::vector<Entry>& entries) {
    std::string b = ico(entries);
    b[2] = 2;
    return b;
  };
  img = data::decode_image(cur({{8, 8, 0, 24, dib(8, 8, 7)}, {16, 4, 0, 24, dib(16, 4, 9)}, {4, 4, 0, 24, dib(4, 4, 5)}}),
                           "a.cur");
  CHECK(img.width == 8);
  CHECK(int(img.rgb[2]) == 7);
  img = data::decode_image(cur({{4, 4, 0, 24, dib(4, 4, 5)}, {8, 8, 0, 24, dib(8, 8, 7)}, {16, 16, 0, 24, dib(16, 16, 9)}}),
                           "b.cur");
  CHECK(img.width == 16);
  CHECK(int(img.rgb[2]) == 9);
  CHECK_THROWS_WITH(data::decode_image(cur({{4, 4, 0, 32, png}}), "c.cur"),
                    Catch::Contains("c.cur: CUR entry 0 is a PNG, which is not supported"));
  CHECK_THROWS_WITH(data::decode_image("\0\0\2\0\0\0"s, "d.cur"), Catch::Contains("d.cur: not a PNG"));
}

TEST_CASE("image: RLE8 and RLE4 BMPs as PIL 9.4 reads them", "[data][image]") {
  // A grey-ramp palette (index i is grey level 17·i) of 16 colours, so each
  // pixel's level gives its index back.
  std::string palette;
  for (int i = 0; i < 16; ++i) palette += {char(17 * i), char(17 * i), char(17 * i), '\0'};
  auto indices = [](const data::Image& img) {
    std::vector<int> v;
    for (size_t i = 0; i < img.rgb.size(); i += 3) v.push_back(img.rgb[i] / 17);
    return v;
  };
  auto u8 = [](std::initializer_list<int> v) {
    std::string s;
    for (int c : v) s += char(c);
    return s;
  };
  // Every expectation below is what PIL 9.4 gives for the same bytes.
  // RLE8, 4×3, bottom-up (the first row stored is the bottom one).
  //   row 2 (bottom): a run of 3 × index 1, cut at the row's end from a count of 5; end of line
  //   row 1: absolute 2, 3, 4 (+ a pad byte: the file offset is odd after it); end of line
  //   row 0 (top): a delta escape as PIL reads it: 4 bytes, moving by (2, 0) → two 0s; then a run of 2 × 5.
  const std::string rle8 = u8({5, 1, 0, 0, /**/ 0, 3, 2, 3, 4, 0, 0, 0, /**/ 0, 2, 9, 9, 2, 0, 2, 5, 0, 1});
  auto img = data::decode_image(bmp(4, 3, 8, 1, palette, "", rle8, 16), "a.bmp");
  CHECK(indices(img) == std::vector<int>{0, 0, 5, 5, /**/ 2, 3, 4, 0, /**/ 1, 1, 1, 1});
  // RLE4: runs alternate two nibbles; an absolute run of 5 reads 5/2 = 2
  // bytes (4 pixels), as PIL does, yet moves the row position by 5.
  const std::string rle4 = u8({3, 0x12, 0, 0, /**/ 0, 5, 0x34, 0x56, 0, 1});
  img = data::decode_image(bmp(4, 2, 4, 2, palette, "", rle4, 16), "b.bmp");
  CHECK(indices(img) == std::vector<int>{3, 4, 5, 6, /**/ 1, 2, 1, 0});
  // Top-down (negative height) is honoured as for uncompressed files.
  img = data::decode_image(bmp(4, -2, 4, 2, palette, "", rle4, 16), "c.bmp");
  CHECK(indices(img) == std::vector<int>{1, 2, 1, 0, /**/ 3, 4, 5, 6});
  // Ending before every pixel is there is an error (PIL: "not enough image data").
  CHECK_THROWS_WITH(data::decode_image(bmp(4, 3, 8, 1, palette, "", u8({4, 1, 0, 1}), 16), "short.bmp"),
                    Catch::Contains("short.bmp: truncated RLE BMP: its data ends after 4 of the 4x3 pixels"));
  CHECK_THROWS_WITH(data::decode_image(bmp(4, 3, 8, 1, palette, "", u8({0, 2, 1, 1, 1}), 16), "delta.bmp"),
                    Catch::Contains("delta.bmp: truncated RLE BMP (a delta escape"));
  // Every cut of a valid file is an error or a picture, never a crash.
  const std::string whole = bmp(4, 3, 8, 1, palette, "", rle8, 16);
  for (size_t n = 0; n <= whole.size(); ++n) {
    try {
      (void)data::decode_image(whole.substr(0, n), "cut.bmp");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("cut.bmp"));
    }
  }
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

TEST_CASE("image: animated WebP gives its first frame on the canvas", "[data][image]") {
  // An animation assembled chunk by chunk (VP8X, ANIM, two ANMF frames around
  // lossless bitstreams): a 10×8 canvas, the first frame 5×4 at (2, 2).
  auto le = [](uint32_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char(v >> (8 * i) & 0xff);
    return s;
  };
  auto chunk = [&](const std::string& tag, const std::string& body) {
    return tag + le(uint32_t(body.size()), 4) + body + (body.size() % 2 ? std::string(1, '\0') : "");
  };
  auto lossless = [](const std::vector<uint8_t>& rgb, int w, int h) {
    uint8_t* out = nullptr;
    const size_t n = WebPEncodeLosslessRGB(rgb.data(), w, h, w * 3, &out);
    REQUIRE(n > 12);
    std::string s(reinterpret_cast<const char*>(out) + 12, n - 12);  // the VP8L chunk after "RIFF....WEBP"
    WebPFree(out);
    return s;
  };
  const int cw = 10, ch = 8, fw = 5, fh = 4;
  const auto first = picture(fw, fh), second = picture(cw, ch);
  auto frame = [&](int x, int y, int w, int h, const std::string& bits) {
    return chunk("ANMF", le(uint32_t(x / 2), 3) + le(uint32_t(y / 2), 3) + le(uint32_t(w - 1), 3) +
                             le(uint32_t(h - 1), 3) + le(100, 3) + std::string(1, '\2') + bits);
  };
  const std::string body = "WEBP" + chunk("VP8X", std::string(1, '\x02') + std::string(3, '\0') + le(cw - 1, 3) + le(ch - 1, 3)) +
                           chunk("ANIM", le(0xff336699, 4) + le(0, 2)) + frame(2, 2, fw, fh, lossless(first, fw, fh)) +
                           frame(0, 0, cw, ch, lossless(second, cw, ch));
  const std::string file = "RIFF" + le(uint32_t(body.size()), 4) + body;
  auto img = data::decode_image(file, "anim.webp");
  REQUIRE(img.width == cw);
  REQUIRE(img.height == ch);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x)
      for (int c = 0; c < 3; ++c) {
        const bool inside = x >= 2 && x < 2 + fw && y >= 2 && y < 2 + fh;
        const int want = inside ? first[size_t(((y - 2) * fw + (x - 2)) * 3 + c)] : 0;  // the background colour is not used
        INFO("x " << x << " y " << y << " c " << c);
        CHECK(int(img.rgb[size_t((y * cw + x) * 3 + c)]) == want);
      }
  CHECK_THROWS_WITH(data::decode_image(file.substr(0, file.size() - 40), "cut.webp"),
                    Catch::Contains("cut.webp: corrupt or truncated"));
  data::ImageLimits small;
  small.max_pixels = 79;
  CHECK_THROWS_WITH(data::decode_image(file, "big.webp", small), Catch::Contains("10x8 pixels exceeds the limit of 79"));
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

namespace {
// A TIFF written by libtiff: `rows` holds the page's rows as the file stores
// them (packed MSB first below 8 bits, 16-bit samples in host order; libtiff
// swaps them for a big-endian file). Strips of `rows_per_strip` rows, or
// `tile`×`tile` tiles (8 and 16 bits only).
struct TiffSpec {
  uint32_t w = 0, h = 0;
  uint16_t bits = 8, spp = 3, photometric = PHOTOMETRIC_RGB, compression = COMPRESSION_NONE, predictor = 1;
  uint16_t format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, fillorder = FILLORDER_MSB2LSB;
  std::vector<uint16_t> extra, colormap;  // colormap: all reds, then greens, then blues
  uint32_t tile = 0, rows_per_strip = 2;
  bool big_endian = false;
};
std::string tiff_file(const TiffSpec& s, const std::vector<uint8_t>& rows) {
  static int serial = 0;
  const auto path = std::filesystem::temp_directory_path() / ("seemore_test_" + std::to_string(::getpid()) + "_" +
                                                              std::to_string(serial++) + ".tif");
  TIFF* t = TIFFOpen(path.c_str(), s.big_endian ? "wb" : "wl");
  REQUIRE(t);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, s.w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, s.h);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, s.bits);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, s.spp);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, s.format);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, s.planar);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, s.photometric);
  TIFFSetField(t, TIFFTAG_COMPRESSION, s.compression);
  TIFFSetField(t, TIFFTAG_FILLORDER, s.fillorder);
  if (s.predictor != 1) TIFFSetField(t, TIFFTAG_PREDICTOR, s.predictor);
  if (!s.extra.empty()) TIFFSetField(t, TIFFTAG_EXTRASAMPLES, uint16_t(s.extra.size()), s.extra.data());
  const size_t n = s.colormap.size() / 3;
  if (n) TIFFSetField(t, TIFFTAG_COLORMAP, s.colormap.data(), s.colormap.data() + n, s.colormap.data() + 2 * n);
  if (s.photometric == PHOTOMETRIC_YCBCR && s.compression == COMPRESSION_JPEG)
    TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
  const size_t row_bytes = (size_t(s.w) * s.spp * s.bits + 7) / 8;
  REQUIRE(rows.size() == row_bytes * s.h);
  if (s.tile) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, s.tile);
    TIFFSetField(t, TIFFTAG_TILELENGTH, s.tile);
    const size_t px = size_t(s.spp) * s.bits / 8, tile_row = s.tile * px;
    std::vector<uint8_t> buf(tile_row * s.tile);
    for (uint32_t y = 0; y < s.h; y += s.tile)
      for (uint32_t x = 0; x < s.w; x += s.tile) {
        std::fill(buf.begin(), buf.end(), 0);
        for (uint32_t r = 0; r < s.tile && y + r < s.h; ++r)
          std::memcpy(buf.data() + r * tile_row, rows.data() + (y + r) * row_bytes + x * px,
                      std::min<size_t>(s.tile, s.w - x) * px);
        REQUIRE(TIFFWriteEncodedTile(t, TIFFComputeTile(t, x, y, 0, 0), buf.data(), tmsize_t(buf.size())) >= 0);
      }
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, s.rows_per_strip);
    std::vector<uint8_t> row(row_bytes);
    for (uint32_t y = 0; y < s.h; ++y) {
      std::memcpy(row.data(), rows.data() + y * row_bytes, row_bytes);  // libtiff may modify what it is given
      REQUIRE(TIFFWriteScanline(t, row.data(), y, 0) == 1);
    }
  }
  TIFFClose(t);
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}
// Sets a SHORT or LONG entry of a little-endian file's first directory.
void patch_tiff_tag(std::string& b, uint16_t tag, uint32_t value) {
  uint32_t ifd = 0;
  uint16_t count = 0;
  std::memcpy(&ifd, b.data() + 4, 4);
  std::memcpy(&count, b.data() + ifd, 2);
  for (uint16_t e = 0; e < count; ++e) {
    const size_t at = ifd + 2 + 12 * size_t(e);
    uint16_t t = 0, type = 0;
    std::memcpy(&t, b.data() + at, 2);
    std::memcpy(&type, b.data() + at + 2, 2);
    if (t != tag) continue;
    if (type == TIFF_SHORT) {
      REQUIRE(value < 65536);
      const uint16_t v = uint16_t(value);
      std::memcpy(&b[at + 8], &v, 2);
    } else {
      REQUIRE(type == TIFF_LONG);
      std::memcpy(&b[at + 8], &value, 4);
    }
    return;
  }
  FAIL("tag " << tag << " not in the directory");
}
std::vector<uint8_t> as_bytes(const std::vector<uint16_t>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
}  // namespace

TEST_CASE("image: TIFF layouts as PIL converts them", "[data][image][tiff]") {
  const uint32_t w = 13, h = 7;  // odd sizes: ragged last strip and tiles
  const auto rgb = picture(int(w), int(h));
  SECTION("8-bit RGB: strips, LZW with the horizontal predictor, Deflate, big-endian tiles") {
    for (uint16_t comp : {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_PACKBITS}) {
      TiffSpec s;
      s.w = w, s.h = h, s.compression = comp, s.predictor = comp == COMPRESSION_LZW ? 2 : 1;
      auto img = data::decode_image(tiff_file(s, rgb), "a.tif");
      INFO("compression " << comp);
      CHECK(img.width == w);
      CHECK(img.height == h);
      CHECK(img.rgb == rgb);
    }
    TiffSpec s;
    s.w = w, s.h = h, s.tile = 16, s.big_endian = true;
    CHECK(data::decode_image(tiff_file(s, rgb), "t.tif").rgb == rgb);
    s.tile = 0, s.fillorder = FILLORDER_LSB2MSB;  // bits reversed in every byte, undone by libtiff
    CHECK(data::decode_image(tiff_file(s, rgb), "f.tif").rgb == rgb);
  }
  SECTION("16-bit RGB keeps the high byte; RGBA drops alpha, premultiplied alpha is divided out") {
    std::vector<uint16_t> v16;
    for (uint8_t v : rgb) v16.push_back(uint16_t(v * 256 + (v * 7 & 255)));
    TiffSpec s;
    s.w = w, s.h = h, s.bits = 16, s.tile = 16, s.big_endian = true;
    CHECK(data::decode_image(tiff_file(s, as_bytes(v16)), "16.tif").rgb == rgb);
    std::vector<uint8_t> rgba;
    const uint8_t alphas[] = {0, 1, 64, 128, 255};
    for (uint32_t i = 0; i < w * h; ++i) {
      const uint8_t a = alphas[i % 5];
      for (int c = 0; c < 3; ++c) rgba.push_back(uint8_t(rgb[3 * i + c] * a / 255));
      rgba.push_back(a);
    }
    s = TiffSpec{};
    s.w = w, s.h = h, s.spp = 4, s.extra = {EXTRASAMPLE_UNASSALPHA};
    auto img = data::decode_image(tiff_file(s, rgba), "rgba.tif");
    for (uint32_t i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) CHECK(img.rgb[3 * i + c] == rgba[4 * i + c]);
    s.extra = {EXTRASAMPLE_ASSOCALPHA};
    img = data::decode_image(tiff_file(s, rgba), "rgba.tif");
    for (uint32_t i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) {
        const int a = rgba[4 * i + 3], v = rgba[4 * i + c];
        const int want = a == 0 ? 0 : a == 255 ? v : std::min(v * 255 / a, 255);  // PIL's "RGBa": truncated
        CHECK(int(img.rgb[3 * i + c]) == want);
      }
  }
  SECTION("grey of 1, 2, 4, 8 and 16 bits, min-is-white, palettes") {
    for (uint16_t bits : {1, 2, 4, 8})
      for (uint16_t photo : {PHOTOMETRIC_MINISBLACK, PHOTOMETRIC_MINISWHITE, PHOTOMETRIC_PALETTE}) {
        const unsigned levels = 1u << bits;
        std::vector<unsigned> idx(w * h);
        for (uint32_t i = 0; i < w * h; ++i) idx[i] = (i * 5 + i / w) % levels;
        std::vector<uint8_t> rows;
        for (uint32_t y = 0; y < h; ++y) {  // each row packed MSB first, padded to a byte
          std::vector<uint8_t> row((w * bits + 7) / 8, 0);
          for (uint32_t x = 0; x < w; ++x)
            row[x * bits / 8] |= uint8_t(idx[y * w + x] << (8 - bits - (x * bits) % 8));
          rows.insert(rows.end(), row.begin(), row.end());
        }
        TiffSpec s;
        s.w = w, s.h = h, s.bits = bits, s.spp = 1, s.photometric = photo, s.rows_per_strip = 3;
        for (unsigned i = 0; i < 3 * levels; ++i) s.colormap.push_back(uint16_t(i * 4099 + 11));
        if (photo != PHOTOMETRIC_PALETTE) s.colormap.clear();
        auto img = data::decode_image(tiff_file(s, rows), "g.tif");
        INFO("bits " << bits << " photometric " << photo);
        REQUIRE(img.rgb.size() == size_t(w) * h * 3);
        for (uint32_t i = 0; i < w * h; ++i) {
          const unsigned level = idx[i] * 255 / (levels - 1);
          for (int c = 0; c < 3; ++c) {
            const unsigned want = photo == PHOTOMETRIC_PALETTE ? s.colormap[c * levels + idx[i]] >> 8
                                  : photo == PHOTOMETRIC_MINISWHITE ? 255 - level
                                                                    : level;
            CHECK(img.rgb[3 * i + c] == want);
          }
        }
      }
    // 16-bit grey is clipped at 255 (PIL's "I;16"), and a min-is-white one is not inverted, as in PIL.
    const std::vector<uint16_t> grey = {0, 7, 254, 255, 256, 1000, 65535, 300};
    for (uint16_t photo : {PHOTOMETRIC_MINISBLACK, PHOTOMETRIC_MINISWHITE}) {
      TiffSpec s;
      s.w = 4, s.h = 2, s.bits = 16, s.spp = 1, s.photometric = photo;
      auto img = data::decode_image(tiff_file(s, as_bytes(grey)), "g16.tif");
      for (size_t i = 0; i < grey.size(); ++i) CHECK(int(img.rgb[3 * i]) == std::min<int>(grey[i], 255));
    }
  }
  SECTION("CMYK, 8 and 16 bits, by PIL's formula") {
    // Expected values printed by PIL 9.4: Image.frombytes("CMYK", ...).convert("RGB").
    const std::vector<uint8_t> cmyk = {100, 50, 10, 128, 200, 200, 200, 255, 10, 20, 30, 0, 100, 100, 100, 50, 255, 1, 2, 3};
    const std::vector<uint8_t> want = {77, 102, 122, 0, 0, 0, 245, 235, 225, 125, 125, 125, 0, 251, 250};
    TiffSpec s;
    s.w = 5, s.h = 1, s.spp = 4, s.photometric = PHOTOMETRIC_SEPARATED;
    CHECK(data::decode_image(tiff_file(s, cmyk), "cmyk.tif").rgb == want);
    std::vector<uint16_t> c16;
    for (uint8_t v : cmyk) c16.push_back(uint16_t(v * 256 + 200));
    s.bits = 16;
    CHECK(data::decode_image(tiff_file(s, as_bytes(c16)), "cmyk16.tif").rgb == want);
  }
  SECTION("YCbCr in JPEG (2×2 chroma subsampling): libjpeg's conversion") {
    const uint32_t W = 40, H = 32;
    std::vector<uint8_t> smooth;
    for (uint32_t y = 0; y < H; ++y)
      for (uint32_t x = 0; x < W; ++x) smooth.insert(smooth.end(), {uint8_t(x * 6), uint8_t(y * 7), uint8_t(128)});
    TiffSpec s;
    s.w = W, s.h = H, s.photometric = PHOTOMETRIC_YCBCR, s.compression = COMPRESSION_JPEG, s.rows_per_strip = 16;
    auto img = data::decode_image(tiff_file(s, smooth), "y.tif");
    REQUIRE(img.rgb.size() == smooth.size());
    double err = 0;
    for (size_t i = 0; i < smooth.size(); ++i) err += std::abs(int(img.rgb[i]) - int(smooth[i]));
    CHECK(err / double(smooth.size()) < 3.0);  // lossy, but the same picture
  }
  SECTION("refusals name the field; damage and bombs are errors, not crashes") {
    TiffSpec s;
    s.w = w, s.h = h;
    s.planar = PLANARCONFIG_SEPARATE;
    CHECK_THROWS_WITH(data::decode_image(tiff_file(s, rgb), "p.tif"),
                      Catch::Contains("p.tif: unsupported TIFF: PlanarConfiguration 2"));
    s.planar = PLANARCONFIG_CONTIG, s.format = SAMPLEFORMAT_INT;
    CHECK_THROWS_WITH(data::decode_image(tiff_file(s, rgb), "i.tif"), Catch::Contains("i.tif: unsupported TIFF: SampleFormat 2"));
    s.format = SAMPLEFORMAT_UINT, s.photometric = PHOTOMETRIC_YCBCR;
    CHECK_THROWS_WITH(data::decode_image(tiff_file(s, rgb), "y.tif"),
                      Catch::Contains("y.tif: unsupported TIFF: Photometric 6 with 3 samples of 8 bits"));
    s.photometric = PHOTOMETRIC_CIELAB;
    CHECK_THROWS_WITH(data::decode_image(tiff_file(s, rgb), "lab.tif"), Catch::Contains("unsupported TIFF: Photometric 8"));

    s = TiffSpec{};
    s.w = w, s.h = h, s.compression = COMPRESSION_LZW;
    const std::string good = tiff_file(s, rgb);
    // Cut anywhere: either an error naming the file or, where only padding
    // was lost, the picture; never a crash (the sanitizer build runs this).
    for (size_t n = 0; n < good.size(); n += 3) {
      try {
        (void)data::decode_image(good.substr(0, n), "cut.tif");
      } catch (const Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("cut.tif"));
      }
    }
    // A header claiming 60000×60000 pixels: refused before any pixel memory.
    TiffSpec one;
    one.w = 1, one.h = 1;
    std::string bomb = tiff_file(one, {1, 2, 3});
    patch_tiff_tag(bomb, TIFFTAG_IMAGEWIDTH, 60000);
    patch_tiff_tag(bomb, TIFFTAG_IMAGELENGTH, 60000);
    g_largest = 0;
    g_track = true;
    CHECK_THROWS_WITH(data::decode_image(bomb, "bomb.tif"), Catch::Contains("bomb.tif: image of 60000x60000 pixels"));
    g_track = false;
    CHECK(g_largest < (size_t(4) << 20));
    // A tile far bigger than the page it tiles: refused before it is allocated.
    one.tile = 16;
    std::string tiled = tiff_file(one, {1, 2, 3});
    CHECK(data::decode_image(tiled, "ok.tif").rgb == std::vector<uint8_t>{1, 2, 3});
    patch_tiff_tag(tiled, TIFFTAG_TILEWIDTH, 65520);
    patch_tiff_tag(tiled, TIFFTAG_TILELENGTH, 65520);
    g_largest = 0;
    g_track = true;
    CHECK_THROWS_WITH(data::decode_image(tiled, "tile.tif"), Catch::Contains("tile.tif: corrupt or truncated TIFF (tile of 12878611200 bytes for a 1x1 page"));
    g_track = false;
    CHECK(g_largest < (size_t(64) << 20));
  }
}

TEST_CASE("image: PNM (P1 to P6) as PIL 9.4 reads it", "[data][image]") {
  // Each expectation is what PIL 9.4 prints for the same bytes (Image.open(...).convert("RGB")).
  auto grey = [](const data::Image& img) {
    std::vector<int> v;
    for (size_t i = 0; i < img.rgb.size(); i += 3) v.push_back(img.rgb[i]);
    return v;
  };
  auto dec = [](const std::string& bytes) { return data::decode_image(bytes, "a.pnm"); };
  CHECK(grey(dec("P2\n3 1\n2\n0 1 2")) == std::vector<int>{0, 128, 255});  // round half to even: 127.5 → 128
  CHECK(grey(dec("P5\n2 1\n1000\n\x00\x03\x03\xe8"s)) == std::vector<int>{197, 255});  // "I": 3/1000 of 65535, clipped
  CHECK(grey(dec("P5\n2 1\n65535\n\x01\x00\x00\xfe"s)) == std::vector<int>{255, 254});  // 16 bits clipped, not scaled
  CHECK(dec("P6\n1 1\n7\n\x07\x03\x09").rgb == std::vector<uint8_t>{255, 109, 255});  // 9 > maxval: clipped
  CHECK(grey(dec("P4\n10 1\n\xa0\x40")) == std::vector<int>{0, 255, 0, 255, 255, 255, 255, 255, 255, 0});
  CHECK(grey(dec("P1\n3 1\n101")) == std::vector<int>{0, 255, 0});
  CHECK(grey(dec("P2\n2 1\n255\n1#c\n2 3")) == std::vector<int>{12, 3});  // the comment glues 1 and 2
  CHECK(grey(dec("P2\n1 1\n255\n-4")) == std::vector<int>{252});          // wraps as PIL's o8
  CHECK(grey(dec("P2\n3 1\n255\n5")) == std::vector<int>{5, 5, 5});       // a last number repeats to fill
  CHECK(grey(dec("P2 #x\n3\n1 255 7 8 9")) == std::vector<int>{7, 8, 9}); // a comment in the header
  {
    // PIL reads plain data in 1 MiB blocks: a number cut by a block end is
    // stitched to the next block (125), and the cut piece stays and is
    // stitched again to the next block after one that ends on whitespace
    // (the last number reads 129, not 9).
    std::string big = "P2\n1024 1024\n255\n";
    for (int i = 0; i < 524287; ++i) big += "0 ";
    big += "12" "5 ";
    for (int i = 0; i < 524287; ++i) big += "0 ";
    big += "9 \n";
    const auto v = grey(dec(big));
    REQUIRE(v.size() == 1048576);
    CHECK(v[524287] == 125);
    CHECK(v.back() == 129);
    CHECK(std::count_if(v.begin(), v.end(), [](int x) { return x != 0; }) == 2);
  }
  const std::string rgb = "P6\n2 1\n255\n\x01\x02\x03\xfd\xfe\xff"s;
  CHECK(dec(rgb).rgb == std::vector<uint8_t>{1, 2, 3, 253, 254, 255});
  CHECK(dec("P3\n2 1\n1000\n0 500 1000 1 2 3").rgb == std::vector<uint8_t>{0, 128, 255, 0, 1, 1});

  CHECK_THROWS_WITH(dec(rgb.substr(0, rgb.size() - 1)), Catch::Contains("a.pnm: truncated PNM: 2x1 pixels need 6 bytes"));
  CHECK_THROWS_WITH(dec("P2\n3 1\n255\n1 2 3 \n"s.substr(0, 15)), Catch::Contains("a.pnm: truncated PNM: 2 of the 3"));
  CHECK_THROWS_WITH(dec("P2\n1 1\n100\n101"), Catch::Contains("a.pnm: PNM data: value 101 is above maxval 100"));
  CHECK_THROWS_WITH(dec("P2\n1 1\n255\nx"), Catch::Contains("a.pnm: PNM data: 'x' is not a number"));
  CHECK_THROWS_WITH(dec("P1\n2 1\n12"), Catch::Contains("a.pnm: PBM data: '2' is not 0 or 1"));
  CHECK_THROWS_WITH(dec("P5\n1 1\n0\n\x00"s), Catch::Contains("a.pnm: PNM maxval 0 is not in 1..65535"));
  CHECK_THROWS_WITH(dec("P5\n12345678901 1\n255\n"), Catch::Contains("a.pnm: PNM header width '12345678901...' is too long"));
  CHECK_THROWS_WITH(dec("P5\n"), Catch::Contains("a.pnm: truncated PNM header (no width)"));
  CHECK_THROWS_WITH(dec("P6\n3 x\n"), Catch::Contains("a.pnm: PNM header height 'x' is not a number"));
  CHECK_THROWS_WITH(dec("P6x 1 1 255\n"), Catch::Contains("a.pnm: not a PNG"));
  g_largest = 0;
  g_track = true;
  CHECK_THROWS_WITH(dec("P6\n60000 60000\n255\n"), Catch::Contains("a.pnm: image of 60000x60000 pixels exceeds the limit"));
  g_track = false;
  CHECK(g_largest < (size_t(1) << 20));
}

TEST_CASE("image: TGA as PIL 9.4 reads it", "[data][image]") {
  // Each expectation is what PIL 9.4 prints for the same bytes (Image.open(...).convert("RGB")).
  // tga(): the 18-byte header, then the ID, the colour map and the pixels.
  auto tga = [](int type, int w, int h, int depth, int flags, const std::string& pixels, int map_type = 0,
                int map_start = 0, int map_len = 0, int map_depth = 0, const std::string& map = "",
                const std::string& id = "") {
    std::string b;
    for (int v : {int(id.size()), map_type, type}) b += char(v);
    for (int v : {map_start, map_len}) b += char(v & 0xff), b += char(v >> 8);
    b += char(map_depth);
    for (int v : {0, 0, w, h}) b += char(v & 0xff), b += char(v >> 8);
    b += char(depth), b += char(flags);
    return b + id + map + pixels;
  };
  auto dec = [](const std::string& bytes) { return data::decode_image(bytes, "a.tga").rgb; };
  using V = std::vector<uint8_t>;
  // Bottom-up unless flag 0x20; flag 0x10 mirrors; BGR(A) stored, alpha dropped.
  CHECK(dec(tga(2, 1, 2, 24, 0, "\x01\x02\x03\x04\x05\x06")) == V{6, 5, 4, 3, 2, 1});
  CHECK(dec(tga(2, 2, 1, 24, 0x10, "\x01\x02\x03\x04\x05\x06")) == V{6, 5, 4, 3, 2, 1});
  CHECK(dec(tga(2, 1, 1, 32, 0x28, "\x01\x02\x03\x00"s, 0, 0, 0, 0, "", "an id")) == V{3, 2, 1});
  // 16 bits: x1R5G5B5, each channel c·255/31 truncated (1 → 8, 16 → 131).
  CHECK(dec(tga(2, 3, 1, 16, 0x20, "\x00\x7c\x1f\x80\x02\x42"s)) == V{255, 0, 0, 0, 0, 255, 131, 131, 16});
  // Grey: 1 bit (1 white, rows padded to bytes), 8 bits, 16 bits (grey, alpha).
  CHECK(dec(tga(3, 10, 1, 1, 0x20, "\xb0\x40"s)) ==
        V{255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255});
  CHECK(dec(tga(3, 2, 1, 16, 0x20, "\x0a\x14\x1e\x28"s)) == V{10, 10, 10, 30, 30, 30});
  // A colour map after `start` zero entries; past it, PIL's grey ramp; 16-bit entries as above.
  CHECK(dec(tga(1, 3, 1, 8, 0x20, "\x00\x02\xc8"s, 1, 2, 1, 24, "\x01\x02\x03")) == V{0, 0, 0, 3, 2, 1, 200, 200, 200});
  CHECK(dec(tga(1, 2, 1, 8, 0x20, "\x00\x01"s, 1, 0, 2, 16, "\x00\x7c\x1f\x00"s)) == V{255, 0, 0, 0, 0, 255});
  // A map with 24-bit entries colours a grey image; one of 8-bit entries is not even skipped.
  CHECK(dec(tga(3, 2, 1, 8, 0x20, "\x00\x05"s, 1, 0, 1, 24, "\x09\x08\x07")) == V{7, 8, 9, 5, 5, 5});
  CHECK(dec(tga(3, 1, 1, 8, 0x20, "\x01", 1, 0, 1, 8, "\x09")) == V{9, 9, 9});
  // Run-length: runs within a row; a literal packet runs on to the next rows; the rest is ignored.
  CHECK(dec(tga(10, 2, 2, 24, 0x20, "\x81\x01\x02\x03\x81\x04\x05\x06")) == V{3, 2, 1, 3, 2, 1, 6, 5, 4, 6, 5, 4});
  CHECK(dec(tga(11, 2, 3, 8, 0x20, "\x05\x01\x02\x03\x04\x05\x06\x07\x08")) == V{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6});
  CHECK(dec(tga(11, 1, 2, 8, 0, "\x01\x01\x02")) == V{2, 2, 2, 1, 1, 1});
  CHECK(dec(tga(9, 2, 1, 8, 0x20, "\x81\x01", 1, 0, 2, 24, "\x01\x02\x03\x04\x05\x06")) == V{6, 5, 4, 6, 5, 4});

  auto fails = [&](const std::string& bytes, const std::string& what) {
    CHECK_THROWS_WITH(data::decode_image(bytes, "a.tga"), Catch::Contains("a.tga: " + what));
  };
  fails(tga(10, 2, 2, 24, 0x20, "\x82\x01\x02\x03\x00\x04\x05\x06"), "TGA run of 3 pixels at byte 18 crosses the end of its row");
  fails(tga(10, 2, 2, 24, 0x20, "\x81\x01\x02\x03"), "truncated TGA pixel data");
  fails(tga(2, 2, 2, 24, 0x20, "\x01\x02\x03"), "truncated TGA pixel data");
  fails(tga(1, 2, 1, 8, 0x20, "", 1, 0, 3, 24, "\x01\x02\x03"), "truncated TGA colour map");
  fails(tga(2, 1, 1, 8, 0, "\x05"), "TGA image type 2 with 8 bits per pixel is not supported (PIL cannot load it either)");
  // Starting 00 00 01 00 like an icon, but with no icon directory: PIL, and we, go on to TGA.
  fails(tga(1, 2, 1, 16, 0, "\x00\x00\x01\x00"s), "TGA image type 1 with 16 bits per pixel is not supported");
  CHECK(dec(tga(1, 2, 1, 8, 0x20, "\x00\x07"s)) == V{0, 0, 0, 7, 7, 7});
  fails(tga(11, 8, 1, 1, 0x20, "\x80\xaa"), "run-length-encoded 1-bit TGA is not supported");
  fails(tga(1, 2, 1, 8, 0, "\x00\x01"s, 1, 0, 2, 32, std::string(8, '\x01')), "TGA colour map of 32-bit entries");
  fails(tga(2, 1, 1, 24, 0, "\x01\x02\x03", 1, 0, 1, 24, "\x09\x09\x09"), "TGA colour map on a true-colour image");
  fails(tga(1, 2, 1, 8, 0, "\x00\x01"s, 1, 250, 10, 24, std::string(30, '\x01')), "TGA colour map of 250 + 10 entries: more than 256");
  // Headers PIL does not take for TGA: colour-map type 2, depth 15, image type 4, width 0.
  for (auto bad : {tga(3, 1, 1, 8, 0, "\x01", 2), tga(2, 1, 1, 15, 0, "\x01\x02"), tga(4, 1, 1, 8, 0, "\x01"),
                   tga(3, 0, 1, 8, 0, "\x01")})
    fails(bad, "not a PNG, JPEG, GIF, WebP, BMP, TIFF, PNM, SGI, PCX, ICO, CUR or TGA image");
  g_largest = 0;
  g_track = true;
  fails(tga(2, 65535, 65535, 24, 0, ""), "image of 65535x65535 pixels exceeds the limit");
  g_track = false;
  CHECK(g_largest < (size_t(1) << 20));
}

TEST_CASE("image: SGI as PIL 9.4 reads it", "[data][image]") {
  // Each expectation is what PIL 9.4 prints for the same bytes (Image.open(...).convert("RGB")).
  auto header = [](int rle, int bpc, int dims, int w, int h, int z) {
    std::string b = "\x01\xda"s + char(rle) + char(bpc);
    for (int v : {dims, w, h, z}) b += char(v >> 8), b += char(v & 0xff);
    return b + std::string(512 - b.size(), '\0');
  };
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)}; };
  // Run-length rows (bottom first, the table indexed row + channel · height), lengths as given or as stored.
  auto rle = [&](int w, int h, int z, const std::vector<std::string>& rows, std::vector<uint32_t> lengths = {},
                 int bpc = 1) {
    std::string starts, lens, data;
    for (size_t i = 0; i < rows.size(); ++i) {
      starts += be32(uint32_t(512 + 8 * rows.size() + data.size()));
      lens += be32(lengths.empty() ? uint32_t(rows[i].size()) : lengths[i]);
      data += rows[i];
    }
    return header(1, bpc, z > 1 ? 3 : 2, w, h, z) + starts + lens + data;
  };
  auto dec = [](const std::string& bytes) { return data::decode_image(bytes, "a.sgi").rgb; };
  using V = std::vector<uint8_t>;
  // Verbatim: channel planes, rows bottom-up; 16-bit samples keep their high byte.
  CHECK(dec(header(0, 1, 3, 1, 2, 3) + "\x01\x02\x03\x04\x05\x06") == V{2, 4, 6, 1, 3, 5});
  CHECK(dec(header(0, 2, 2, 2, 1, 1) + "\x12\xff\xab\x01"s) == V{18, 18, 18, 171, 171, 171});
  CHECK(dec(header(0, 1, 1, 2, 2, 1) + "\x01\x02\x03\x04") == V{3, 3, 3, 4, 4, 4, 1, 1, 1, 2, 2, 2});
  // Run-length: a run, a literal, a 0 packet ends the row early.
  CHECK(dec(rle(3, 2, 1, {"\x03\x07\x00"s, "\x83\x01\x02\x03\x00"s})) == V{1, 1, 1, 2, 2, 2, 3, 3, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7});
  CHECK(dec(rle(3, 1, 1, {"\x02\x07\x00"s})) == V{7, 7, 7, 7, 7, 7, 0, 0, 0});
  CHECK(dec(rle(2, 1, 1, {"\x00\x02\x12\x34\x00\x00"s}, {}, 2)) == V{18, 18, 18, 18, 18, 18});
  // A length that runs out on a packet other than the terminator: PIL stops, the image stays black.
  CHECK(dec(rle(3, 2, 1, {"\x03\x07\x00"s, "\x83\x01\x02\x03\x00"s}, {1, 5})) == V(18, 0));
  CHECK(dec(rle(3, 2, 1, {"\x03\x07"s, "\x83\x01\x02\x03\x00"s})) == V(18, 0));
  // Row by row, each row's channels in turn: the stop in row 0's channel 1 comes before row 1's overrun.
  const std::string ok = "\x01\x09\x00"s, over = "\x05\x01\x00"s, stop = "\x01\x05"s;
  CHECK(dec(rle(1, 2, 3, {ok, over, stop, ok, ok, ok}, {3, 3, 1, 3, 3, 3})) == V(6, 0));
  CHECK_THROWS_WITH(dec(rle(1, 2, 3, {ok, stop, over, ok, ok, ok}, {3, 1, 3, 3, 3, 3})),
                    Catch::Contains("a.sgi: SGI run-length row 0 of channel 1 runs past its width or the end of the file"));
  CHECK_THROWS_WITH(dec(rle(3, 1, 1, {"\x83\x01\x02\x03"s})), Catch::Contains("a.sgi: SGI run-length row 0 of channel 0"));
  CHECK_THROWS_WITH(dec(header(1, 1, 2, 3, 2, 1) + std::string(10, '\0')), Catch::Contains("a.sgi: truncated SGI run-length tables"));
  CHECK_THROWS_WITH(dec(header(0, 1, 2, 2, 2, 1) + "\x01\x02\x03"), Catch::Contains("a.sgi: truncated SGI image"));
  CHECK_THROWS_WITH(dec(header(0, 1, 3, 2, 1, 1)), Catch::Contains("a.sgi: SGI image of 1 bytes a sample, 3 dimensions and 1 channels"));
  CHECK_THROWS_WITH(dec(header(0, 1, 3, 1, 1, 2)), Catch::Contains("(PIL cannot load it either)"));
  CHECK_THROWS_WITH(dec(header(2, 1, 2, 2, 1, 1)), Catch::Contains("a.sgi: SGI compression 2 is not supported"));
  CHECK_THROWS_WITH(dec(header(0, 1, 2, 0, 1, 1)), Catch::Contains("a.sgi: image has zero size"));
  CHECK_THROWS_WITH(dec("\x01\xda\x00\x01"s), Catch::Contains("a.sgi: truncated SGI header"));
  g_largest = 0;
  g_track = true;
  CHECK_THROWS_WITH(dec(header(1, 1, 3, 65535, 65535, 3)), Catch::Contains("a.sgi: image of 65535x65535 pixels exceeds the limit"));
  g_track = false;
  CHECK(g_largest < (size_t(1) << 20));
}

TEST_CASE("image: PCX as PIL 9.4 reads it", "[data][image]") {
  // Each expectation is what PIL 9.4 prints for the same bytes (Image.open(...).convert("RGB")).
  auto pcx = [](int w, int h, int bits, int planes, const std::string& data, int version = 5, int stride = -1,
                const std::string& palette = "") {
    const int need = (w * bits + 7) / 8;
    if (stride < 0) stride = need + need % 2;
    std::string b = {char(10), char(version), char(1), char(bits)};
    for (int v : {0, 0, w - 1, h - 1, 72, 72}) b += char(v & 0xff), b += char(v >> 8);
    b += palette + std::string(48 - palette.size(), '\0') + '\0' + char(planes) + char(stride & 0xff) + char(stride >> 8);
    return b + std::string(128 - b.size(), '\0') + data;
  };
  auto dec = [](const std::string& bytes) { return data::decode_image(bytes, "a.pcx").rgb; };
  using V = std::vector<uint8_t>;
  CHECK(dec(pcx(3, 2, 8, 1, "\x01\x02\x03\x00\x04\x05\x06\x00"s)) == V{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6});
  CHECK(dec(pcx(3, 2, 8, 1, "\xc4\x07\xc3\x08\x00"s)) == V{7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8, 8});
  CHECK(dec(pcx(3, 1, 8, 1, "\xc0\x07\x01\x02\x03\x04"s)) == V{1, 1, 1, 2, 2, 2, 3, 3, 3});  // a run of 0
  // A 256-colour palette at the end makes grey colour-mapped, unless it is the grey ramp.
  std::string pal = "\x0c", ramp = "\x0c";
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 256; ++i) pal += char(i);
  for (int i = 0; i < 256; ++i) ramp += std::string(3, char(i));
  CHECK(dec(pcx(3, 1, 8, 1, "\x01\x02\x03\x00"s + pal)) == V{3, 4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(dec(pcx(3, 1, 8, 1, "\x01\x02\x03\x00"s + ramp)) == V{1, 1, 1, 2, 2, 2, 3, 3, 3});
  // RGB planes: moved to multiples of the width when the line is padded (w = 5),
  // not when its length is a multiple of the width (w = 1 and 3: PIL's garbling).
  CHECK(dec(pcx(5, 1, 8, 3, "\x01\x02\x03\x04\x05\x00\x0b\x0c\x0d\x0e\x0f\x00\x15\x16\x17\x18\x19\x00"s)) ==
        V{1, 11, 21, 2, 12, 22, 3, 13, 23, 4, 14, 24, 5, 15, 25});
  CHECK(dec(pcx(3, 1, 8, 3, "\x01\x02\x03\x00\x04\x05\x06\x00\x07\x08\x09\x00"s)) == V{1, 0, 6, 2, 4, 0, 3, 5, 7});
  CHECK(dec(pcx(1, 1, 8, 3, "\x01\x00\x02\x00\x03\x00"s)) == V{1, 0, 2});
  CHECK(dec(pcx(3, 1, 8, 3, "\x01\x02\x03\x04\x05\x06\x07\x08\x09"s, 5, 3)) == V{1, 4, 7, 2, 5, 8, 3, 6, 9});
  // 1 bit: 1 is white. Bit planes: the header's palette, planes ⌈w/8⌉ bytes apart.
  CHECK(dec(pcx(10, 1, 1, 1, "\xb0\x40"s, 2)) == V{255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0,
                                                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255});
  std::string p16 = "\x0a\x14\x1e\x28\x32\x3c\x46\x50\x5a\x64\x6e\x78"s;
  for (int i = 0; i < 36; ++i) p16 += char(200 + i);
  CHECK(dec(pcx(3, 1, 1, 4, "\xa0\x00\x40\x00\x20\x00\x00\x00"s, 2, -1, p16)) == V{40, 50, 60, 200, 201, 202, 215, 216, 217});
  // w = 8 in planes of 2 bytes (the even padding): plane 1 is read 1 byte in, from the padding.
  CHECK(dec(pcx(8, 1, 1, 2, "\x80\x00\xc1\xc0\x00"s, 2, -1, p16)) ==
        V{40, 50, 60, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30});

  auto fails = [&](const std::string& bytes, const std::string& what) {
    CHECK_THROWS_WITH(data::decode_image(bytes, "a.pcx"), Catch::Contains("a.pcx: " + what));
  };
  fails(pcx(3, 2, 8, 1, "\xc5\x07\x01\x02\x03\x04"s), "PCX run goes past the end of a line");
  fails(pcx(3, 2, 8, 1, "\x01\x02\x03\x00\x04"s), "truncated PCX data (1 of 2 lines)");
  fails(pcx(3, 1, 8, 1, "\x01\x02\xc2"s), "truncated PCX data (0 of 1 lines)");
  fails(pcx(3, 1, 8, 1, "\x01\x02\x03\x00"s, 3), "PCX of 8 bits in 1 planes (version 3) is not supported (PIL cannot load it either)");
  fails(pcx(4, 1, 2, 1, "\x1b\x00"s), "PCX of 2 bits in 1 planes");
  fails(pcx(2, 1, 8, 1, "").substr(0, 60), "not a PNG, JPEG");
  g_largest = 0;
  g_track = true;
  fails(pcx(65535, 65535, 8, 3, ""), "image of 65535x65535 pixels exceeds the limit");
  g_track = false;
  CHECK(g_largest < (size_t(1) << 20));
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
