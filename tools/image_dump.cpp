// image_dump IMAGE SIZE OUT: decodes IMAGE, resizes it to SIZE×SIZE exactly as
// the data pipeline does, and writes the raw RGB bytes to OUT (for
// tests/reference/compare_images.py).
#include <seemore/vlm.hpp>

#include <cstdio>
#include <fstream>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: image_dump IMAGE SIZE OUT\n");
    return 2;
  }
  try {
    auto img = seemore::data::resize_bilinear(seemore::data::load_image(argv[1]), std::atoi(argv[2]), std::atoi(argv[2]));
    std::ofstream(argv[3], std::ios::binary).write(reinterpret_cast<const char*>(img.rgb.data()), std::streamsize(img.rgb.size()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
