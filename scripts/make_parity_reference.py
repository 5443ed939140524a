#!/usr/bin/python3
"""PyTorch reference for graft's training parity test (tests/parity_test.cpp).

A small CNN (conv-bn-relu x2, convs without bias as usual before BatchNorm:
a bias there has a zero gradient in training mode, and Adam would turn the
rounding noise of that zero into steps of size lr in arbitrary directions, global average pool, linear) with fixed
initial weights is written as ONNX by hand (so BatchNorm stays a separate
node), then trained in PyTorch from those weights on fixed batches:
  head: only the linear layer trains, BatchNorm in eval mode;
  full: every parameter trains, BatchNorm in training mode (batch statistics,
        running statistics updated with momentum 0.1 = ONNX momentum 0.9).
each with SGD (momentum 0.9, weight decay 1e-4) and Adam. The parameters
(and running statistics) after STEPS steps are saved as .npy.

    /usr/bin/python3 scripts/make_parity_reference.py   # writes tests/data/parity/
"""
import os

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "parity")
STEPS = 200
BATCHES = 4
torch.manual_seed(0)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1, groups=2, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def to_onnx(net, path):
    """The net as ONNX opset 13, parameter names as in PyTorch."""
    inits = [numpy_helper.from_array(v.detach().numpy().copy(), k)
             for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight"], ["c1"], name="conv1",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                                "bn1.running_var"], ["b1"], name="bn1",
                         epsilon=1e-5, momentum=0.9),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.weight"], ["c2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
        helper.make_node("BatchNormalization", ["c2", "bn2.weight", "bn2.bias", "bn2.running_mean",
                                                "bn2.running_var"], ["b2"], name="bn2",
                         epsilon=1e-5, momentum=0.9),
        helper.make_node("Relu", ["b2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["feat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["feat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "parity_cnn",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    os.makedirs(OUT, exist_ok=True)
    net = Net()
    # Non-trivial BatchNorm parameters and statistics.
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    to_onnx(net, os.path.join(OUT, "model.onnx"))
    init = {k: v.clone() for k, v in net.state_dict().items()}
    xs = [torch.randn(8, 3, 16, 16) for _ in range(BATCHES)]
    ys = [torch.randint(0, 4, (8,)) for _ in range(BATCHES)]
    for k in range(BATCHES):
        np.save(os.path.join(OUT, f"x{k}.npy"), xs[k].numpy())
        np.save(os.path.join(OUT, f"y{k}.npy"), ys[k].numpy().astype(np.int64))

    for mode in ("head", "full"):
        for opt_name in ("sgd", "adam"):
            net.load_state_dict(init)
            params = list(net.fc.parameters()) if mode == "head" else list(net.parameters())
            opt = (torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
                   if opt_name == "sgd" else torch.optim.Adam(params, lr=1e-3))
            net.train(mode == "full")
            for step in range(STEPS):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(xs[step % BATCHES]), ys[step % BATCHES])
                loss.backward()
                opt.step()
            for k, v in net.state_dict().items():
                if k.endswith("num_batches_tracked"):
                    continue
                np.save(os.path.join(OUT, f"{mode}_{opt_name}.{k}.npy"), v.detach().numpy())
            print(mode, opt_name, "final loss", loss.item())


if __name__ == "__main__":
    main()
