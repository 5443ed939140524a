#!/usr/bin/python3
"""PyTorch reference for graft's demo (issue 6, item 5).

Runs the demo's recipe with PyTorch alone, on the same backbone and split,
and, given graft, runs graft with the same seeds and compares:

  * the backbone: the nsfwjs MobileNetV2 Keras graph is rebuilt in PyTorch
    from the TF.js files (model.json + the uint8-quantized weights, value =
    min + scale * q), layer by layer from the Keras config, so the features
    are computed by PyTorch, not by graft;
  * the preprocessing: PNG alpha composited on white, shorter side resized to
    224 / 0.875 = 256 and the centre 224x224 taken, expressed (as graft does)
    as one antialiased bilinear resample of that box of the original (PIL,
    on float channels so nothing is rounded to 8 bits), then / 255, NHWC;
  * the head: one nn.Linear (PyTorch's default init), Adam(lr 1e-2, weight
    decay 1e-4 as L2), CrossEntropyLoss(label_smoothing 0.1), CosineAnnealingLR
    stepped per batch over all steps, batch 32, 30 epochs, reshuffled every
    epoch; test accuracy after every epoch; the best epoch's accuracy is
    reported (graft's default: no validation split, the test set picks the
    best epoch, as the seed does) and the last epoch's too.

With --graft it also checks graft against PyTorch: the trunk on one
identical input (graft's pooled features via a cut of graft's own exported
model, and the TF.js model's final output), graft's cached features of every
image against PyTorch's, and a PyTorch head trained on graft's features.

Usage (Debian's python3-torch, python3-onnx, python3-numpy, python3-pil):
  /usr/bin/python3 scripts/pytorch_demo_reference.py --graft build/graft --seeds 0 1 2 3 4 --random-trunk
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- the data

def read_list(images_dir, list_file):
    """The seed's list format: 'relative/path label' per line."""
    samples = []
    with open(list_file) as f:
        for line in f:
            parts = line.split()
            if parts:
                samples.append((os.path.join(images_dir, parts[0]), int(parts[1])))
    return samples


def round_half_away(x):
    """C++ std::round (Python's round() rounds half to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def load_image(path, size=224, crop_fraction=0.875, background=255):
    """RGB / 255, [size, size, 3] float32: alpha composited on the background,
    shorter side resized to round(size / crop_fraction), centre crop size x size
    (torchvision's Resize + CenterCrop geometry), one antialiased bilinear
    resample of the crop's box in the original."""
    im = Image.open(path)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
        a = rgba[..., 3:]
        rgb = (rgba[..., :3] * a + background * (255 - a) + 127) // 255  # rounded, as graft's PNG reader
    else:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint32)
    h, w = rgb.shape[:2]
    target = float(round_half_away(size / crop_fraction))
    rw, rh = target, target
    if w <= h:
        rh = math.floor(target * h / w)
    else:
        rw = math.floor(target * w / h)
    left, top = round_half_away((rw - size) / 2), round_half_away((rh - size) / 2)
    sx, sy = w / rw, h / rh  # original pixels per resized pixel
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    channels = [np.asarray(Image.fromarray(rgb[..., c].astype(np.float32), mode="F")
                           .resize((size, size), Image.BILINEAR, box=box)) for c in range(3)]
    return (np.stack(channels, axis=-1) / 255.0).astype(np.float32)


# ------------------------------------------------- the Keras graph in PyTorch

def load_tfjs_weights(model_json):
    """name -> float32 array, dequantizing (value = min + scale * q)."""
    with open(model_json) as f:
        model = json.load(f)
    folder = os.path.dirname(model_json)
    weights = {}
    for group in model["weightsManifest"]:
        data = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"], dtype=np.int64))
            q = w.get("quantization")
            assert w["dtype"] == "float32", w
            if q:
                assert q["dtype"] == "uint8", q
                raw = np.frombuffer(data, np.uint8, n, offset)
                offset += n
                values = (q["min"] + q["scale"] * raw.astype(np.float64)).astype(np.float32)
            else:
                values = np.frombuffer(data, np.float32, n, offset).copy()
                offset += 4 * n
            weights[w["name"]] = values.reshape(w["shape"])
        assert offset == len(data), (offset, len(data))
    return model["modelTopology"]["model_config"], weights


def tf_same_padding(size, kernel, stride, dilation):
    """TF's 'same': (before, after) so that the output is ceil(size / stride)."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class KerasNet:
    """A Keras functional model's graph, run in PyTorch in NCHW (the input is
    NHWC, as Keras takes it). Supports the layers MobileNetV2 uses."""

    def __init__(self, config, weights):
        self.layers = config["config"]["layers"]
        self.input = config["config"]["input_layers"][0][0]
        self.params = {}  # layer name -> dict of torch tensors, in PyTorch's layouts
        for layer in self.layers:
            name, cfg, kind = layer["name"], layer["config"], layer["class_name"]
            p = {}
            if kind == "Conv2D":
                p["weight"] = torch.from_numpy(weights[name + "/kernel"]).permute(3, 2, 0, 1).contiguous()
                if cfg["use_bias"]:
                    p["bias"] = torch.from_numpy(weights[name + "/bias"])
            elif kind == "DepthwiseConv2D":
                k = weights[name + "/depthwise_kernel"]  # [kh, kw, in, multiplier]
                kh, kw, cin, mult = k.shape
                p["weight"] = torch.from_numpy(k.reshape(kh, kw, cin * mult)).permute(2, 0, 1).unsqueeze(1).contiguous()
                if cfg["use_bias"]:
                    p["bias"] = torch.from_numpy(weights[name + "/bias"])
            elif kind == "BatchNormalization":
                assert cfg["axis"] in (-1, 3, [3], [-1]), cfg["axis"]
                c = weights[name + "/moving_mean"].shape[0]
                p["mean"] = torch.from_numpy(weights[name + "/moving_mean"])
                p["var"] = torch.from_numpy(weights[name + "/moving_variance"])
                p["gamma"] = torch.from_numpy(weights[name + "/gamma"]) if cfg["scale"] else torch.ones(c)
                p["beta"] = torch.from_numpy(weights[name + "/beta"]) if cfg["center"] else torch.zeros(c)
            elif kind == "Dense":
                p["weight"] = torch.from_numpy(weights[name + "/kernel"]).t().contiguous()
                if cfg["use_bias"]:
                    p["bias"] = torch.from_numpy(weights[name + "/bias"])
            self.params[name] = p

    def randomize(self, seed):
        """graft --baseline-random's trunk: Kaiming-uniform weights for ReLU
        (bound sqrt(6 / fan_in)), zero biases, identity BatchNorm."""
        gen = torch.Generator().manual_seed(seed)
        for layer in self.layers:
            p = self.params[layer["name"]]
            if layer["class_name"] == "BatchNormalization":
                for key, fill in (("gamma", 1.0), ("beta", 0.0), ("mean", 0.0), ("var", 1.0)):
                    p[key] = torch.full_like(p[key], fill)
            elif "weight" in p:
                w = p["weight"]
                bound = math.sqrt(6.0 / (w.numel() / w.shape[0]))
                p["weight"] = (torch.rand(w.shape, generator=gen) * 2 - 1) * bound
                if "bias" in p:
                    p["bias"] = torch.zeros_like(p["bias"])

    @staticmethod
    def activation(x, name):
        if name in (None, "linear"):
            return x
        if name == "relu":
            return F.relu(x)
        if name == "relu6":
            return torch.clamp(x, 0, 6)
        if name == "softmax":
            return F.softmax(x, dim=-1)
        raise ValueError(f"activation {name}")

    def conv(self, x, cfg, p, groups):
        kh, kw = cfg["kernel_size"]
        sh, sw = cfg["strides"]
        dh, dw = cfg["dilation_rate"]
        if cfg["padding"] == "same":
            top, bottom = tf_same_padding(x.shape[2], kh, sh, dh)
            left, right = tf_same_padding(x.shape[3], kw, sw, dw)
            x = F.pad(x, (left, right, top, bottom))
        else:
            assert cfg["padding"] == "valid", cfg["padding"]
        y = F.conv2d(x, p["weight"], p.get("bias"), (sh, sw), 0, (dh, dw), groups)
        return self.activation(y, cfg.get("activation"))

    def run_layer(self, kind, cfg, p, xs):
        x = xs[0]
        if kind == "ZeroPadding2D":
            pad = cfg["padding"]
            if isinstance(pad, int):
                pad = [[pad, pad], [pad, pad]]
            elif isinstance(pad[0], int):
                pad = [[pad[0], pad[0]], [pad[1], pad[1]]]
            return F.pad(x, (pad[1][0], pad[1][1], pad[0][0], pad[0][1]))
        if kind == "Conv2D":
            return self.conv(x, cfg, p, 1)
        if kind == "DepthwiseConv2D":
            return self.conv(x, cfg, p, x.shape[1])
        if kind == "BatchNormalization":
            return F.batch_norm(x, p["mean"], p["var"], p["gamma"], p["beta"], False, 0.0, cfg["epsilon"])
        if kind == "ReLU":
            slope, threshold, top = cfg.get("negative_slope", 0), cfg.get("threshold", 0), cfg.get("max_value")
            y = torch.where(x >= threshold, x, slope * (x - threshold))
            return torch.clamp(y, max=top) if top is not None else y
        if kind == "Activation":
            return self.activation(x, cfg["activation"])
        if kind == "Add":
            return sum(xs)
        if kind == "AveragePooling2D":
            assert cfg["padding"] == "valid", cfg["padding"]
            return F.avg_pool2d(x, cfg["pool_size"], cfg["strides"])
        if kind == "GlobalAveragePooling2D":
            return x.mean(dim=(2, 3))
        if kind == "Flatten":  # Keras flattens channels-last
            return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x.flatten(1)
        if kind == "Dense":
            return self.activation(F.linear(x, p["weight"], p.get("bias")), cfg["activation"])
        if kind == "Dropout":
            return x
        raise ValueError(f"layer type {kind} is not supported")

    @torch.no_grad()
    def __call__(self, x_nhwc, output):
        """The value of layer `output` for a [N, H, W, 3] batch; 4-D values
        come back in NCHW."""
        values = {self.input: x_nhwc.permute(0, 3, 1, 2)}
        for layer in self.layers:
            if layer["class_name"] == "InputLayer":
                continue
            inbound = layer["inbound_nodes"][0]
            xs = [values[node[0]] for node in inbound]
            values[layer["name"]] = self.run_layer(layer["class_name"], layer["config"],
                                                   self.params[layer["name"]], xs)
            if layer["name"] == output:
                return values[output]
        raise KeyError(output)


def trunk_features(net, images, cut, batch=16):
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(np.stack(images[start:start + batch]))
        out.append(net(x, cut).flatten(1))
    return torch.cat(out)


# ---------------------------------------------------------------- the head

def train_head(xtr, ytr, xte, yte, seed, classes, epochs=30, batch=32, lr=1e-2, weight_decay=1e-4,
               label_smoothing=0.1, init=None, orders=None):
    """graft train's default recipe; returns per-epoch test accuracies and
    mean train losses. `init` (weight, bias) and `orders(epoch)` replace
    PyTorch's own initialisation and shuffling (for the replay of a graft run)."""
    torch.manual_seed(seed)
    head = nn.Linear(xtr.shape[1], classes)
    if init is not None:
        with torch.no_grad():
            head.weight.copy_(init[0])
            head.bias.copy_(init[1])
    optimizer = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    shuffle = torch.Generator().manual_seed(seed)
    accuracies, losses = [], []
    for epoch in range(epochs):
        order = torch.randperm(len(xtr), generator=shuffle) if orders is None else torch.tensor(orders(epoch))
        total = 0.0
        for start in range(0, len(xtr), batch):
            rows = order[start:start + batch]
            optimizer.zero_grad()
            loss = loss_fn(head(xtr[rows]), ytr[rows])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(rows)
        losses.append(total / len(xtr))
        with torch.no_grad():
            accuracies.append((head(xte).argmax(1) == yte).double().mean().item())
    return accuracies, losses


# graft's random streams, for the replay: std::mt19937_64, its head's
# initialisation (src/graph/surgery.cpp) and its epoch order (src/train/fit.cpp).
MASK64 = (1 << 64) - 1


class MT19937_64:
    def __init__(self, seed):
        self.mt = [seed & MASK64]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64)
        self.index = 312

    def __call__(self):
        if self.index >= 312:
            mt, low = self.mt, (1 << 31) - 1
            for k in range(312):
                x = (mt[k] & ~low & MASK64) | (mt[(k + 1) % 312] & low)
                mt[k] = mt[(k + 156) % 312] ^ (x >> 1) ^ (0xB5026F5AA96619E9 if x & 1 else 0)
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & MASK64


def graft_head_init(seed, features, classes):
    rng = MT19937_64(seed)
    bound = 1 / math.sqrt(features)
    uniform = lambda n: [np.float32((2 * ((rng() >> 11) * 2.0 ** -53) - 1) * bound) for _ in range(n)]
    weight = torch.tensor(uniform(classes * features), dtype=torch.float32).reshape(classes, features)
    bias = torch.tensor(uniform(classes), dtype=torch.float32)
    return weight, bias


def graft_epoch_order(n, seed, epoch):
    rng = MT19937_64((seed * 0x9E3779B97F4A7C15 + epoch) & MASK64)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng() % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def best_and_last(accuracies):
    if isinstance(accuracies, tuple):  # (accuracies, losses)
        accuracies = accuracies[0]
    best = max(accuracies)
    return best, accuracies.index(best) + 1, accuracies[-1]  # ties keep the earlier epoch, as graft


# ----------------------------------------------------------- graft's side

def read_feature_cache(cache_dir, dim):
    """path -> feature row, from graft's feature cache files (format in
    src/data/feature_cache.cpp), for rows of `dim` numbers."""
    rows = {}
    for name in sorted(os.listdir(cache_dir)):
        if not name.startswith("features-"):
            continue
        data = open(os.path.join(cache_dir, name), "rb").read()
        assert data[:8] == b"GRAFTFC1"
        (n,) = struct.unpack_from("<I", data, 8)
        pos = (16 + n + 7) // 8 * 8
        while pos + 24 <= len(data):
            magic, key_len, stamp_len, d = struct.unpack_from("<IIII", data, pos)
            if magic != struct.unpack("<I", b"GFRC")[0]:
                break
            text = (key_len + stamp_len + 7) // 8 * 8
            key = data[pos + 24:pos + 24 + key_len].decode()
            values = np.frombuffer(data, np.float32, d, pos + 24 + text)
            if d == dim:
                rows[key.rsplit("#", 1)[0]] = values.copy()
            pos += 24 + text + (4 * d + 7) // 8 * 8
    return rows


def run_graft(graft, args, seed, out, cache_dir, random_trunk):
    cmd = [graft, "train", args.model, args.images, args.train, args.images, args.test,
           "--class-names", args.labels, "--epochs", str(args.epochs), "--seed", str(seed),
           "--cache-dir", cache_dir, "--out", out]
    if random_trunk:
        cmd.append("--baseline-random")
    start = time.time()
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seconds = time.time() - start
    history = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    accuracies = [h["eval_accuracy"] for h in history]
    printed = float(re.search(r"^test accuracy ([0-9.]+)", text, re.M).group(1))
    random = re.search(r"random trunk ([0-9.]+)", text)
    return {"cmd": cmd, "accuracies": accuracies, "losses": [h["train_loss"] for h in history],
            "printed": printed, "seconds": seconds,
            "random": float(random.group(1)) if random else None}


def check_trunk(graft, args, net, image, work):
    """graft and PyTorch on one identical input: the TF.js model's final
    output, and the pooled features through a cut of graft's exported model."""
    import onnx
    import onnx.utils
    x = image[None].astype(np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    report = {}
    subprocess.run([graft, "run", args.model, "--input", os.path.join(work, "x.npy"), "--out",
                    os.path.join(work, "full")], check=True, capture_output=True)
    ours = net(torch.from_numpy(x), "dense_3").numpy()
    theirs = np.load(os.path.join(work, "full", "dense_3.npy"))
    report["dense_3 (softmax of the TF.js model), max abs diff"] = float(np.abs(ours - theirs).max())
    # graft's exported model (trunk up to the cut + head) from a 1-epoch run, cut back to the features.
    subprocess.run([graft, "train", args.model, args.images, args.train, args.images, args.test,
                    "--class-names", args.labels, "--epochs", "1", "--no-cache", "--out", os.path.join(work, "one")],
                   check=True, capture_output=True)
    exported = os.path.join(work, "one", "model.onnx")
    m = onnx.load(exported)
    gemm = next(n for n in m.graph.node if n.op_type == "Gemm")
    flat = next(n for n in m.graph.node if gemm.input[0] in n.output)  # the head's Flatten
    feature_name = flat.input[0]
    cut = os.path.join(work, "trunk.onnx")
    onnx.utils.extract_model(exported, cut, [m.graph.input[0].name], [feature_name])
    out = subprocess.run([graft, "run", cut, "--input", os.path.join(work, "x.npy"), "--out",
                          os.path.join(work, "cut")], check=True, capture_output=True, text=True).stdout
    npy = out.split()[0]
    theirs = np.load(npy).reshape(1, -1)
    ours = net(torch.from_numpy(x), args.cut).flatten(1).numpy()
    report[f"pooled features ({feature_name}), max abs diff"] = float(np.abs(ours - theirs).max())
    report["pooled features, max |value|"] = float(np.abs(ours).max())
    return report


# ---------------------------------------------------------------- main

def describe(values):
    a = np.array(values)
    return f"{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0:.3f} (min {a.min():.2f}, max {a.max():.2f})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/nsfwjs_mobilenet_v2/model.json")
    p.add_argument("--images", default="/usr/share/tuxpaint/stamps")
    p.add_argument("--train", default="data/demo/train.txt")
    p.add_argument("--test", default="data/demo/test.txt")
    p.add_argument("--labels", default="data/demo/labels.txt")
    p.add_argument("--cut", default="average_pooling2d_1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--random-trunk", action="store_true", help="also the recipe on a randomly initialised trunk")
    p.add_argument("--graft", help="graft binary: also run graft with the same seeds and check it against PyTorch")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()
    if args.graft:
        args.graft = os.path.abspath(args.graft)
    os.chdir(ROOT)
    torch.set_num_threads(2)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
               "torch": torch.__version__, "numpy": np.__version__, "PIL": Image.__version__,
               "python": sys.version.split()[0], "argv": sys.argv}
    if os.path.exists("/proc/cpuinfo"):
        names = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
        if names:
            results["cpu"] = names[0]

    train, test = read_list(args.images, args.train), read_list(args.images, args.test)
    classes = max(label for _, label in train + test) + 1
    print(f"{len(train)} training and {len(test)} test images, {classes} classes", flush=True)
    start = time.time()
    train_images = [load_image(path) for path, _ in train]
    test_images = [load_image(path) for path, _ in test]
    results["preprocess_seconds"] = time.time() - start
    ytr = torch.tensor([label for _, label in train])
    yte = torch.tensor([label for _, label in test])

    config, weights = load_tfjs_weights(args.model)
    net = KerasNet(config, weights)
    start = time.time()
    xtr = trunk_features(net, train_images, args.cut)
    xte = trunk_features(net, test_images, args.cut)
    results["feature_seconds"] = time.time() - start
    print(f"features {tuple(xtr.shape)} in {results['feature_seconds']:.1f}s", flush=True)

    if args.graft:
        work = tempfile.mkdtemp(prefix="graft-pytorch-ref-")  # graft's outputs and feature cache, kept for a look
        print(f"graft's outputs: {work}", flush=True)
        results["trunk_check"] = check_trunk(args.graft, args, net, test_images[0], work)
        print("trunk check:", json.dumps(results["trunk_check"], indent=1), flush=True)

    runs, graft_histories = {}, {}
    for seed in args.seeds:
        r = {"pytorch": best_and_last(train_head(xtr, ytr, xte, yte, seed, classes, args.epochs))}
        if args.graft:
            g = run_graft(args.graft, args, seed, os.path.join(work, f"graft-{seed}"),
                          os.path.join(work, "cache"), args.random_trunk)
            r["graft"] = best_and_last(g["accuracies"])
            graft_histories[seed] = g
            r["graft_printed"] = g["printed"]
            r["graft_random"] = g["random"]
            r["graft_seconds"] = g["seconds"]
            results["graft_cmd"] = " ".join(g["cmd"])
        if args.random_trunk:
            random_net = KerasNet(config, weights)
            random_net.randomize(seed)
            rtr = trunk_features(random_net, train_images, args.cut)
            rte = trunk_features(random_net, test_images, args.cut)
            r["pytorch_random"] = best_and_last(train_head(rtr, ytr, rte, yte, seed, classes, args.epochs))
        runs[seed] = r
        print(f"seed {seed}: " + json.dumps(r), flush=True)
    results["runs"] = runs

    if args.graft:
        # graft's own features of every image (its cache) against PyTorch's, and
        # PyTorch's head trained on graft's features.
        cached = read_feature_cache(os.path.join(work, "cache"), xtr.shape[1])
        key = lambda path: os.path.normpath(os.path.abspath(path))
        gtr = torch.from_numpy(np.stack([cached[key(path)] for path, _ in train]))
        gte = torch.from_numpy(np.stack([cached[key(path)] for path, _ in test]))
        ours, theirs = torch.cat([xtr, xte]), torch.cat([gtr, gte])
        diff = (ours - theirs).abs()
        results["feature_check"] = {
            "images": len(ours),
            "max abs diff": diff.max().item(),
            "mean abs diff": diff.mean().item(),
            "max |feature|": ours.abs().max().item(),
            "mean |feature|": ours.abs().mean().item(),
            "worst image": (train + test)[int(diff.max(1).values.argmax())][0],
        }
        print("features, graft vs PyTorch:", json.dumps(results["feature_check"], indent=1), flush=True)
        replay = {}
        for seed in args.seeds:
            runs[seed]["pytorch_on_graft_features"] = best_and_last(
                train_head(gtr, ytr, gte, yte, seed, classes, args.epochs))
            # The replay: PyTorch with graft's head initialisation and batch
            # order on graft's features should retrace graft's run.
            accuracies, losses = train_head(
                gtr, ytr, gte, yte, seed, classes, args.epochs,
                init=graft_head_init(seed, gtr.shape[1], classes),
                orders=lambda epoch, seed=seed: graft_epoch_order(len(gtr), seed, epoch))
            g = graft_histories[seed]
            replay[seed] = {
                "epochs with a different test accuracy": sum(a != b for a, b in zip(accuracies, g["accuracies"])),
                "max abs diff of the epoch's train loss": max(abs(a - b) for a, b in zip(losses, g["losses"])),
                "train loss, last epoch (graft, PyTorch)": [g["losses"][-1], losses[-1]],
            }
            runs[seed]["pytorch_replay_of_graft"] = best_and_last(accuracies)
        results["replay"] = replay
        print("replay of graft's runs in PyTorch:", json.dumps(replay, indent=1), flush=True)

    print()
    for column in ("pytorch", "graft", "pytorch_on_graft_features", "pytorch_replay_of_graft", "pytorch_random"):
        if column in runs[args.seeds[0]]:
            print(f"{column:>26}: best {describe([runs[s][column][0] for s in args.seeds])}; "
                  f"last {describe([runs[s][column][2] for s in args.seeds])}")
    if args.graft and args.random_trunk:
        print(f"{'graft_random':>26}: best {describe([runs[s]['graft_random'] for s in args.seeds])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
