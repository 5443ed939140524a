#!/usr/bin/env python3
"""The W4 peer: PIL + torchvision decoding 500x375 JPEG photos to 224x224
model inputs, on one core. Run with Debian's /usr/bin/python3
(python3-pil, python3-torchvision).

  bench_decode_pil.py make DIR [--count N]   writes N 500x375 JPEGs made from
                                             Debian's tuxpaint-stamps-default pictures
  bench_decode_pil.py time DIR [--seconds S] prints "pil_images_per_second X"

The pipeline is the seed's recipe as torchvision writes it: RGB, Resize(256),
CenterCrop(224), ToTensor, Normalize(0.5, 0.5) (= (x - 127.5) / 127.5)."""
import argparse
import glob
import os
import random
import sys
import time

STAMPS = "/usr/share/tuxpaint/stamps"


def make(folder, count):
    from PIL import Image, ImageFilter

    pictures = sorted(glob.glob(os.path.join(STAMPS, "**", "*.png"), recursive=True))
    if not pictures:
        sys.exit(f"no pictures under {STAMPS}: apt-get install tuxpaint-stamps-default")
    rng = random.Random(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        # A picture on a textured background, scaled to cover 500x375, with
        # some sensor-like noise so the JPEG carries photo-like detail.
        stamp = Image.open(pictures[(i * 97) % len(pictures)]).convert("RGBA")
        bg = Image.effect_noise((500, 375), 40 + 10 * (i % 5)).convert("RGB")
        tint = Image.new("RGB", (500, 375), tuple(rng.randrange(60, 200) for _ in range(3)))
        bg = Image.blend(bg, tint, 0.6).filter(ImageFilter.GaussianBlur(1.5))
        scale = max(500 / stamp.width, 375 / stamp.height) * rng.uniform(0.6, 1.0)
        stamp = stamp.resize((max(1, int(stamp.width * scale)), max(1, int(stamp.height * scale))),
                             Image.BICUBIC)
        bg.paste(stamp, ((500 - stamp.width) // 2, (375 - stamp.height) // 2), stamp)
        noise = Image.effect_noise((500, 375), 12).convert("RGB")
        photo = Image.blend(bg, noise, 0.08)
        photo.save(os.path.join(folder, f"photo{i:03d}.jpg"), quality=90)


def time_pil(folder, seconds):
    import torch
    from PIL import Image
    from torchvision import transforms

    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ])
    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    if not files:
        sys.exit(f"no .jpg files in {folder}")

    def one_pass():
        for f in files:
            with Image.open(f) as im:
                x = tf(im.convert("RGB"))
        return x

    one_pass()  # warm up: page cache, lazy imports
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        one_pass()
        rate = len(files) / (time.perf_counter() - start)
        best = max(best, rate)
        if time.perf_counter() > deadline:
            break
    print(f"pil_images_per_second {best:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["make", "time"])
    ap.add_argument("folder")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    if a.command == "make":
        make(a.folder, a.count)
    else:
        time_pil(a.folder, a.seconds)


if __name__ == "__main__":
    main()
