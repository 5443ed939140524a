#!/usr/bin/python3
"""Writes full-size benchmark models (not committed; models/ is git-ignored).

    /usr/bin/python3 scripts/make_bench_models.py [FOLDER]   (default: models/)

writes
  mobilenet_v2.onnx           torchvision MobileNetV2, 1000 classes, Nx3x224x224
  mobilenet_v2_features.onnx  its trunk up to the 1280-d global average pool
                              (the part transfer learning keeps frozen)

Weights are random (fixed seed): the benchmarks measure speed, and graft's
correctness is checked by the fixtures of scripts/make_fixtures.py. BatchNorm
statistics are recalibrated on random batches so activations keep their scale
(with random weights and default statistics they vanish, and a runtime that
skips work on zeros would look faster than it is). Opset 13, symbolic batch.
"""

import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import randomize_batchnorm_affine, recalibrate_batchnorm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Features(nn.Module):
    """MobileNetV2's trunk and pooling, without the classifier."""

    def __init__(self, model):
        super().__init__()
        self.features = model.features

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


def export(model, path, output_name):
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"],
                      output_names=[output_name], do_constant_folding=True,
                      dynamic_axes={"input": {0: "batch"}, output_name: {0: "batch"}})
    with torch.no_grad():
        y = model(x)
    print("%-40s %6.1f MB  output %s, std %.3f" % (
        path, os.path.getsize(path) / 2**20, "x".join(map(str, y.shape)), float(y.std())))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None)
    randomize_batchnorm_affine(model, seed=0)
    recalibrate_batchnorm(model, (16, 3, 224, 224), batches=4, seed=0)
    export(model, os.path.join(out, "mobilenet_v2.onnx"), "logits")
    export(Features(model).eval(), os.path.join(out, "mobilenet_v2_features.onnx"), "features")


if __name__ == "__main__":
    main()
