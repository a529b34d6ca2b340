#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <atomic>
#include <cstdlib>
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
  CHECK_THROWS_WITH(data::decode_image("GIF89a....", "x.gif"), Catch::Contains("x.gif: not a PNG or JPEG"));
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
