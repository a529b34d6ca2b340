// seemore/io/svg_plot.hpp — a small line chart as SVG (the loss curves),
// log-scale y axis, one polyline per series.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace seemore::io {

struct Series {
  std::string name, colour;
  std::vector<std::pair<double, double>> points;  // (x, y), y > 0
};

inline std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                                  const std::vector<Series>& series) {
  const double W = 720, H = 440, l = 70, r = 160, t = 40, b = 50;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (auto& s : series)
    for (auto& [x, y] : s.points)
      if (y > 0 && std::isfinite(y)) {
        x0 = std::min(x0, x), x1 = std::max(x1, x);
        y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0.1, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  double ly0 = std::floor(std::log10(y0)), ly1 = std::ceil(std::log10(y1));
  if (ly1 == ly0) ly1 = ly0 + 1;
  auto X = [&](double x) { return l + (x - x0) / (x1 - x0) * (W - l - r); };
  auto Y = [&](double y) { return t + (ly1 - std::log10(y)) / (ly1 - ly0) * (H - t - b); };
  std::string s;
  char buf[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    s += buf;
  };
  add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  add("<rect width=\"%s\" height=\"%s\" fill=\"white\"/>\n", "100%", "100%");
  add("<text x=\"%g\" y=\"22\" font-size=\"15\">%s</text>\n", l, title.c_str());
  for (double e = ly0; e <= ly1; e += 1) {
    add("<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>\n", l, W - r, Y(std::pow(10, e)), Y(std::pow(10, e)));
    add("<text x=\"%g\" y=\"%g\" text-anchor=\"end\">1e%d</text>\n", l - 6, Y(std::pow(10, e)) + 4, int(e));
  }
  for (int i = 0; i <= 5; ++i) {
    const double x = x0 + (x1 - x0) * i / 5;
    add("<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%g</text>\n", X(x), H - b + 18, std::round(x * 100) / 100);
  }
  add("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#444\"/>\n", l, t, W - l - r, H - t - b);
  add("<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", (l + W - r) / 2, H - 10, xlabel.c_str());
  add("<text x=\"16\" y=\"%g\" transform=\"rotate(-90 16 %g)\" text-anchor=\"middle\">%s</text>\n", (t + H - b) / 2,
      (t + H - b) / 2, ylabel.c_str());
  double ly = t + 10;
  for (auto& se : series) {
    std::string pts;
    for (auto& [x, y] : se.points)
      if (y > 0 && std::isfinite(y)) {
        std::snprintf(buf, sizeof buf, "%.1f,%.1f ", X(x), Y(y));
        pts += buf;
      }
    s += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + se.colour + "\" points=\"" + pts + "\"/>\n";
    if (se.points.size() <= 30)
      for (auto& [x, y] : se.points)
        if (y > 0 && std::isfinite(y)) add("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", X(x), Y(y), se.colour.c_str());
    add("<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"/>\n", W - r + 12, W - r + 32, ly, ly,
        se.colour.c_str());
    add("<text x=\"%g\" y=\"%g\">%s</text>\n", W - r + 38, ly + 4, se.name.c_str());
    ly += 20;
  }
  s += "</svg>\n";
  return s;
}

}  // namespace seemore::io
