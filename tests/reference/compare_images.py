#!/usr/bin/env python3
"""Measures seemore's image decoding + resizing against PIL (what the reference
uses through torchvision). For each input image it writes variants in other
modes and formats (grey, grey+alpha, RGBA, palette, interlaced PNG, baseline
and progressive JPEG, grey JPEG, BMP of every bit depth and layout and RLE8
and RLE4, GIF
interlaced or not, with transparency and without any colour table, lossy and lossless WebP, still and
animated, Netpbm raw and plain with other maxvals, icons with PNG and DIB
entries, cursors, TGA raw and
run-length encoded (with PIL's writer and by hand: 16-bit, mirrored,
colour maps of 16 and 24 bits, on grey images too), SGI verbatim and
run-length encoded of 8 and 16 bits, PCX of every layout PIL opens, TIFF
uncompressed and in every compression PIL writes, and TIFF layouts PIL reads
but does not write: tiles, big-endian, min-is-white, 2- and 4-bit grey and
palette, 16-bit RGB and CMYK, premultiplied alpha, reversed fill order),
decodes and resizes each with both, and prints the max and mean absolute
difference in 8-bit levels.

Usage: /usr/bin/python3 tests/reference/compare_images.py build/tools/image_dump IMAGE...
"""
import io
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


def write_rle_bmp(path, idx, palette, rle4, odd_absolute=False, delta=False):
    """An RLE8 or RLE4 BMP (bottom-up): runs of three or more equal indices
    encoded, the rest as absolute runs (RLE4: of even length unless
    odd_absolute) or runs of one or two, end-of-line after every row,
    end-of-bitmap at the end. delta: the second row stored is replaced by a
    delta escape written as PIL 9.4 reads one (four bytes; it moves by the
    last two: one row up)."""
    h, w = idx.shape
    out = bytearray()
    for n, y in enumerate(range(h - 1, -1, -1)):
        if delta and n == 1:
            out += bytes([0, 2, 0, 0, 0, 1])
            continue
        row = [int(v) for v in idx[y]]
        x = 0
        while x < w:
            run = 1
            while x + run < w and run < 255 and row[x + run] == row[x]:
                run += 1
            if run >= 3:
                out += bytes([run, row[x] * 17 if rle4 else row[x]])
                x += run
                continue
            lit = 0  # pixels up to the next run of three
            while x + lit < w and lit < 254 and not (x + lit + 2 < w and row[x + lit] == row[x + lit + 1] == row[x + lit + 2]):
                lit += 1
            if rle4 and lit % 2 and not odd_absolute:
                lit -= 1
            if lit < 3:
                out += bytes([1, row[x] * 17 if rle4 else row[x]])
                x += 1
                continue
            px = row[x:x + lit]
            if rle4:
                px = px + [0] * (lit % 2)
                data = bytes(px[i] << 4 | px[i + 1] for i in range(0, len(px), 2))
            else:
                data = bytes(px)
            out += bytes([0, lit]) + data + b"\0" * (len(data) % 2)
            x += lit
        out += bytes([0, 0] if n < h - 1 else [0, 1])
    colours = len(palette) // 3
    pal = b"".join(bytes([palette[3 * i + 2], palette[3 * i + 1], palette[3 * i], 0]) for i in range(colours))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 4 if rle4 else 8, 2 if rle4 else 1, len(out), 2835, 2835, colours, 0)
    offset = 14 + len(info) + len(pal)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(out), 0, 0, offset) + info + pal + out)


def icon_dib(im, bpp):
    """An icon entry's DIB: the BMP PIL writes without its file header, the
    height doubled, a 1-bit mask after the colour rows."""
    src = im.convert("P", palette=Image.ADAPTIVE, colors=16 if bpp == 4 else 256) if bpp <= 8 else im
    b = io.BytesIO()
    src.save(b, "BMP", **({"bits": 4} if bpp == 4 else {}))
    dib = bytearray(b.getvalue()[14:])
    w, h = im.size
    dib[8:12] = struct.pack("<i", 2 * h)
    return bytes(dib) + b"\x55" * ((w + 31) // 32 * 4 * h)


def write_ico(path, entries, kind=1):
    """entries: (width, height, colours, bit count, image bytes), in directory
    order; kind 1 an icon, 2 a cursor."""
    at = 6 + 16 * len(entries)
    head, blobs = struct.pack("<HHH", 0, kind, len(entries)), b""
    for w, h, colours, bpp, data in entries:
        head += struct.pack("<BBBBHHII", w % 256, h % 256, colours, 0, 1, bpp, len(data), at + len(blobs))
        blobs += data
    with open(path, "wb") as f:
        f.write(head + blobs)


def write_tiff(path, samples, bits, photometric, extra=(), endian="<", tile=None, colormap=None, fillorder=1):
    """An uncompressed TIFF, byte by byte: samples is [h, w, spp] of integers
    below 2**bits; strips of 16 rows, or tiles of tile × tile pixels."""
    h, w, spp = samples.shape

    def pack(block):  # rows of a strip or tile, each padded to whole bytes
        out = []
        for row in block:
            flat = row.reshape(-1)
            if bits == 16:
                out.append(flat.astype(endian + "u2").tobytes())
            elif bits == 8:
                out.append(flat.astype(np.uint8).tobytes())
            else:
                b = np.unpackbits(flat.astype(np.uint8)[:, None], axis=1)[:, 8 - bits:]
                out.append(np.packbits(b.reshape(-1)).tobytes())
        data = b"".join(out)
        if fillorder == 2:
            data = bytes(int(f"{x:08b}"[::-1], 2) for x in data)
        return data

    chunks = []
    if tile:
        padded = np.zeros(((h + tile - 1) // tile * tile, (w + tile - 1) // tile * tile, spp), samples.dtype)
        padded[:h, :w] = samples
        for ty in range(0, h, tile):
            for tx in range(0, w, tile):
                chunks.append(pack(padded[ty:ty + tile, tx:tx + tile]))
    else:
        for y in range(0, h, 16):
            chunks.append(pack(samples[y:y + 16]))
    tags = {256: ("I", [w]), 257: ("I", [h]), 258: ("H", [bits] * spp), 259: ("H", [1]), 262: ("H", [photometric]),
            277: ("H", [spp])}
    if fillorder != 1:
        tags[266] = ("H", [fillorder])
    if tile:
        tags.update({322: ("H", [tile]), 323: ("H", [tile]), 324: ("I", None), 325: ("I", [len(c) for c in chunks])})
    else:
        tags.update({273: ("I", None), 278: ("H", [16]), 279: ("I", [len(c) for c in chunks])})
    if colormap is not None:
        tags[320] = ("H", list(colormap))
    if extra:
        tags[338] = ("H", list(extra))
    data_start = 8
    offsets, pos = [], data_start
    for c in chunks:
        offsets.append(pos)
        pos += len(c)
    tags[324 if tile else 273] = ("I", offsets)
    ifd_at = pos + (pos & 1)
    ifd_size = 2 + 12 * len(tags) + 4
    blob_at = ifd_at + ifd_size
    entries, blobs = b"", b""
    for code in sorted(tags):
        kind, vals = tags[code]
        raw = struct.pack(endian + kind * len(vals), *vals)
        typ = 3 if kind == "H" else 4
        if len(raw) <= 4:
            field = raw + b"\0" * (4 - len(raw))
        else:
            field = struct.pack(endian + "I", blob_at + len(blobs))
            blobs += raw + b"\0" * (len(raw) & 1)
        entries += struct.pack(endian + "HHI", code, typ, len(vals)) + field
    head = (b"II*\0" if endian == "<" else b"MM\0*") + struct.pack(endian + "I", ifd_at)
    body = b"".join(chunks) + b"\0" * (ifd_at - pos)
    with open(path, "wb") as f:
        f.write(head + body + struct.pack(endian + "H", len(tags)) + entries + struct.pack(endian + "I", 0) + blobs)


def write_tga(path, px, kind, depth, top_down=False, mirrored=False, cmap=None, rle=False, ident=b""):
    """A TGA file of `px` (h x w x bytes-per-pixel, top row first, bytes as
    stored): kind 1 colour-mapped, 2 true-colour, 3 grey; cmap (entries as
    bytes, entry bits, first index). RLE: runs of two or more equal pixels
    within a row, everything else in literal packets that run on over rows
    (PIL's reader takes those; a run that crossed a row end it refuses)."""
    h, w, n = px.shape
    rows = px[::-1] if not top_down else px
    if mirrored:
        rows = rows[:, ::-1]
    data = bytearray()
    if not rle:
        data = rows.tobytes()
    else:
        flat = [bytes(p) for p in rows.reshape(-1, n)]
        i, literal = 0, []
        def flush():
            if literal:
                data.extend(bytes([len(literal) - 1]) + b"".join(literal))
                literal.clear()
        while i < len(flat):
            run = 1
            while run < 128 and (i + run) % w and flat[i + run] == flat[i]:
                run += 1
            if run >= 2:
                flush()
                data.extend(bytes([0x80 | (run - 1)]) + flat[i])
                i += run
            else:
                literal.append(flat[i])
                i += 1
                if len(literal) == 128:
                    flush()
        flush()
    entries, bits, start = cmap if cmap else (b"", 0, 0)
    count = len(entries) // max(bits // 8, 1) if cmap else 0
    head = struct.pack("<BBBHHBHHHHBB", len(ident), 1 if cmap else 0, kind | (8 if rle else 0), start, count, bits,
                       0, 0, w, h, depth, (0x20 if top_down else 0) | (0x10 if mirrored else 0))
    with open(path, "wb") as f:
        f.write(head + ident + entries + bytes(data))


def write_sgi_rle(path, planes, bpc):
    """A run-length SGI file of `planes` (channels x h x w, top row first):
    runs of three or more equal samples, literals otherwise, each row ended
    by a 0 packet, rows bottom-up, offsets and lengths in two tables."""
    z, h, w = planes.shape
    unit = ">u2" if bpc == 2 else "u1"
    def word(v):
        return np.array([v], unit).tobytes()
    rows, starts, lengths = [], [], []
    at = 512 + 8 * h * z
    for c in range(z):
        for y in range(h - 1, -1, -1):
            row = [int(v) for v in planes[c, y]]
            out, x, lit = bytearray(), 0, []
            def flush():
                while lit:
                    part = lit[:127]
                    del lit[:127]
                    out.extend(word(0x80 | len(part)) + np.array(part, unit).tobytes())
            while x < w:
                n = 1
                while x + n < w and n < 127 and row[x + n] == row[x]:
                    n += 1
                if n >= 3:
                    flush()
                    out.extend(word(n) + word(row[x]))
                    x += n
                else:
                    lit.append(row[x])
                    x += 1
            flush()
            out.extend(word(0))
            rows.append(bytes(out))
    # Tables are indexed row + channel * height, the row counted from the bottom.
    for r in rows:
        starts.append(at)
        lengths.append(len(r))
        at += len(r)
    head = struct.pack(">hBBHHH", 474, 1, bpc, 3 if z > 1 else 2, w, h) + struct.pack(">H", z)
    head += b"\0" * (512 - len(head))
    with open(path, "wb") as f:
        f.write(head + struct.pack(">%dI" % len(rows), *starts) + struct.pack(">%dI" % len(rows), *lengths) + b"".join(rows))


def write_pcx(path, planes, bits, palette=b"", stride=None, tail=b""):
    """A PCX file of `planes` (list of h x w arrays: bit planes of 0/1, or
    byte planes), each line the planes in turn, each plane `stride` bytes
    (default: the bytes the width needs, rounded up to even), run-length
    encoded line by line."""
    h, w = planes[0].shape
    need = (w * bits + 7) // 8
    stride = stride or need + need % 2
    lines = bytearray()
    for y in range(h):
        raw = b""
        for p in planes:
            row = np.packbits(p[y].astype(np.uint8)).tobytes() if bits == 1 else p[y].astype(np.uint8).tobytes()
            raw += row.ljust(stride, b"\0")
        x = 0
        while x < len(raw):
            n = 1
            while x + n < len(raw) and n < 63 and raw[x + n] == raw[x]:
                n += 1
            if n > 1 or raw[x] >= 0xC0:
                lines += bytes([0xC0 | n, raw[x]])
            else:
                lines.append(raw[x])
            x += n
    head = struct.pack("<BBBBHHHHHH", 10, 5 if bits == 8 else 2, 1, bits, 0, 0, w - 1, h - 1, 72, 72)
    head += palette.ljust(48, b"\0")[:48] + b"\0" + bytes([len(planes)]) + struct.pack("<HH", stride, 1)
    with open(path, "wb") as f:
        f.write(head.ljust(128, b"\0") + bytes(lines) + tail)


def main():
    tool, images = sys.argv[1], sys.argv[2:]
    worst = refused = 0
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
                "animated.webp": (base, {"save_all": True, "append_images": [base.rotate(90)], "quality": 80}),
                "animated-lossless.webp": (base, {"save_all": True, "append_images": [base.convert("L")],
                                                  "lossless": True}),
                "animated-alpha.webp": (varied, {"save_all": True, "append_images": [base.convert("RGBA")],
                                                 "lossless": True, "exact": True}),
                "rgb.tif": base,
                "lzw.tif": (base, {"compression": "tiff_lzw"}),
                "deflate.tif": (base, {"compression": "tiff_adobe_deflate"}),
                "packbits.tif": (base, {"compression": "packbits"}),
                "jpeg.tif": (base, {"compression": "jpeg", "quality": 85}),
                "ycbcr-jpeg.tif": (base.convert("YCbCr"), {"compression": "jpeg"}),
                "grey-lzw.tif": (base.convert("L"), {"compression": "tiff_lzw"}),
                "1bit.tif": base.convert("1"),
                "g4.tif": (base.convert("1"), {"compression": "group4"}),
                "grey+alpha.tif": base.convert("LA"),
                "palette.tif": (base.convert("P", palette=Image.ADAPTIVE), {"compression": "tiff_lzw"}),
                "alpha.tif": (varied, {"compression": "tiff_adobe_deflate"}),
                "cmyk.tif": base.convert("CMYK"),
                "cmyk-varied.tif": Image.fromarray(np.dstack([np.asarray(base), np.asarray(base.convert("L"))]),
                                                   mode="CMYK"),
                "grey16.tif": Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 3),
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
            # An animation whose first frame is transparent along two edges:
            # the encoder crops the frame, and both readers show black there.
            border = np.asarray(base.convert("RGBA")).copy()
            border[:10, :, 3] = 0
            border[:, :10, 3] = 0
            border[:10, :, :3] = (200, 100, 50)
            border = Image.fromarray(border, "RGBA")
            variants["animated-border.webp"] = (border, {"save_all": True, "append_images": [border.rotate(180)],
                                                         "lossless": True})
            # Netpbm: PIL writes P6, P5 and P4; the plain and other-maxval forms here.
            variants["p6.ppm"] = base
            variants["p5.pgm"] = base.convert("L")
            variants["p4.pbm"] = base.convert("1")
            g8 = np.asarray(base.convert("L")).astype(np.int64)
            for name, head, body in [
                    ("p3-plain.ppm", b"P3\n%d %d\n255\n", "\n".join(" ".join(map(str, r.reshape(-1))) for r in arr)),
                    ("p2-plain-1000.pgm", b"P2\n%d %d\n1000\n", "\n".join(" ".join(map(str, r * 3)) for r in g8)),
                    ("p1-plain.pbm", b"P1\n# a comment\n%d %d\n", "\n".join("".join(str(int(v < 128)) for v in r) for r in g8)),
                    ("p6-16bit.ppm", b"P6\n%d %d\n65535\n", (arr * 257).astype(">u2").tobytes()),
                    ("p6-maxval100.ppm", b"P6\n%d %d\n100\n", (arr * 100 // 255).astype(np.uint8).tobytes()),
                    ("p5-16bit.pgm", b"P5\n%d %d\n65535\n", (g8 // 2).astype(">u2").tobytes())]:
                path = os.path.join(d, name)
                with open(path, "wb") as f:
                    f.write(head % (w, h) + (body.encode() if isinstance(body, str) else body))
                variants[name] = path
            # Icons: PIL writes PNG entries; DIB entries and the choice between entries here.
            variants["icon.ico"] = (base.resize((64, 64)), {"sizes": [(16, 16), (32, 32), (64, 64)]})
            s32, s16 = base.resize((32, 32)), base.resize((16, 16))
            png32 = io.BytesIO()
            s32.rotate(90).save(png32, "PNG")
            for name, entries in [
                    ("icon-dib24.ico", [(16, 16, 0, 24, icon_dib(s16, 24)), (32, 32, 0, 24, icon_dib(s32, 24))]),
                    ("icon-dib8.ico", [(32, 32, 0, 8, icon_dib(s32, 8))]),
                    ("icon-dib4.ico", [(32, 32, 16, 4, icon_dib(s32, 4))]),
                    ("icon-dib32.ico", [(32, 32, 0, 32, icon_dib(s32.convert("RGBA"), 32))]),
                    ("icon-deeper-wins.ico", [(32, 32, 0, 32, png32.getvalue()), (32, 32, 0, 24, icon_dib(s32, 24))]),
                    ("icon-last-wins.ico", [(32, 32, 0, 24, icon_dib(s32, 24)),
                                            (32, 32, 0, 24, icon_dib(s32.rotate(180), 24))]),
                    ("icon-one-colour.ico", [(32, 32, 1, 0, icon_dib(s32.rotate(90), 24)),
                                             (32, 32, 0, 24, icon_dib(s32, 24))])]:
                path = os.path.join(d, name)
                write_ico(path, entries)
                variants[name] = path
            # Cursors (PIL reads them, writes none): the first entry, or a later one both wider and taller.
            s64 = base.resize((64, 64))
            for name, entries in [("cursor.cur", [(16, 16, 0, 24, icon_dib(s16, 24)), (64, 64, 0, 24, icon_dib(s64, 24))]),
                                  ("cursor-first.cur", [(32, 32, 0, 8, icon_dib(s32, 8)),
                                                        (64, 16, 0, 24, icon_dib(s64.resize((64, 16)), 24))])]:
                path = os.path.join(d, name)
                write_ico(path, entries, kind=2)
                variants[name] = path
            # RLE BMPs (PIL reads them, no encoder writes them).
            p256 = base.convert("P", palette=Image.ADAPTIVE)
            p16 = base.convert("P", palette=Image.ADAPTIVE, colors=16)
            for name, im, rle4, kw in [("rle8.bmp", p256, False, {}), ("rle4.bmp", p16, True, {}),
                                       ("rle4-odd.bmp", p16, True, {"odd_absolute": True}),
                                       ("rle8-delta.bmp", p256, False, {"delta": True})]:
                path = os.path.join(d, name)
                pal = (im.getpalette() + [0] * 768)[:48 if rle4 else 768]
                write_rle_bmp(path, np.asarray(im), pal, rle4, **kw)
                variants[name] = path
            # A GIF without any colour table (PIL reads its indices as grey levels).
            gif = io.BytesIO()
            base.convert("P", palette=Image.ADAPTIVE).save(gif, "GIF")
            g = gif.getvalue()
            table = 3 * 2 ** ((g[10] & 7) + 1) if g[10] & 0x80 else 0
            path = os.path.join(d, "no-colour-table.gif")
            with open(path, "wb") as f:
                f.write(g[:10] + bytes([g[10] & 0x70]) + g[11:13] + g[13 + table:])
            variants["no-colour-table.gif"] = path
            # TIFF layouts PIL reads but does not write.
            grey = np.asarray(base.convert("L")).astype(np.uint32)[..., None]
            alpha = grey // 2 + 64
            premul = np.concatenate([arr * alpha // 255, alpha], -1)
            pal16 = base.convert("P", palette=Image.ADAPTIVE, colors=16)
            colours = (pal16.getpalette() + [0] * 48)[:48]
            cmap16 = np.asarray(colours).reshape(16, 3).T.reshape(-1) * 257  # all reds, greens, blues; 16 bits
            cmyk = np.dstack([np.asarray(base), np.asarray(base.convert("L"))]).astype(np.uint32)
            for name, kw in [("tiled.tif", dict(samples=arr, bits=8, photometric=2, tile=16)),
                             ("big-endian.tif", dict(samples=arr, bits=8, photometric=2, endian=">")),
                             ("miniswhite.tif", dict(samples=255 - grey, bits=8, photometric=0)),
                             ("grey4.tif", dict(samples=grey >> 4, bits=4, photometric=1, tile=32)),
                             ("grey2-msb.tif", dict(samples=grey >> 6, bits=2, photometric=1, endian=">")),
                             ("palette4.tif", dict(samples=np.asarray(pal16)[..., None], bits=4, photometric=3,
                                                   colormap=cmap16)),
                             ("rgb16.tif", dict(samples=arr * 257 + 100, bits=16, photometric=2, endian=">")),
                             ("rgb16-tiled.tif", dict(samples=arr * 257, bits=16, photometric=2, tile=32)),
                             ("cmyk16.tif", dict(samples=cmyk * 256 + 77, bits=16, photometric=5)),
                             ("premultiplied.tif", dict(samples=premul, bits=8, photometric=2, extra=(1,))),
                             ("rgbx.tif", dict(samples=np.concatenate([arr, alpha], -1), bits=8, photometric=2,
                                               extra=(0,))),
                             ("fillorder2.tif", dict(samples=arr, bits=8, photometric=2, fillorder=2)),
                             ("1bit-fillorder2.tif", dict(samples=(grey > 127).astype(np.uint32), bits=1,
                                                          photometric=1, fillorder=2))]:
                path = os.path.join(d, name)
                write_tiff(path, **kw)
                variants[name] = path
            # TGA: what PIL writes (1-bit, grey, grey+alpha, palette, RGB, RGBA; raw or RLE;
            # bottom-up or top-down), and the layouts it reads but does not write.
            for name, im in [("rgb", base), ("rgba", varied), ("grey", base.convert("L")),
                             ("grey+alpha", base.convert("LA")), ("palette", p256), ("1bit", base.convert("1"))]:
                variants[name + ".tga"] = im
                variants[name + "-rle.tga"] = (im, {"compression": "tga_rle"})
            variants["top-down.tga"] = (base, {"orientation": 1})
            u8 = arr.astype(np.uint8)
            x555 = ((arr[..., 0] >> 3) << 10 | (arr[..., 1] >> 3) << 5 | arr[..., 2] >> 3).astype("<u2")
            x555 = x555[..., None].view(np.uint8).reshape(h, w, 2)
            bgr = u8[..., ::-1]
            idx = np.asarray(p256, np.uint8)[..., None]
            pal = np.asarray(p256.getpalette()[:768], np.uint8).reshape(-1, 3)
            pal555 = ((pal[:, 0].astype(np.uint32) >> 3) << 10 | (pal[:, 1] >> 3) << 5 | pal[:, 2] >> 3).astype("<u2")
            gl = np.asarray(base.convert("L"), np.uint8)[..., None]
            ramp = np.stack([np.arange(200) % 256, 255 - np.arange(200), (np.arange(200) * 7) % 256], -1)
            for name, kw in [("rgb16.tga", dict(px=x555, kind=2, depth=16)),
                             ("rgb16-rle-mirrored.tga", dict(px=x555, kind=2, depth=16, rle=True, mirrored=True)),
                             ("rgb-rle-rows.tga", dict(px=bgr, kind=2, depth=24, rle=True, top_down=True,
                                                       ident=b"seemore")),
                             ("mirrored.tga", dict(px=bgr, kind=2, depth=24, mirrored=True, top_down=True)),
                             ("map16.tga", dict(px=idx, kind=1, depth=8, cmap=(pal555.tobytes(), 16, 0))),
                             ("map-start.tga", dict(px=idx, kind=1, depth=8, rle=True,
                                                    cmap=(pal[:200, ::-1].tobytes(), 24, 40))),
                             ("grey-mapped.tga", dict(px=gl, kind=3, depth=8,
                                                      cmap=(ramp[:, ::-1].astype(np.uint8).tobytes(), 24, 16))),
                             ("grey-map8.tga", dict(px=gl, kind=3, depth=8, cmap=(bytes(range(64)), 8, 0)))]:
                path = os.path.join(d, name)
                write_tga(path, **kw)
                variants[name] = path
            # SGI: PIL writes verbatim 8- and 16-bit grey, RGB and RGBA; run-length files here.
            for name, im in [("rgb", base), ("rgba", varied), ("grey", base.convert("L"))]:
                variants[name + ".sgi"] = im
                variants[name + "-16.sgi"] = (im, {"bpc": 2})
            rgb_planes = np.transpose(arr, (2, 0, 1))
            for name, planes, bpc in [("rle.sgi", rgb_planes, 1), ("rle-rgba.sgi", np.concatenate([rgb_planes, alpha.transpose(2, 0, 1)]), 1),
                                      ("rle-grey.sgi", grey.transpose(2, 0, 1), 1),
                                      ("rle-16.sgi", rgb_planes * 256 + 99, 2)]:
                path = os.path.join(d, name)
                write_sgi_rle(path, planes, bpc)
                variants[name] = path
            path = os.path.join(d, "16-low-bytes.sgi")  # 16-bit samples whose low bytes differ: PIL keeps the high ones
            with open(path, "wb") as f:
                head = struct.pack(">hBBHHHH", 474, 0, 2, 3, w, h, 3)
                f.write(head + b"\0" * (512 - len(head)) + (rgb_planes[:, ::-1] * 256 + 255 - rgb_planes[:, ::-1]).astype(">u2").tobytes())
            variants["16-low-bytes.sgi"] = path
            # PCX: PIL writes 1-bit, grey, palette and RGB; 16- and 4-colour bit planes,
            # a grey-ramp palette (read as grey) and lines not padded to even here.
            for name, im in [("rgb", base), ("grey", base.convert("L")), ("palette", p256), ("1bit", base.convert("1"))]:
                variants[name + ".pcx"] = im
            i16 = np.asarray(p16, np.uint8)
            pal16c = bytes(p16.getpalette()[:48])
            i4 = np.asarray(base.convert("P", palette=Image.ADAPTIVE, colors=4), np.uint8)
            pal4 = bytes(base.convert("P", palette=Image.ADAPTIVE, colors=4).getpalette()[:12])
            ramp = b"\x0c" + b"".join(bytes([i, i, i]) for i in range(256))
            for name, planes, bits, kw in [
                    ("16-colour.pcx", [(i16 >> k) & 1 for k in range(4)], 1, dict(palette=pal16c)),
                    ("4-colour.pcx", [(i4 >> k) & 1 for k in range(2)], 1, dict(palette=pal4)),
                    ("grey-ramp.pcx", [np.asarray(base.convert("L"))], 8, dict(tail=ramp)),
                    ("rgb-unpadded.pcx", [arr[..., c] for c in range(3)], 8, dict(stride=w))]:
                path = os.path.join(d, name)
                write_pcx(path, planes, bits, **kw)
                variants[name] = path
            for name, v in variants.items():
                if isinstance(v, str):
                    path = v
                else:
                    im, kw = v if isinstance(v, tuple) else (v, {})
                    path = os.path.join(d, name)
                    im.save(path, **kw)
                for size in (96, 224):
                    label = f"{os.path.basename(src):24s} {name:16s} -> {size:3d}:"
                    try:
                        ref = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR))
                    except Exception as e:  # a file PIL refuses must be refused by us too
                        try:
                            ours(tool, path, size)
                        except subprocess.CalledProcessError as mine:
                            refused += 1
                            print(f"{label} both refuse (PIL: {e}; ours: {mine.stderr.decode().strip()})")
                            continue
                        print(f"{label} PIL refuses ({e}), ours decodes it")
                        worst = max(worst, 256)
                        continue
                    diff = np.abs(ours(tool, path, size) - ref.astype(int))
                    worst = max(worst, diff.max())
                    print(f"{label} max {diff.max():3d}  mean {diff.mean():.5f}")
    print(f"refused by both: {refused}")
    print(f"worst max abs difference: {worst} (256: a file one side refuses and the other decodes)")


if __name__ == "__main__":
    main()
