#!/usr/bin/python3
"""Builds the small whole-model test fixtures under tests/data/models/.

Each fixture folder gets model.onnx, input.npy (batch 2) and
torch_output_<k>.npy (PyTorch's answer, for information only). The reference
the tests compare against is ONNX Runtime's (ort_output_<k>.npy), written by
scripts/ort_reference.js, which this script runs at the end when
tools/ort/node_modules holds onnxruntime-node.

Run with Debian's Python (python3-torch, python3-torchvision):
    /usr/bin/python3 scripts/make_fixtures.py [--out tests/data/models]

Weights are random with fixed seeds; BatchNorm running statistics are
recalibrated on random batches so activations keep a useful scale through
deep stacks (with the default statistics they shrink towards zero and any
comparison passes trivially).
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recalibrate_batchnorm(model, input_shape, batches=8, seed=0):
    """Replaces BatchNorm running statistics with those of random inputs."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(*input_shape, generator=gen))
    model.eval()


def randomize_batchnorm_affine(model, seed):
    """Gives BatchNorm non-trivial gamma/beta so they are tested too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(0.75 + 0.5 * torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))


# --- (a) MobileNetV2 at reduced width --------------------------------------


def mobilenet_v2_small():
    torch.manual_seed(1)
    return torchvision.models.mobilenet_v2(weights=None, width_mult=0.25, num_classes=16)


# --- (b) a reduced-width ResNet with BasicBlocks ----------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class SmallResNet(nn.Module):
    """ResNet-18's layout with one block per stage and widths 8..64."""

    def __init__(self, widths=(8, 16, 32, 64), num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.pool = nn.MaxPool2d(3, 2, 1)
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def small_resnet():
    torch.manual_seed(2)
    return SmallResNet()


# --- (c) a tiny detector-like net ------------------------------------------


def conv_bn(cin, cout, k=3, stride=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    layers.append(act if act is not None else nn.ReLU())
    return nn.Sequential(*layers)


class TinyDetector(nn.Module):
    """A two-scale, YOLO-like net: a downsampling trunk, an upsampling path
    (ConvTranspose, nearest and bilinear Resize) joined to the trunk by Concat,
    and heads reshaped to (N, anchors, H, W, 5 + classes)."""

    def __init__(self, anchors=2, classes=3):
        super().__init__()
        self.anchors, self.attrs = anchors, 5 + classes
        self.c1 = conv_bn(3, 8)                                     # 64
        self.p1 = nn.MaxPool2d(2)                                   # 32
        self.c2 = conv_bn(8, 16, act=nn.LeakyReLU(0.1))
        self.p2 = nn.MaxPool2d(3, 2, 1)                             # 16
        self.c3 = conv_bn(16, 24, act=nn.SiLU())
        self.p3 = nn.MaxPool2d(3, 2, ceil_mode=True)                # 8 (floor would give 7)
        self.c4 = nn.Sequential(nn.Conv2d(24, 32, 3, 1, 2, dilation=2), nn.ReLU6())
        self.avg = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.up1 = nn.ConvTranspose2d(32, 16, 4, 2, 1)              # 16
        self.bn_cat = nn.BatchNorm2d(40)                            # after Concat: stays a BatchNormalization node
        self.c5 = nn.Sequential(nn.Conv2d(40, 16, 1), nn.Sigmoid())
        self.up2 = nn.ConvTranspose2d(16, 16, 3, 2, 1, output_padding=1, groups=4)  # 32
        self.c6 = conv_bn(16 + 16 + 16, 16)
        self.head_large = nn.Conv2d(32, anchors * self.attrs, 1)   # on the 8x8 map
        self.head_small = nn.Conv2d(16, anchors * self.attrs, 1)   # on the 32x32 map

    def head(self, conv, x):
        y = conv(x)
        n, _, h, w = y.shape
        y = y.view(n, self.anchors, self.attrs, h, w).permute(0, 1, 3, 4, 2)
        return torch.cat([torch.sigmoid(y[..., :2]), y[..., 2:4], torch.sigmoid(y[..., 4:])], -1)

    def forward(self, x):
        f2 = self.c2(self.p1(self.c1(x)))                           # 32x32x16
        f3 = self.c3(self.p2(f2))                                   # 16x16x24
        f4 = self.avg(self.c4(self.p3(f3)))                         # 8x8x32
        u = self.c5(self.bn_cat(torch.cat([self.up1(f4), f3], 1)))  # 16x16x16
        a = self.up2(u)                                             # 32x32x16
        b = F.interpolate(u, scale_factor=2.0, mode="nearest")
        c = F.interpolate(u, scale_factor=2.0, mode="bilinear", align_corners=False)
        s = self.c6(torch.cat([a, b, c], 1)) + f2                   # 32x32x16
        return self.head(self.head_large, f4), self.head(self.head_small, s)


def tiny_detector():
    torch.manual_seed(3)
    return TinyDetector()


# --- export -----------------------------------------------------------------

# name, builder, input shape (batch 2), opset, symbolic batch, output names,
# weights also listed as graph inputs (the IR 3 style older exporters wrote)
FIXTURES = [
    ("mobilenet_v2_025", mobilenet_v2_small, (2, 3, 64, 64), 13, True, ["logits"], False),
    ("resnet_small", small_resnet, (2, 3, 48, 48), 11, False, ["logits"], True),
    ("tiny_detector", tiny_detector, (2, 3, 64, 64), 13, True, ["large", "small"], False),
]


def export_fixture(out_dir, name, build, shape, opset, dynamic, output_names, weights_as_inputs,
                   seed):
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    model = build()
    randomize_batchnorm_affine(model, seed)
    recalibrate_batchnorm(model, (8,) + tuple(shape[1:]), seed=seed)

    x = np.random.RandomState(seed).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        outs = model(torch.from_numpy(x))
    outs = outs if isinstance(outs, tuple) else (outs,)

    dynamic_axes = None
    if dynamic:
        dynamic_axes = {n: {0: "batch"} for n in ["input"] + output_names}
    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(model, torch.from_numpy(x), path, opset_version=opset,
                      input_names=["input"], output_names=output_names,
                      dynamic_axes=dynamic_axes, do_constant_folding=True,
                      keep_initializers_as_inputs=weights_as_inputs)
    np.save(os.path.join(folder, "input.npy"), x)
    for k, o in enumerate(outs):
        np.save(os.path.join(folder, "torch_output_%d.npy" % k), o.numpy())
    return folder


def op_summary(path):
    try:
        import onnx
    except ImportError:
        return ""
    m = onnx.load(path)
    ops = sorted({n.op_type for n in m.graph.node})
    return " ".join(ops)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "models"))
    args = ap.parse_args()
    torch.set_num_threads(2)

    ort_script = os.path.join(ROOT, "scripts", "ort_reference.js")
    have_ort = os.path.isdir(os.path.join(ROOT, "tools", "ort", "node_modules", "onnxruntime-node"))
    total = 0
    for i, fixture in enumerate(FIXTURES):
        name, shape, opset, dynamic = fixture[0], fixture[2], fixture[3], fixture[4]
        folder = export_fixture(args.out, *fixture, seed=100 + i)
        model = os.path.join(folder, "model.onnx")
        size = os.path.getsize(model)
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print("%-18s opset %d %s %7.1f kB  ops: %s" % (
            name, opset, "batch=N" if dynamic else "batch=2", size / 1024, op_summary(model)))
        if have_ort:
            subprocess.run(["node", ort_script, model, os.path.join(folder, "input.npy"),
                            "--out", folder, "--compare", "torch_output"], check=True)
    if not have_ort:
        print("tools/ort/node_modules/onnxruntime-node missing: ORT references not written\n"
              "  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0)",
              file=sys.stderr)
    print("fixtures before ORT outputs: %.1f kB" % (total / 1024))


if __name__ == "__main__":
    main()
