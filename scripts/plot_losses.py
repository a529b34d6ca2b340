#!/usr/bin/env python3
"""Draws loss curves as an SVG (no plotting library needed).

Usage: plot_losses.py OUT.svg TITLE NAME=FILE[:COLOUR] ...
FILE is a seemore-train metrics.jsonl (per-step "loss" lines) or a JSON
written by benchmarks/pytorch/reference_train.py ({"losses": {step: loss}}),
or "published" for the reference notebook's printed figures.
"""
import json
import math
import sys

PUBLISHED = dict(zip(range(0, 100, 10), [4.303, 0.476, 0.0945, 0.0517, 0.0327, 0.0211, 0.0130, 0.0096, 0.0077, 0.0066]))
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def load(path):
    if path == "published":
        return PUBLISHED
    if path.endswith(".jsonl"):
        pts = {}
        for line in open(path):
            j = json.loads(line)
            if not j.get("eval"):
                pts[j["step"]] = j["loss"]
        return pts
    return {int(k): v for k, v in json.load(open(path))["losses"].items()}


def main():
    out, title, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    series = []
    for i, s in enumerate(specs):
        name, rest = s.split("=", 1)
        path, _, colour = rest.partition(":")
        series.append((name, colour or COLOURS[i % len(COLOURS)], sorted(load(path).items())))
    W, H, l, r, t, b = 760, 440, 70, 230, 40, 50
    xs = [x for _, _, p in series for x, _ in p]
    ys = [y for _, _, p in series for _, y in p if y > 0]
    x0, x1 = min(xs), max(xs)
    e0, e1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    X = lambda x: l + (x - x0) / (x1 - x0 or 1) * (W - l - r)
    Y = lambda y: t + (e1 - math.log10(y)) / (e1 - e0) * (H - t - b)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>', f'<text x="{l}" y="22" font-size="15">{title}</text>']
    for e in range(e0, e1 + 1):
        o.append(f'<line x1="{l}" x2="{W - r}" y1="{Y(10 ** e):.1f}" y2="{Y(10 ** e):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{l - 6}" y="{Y(10 ** e) + 4:.1f}" text-anchor="end">1e{e}</text>')
    for i in range(6):
        x = x0 + (x1 - x0) * i / 5
        o.append(f'<text x="{X(x):.1f}" y="{H - b + 18}" text-anchor="middle">{x:g}</text>')
    o.append(f'<rect x="{l}" y="{t}" width="{W - l - r}" height="{H - t - b}" fill="none" stroke="#444"/>')
    o.append(f'<text x="{(l + W - r) / 2}" y="{H - 10}" text-anchor="middle">step</text>')
    o.append(f'<text x="16" y="{(t + H - b) / 2}" transform="rotate(-90 16 {(t + H - b) / 2})" text-anchor="middle">training loss</text>')
    for k, (name, colour, pts) in enumerate(series):
        pts = [(x, y) for x, y in pts if y > 0]
        o.append(f'<polyline fill="none" stroke-width="1.6" stroke="{colour}" points="' +
                 " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts) + '"/>')
        if len(pts) <= 20:
            o += [f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts]
        ly = t + 12 + 20 * k
        o.append(f'<line x1="{W - r + 12}" x2="{W - r + 32}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        o.append(f'<text x="{W - r + 38}" y="{ly + 4}">{name}</text>')
    o.append("</svg>")
    open(out, "w").write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
