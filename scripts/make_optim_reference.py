#!/usr/bin/python3
"""Records torch.optim's parameters after a few steps on a fixed problem, and
torch's cross-entropy values and gradients, for tests/optim_test.cpp and
tests/loss_test.cpp. Run with Debian's python3-torch:
    /usr/bin/python3 scripts/make_optim_reference.py > tests/data/torch_reference.json
"""
import json

import torch

torch.manual_seed(0)
w0 = torch.randn(2, 3)
grads = [torch.randn(2, 3) for _ in range(5)]

optimizers = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam_wd": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
}
out = {"w0": w0.flatten().tolist(), "grads": [g.flatten().tolist() for g in grads], "optim": {}}
for name, make in optimizers.items():
    w = torch.nn.Parameter(w0.clone())
    opt = make([w])
    for g in grads:
        w.grad = g.clone()
        opt.step()
    out["optim"][name] = w.detach().flatten().tolist()

logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
labels = torch.tensor([0, 3, 4, 1])
weights = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
out["ce"] = {"logits": logits.detach().flatten().tolist(), "labels": labels.tolist(),
             "weights": weights.tolist(), "cases": {}}
for name, kw in {"plain": {}, "smooth": {"label_smoothing": 0.1},
                 "weighted": {"weight": weights},
                 "weighted_smooth": {"weight": weights, "label_smoothing": 0.2}}.items():
    logits.grad = None
    loss = torch.nn.functional.cross_entropy(logits, labels, **kw)
    loss.backward()
    out["ce"]["cases"][name] = {"loss": loss.item(), "grad": logits.grad.flatten().tolist()}
print(json.dumps(out, indent=1))
