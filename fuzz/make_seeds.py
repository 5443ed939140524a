#!/usr/bin/python3
"""Writes the libFuzzer seed corpora from graft's real test files.

Usage: fuzz/make_seeds.py OUT_DIR
Makes OUT_DIR/{onnx,tfjs,list_file,image}:
  onnx       every model.onnx of the ONNX backend test data (Debian
             libonnx-testdata) and graft's small test models
  tfjs       each TF.js fixture under tests/data/tfjs as one fuzz input:
             model.json (its manifest pointed at one file, w.bin) + NUL +
             every shard of every group concatenated (the format fuzz_tfjs
             reads); fixtures over 1 MB are left out (they slow the fuzzer)
  list_file  the demo's list files and a few hand-written lines
  image      tests/data/images (JPEG and PNG, including the damaged ones)
"""
import glob
import hashlib
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX_DATA = "/usr/share/libonnx-testdata/data"
MAX_SEED = 1 << 20


def put(out_dir, data):
    os.makedirs(out_dir, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


def onnx_seeds(out):
    paths = glob.glob(os.path.join(ONNX_DATA, "**", "model.onnx"), recursive=True)
    paths += glob.glob(os.path.join(ROOT, "tests/data/models/**/*.onnx"), recursive=True)
    for p in paths:
        if os.path.getsize(p) <= MAX_SEED:
            put(out, open(p, "rb").read())


def tfjs_seeds(out):
    for model in glob.glob(os.path.join(ROOT, "tests/data/tfjs/*/model.json")):
        folder = os.path.dirname(model)
        root = json.load(open(model))
        weights = b""
        merged = {"paths": ["w.bin"], "weights": []}
        for group in root.get("weightsManifest", []):
            for shard in group["paths"]:
                weights += open(os.path.join(folder, shard), "rb").read()
            merged["weights"] += group["weights"]
        if len(weights) > MAX_SEED:
            continue
        if "weightsManifest" in root:
            root["weightsManifest"] = [merged]
        put(out, json.dumps(root).encode() + b"\0" + weights)


def list_seeds(out):
    for p in glob.glob(os.path.join(ROOT, "data/demo/*.txt")):
        put(out, open(p, "rb").read())
    put(out, b"\xef\xbb\xbf# comment\r\na.jpg 0\r\n\r\nb c.png 1,3\n")
    put(out, b"x.jpg 2\n")


def image_seeds(out):
    for p in glob.glob(os.path.join(ROOT, "tests/data/images/*")):
        if p.lower().endswith((".jpg", ".jpeg", ".png")) and os.path.getsize(p) <= MAX_SEED:
            put(out, open(p, "rb").read())


def main():
    out = sys.argv[1]
    for kind, make in [("onnx", onnx_seeds), ("tfjs", tfjs_seeds),
                       ("list_file", list_seeds), ("image", image_seeds)]:
        d = os.path.join(out, kind)
        shutil.rmtree(d, ignore_errors=True)
        make(d)
        print(f"{kind}: {len(os.listdir(d))} seeds")


if __name__ == "__main__":
    main()
