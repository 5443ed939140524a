#!/usr/bin/env python3
"""Writes the small test images of tests/data/images (run with Debian's
/usr/bin/python3 and python3-pil). Every image is tiny; the broken ones are
made from the good ones by hand."""
import io
import os
import struct
import zlib

from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "images")
W, H = 64, 48


def scene():
    """A smooth gradient with a red block top-left and a blue block
    bottom-right, so orientation and flips are visible."""
    img = Image.new("RGB", (W, H))
    px = img.load()
    for y in range(H):
        for x in range(W):
            px[x, y] = (40 + 2 * x, 60 + 3 * y, 120)
    for y in range(8):
        for x in range(12):
            px[x, y] = (230, 20, 20)
            px[W - 1 - x, H - 1 - y] = (20, 20, 230)
    return img


def exif_with_orientation(o):
    exif = Image.Exif()
    exif[0x0112] = o
    return exif.tobytes()


# The stored pixels for each EXIF orientation, so that applying the
# orientation shows scene(). Inverse of what a viewer does.
STORE = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),   # shown rotated 90° clockwise
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def interlaced_png(img):
    """An Adam7-interlaced RGB PNG (PIL cannot write one)."""
    w, h = img.size
    px = img.load()
    raw = b""
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)]:
        xs, ys = range(x0, w, dx), range(y0, h, dy)
        if not xs or not ys:
            continue
        for y in ys:
            raw += b"\x00" + bytes(c for x in xs for c in px[x, y])
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    out = lambda name: os.path.join(OUT, name)
    img = scene()
    img.save(out("rgb.png"))
    open(out("interlaced.png"), "wb").write(interlaced_png(img))
    assert Image.open(out("interlaced.png")).convert("RGB").tobytes() == img.tobytes()
    img.save(out("rgb.jpg"), quality=95)
    img.convert("L").save(out("grey.png"))
    img.convert("L").save(out("grey.jpg"), quality=95)
    img.convert("CMYK").save(out("cmyk.jpg"), quality=95)
    # 16-bit greyscale.
    img.convert("L").convert("I").point(lambda v: v * 257).save(out("grey16.png"))

    # Alpha: left half opaque, right half fully transparent, a middle column half.
    rgba = img.convert("RGBA")
    a = Image.new("L", (W, H), 255)
    a.paste(0, (W // 2, 0, W, H))
    a.paste(128, (W // 2 - 1, 0, W // 2, H))
    rgba.putalpha(a)
    rgba.save(out("rgba.png"))
    la = img.convert("L").convert("LA")
    la.putalpha(a)
    la.save(out("grey_alpha.png"))
    # A palette image whose index 0 is transparent (tRNS).
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    pal.paste(0, (0, 0, 4, 8))
    pal.save(out("palette.png"), transparency=0)

    for o, store in STORE.items():
        stored = store(img)
        stored.save(out(f"orient{o}.png"), exif=exif_with_orientation(o))
        # Check that PIL agrees that the tag shows scene().
        from PIL import ImageOps
        shown = ImageOps.exif_transpose(Image.open(out(f"orient{o}.png")))
        assert shown.convert("RGB").tobytes() == img.tobytes(), o
    STORE[6](img).save(out("orient6.jpg"), quality=95, exif=exif_with_orientation(6))

    # PIL's own decoding of the JPEGs (the same libjpeg-turbo), to compare with.
    from PIL import ImageOps
    for name in ["rgb.jpg", "grey.jpg", "cmyk.jpg", "orient6.jpg"]:
        decoded = ImageOps.exif_transpose(Image.open(out(name))).convert("RGB")
        decoded.save(out(name.replace(".jpg", ".pil.png")))

    # Broken files.
    jpg = open(out("rgb.jpg"), "rb").read()
    png = open(out("rgb.png"), "rb").read()
    open(out("truncated.jpg"), "wb").write(jpg[: len(jpg) // 2])
    open(out("truncated.png"), "wb").write(png[: len(png) // 2])
    # A marker segment claiming a length of 1 right after the start of image.
    open(out("corrupt.jpg"), "wb").write(b"\xff\xd8\xff\xdb\x00\x01" + jpg[6:200])
    bad = bytearray(png)
    bad[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    open(out("corrupt.png"), "wb").write(bytes(bad))
    open(out("not_image.jpg"), "wb").write(b"this is a text file, not a picture\n")
    Image.new("RGB", (4, 4)).save(out("tiny.gif"))
    # Decompression bombs: headers declaring 100000 x 100000 pixels.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    open(out("bomb.png"), "wb").write(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))
    sof = jpg.find(b"\xff\xc0")
    bomb = bytearray(jpg)
    bomb[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    open(out("bomb.jpg"), "wb").write(bytes(bomb))


if __name__ == "__main__":
    main()
