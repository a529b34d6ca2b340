// seemore/data/pnm.hpp — Netpbm images (PBM, PGM, PPM: P1 to P6) as 8-bit
// RGB, as PIL 9.4 reads and converts them.
//
// PIL's readings, kept so that the pixels are PIL's:
//  - header tokens (width, height, maxval) of at most 10 characters; a '#'
//    starts a comment to the end of the line, also inside a token;
//  - bitmaps (P1 plain, P4 raw): 1 is black, 0 white;
//  - maxval 255 is taken as it is; any other is scaled to 0–255 as
//    round(v / maxval · 255) (rounding half to even), a raw sample above
//    maxval clipped at 255;
//  - grey with maxval above 255 becomes PIL's 32-bit "I" mode (scaled to
//    0–65535), which converts to RGB by clipping at 255: a 16-bit PGM is
//    white wherever its value passes 255/65535 of the range;
//  - plain (ASCII) samples: whitespace-separated numbers, read in PIL's
//    blocks of 1 MiB with comments cut out of each block first (a comment
//    glued to a number joins it to the next); a value above maxval is an
//    error, a negative one in an 8-bit image wraps modulo 256 (PIL's o8);
//  - data that ends before every pixel is there is an error, except where
//    PIL kept a token cut at a block end: it repeats to fill the rest.
// Every size is checked against the limits before any pixel memory is
// allocated, and every read against the bytes there are.
#pragma once

#include <seemore/data/pixels.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace seemore::data {

inline bool is_pnm(const std::string& b) {
  return b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' &&
         (b[2] == ' ' || b[2] == '\t' || b[2] == '\n' || b[2] == '\v' || b[2] == '\f' || b[2] == '\r');
}

namespace detail_pnm {
inline bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

inline bool parse_int(const std::string& t, int64_t& out);

// One header token as PIL's _read_token reads it, ending after the
// whitespace that ends it.
inline int64_t header_token(const std::string& b, size_t& pos, const char* what, const std::string& where) {
  std::string tok;
  while (tok.size() <= 10 && pos < b.size()) {
    const char c = b[pos++];
    if (space(c)) {
      if (tok.empty()) continue;
      break;
    }
    if (c == '#') {
      while (pos < b.size() && b[pos] != '\r' && b[pos] != '\n') ++pos;
      if (pos < b.size()) ++pos;
      continue;
    }
    tok += c;
  }
  SEEMORE_CHECK(!tok.empty(), where, ": truncated PNM header (no ", what, ")");
  SEEMORE_CHECK(tok.size() <= 10, where, ": PNM header ", what, " '", tok.substr(0, 11), "...' is too long");
  int64_t v = 0;
  SEEMORE_CHECK(parse_int(tok, v), where, ": PNM header ", what, " '", tok, "' is not a number");
  return v;
}

// round(v / maxval · out_max) with Python's rounding (half to even).
inline int64_t scale(int64_t v, int64_t maxval, int64_t out_max) {
  return int64_t(std::nearbyint(double(v) / double(maxval) * double(out_max)));
}

// A decimal number as Python's int() reads it: an optional sign, digits,
// single underscores between digits. False if it is not one (or too big).
inline bool parse_int(const std::string& t, int64_t& out) {
  size_t i = t[0] == '+' || t[0] == '-' ? 1 : 0;
  if (i == t.size() || t[i] == '_' || t.back() == '_') return false;
  int64_t v = 0;
  for (; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (t[i - 1] == '_') return false;
      continue;
    }
    if (t[i] < '0' || t[i] > '9' || v > (int64_t(1) << 40)) return false;
    v = v * 10 + (t[i] - '0');
  }
  out = t[0] == '-' ? -v : v;
  return true;
}

// PIL reads plain data in blocks of 1 MiB (ImageFile.SAFEBLOCK), cuts
// comments out of each block, and what it makes of a file depends on where
// those blocks end (a number cut by a block end is stitched to the next
// block, and, once that has happened, stitched again to every later block
// that ends on whitespace); so the blocks are read here the same way.
struct PlainBlocks {
  const std::string& b;
  size_t pos;
  bool comment_spans = false;

  std::string next() {
    const size_t n = std::min<size_t>(size_t(1) << 20, b.size() - std::min(pos, b.size()));
    std::string s = b.substr(std::min(pos, b.size()), n);
    pos += n;
    return s;
  }
  // Where a comment carried over from the previous block ends, by PIL's
  // rule: the first '\n' or '\r', except that it takes the later of the two
  // when one of them is at index 0.
  static int64_t line_end(const std::string& s) {
    const size_t a0 = s.find('\n'), b0 = s.find('\r');
    const int64_t a = a0 == std::string::npos ? -1 : int64_t(a0), c = b0 == std::string::npos ? -1 : int64_t(b0);
    return a * c > 0 ? std::min(a, c) : std::max(a, c);
  }
  std::string without_comments(std::string block) {
    if (comment_spans) {
      while (!block.empty()) {
        const int64_t e = line_end(block);
        if (e != -1) {
          block.erase(0, size_t(e) + 1);
          break;
        }
        block = next();
      }
    }
    comment_spans = false;
    // PIL cuts one comment at a time, from '#' through the first '\n' or
    // '\r' after it; copying what lies between comments gives the same text
    // in one pass (erasing in place would be quadratic in the comments).
    std::string out;
    out.reserve(block.size());
    for (size_t i = 0; i < block.size();) {
      const size_t start = block.find('#', i);
      if (start == std::string::npos) {
        out.append(block, i, std::string::npos);
        break;
      }
      out.append(block, i, start - i);
      const size_t e = block.find_first_of("\r\n", start);
      if (e == std::string::npos) {
        comment_spans = true;
        break;
      }
      i = e + 1;
    }
    return out;
  }
};

inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    if (space(s[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < s.size() && !space(s[end])) ++end;
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}
}  // namespace detail_pnm

inline Image decode_pnm(const std::string& b, const std::string& where, const ImageLimits& lim = {}) {
  using namespace detail_pnm;
  const char kind = b[1];
  const bool bitmap = kind == '1' || kind == '4', plain = kind <= '3';
  const int bands = kind == '3' || kind == '6' ? 3 : 1;
  size_t pos = 3;
  const int64_t w = header_token(b, pos, "width", where), h = header_token(b, pos, "height", where);
  detail_img::check_dims(uint64_t(w), uint64_t(h), lim, where);
  int64_t maxval = 1;
  if (!bitmap) {
    maxval = header_token(b, pos, "maxval", where);
    SEEMORE_CHECK(maxval > 0 && maxval < 65536, where, ": PNM maxval ", maxval, " is not in 1..65535");
  }
  // Grey above 8 bits is PIL's "I" mode: scaled to 0–65535, clipped at 255 to RGB.
  const int64_t out_max = bands == 1 && maxval > 255 ? 65535 : 255;
  const uint64_t n = uint64_t(w) * uint64_t(h) * uint64_t(bands);
  std::vector<uint8_t> samples;  // one 8-bit level per sample, before the grey → RGB step
  auto level = [&](int64_t v) { return uint8_t(v > 255 ? 255 : v); };

  if (!plain) {
    const uint64_t row_bytes = bitmap ? (uint64_t(w) + 7) / 8 : uint64_t(w) * bands * (maxval > 255 ? 2 : 1);
    const uint64_t need = row_bytes * uint64_t(h);
    SEEMORE_CHECK(pos <= b.size() && need <= b.size() - pos, where, ": truncated PNM: ", w, "x", h, " pixels need ",
                  need, " bytes of data from offset ", pos, ", the file has ", b.size() - std::min(pos, b.size()));
    const auto* d = reinterpret_cast<const uint8_t*>(b.data()) + pos;
    samples.resize(n);
    if (bitmap) {
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          samples[size_t(y * w + x)] = (d[uint64_t(y) * row_bytes + uint64_t(x) / 8] >> (7 - x % 8)) & 1 ? 0 : 255;
    } else if (maxval == 255) {
      std::copy(d, d + n, samples.begin());
    } else {
      for (uint64_t i = 0; i < n; ++i) {
        const int64_t v = maxval > 255 ? int64_t(d[2 * i]) << 8 | d[2 * i + 1] : d[i];
        samples[i] = level(std::min(out_max, scale(v, maxval, out_max)));
      }
    }
  } else {
    PlainBlocks blocks{b, pos};
    if (bitmap) {
      // Every character of a block must be 0 or 1, also past the last pixel.
      while (samples.size() != n) {
        const std::string block = blocks.next();
        if (block.empty()) break;
        const std::string bits = blocks.without_comments(block);
        for (char c : bits)
          SEEMORE_CHECK(space(c) || c == '0' || c == '1', where, ": PBM data: '", std::string(1, c), "' is not 0 or 1");
        for (char c : bits)
          if (!space(c) && samples.size() < n) samples.push_back(c == '1' ? 0 : 255);
      }
    } else {
      auto take = [&](const std::string& tok) {
        SEEMORE_CHECK(tok.size() <= 10, where, ": PNM data: token '", tok.substr(0, 11), "...' is too long");
        int64_t v = 0;
        SEEMORE_CHECK(parse_int(tok, v), where, ": PNM data: '", tok, "' is not a number");
        SEEMORE_CHECK(v <= maxval, where, ": PNM data: value ", v, " is above maxval ", maxval, " (sample ",
                      samples.size(), ")");
        const int64_t level = scale(v, maxval, out_max);
        SEEMORE_CHECK(level >= 0 || out_max == 255, where, ": PNM data: negative value ", v, " (sample ",
                      samples.size(), ")");
        return out_max == 255 ? uint8_t(level & 255) : uint8_t(std::min<int64_t>(level, 255));
      };
      std::string half;  // PIL's half_token: never cleared once set
      while (samples.size() != n) {
        std::string block = blocks.next();
        if (block.empty()) {
          if (half.empty()) break;
          // At the end of the file PIL hands the kept token over again and
          // again: the missing samples all repeat it.
          const uint8_t v = take(half);
          samples.resize(n, v);
          break;
        }
        block = half + blocks.without_comments(block);
        auto tokens = split(block);
        if (!block.empty() && !space(block.back())) {
          half = tokens.back();
          tokens.pop_back();
          SEEMORE_CHECK(half.size() <= 10, where, ": PNM data: token '", half.substr(0, 11), "...' is too long");
        }
        for (const auto& tok : tokens) {
          samples.push_back(take(tok));
          if (samples.size() == n) break;
        }
      }
    }
    SEEMORE_CHECK(samples.size() == n, where, ": truncated PNM: ", samples.size(), " of the ", n,
                  " samples are there");
  }

  Image img;
  img.width = w, img.height = h;
  if (bands == 3) {
    img.rgb = std::move(samples);
  } else {
    img.rgb.resize(n * 3);
    for (uint64_t i = 0; i < n; ++i) img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = samples[i];
  }
  return img;
}

}  // namespace seemore::data
