#!/usr/bin/env python3
"""Measures seemore's image decoding + resizing against PIL (what the reference
uses through torchvision). For each input image it writes variants in other
modes and formats (grey, grey+alpha, RGBA, palette, interlaced PNG, baseline
and progressive JPEG, grey JPEG, BMP of every bit depth and layout, GIF
interlaced or not and with transparency, lossy and lossless WebP), decodes and resizes each with both, and
prints the max and mean absolute difference in 8-bit levels.

Usage: /usr/bin/python3 tests/reference/compare_images.py build/tools/image_dump IMAGE...
"""
import os
import struct
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


def write_bmp(path, arr, bpp, masks, top_down, v5=False):
    h, w = arr.shape[:2]
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    if bpp == 16:
        rm, gm, bm = masks or (0x7C00, 0x3E0, 0x1F)
        def q(v, m):
            shift = (m & -m).bit_length() - 1
            bits = bin(m).count("1")
            return (v >> (8 - bits)) << shift
        px = (q(r, rm) | q(g, gm) | q(b, bm)).astype("<u2")
    elif bpp == 32:
        px = ((r << 16) | (g << 8) | b).astype("<u4")
    else:
        px = np.stack([b, g, r], -1).astype(np.uint8)
    rows = [px[y].tobytes() for y in (range(h) if top_down else range(h - 1, -1, -1))]
    stride = (w * bpp + 31) // 32 * 4
    data = b"".join(row + b"\0" * (stride - len(row)) for row in rows)
    compression = 3 if masks else 0
    hsize = 124 if v5 else 40
    info = struct.pack("<IiiHHIIiiII", hsize, w, -h if top_down else h, 1, bpp, compression, len(data), 2835, 2835, 0, 0)
    extra = struct.pack("<III", *masks) if masks else b""
    if v5:
        info += b"\0" * (hsize - len(info))
        extra = b""
    offset = 14 + len(info) + len(extra)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + extra + data)


def main():
    tool, images = sys.argv[1], sys.argv[2:]
    worst = 0
    with tempfile.TemporaryDirectory() as d:
        for src in images:
            base = Image.open(src).convert("RGB")
            varied = base.convert("RGBA")  # alpha that varies, to check it is dropped, not composited
            varied.putalpha(base.convert("L"))
            variants = {
                "as-is": src,
                "grey.png": base.convert("L"),
                "grey+alpha.png": base.convert("LA"),
                "rgba.png": base.convert("RGBA"),
                "palette.png": base.convert("P", palette=Image.ADAPTIVE),
                "interlaced.png": (base, {"interlace": 1}),
                "grey16.png": Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 3),
                "q85.jpg": (base, {"quality": 85}),
                "progressive.jpg": (base, {"quality": 90, "progressive": True}),
                "grey.jpg": base.convert("L"),
                "cmyk.jpg": base.convert("CMYK"),
                "cmyk-varied.jpg": Image.fromarray(np.dstack([np.asarray(base), np.asarray(base.convert("L"))]),
                                                   mode="CMYK"),
                "rgb.bmp": base,
                "palette.bmp": base.convert("P", palette=Image.ADAPTIVE),
                "palette16.bmp": (base.convert("P", palette=Image.ADAPTIVE, colors=16), {"bits": 4}),
                "grey.bmp": base.convert("L"),
                "1bit.bmp": base.convert("1"),
                "rgba.bmp": base.convert("RGBA"),
                "interlaced.gif": base.convert("P", palette=Image.ADAPTIVE),
                "plain.gif": (base.convert("P", palette=Image.ADAPTIVE), {"interlace": 0}),
                "transparent.gif": (base.convert("P", palette=Image.ADAPTIVE), {"transparency": 3}),
                "grey.gif": base.convert("L"),
                "lossy.webp": (base, {"quality": 80}),
                "lossless.webp": (base, {"lossless": True}),
                "rgba-lossy.webp": (base.convert("RGBA"), {"quality": 80}),
                "rgba-lossless.webp": (base.convert("RGBA"), {"lossless": True}),
                "alpha-lossy.webp": (varied, {"quality": 80}),
                "alpha-lossless.webp": (varied, {"lossless": True, "exact": True}),
                "alpha.bmp": varied,
            }
            # Layouts PIL reads but does not write: BMPs written here byte by byte.
            arr = np.asarray(base).astype(np.uint32)
            h, w = arr.shape[:2]
            for name, bpp, masks, top_down in [("565.bmp", 16, (0xF800, 0x7E0, 0x1F), False),
                                               ("555.bmp", 16, None, True),
                                               ("bitfields32.bmp", 32, (0xFF0000, 0xFF00, 0xFF), True),
                                               ("v5-24.bmp", 24, None, False)]:
                path = os.path.join(d, name)
                write_bmp(path, arr, bpp, masks, top_down, v5=name.startswith("v5"))
                variants[name] = path
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
