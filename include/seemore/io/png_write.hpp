// seemore/io/png_write.hpp — encoding 8-bit RGB to PNG bytes (stb_image_write,
// compiled static into each translation unit that includes this header), and
// writing them atomically.
#pragma once

#include <seemore/io/atomic_file.hpp>

#include <cstdint>
#include <string>
#include <vector>

#ifndef STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_STATIC
#endif
#ifndef STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace seemore::io {

inline std::string encode_png(const uint8_t* rgb, int64_t width, int64_t height) {
  std::string out;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
  };
  const int ok = stbi_write_png_to_func(sink, &out, int(width), int(height), 3, rgb, int(width * 3));
  SEEMORE_CHECK(ok, "encode_png: failed for a ", width, "x", height, " image");
  return out;
}

inline void write_png(const std::string& path, const uint8_t* rgb, int64_t width, int64_t height) {
  write_file_atomic(path, encode_png(rgb, width, height));
}

}  // namespace seemore::io
