// seemore/io/endian.hpp — little-endian integers read from bytes at any
// alignment, the way the file formats we parse store them (safetensors, ZIP,
// pickle, BMP), independent of the host's byte order.
#pragma once

#include <cstdint>

namespace seemore::io {

// The n (≤ 8) bytes at p as a little-endian unsigned integer.
inline uint64_t load_le(const void* p, int n) {
  const auto* b = static_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | b[i];
  return v;
}

}  // namespace seemore::io
