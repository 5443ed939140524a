#!/usr/bin/python3
"""The PyTorch side of bench/run_peers.py: one workload per process, so that
each process's peak RSS is that workload's. run_peers.py starts it with the
tuned environment (LD_PRELOAD tcmalloc, OPENBLAS_CORETYPE); this file sets
2 threads and channels_last itself. Prints one JSON object as its last line.

  /usr/bin/python3 bench/torch_peers.py w1 --batches 1 32 --iters 30 8
  /usr/bin/python3 bench/torch_peers.py w3 --batch 32 --iters 10
  /usr/bin/python3 bench/torch_peers.py w2 --mode recompute|cached --epochs 10 [--seeds 0 1 2]
  /usr/bin/python3 bench/torch_peers.py export-bn [models/mobilenet_v2_bn.onnx]

w1, w3: torchvision's MobileNetV2 with the weights scripts/make_bench_models.py
exports to models/mobilenet_v2_features.onnx (same seeds, same BatchNorm
recalibration), so both sides run the same model.
  w1: the trunk and the 1280-d pool, eval mode, torch.inference_mode, channels_last;
      also TorchScript (trace, freeze, optimize_for_inference). Median ms per batch.
  w3: trunk + pool + Linear(1280, 10), train mode (BatchNorm batch statistics),
      all parameters trainable: zero_grad, forward, cross-entropy, backward,
      Adam(lr 1e-4) step, as `graft bench --train full`. Median ms per step.
w2: the demo's job (graft train's default recipe, --epochs E) on the nsfwjs
  MobileNetV2 rebuilt from the TF.js files by scripts/pytorch_demo_reference.py
  (its weights and Keras graph, image loading and head recipe), run as the
  eager module KerasTrunk below in channels_last (--check compares it with
  the reference's KerasNet):
  recompute: images decoded and preprocessed once, the frozen trunk run again
      on every batch of every epoch and on the test set after every epoch;
  cached: the trunk run once per image (batch 32), the head trained on the
      cached features (train_head of pytorch_demo_reference.py).
  Timed from before the model is loaded (the interpreter's start and
  `import torch` are not counted) to the end of the last epoch.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from make_bench_models import Features  # noqa: E402  (the trunk graft's W1/W3 models export)

CL = torch.channels_last


def bench_model():
    """The model of scripts/make_bench_models.py, built the same way."""
    import torchvision
    from make_fixtures import randomize_batchnorm_affine, recalibrate_batchnorm
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None)
    randomize_batchnorm_affine(model, seed=0)
    recalibrate_batchnorm(model, (16, 3, 224, 224), batches=4, seed=0)
    return model


class KerasTrunk(nn.Module):
    """The Keras graph of pytorch_demo_reference.KerasNet (same weights, same
    TF padding), up to `output`, as an ordinary eager PyTorch model: each
    value freed after its last use, ReLU6 in place, symmetric 'same' padding
    given to the convolution. (KerasNet keeps every layer's output alive and
    runs ReLU as torch.where: about 10x slower and 3 GB at batch 32; it is
    written for checking, not speed.) Input NHWC, output [N, C]."""

    def __init__(self, ref_net, output):
        super().__init__()
        self.steps, self.input, self.output = [], ref_net.input, output
        consumers = {}
        layers = []
        for layer in ref_net.layers:
            if layer["class_name"] == "InputLayer":
                continue
            ins = [n[0] for n in layer["inbound_nodes"][0]]
            layers.append((layer, ins))
            for i in ins:
                consumers[i] = consumers.get(i, 0) + 1
            if layer["name"] == output:
                break
        else:
            raise KeyError(output)
        last_use = {}
        for k, (layer, ins) in enumerate(layers):
            for i in ins:
                last_use[i] = k
        for k, (layer, ins) in enumerate(layers):
            name, cfg, kind = layer["name"], layer["config"], layer["class_name"]
            p = {key: nn.Parameter(v.contiguous(memory_format=CL) if v.dim() == 4 else v.clone(), requires_grad=False)
                 for key, v in ref_net.params[name].items()}
            for key, v in p.items():
                self.register_parameter(f"{name}__{key}", v)
            frees = [i for i in ins if last_use[i] == k and i != output]
            inplace = consumers.get(ins[0], 0) == 1
            self.steps.append((name, self.make_op(kind, cfg, p, inplace), ins, frees))

    @staticmethod
    def make_op(kind, cfg, p, inplace):
        F = nn.functional
        if kind == "ZeroPadding2D":
            pad = cfg["padding"]
            pad = [[pad, pad], [pad, pad]] if isinstance(pad, int) else pad
            return lambda x: F.pad(x, (pad[1][0], pad[1][1], pad[0][0], pad[0][1]))
        if kind in ("Conv2D", "DepthwiseConv2D"):
            import pytorch_demo_reference as ref
            (kh, kw), (sh, sw), (dh, dw) = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
            act = cfg.get("activation")
            assert act in (None, "linear"), act

            def conv(x):
                groups = x.shape[1] if kind == "DepthwiseConv2D" else 1
                padding = 0
                if cfg["padding"] == "same":
                    t, b = ref.tf_same_padding(x.shape[2], kh, sh, dh)
                    l, r = ref.tf_same_padding(x.shape[3], kw, sw, dw)
                    if t == b and l == r:
                        padding = (t, l)
                    else:
                        x = F.pad(x, (l, r, t, b))
                return F.conv2d(x, p["weight"], p.get("bias"), (sh, sw), padding, (dh, dw), groups)
            return conv
        if kind == "BatchNormalization":
            return lambda x: F.batch_norm(x, p["mean"], p["var"], p["gamma"], p["beta"], False, 0.0, cfg["epsilon"])
        if kind == "ReLU":
            assert cfg.get("negative_slope", 0) == 0 and cfg.get("threshold", 0) == 0, cfg
            top = cfg.get("max_value")
            if top is None:
                return lambda x: F.relu(x, inplace=inplace)
            return lambda x: F.hardtanh(x, 0.0, float(top), inplace=inplace)
        if kind == "Add":
            return lambda *xs: sum(xs[1:], xs[0])
        if kind == "AveragePooling2D":
            assert cfg["padding"] == "valid", cfg["padding"]
            return lambda x: F.avg_pool2d(x, cfg["pool_size"], cfg["strides"])
        raise ValueError(f"layer type {kind} is not supported here")

    def forward(self, x_nhwc):
        values = {self.input: x_nhwc.permute(0, 3, 1, 2)}  # NCHW view of NHWC memory: channels_last
        for name, op, ins, frees in self.steps:
            values[name] = op(*[values[i] for i in ins])
            for i in frees:
                del values[i]
        return values[self.output].flatten(1)


def timed(step, iters, warmup):
    for _ in range(warmup):
        step()
    ms = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        ms.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "runs": iters}


def input_batch(batch):
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(batch, 3, 224, 224, generator=gen) * 2 - 1).contiguous(memory_format=CL)


def w1(args):
    feat = Features(bench_model()).eval().to(memory_format=CL)
    out = {}
    iters = args.iters + args.iters[-1:] * (len(args.batches) - len(args.iters))
    for batch, n in zip(args.batches, iters):
        x = input_batch(batch)
        with torch.inference_mode():
            r = timed(lambda: feat(x), n, args.warmup)
        out[f"eager_b{batch}"] = dict(r, ms_per_image=r["median_ms"] / batch)
        if not args.no_torchscript:
            with torch.no_grad():
                script = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(feat, x).eval()))
                r = timed(lambda: script(x), n, args.warmup)
            out[f"torchscript_b{batch}"] = dict(r, ms_per_image=r["median_ms"] / batch)
    return out


def w3(args):
    model = bench_model()
    net = nn.Sequential(model.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, 10))
    net = net.train().to(memory_format=CL)
    for p in net.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    x = input_batch(args.batch)
    y = torch.arange(args.batch) % 10

    def step():
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()

    r = timed(step, args.iters, args.warmup)
    return {f"train_full_b{args.batch}": dict(r, ms_per_image=r["median_ms"] / args.batch)}


def w2(args):
    import pytorch_demo_reference as ref
    os.chdir(ROOT)
    start = time.perf_counter()
    config, weights = ref.load_tfjs_weights(args.model)
    net = ref.KerasNet(config, weights)
    fast = KerasTrunk(net, args.cut).eval()
    train = ref.read_list(args.images, args.train)
    test = ref.read_list(args.images, args.test)
    classes = max(label for _, label in train + test) + 1
    t = time.perf_counter()
    train_images = [ref.load_image(path) for path, _ in train]
    test_images = [ref.load_image(path) for path, _ in test]
    preprocess_s = time.perf_counter() - t
    ytr = torch.tensor([label for _, label in train])
    yte = torch.tensor([label for _, label in test])
    def trunk(images, batch=32):
        with torch.no_grad():
            return torch.cat([fast(torch.from_numpy(np.stack(images[s:s + batch])))
                              for s in range(0, len(images), batch)])
    out = {"mode": args.mode, "train_images": len(train), "test_images": len(test), "classes": classes,
           "epochs": args.epochs, "preprocess_s": preprocess_s}
    seed = args.seeds[0]
    if args.mode == "cached":
        t = time.perf_counter()
        xtr, xte = trunk(train_images), trunk(test_images)
        out["features_s"] = time.perf_counter() - t
        t = time.perf_counter()
        accuracies, _ = ref.train_head(xtr, ytr, xte, yte, seed, classes, args.epochs)
        out["train_s"] = time.perf_counter() - t
    else:
        # train_head's recipe, with the trunk run on every batch instead of a cache.
        t = time.perf_counter()
        torch.manual_seed(seed)
        head = nn.Linear(1280, classes)
        optimizer = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-4)
        batch = 32
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=args.epochs * math.ceil(len(train) / batch), eta_min=0)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
        shuffle = torch.Generator().manual_seed(seed)
        accuracies = []
        for _ in range(args.epochs):
            order = torch.randperm(len(train), generator=shuffle)
            for s in range(0, len(train), batch):
                rows = order[s:s + batch]
                x = trunk([train_images[i] for i in rows.tolist()])
                optimizer.zero_grad()
                loss = loss_fn(head(x), ytr[rows])
                loss.backward()
                optimizer.step()
                schedule.step()
            with torch.no_grad():
                accuracies.append((head(trunk(test_images)).argmax(1) == yte).double().mean().item())
        out["train_s"] = time.perf_counter() - t  # trunk included
    out["total_s"] = time.perf_counter() - start
    if args.check:  # the fast trunk against the reference's KerasNet (not timed)
        x = train_images[:8]
        out["check_max_abs_diff"] = (trunk(x) - ref.trunk_features(net, x, args.cut)).abs().max().item()
    out["accuracies"] = accuracies
    out["best"], out["last"] = max(accuracies), accuracies[-1]
    if args.mode == "cached" and len(args.seeds) > 1:  # accuracy over seeds, after the timing
        out["seeds"] = {}
        for s in args.seeds:
            acc, _ = ref.train_head(xtr, ytr, xte, yte, s, classes, args.epochs)
            out["seeds"][str(s)] = {"best": max(acc), "last": acc[-1]}
    return out


def export_bn(args):
    """models/mobilenet_v2_bn.onnx: the model of models/mobilenet_v2.onnx with
    its BatchNormalization nodes kept (make_bench_models.py exports in eval
    mode, where torch.onnx folds BatchNorm into the convolutions; W3 trains
    BatchNorm, so graft needs the nodes). TrainingMode.PRESERVE on an eval
    model skips that folding; BatchNormalization has training_mode 0, and
    graft's training mode uses batch statistics."""
    import warnings
    # torch.onnx warns that constant folding may change parameters in a
    # training-amenable export; that is about models in training mode, and
    # this one is in eval mode (BatchNorm keeps its running statistics).
    warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
    model = bench_model().eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    torch.onnx.export(model, x, args.path, opset_version=13, input_names=["input"], output_names=["logits"],
                      do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    import onnx
    ops = [n.op_type for n in onnx.load(args.path).graph.node]
    return {"path": args.path, "BatchNormalization": ops.count("BatchNormalization"), "Conv": ops.count("Conv")}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("w1")
    a.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    a.add_argument("--iters", type=int, nargs="+", default=[20], help="runs per batch size (the last repeats)")
    a.add_argument("--warmup", type=int, default=3)
    a.add_argument("--no-torchscript", action="store_true")
    a = sub.add_parser("w3")
    a.add_argument("--batch", type=int, default=32)
    a.add_argument("--iters", type=int, default=10)
    a.add_argument("--warmup", type=int, default=3)
    a = sub.add_parser("w2")
    a.add_argument("--mode", choices=["recompute", "cached"], required=True)
    a.add_argument("--epochs", type=int, default=10)
    a.add_argument("--seeds", type=int, nargs="+", default=[0])
    a.add_argument("--model", default="models/nsfwjs_mobilenet_v2/model.json")
    a.add_argument("--images", default="/usr/share/tuxpaint/stamps")
    a.add_argument("--train", default="data/demo/train.txt")
    a.add_argument("--test", default="data/demo/test.txt")
    a.add_argument("--cut", default="average_pooling2d_1")
    a.add_argument("--check", action="store_true", help="compare the trunk with the reference's KerasNet")
    a = sub.add_parser("export-bn")
    a.add_argument("path", nargs="?", default=os.path.join(ROOT, "models", "mobilenet_v2_bn.onnx"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = {"w1": w1, "w3": w3, "w2": w2, "export-bn": export_bn}[args.what](args)
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
