// seemore/data/synthetic.hpp — the built-in dataset: simple scenes drawn from
// a seed, with captions that state what is in them.
//
// A scene holds 1 to 3 copies of one shape (circle, square, triangle,
// diamond) in one colour (red, green, blue, yellow, white), all small or all
// big, on a dark background with a little noise. Captions:
//   one shape:  "a big red circle at the top left"   (position on a 3×3 grid)
//   more:       "two small blue squares"
// Every fact in a caption is visible, and the image is the only way to know
// it: 440 distinct captions, so a model that ignores the image can at best
// guess the most frequent one.
#pragma once

#include <seemore/data/image.hpp>
#include <seemore/io/png_write.hpp>
#include <seemore/random.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace seemore::data {

struct SyntheticScene {
  Image image;
  std::string caption;
};

namespace detail_syn {
inline const char* kShapes[] = {"circle", "square", "triangle", "diamond"};
inline const char* kColours[] = {"red", "green", "blue", "yellow", "white"};
inline const uint8_t kRGB[5][3] = {{220, 40, 40}, {40, 190, 60}, {50, 90, 230}, {235, 210, 40}, {235, 235, 235}};
inline const char* kPositions[] = {"at the top left", "at the top", "at the top right", "on the left", "in the centre",
                                   "on the right",    "at the bottom left", "at the bottom", "at the bottom right"};
inline const char* kCounts[] = {"a", "two", "three"};

// Inside test for a shape of half-size r centred at (0,0), point (x,y).
inline bool inside(int shape, double x, double y, double r) {
  switch (shape) {
    case 0: return x * x + y * y <= r * r;
    case 1: return std::abs(x) <= r * 0.85 && std::abs(y) <= r * 0.85;
    case 2: return y <= r * 0.8 && y >= -r * 0.9 && std::abs(x) <= (y + r * 0.9) * 0.62;  // apex up
    default: return std::abs(x) + std::abs(y) <= r;
  }
}
}  // namespace detail_syn

// Draws scene number `index` of the stream `seed` (independent of the others).
inline SyntheticScene synthetic_scene(uint64_t seed, uint64_t index, int64_t size = 128) {
  using namespace detail_syn;
  Generator g(seed * 0x9E3779B97F4A7C15ull + index);
  const int shape = int(g.randint(4)), colour = int(g.randint(5)), count = 1 + int(g.randint(3));
  const bool big = g.randint(2) == 1;
  const double cell = double(size) / 3.0;
  const double r = (big ? 0.42 : 0.24) * cell;
  // Distinct grid cells; a little jitter inside each.
  std::vector<int> cells = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  for (int i = 8; i > 0; --i) std::swap(cells[size_t(i)], cells[g.randint(uint64_t(i + 1))]);
  cells.resize(size_t(count));
  std::vector<std::pair<double, double>> centres;
  for (int c : cells) {
    const double jx = (g.uniform() - 0.5) * (cell - 2 * r) * 0.8, jy = (g.uniform() - 0.5) * (cell - 2 * r) * 0.8;
    centres.push_back({(c % 3 + 0.5) * cell + jx, (c / 3 + 0.5) * cell + jy});
  }
  SyntheticScene s;
  s.image.width = s.image.height = size;
  s.image.rgb.resize(size_t(size * size * 3));
  const uint8_t bg[3] = {uint8_t(20 + g.randint(25)), uint8_t(20 + g.randint(25)), uint8_t(25 + g.randint(25))};
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      // 2×2 supersampling for soft edges.
      int hits = 0;
      for (int sy = 0; sy < 2; ++sy)
        for (int sx = 0; sx < 2; ++sx) {
          const double px = double(x) + 0.25 + 0.5 * sx, py = double(y) + 0.25 + 0.5 * sy;
          for (auto& [cx, cy] : centres)
            if (inside(shape, px - cx, -(py - cy), r)) {
              ++hits;
              break;
            }
        }
      const double a = hits / 4.0;
      const double noise = (Philox::uniform(seed ^ 0xA5A5A5A5ull, index * 65536, uint64_t(y * size + x)) - 0.5) * 16;
      for (int ch = 0; ch < 3; ++ch) {
        const double v = (1 - a) * bg[ch] + a * kRGB[colour][ch] + noise;
        s.image.rgb[size_t((y * size + x) * 3 + ch)] = uint8_t(std::lround(std::min(255.0, std::max(0.0, v))));
      }
    }
  const std::string size_word = big ? "big" : "small";
  if (count == 1)
    s.caption = std::string("a ") + size_word + " " + kColours[colour] + " " + kShapes[shape] + " " + kPositions[cells[0]];
  else
    s.caption = std::string(kCounts[count - 1]) + " " + size_word + " " + kColours[colour] + " " + kShapes[shape] + "s";
  return s;
}

// The facts a synthetic caption states, read back from its words (count,
// size, colour, shape, and the position of a lone shape); `valid` when the
// text follows the grammar above. Used to score captions fact by fact.
struct SceneFacts {
  std::string count, size, colour, shape, position;
  bool valid = false;
};
inline SceneFacts parse_synthetic_caption(const std::string& caption) {
  using namespace detail_syn;
  SceneFacts f;
  std::vector<std::string> w;
  for (size_t at = 0; at < caption.size();) {
    const size_t end = std::min(caption.find(' ', at), caption.size());
    if (end > at) w.push_back(caption.substr(at, end - at));
    at = end + 1;
  }
  if (w.size() < 4) return f;
  auto one_of = [](const std::string& x, const auto& list) {
    for (const char* v : list)
      if (x == v) return true;
    return false;
  };
  f.count = w[0];
  f.size = w[1];
  f.colour = w[2];
  const bool single = w[0] == "a";
  f.shape = single || w[3].empty() || w[3].back() != 's' ? w[3] : w[3].substr(0, w[3].size() - 1);
  for (size_t i = 4; i < w.size(); ++i) f.position += (i > 4 ? " " : "") + w[i];
  f.valid = one_of(f.count, kCounts) && (f.size == "big" || f.size == "small") && one_of(f.colour, kColours) &&
            one_of(f.shape, kShapes) && (single ? one_of(f.position, kPositions) : f.position.empty()) &&
            (single || w[3].back() == 's');
  return f;
}

// Writes n scenes as dir/NNNNNN.png and dir/<manifest> (JSONL, paths relative).
inline void write_synthetic_dataset(const std::string& dir, const std::string& manifest, uint64_t seed, uint64_t first,
                                    uint64_t n, int64_t size = 128) {
  std::string lines;
  for (uint64_t i = first; i < first + n; ++i) {
    auto s = synthetic_scene(seed, i, size);
    char name[32];
    std::snprintf(name, sizeof name, "%06llu.png", static_cast<unsigned long long>(i));
    io::write_png(dir + "/" + name, s.image.rgb.data(), s.image.width, s.image.height);
    lines += nlohmann::json{{"image", name}, {"caption", s.caption}}.dump() + "\n";
  }
  io::write_file_atomic(dir + "/" + manifest, lines);
}

}  // namespace seemore::data
