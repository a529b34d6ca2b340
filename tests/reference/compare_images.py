#!/usr/bin/env python3
"""Measures seemore's image decoding + resizing against PIL (what the reference
uses through torchvision). For each input image it writes variants in other
modes and formats (grey, grey+alpha, RGBA, palette, interlaced PNG, baseline
and progressive JPEG, grey JPEG), decodes and resizes each with both, and
prints the max and mean absolute difference in 8-bit levels.

Usage: /usr/bin/python3 tests/reference/compare_images.py build/tools/image_dump IMAGE...
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def ours(tool, path, size):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "o")
        subprocess.run([tool, path, str(size), out], check=True, capture_output=True)
        return np.frombuffer(open(out, "rb").read(), np.uint8).reshape(size, size, 3).astype(int)


def main():
    tool, images = sys.argv[1], sys.argv[2:]
    worst = 0
    with tempfile.TemporaryDirectory() as d:
        for src in images:
            base = Image.open(src).convert("RGB")
            variants = {
                "as-is": src,
                "grey.png": base.convert("L"),
                "grey+alpha.png": base.convert("LA"),
                "rgba.png": base.convert("RGBA"),
                "palette.png": base.convert("P", palette=Image.ADAPTIVE),
                "interlaced.png": (base, {"interlace": 1}),
                "q85.jpg": (base, {"quality": 85}),
                "progressive.jpg": (base, {"quality": 90, "progressive": True}),
                "grey.jpg": base.convert("L"),
            }
            for name, v in variants.items():
                if isinstance(v, str):
                    path = v
                else:
                    im, kw = v if isinstance(v, tuple) else (v, {})
                    path = os.path.join(d, name)
                    im.save(path, **kw)
                for size in (96, 224):
                    ref = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)).astype(int)
                    diff = np.abs(ours(tool, path, size) - ref)
                    worst = max(worst, diff.max())
                    print(f"{os.path.basename(src):24s} {name:16s} -> {size:3d}: max {diff.max():3d}  mean {diff.mean():.5f}")
    print(f"worst max abs difference: {worst}")


if __name__ == "__main__":
    main()
