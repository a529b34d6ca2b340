// seemore/data/base64.hpp — standard base64 (RFC 4648) decoding, tolerant of
// missing padding and of whitespace/line breaks, strict about everything else.
#pragma once

#include <seemore/config.hpp>

#include <array>
#include <cstdint>
#include <string>

namespace seemore::data {

inline std::string base64_decode(const std::string& in, const std::string& where) {
  static const auto table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = int8_t(i);
    return t;
  }();
  std::string out;
  out.reserve(in.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pads = 0, data_chars = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pads;
      continue;
    }
    SEEMORE_CHECK(pads == 0, where, ": invalid base64: data after '=' padding at offset ", i);
    const int v = table[c];
    SEEMORE_CHECK(v >= 0, where, ": invalid base64 character '", (c >= 32 && c < 127 ? std::string(1, char(c)) : "?"),
                  "' (byte ", int(c), ") at offset ", i);
    ++data_chars;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  SEEMORE_CHECK(data_chars % 4 != 1, where, ": invalid base64: truncated (", data_chars, " symbols)");
  SEEMORE_CHECK(pads <= 2 && (pads == 0 || (data_chars + pads) % 4 == 0), where, ": invalid base64 padding");
  return out;
}

}  // namespace seemore::data

namespace seemore::data {

inline std::string base64_encode(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += a[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += i + 1 < in.size() ? a[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace seemore::data
