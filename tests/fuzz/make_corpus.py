#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus (tests/fuzz/corpus/), small valid inputs of
every shape the parsers accept. Needs Pillow. Run from anywhere; the safetensors
seed checkpoints come from the fuzz build's fuzz_seed_checkpoint, if given:

    make_corpus.py [path/to/fuzz_seed_checkpoint]
"""
import base64
import io
import json
import os
import struct
import subprocess
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def put(kind, name, data):
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def image(mode, size, seed):
    w, h = size
    bands = len(mode) if mode not in ("P", "1", "I;16") else 1
    px = bytes((seed * 37 + i * 11) % 256 for i in range(w * h * bands))
    if mode == "P":
        im = Image.frombytes("L", size, px).convert("P")
    elif mode == "I;16":
        im = Image.frombytes("L", size, px).convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        im = Image.frombytes(mode, size, px)
    return im


def encoded(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def rle_bmp(w, h, bpp, rows):
    """An RLE8 (bpp 8) or RLE4 (bpp 4) BMP from its encoded bytes, 16 grey colours."""
    pal = b"".join(bytes([17 * i] * 3 + [0]) for i in range(16))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, 1 if bpp == 8 else 2, len(rows), 2835, 2835, 16, 0)
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(rows), 0, 0, off) + info + pal + rows


def main():
    pngs = {
        "rgb.png": encoded(image("RGB", (7, 5), 1), "PNG"),
        "rgba.png": encoded(image("RGBA", (4, 6), 2), "PNG"),
        "grey.png": encoded(image("L", (9, 3), 3), "PNG"),
        "grey_alpha.png": encoded(image("LA", (3, 3), 4), "PNG"),
        "palette.png": encoded(image("P", (6, 6), 5), "PNG"),
        "grey16.png": encoded(image("I;16", (5, 4), 6), "PNG"),
        "bilevel.png": encoded(image("L", (8, 2), 7).convert("1"), "PNG"),
    }
    jpegs = {
        "rgb.jpg": encoded(image("RGB", (16, 8), 8), "JPEG", quality=80),
        "progressive.jpg": encoded(image("RGB", (9, 17), 9), "JPEG", progressive=True),
        "grey.jpg": encoded(image("L", (8, 8), 10), "JPEG"),
        "cmyk.jpg": encoded(image("CMYK", (8, 8), 11), "JPEG"),
        "subsampled.jpg": encoded(image("RGB", (13, 11), 12), "JPEG", subsampling=2),
    }
    others = {
        "rgb.bmp": encoded(image("RGB", (5, 3), 13), "BMP"),
        "palette.bmp": encoded(image("P", (7, 2), 14), "BMP"),
        "bilevel.bmp": encoded(image("L", (9, 3), 15).convert("1"), "BMP"),
        "rgba.bmp": encoded(image("RGBA", (3, 4), 16), "BMP"),
        "interlaced.gif": encoded(image("P", (6, 9), 17), "GIF"),
        "transparent.gif": encoded(image("P", (5, 5), 18), "GIF", transparency=2, interlace=0),
        "lossy.webp": encoded(image("RGB", (8, 8), 19), "WEBP", quality=50),
        "lossless_alpha.webp": encoded(image("RGBA", (6, 5), 20), "WEBP", lossless=True),
        "animated.webp": encoded(image("RGBA", (6, 4), 30), "WEBP", save_all=True,
                                 append_images=[image("RGBA", (6, 4), 31)], lossless=True),
        "rle8.bmp": rle_bmp(4, 3, 8, bytes([5, 1, 0, 0, 0, 3, 2, 3, 4, 0, 0, 0, 0, 2, 9, 9, 2, 0, 2, 5, 0, 1])),
        "rle4.bmp": rle_bmp(4, 2, 4, bytes([3, 0x12, 0, 0, 0, 5, 0x34, 0x56, 0, 1])),
        "rgb.ppm": encoded(image("RGB", (5, 3), 32), "PPM"),
        "grey.pgm": encoded(image("L", (4, 3), 33), "PPM"),
        "bilevel.pbm": encoded(image("L", (11, 2), 34).convert("1"), "PPM"),
        "plain.ppm": b"P3\n# plain\n2 2\n1000\n0 500 1000 1 2 3\n4 5 6 7 8 9\n",
        "plain.pgm": b"P2\n3 1\n255\n1#glued\n2 3",
        "plain.pbm": b"P1\n4 2\n0101 1 0 1 0",
        "grey16.pgm": b"P5\n2 1\n65535\n\x01\x00\x00\xfe",
        "icon.ico": encoded(image("RGB", (16, 16), 35), "ICO", sizes=[(8, 8), (16, 16)]),
        # A cursor (PIL writes none): one 4x2 24-bit DIB entry, its height counting the mask rows.
        "cursor.cur": struct.pack("<HHHBBBBHHII", 0, 2, 1, 4, 2, 0, 0, 1, 1, 104, 22) +
                      struct.pack("<IiiHHIIiiII", 40, 4, 4, 1, 24, 0, 0, 0, 0, 0, 0) + bytes(range(24)) + bytes(40),
        "rgb.pcx": encoded(image("RGB", (5, 3), 42), "PCX"),
        "palette.pcx": encoded(image("P", (7, 2), 43), "PCX"),
        "bilevel.pcx": encoded(image("L", (9, 3), 44).convert("1"), "PCX"),
        # 16 colours in four bit planes, palette in the header, one line of 8 pixels.
        "planes.pcx": bytes([10, 2, 1, 1, 0, 0, 0, 0, 7, 0, 0, 0, 72, 0, 72, 0]) + bytes(range(48)) +
                      bytes([0, 4, 2, 0]) + bytes(60) + bytes([0x80, 0, 0x40, 0, 0xc1, 0xc0, 0, 0x20, 0]),
        "rgba.sgi": encoded(image("RGBA", (5, 3), 40), "SGI"),
        "grey16.sgi": encoded(image("L", (4, 2), 41), "SGI", bpc=2),
        # Run-length grey, 3x2: a run, then a literal and a 0 packet (rows bottom-up).
        "rle.sgi": b"\x01\xda\x01\x01\x00\x02\x00\x03\x00\x02\x00\x01" + bytes(500) +
                   b"\x00\x00\x02\x10\x00\x00\x02\x13" + b"\x00\x00\x00\x03\x00\x00\x00\x05" +
                   b"\x03\x07\x00" + b"\x83\x01\x02\x03\x00",
        "rgb.tga": encoded(image("RGB", (5, 3), 36), "TGA"),
        "rgba_rle.tga": encoded(image("RGBA", (6, 4), 37), "TGA", compression="tga_rle"),
        "palette_rle.tga": encoded(image("P", (7, 3), 38), "TGA", compression="tga_rle", orientation=1),
        "grey_alpha.tga": encoded(image("LA", (4, 4), 39), "TGA"),
        # 16-bit true colour with an ID, mirrored, run-length encoded with a
        # literal packet running on over rows (PIL writes none of these).
        "rgb16_rle.tga": bytes([5, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 16, 0x30]) + b"seemo" +
                         bytes([0x81, 0x1f, 0x7c, 0x03, 1, 2, 3, 4, 5, 6, 7, 8]),
        "rgb.tif": encoded(image("RGB", (5, 3), 21), "TIFF"),
        "lzw.tif": encoded(image("RGB", (7, 5), 22), "TIFF", compression="tiff_lzw"),
        "deflate_alpha.tif": encoded(image("RGBA", (4, 6), 23), "TIFF", compression="tiff_adobe_deflate"),
        "jpeg.tif": encoded(image("RGB", (16, 8), 24), "TIFF", compression="jpeg"),
        "ycbcr_jpeg.tif": encoded(image("YCbCr", (16, 16), 25), "TIFF", compression="jpeg"),
        "palette.tif": encoded(image("P", (6, 4), 26), "TIFF", compression="packbits"),
        "bilevel_g4.tif": encoded(image("L", (17, 5), 27).convert("1"), "TIFF", compression="group4"),
        "grey16.tif": encoded(image("I;16", (5, 4), 28), "TIFF"),
        "cmyk.tif": encoded(image("CMYK", (4, 4), 29), "TIFF"),
    }
    for n, b in {**pngs, **jpegs, **others}.items():
        put("image", n, b)

    b64 = base64.b64encode(pngs["rgb.png"]).decode()
    b64j = base64.b64encode(jpegs["grey.jpg"]).decode()
    put("csv", "reference.csv", f"b64string_images,caption\n{b64},A red car.\n{b64j},An old phone.\n")
    put("csv", "quoted_crlf.csv", f'caption,extra,b64string_images\r\n"A ""quoted"", caption",x,"{b64}"\r\n')
    wrapped = "\n".join(b64[i:i + 16] for i in range(0, len(b64), 16)).rstrip("=")
    put("csv", "wrapped_unpadded.csv", f'b64string_images,caption\n"{wrapped}",Ships.\n')

    put("jsonl", "manifest.jsonl", '{"image": "a.png", "caption": "a b c"}\n'
        '\n{"image": "/abs/b.jpg", "caption": "cab", "extra": 1}\r\n')
    put("jsonl", "escapes.jsonl", '{"caption": "a\\u0062c", "image": "d\\/e.png"}\n')

    put("config", "seemore.json", json.dumps({"preset": "seemore"}))
    put("config", "demo.json", json.dumps({
        "preset": "standard", "img_size": 64, "patch_size": 8, "image_embed_dim": 128, "num_blks": 4,
        "n_embd": 128, "n_layer": 2, "n_head": 4, "dropout": 0.0, "vocab_size": 70, "eos_id": 66}))
    put("config", "quirks.json", json.dumps({
        "attn_scale_by_width": False, "post_ln_ffn_residual": True, "image_predicts_first": True,
        "pad_counts_in_loss": False, "block_size": 64, "pad_id": 0}))

    # Small hand-made safetensors files: every dtype the parser knows, metadata.
    def st(tensors, meta=None):
        header, data = {}, b""
        for name, (dtype, shape, raw) in tensors.items():
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        if meta is not None:
            header["__metadata__"] = meta
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data

    put("safetensors", "dtypes.safetensors", st({
        "f32": ("F32", [2], struct.pack("<2f", 1.5, -2)),
        "f16": ("F16", [1, 2], struct.pack("<2e", 0.5, 3)),
        "bf16": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "f64": ("F64", [1], struct.pack("<d", 7)),
        "scalar": ("F32", [], struct.pack("<f", 1)),
        "empty": ("F32", [0, 3], b""),
    }, {"format": "pt"}))
    # An Adam state over parameters "a" [2] and "b" [3] (optim/state.hpp's form).
    f32 = lambda *v: struct.pack("<%df" % len(v), *v)
    put("safetensors", "optimizer_state.safetensors", st({
        "exp_avg.a": ("F32", [2], f32(0.1, -0.2)), "exp_avg_sq.a": ("F32", [2], f32(0.01, 0.04)),
        "exp_avg.b": ("F32", [3], f32(1, 2, 3)), "exp_avg_sq.b": ("F32", [3], f32(1, 4, 9)),
    }, {"format": "seemore-optimizer", "optimizer": json.dumps({
        "type": "adam", "params": ["a", "b"], "step": [3, 3], "betas": [0.9, 0.999], "eps": 1e-8,
        "decoupled": False, "groups": [{"size": 2, "lr": 0.001, "initial_lr": 0.001, "weight_decay": 0.0}]})}))
    if len(sys.argv) > 1:
        path = os.path.join(OUT, "safetensors", "tiny_checkpoint.safetensors")
        bare = os.path.join(OUT, "safetensors", "bare_state_dict.safetensors")
        subprocess.run([sys.argv[1], path, bare], check=True)


if __name__ == "__main__":
    main()
