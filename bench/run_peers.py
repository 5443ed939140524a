#!/usr/bin/python3
"""graft against its peers, in the same run, on the workloads of PERF.md.

    /usr/bin/python3 bench/run_peers.py [--graft build/graft] [--quick] [--out out/bench]

  W1  MobileNetV2 trunk forward (models/mobilenet_v2_features.onnx), batch 1
      and 32, median ms per image: `graft bench` vs ONNX Runtime
      (bench/ort_time.js, npm onnxruntime-node) and tuned PyTorch (eager, and
      TorchScript frozen + optimize_for_inference).
  W2  the demo's frozen-trunk fine-tune (nsfwjs MobileNetV2, data/demo:
      121 train / 50 test photos, E epochs, graft train's default recipe):
      `graft train` with a fresh feature cache (cold) and again (warm) vs
      PyTorch recomputing the trunk every epoch and PyTorch with the trunk's
      features cached by hand; wall times and test accuracies.
  W3  full fine-tune step at batch 32 (all layers trainable, BatchNorm in
      training mode, Adam): `graft bench models/mobilenet_v2_bn.onnx --train full`
      (the W1 model with its 52 BatchNormalization nodes kept, written by
      `torch_peers.py export-bn`; graft cuts the classifier off at the pool and
      attaches a 10-class linear head) vs tuned PyTorch (the same trunk +
      Linear(1280, 10)).
  W5  peak RSS of each W2 and W3 process (os.wait4's ru_maxrss).

The peers are set up as PERF.md says: ONNX Runtime 1.30 from npm with 2
intra-op threads; PyTorch from Debian (python3-torch) with 2 threads,
OpenBLAS (libopenblas0-pthread), LD_PRELOAD tcmalloc (libgoogle-perftools4),
channels_last, and OPENBLAS_CORETYPE=SkylakeX on CPUs with AVX-512 (set for
the PyTorch processes only); also OMP_WAIT_POLICY=PASSIVE (see
--torch-omp-wait-policy). graft runs as built, with --threads 2
(OMP_NUM_THREADS=2 for graft train). Each figure is a process of its own;
W1 and W3 repeat in rounds, the peers' order rotating, and each side's
figure is the median of its rounds. The machine is shared: compare a graft
figure only with a peer's from the same run, as a ratio (graft/peer; below 1
means graft is faster or smaller).

Prints a machine line and a table; writes OUT/results.md (a markdown table
to paste), OUT/results.json (every figure) and OUT/logs/ (each process's
output). Run scripts/setup_bench.sh first (this script does, unless
--no-setup): it installs the peers and writes the models and data.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMPS = "/usr/share/tuxpaint/stamps"
FEATURES_MODEL = "models/mobilenet_v2_features.onnx"
# W3: the same model with its BatchNormalization nodes (models/mobilenet_v2.onnx has them folded
# into the convolutions); graft bench cuts its classifier off and attaches a 10-class head.
W3_MODEL = "models/mobilenet_v2_bn.onnx"
NSFWJS = "models/nsfwjs_mobilenet_v2/model.json"
PY = "/usr/bin/python3"  # Debian's, with python3-torch (a pyenv python3 may come first on PATH)


# ------------------------------------------------------------ processes

class Runner:
    """Runs one process at a time, logs its output, and measures its wall
    time and peak RSS (ru_maxrss of that child alone, from os.wait4)."""

    def __init__(self, log_dir, timeout):
        self.log_dir = log_dir
        self.timeout = timeout
        self.count = 0
        os.makedirs(log_dir, exist_ok=True)

    def __call__(self, name, cmd, env=None):
        self.count += 1
        log = os.path.join(self.log_dir, f"{self.count:02d}-{name}.log")
        print(f"  [{time.strftime('%H:%M:%S')}, load {load()}] {name}: {shlex.join(cmd)}", flush=True)
        with open(log + ".out", "w+") as out, open(log + ".err", "w+") as err:
            start = time.perf_counter()
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            timer = threading.Timer(self.timeout, p.kill)
            timer.start()
            _, status, usage = os.wait4(p.pid, 0)
            timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            r = {"name": name, "cmd": shlex.join(cmd), "rc": p.returncode, "wall_s": wall,
                 "maxrss_mb": usage.ru_maxrss / 1024, "stdout": out.read(), "stderr": err.read(),
                 "log": os.path.relpath(log, ROOT)}
        with open(log, "w") as f:
            f.write(f"$ {r['cmd']}\nrc {r['rc']}, {wall:.2f} s, peak RSS {r['maxrss_mb']:.0f} MB\n\n"
                    f"--- stdout\n{r['stdout']}\n--- stderr\n{r['stderr']}")
        os.remove(log + ".out")
        os.remove(log + ".err")
        if r["rc"] != 0:
            tail = (r["stderr"].strip() or r["stdout"].strip()).splitlines()[-3:]
            print(f"    FAILED (rc {r['rc']}): {' | '.join(tail)}  (log: {r['log']})", flush=True)
        return r


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


# ------------------------------------------------------------- machine

def machine_info(graft):
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "kernel": platform.release()}
    cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    info["cpu"] = m.group(1).strip() if m else platform.processor() or "unknown CPU"
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    info["avx512"] = "avx512f" in flags
    info["isa"] = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in flags)
    m = re.search(r"^MemTotal:\s*(\d+) kB", open("/proc/meminfo").read(), re.M) if os.path.exists("/proc/meminfo") else None
    info["memory_gib"] = round(int(m.group(1)) / 2**20, 1) if m else None
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    info["commit"] = "work tree at " + git("describe", "--always", "--dirty", "--abbrev=10")  # the binary's source may differ
    info["graft"] = os.path.relpath(graft, ROOT)
    pkg = os.path.join(ROOT, "tools/ort/node_modules/onnxruntime-node/package.json")
    info["onnxruntime_node"] = json.load(open(pkg))["version"] if os.path.exists(pkg) else "?"
    info["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return info


def machine_line(info):
    return (f"{info['cpu']}, {info['cores']} cores ({info['isa'] or 'no AVX-512'}), "
            f"{info['memory_gib']} GiB, Linux {info['kernel']}; {info['date']}")


# --------------------------------------------------------------- parsing

def parse_graft_bench(r):
    m = re.search(r"median ([\d.]+) ms per batch, ([\d.]+) ms per image", r["stdout"]) if r["rc"] == 0 else None
    return float(m.group(2)) if m else None


def parse_ort(r):
    m = re.search(r"median ([\d.]+) ms \(([\d.]+) ms/image\)", r["stdout"]) if r["rc"] == 0 else None
    return float(m.group(2)) if m else None


def parse_profile(text, top):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:2] == ["op", "ms/run"]:
            return "\n".join(lines[i:i + 1 + top])
    return ""


def graft_train_result(r, out_dir):
    if r["rc"] != 0:
        return None
    res = {"wall_s": r["wall_s"], "maxrss_mb": r["maxrss_mb"]}
    m = re.search(r"(\d+) computed, (\d+) from the cache, ([\d.]+)s", r["stdout"])
    if m:
        res.update(computed=int(m.group(1)), from_cache=int(m.group(2)), features_s=float(m.group(3)))
    m = re.search(r"training ([\d.]+)s", r["stdout"])
    if m:
        res["train_s"] = float(m.group(1))
    try:
        hist = [json.loads(l) for l in open(os.path.join(out_dir, "metrics.jsonl")) if l.strip()]
        acc = [h["eval_accuracy"] for h in hist]
        res.update(accuracies=acc, best=max(acc), last=acc[-1])
    except (OSError, ValueError, KeyError):
        pass
    return res


# -------------------------------------------------------------- workloads

def run_w1(a, run, envs, results):
    print(f"W1: trunk forward, batch 1 and 32 ({a.rounds_w1} rounds; load {load()})", flush=True)
    iters = {1: a.iters_b1, 32: a.iters_b32}
    per = {k: [] for k in ("graft_b1", "graft_b32", "ort_b1", "ort_b32", "torch_b1", "torch_b32",
                           "torchscript_b1", "torchscript_b32")}
    rss = {"graft_b32": [], "ort": [], "torch": []}

    def graft():
        for b in (1, 32):
            r = run(f"w1-graft-b{b}", [a.graft, "bench", FEATURES_MODEL, "--batch", str(b), "--threads",
                                        str(a.threads), "--iters", str(iters[b]), "--warmup", str(a.warmup)],
                    envs["graft"])
            per[f"graft_b{b}"].append(parse_graft_bench(r))
            if b == 32:
                rss["graft_b32"].append(r["maxrss_mb"])

    def ort():
        for b in (1, 32):
            r = run(f"w1-ort-b{b}", ["node", "bench/ort_time.js", FEATURES_MODEL, "--batch", str(b),
                                      "--iterations", str(iters[b]), "--threads", str(a.threads)], envs["ort"])
            per[f"ort_b{b}"].append(parse_ort(r))
            if b == 32:
                rss["ort"].append(r["maxrss_mb"])

    def torch():
        cmd = [PY, "bench/torch_peers.py", "--threads", str(a.threads), "w1", "--batches", "1", "32",
               "--iters", str(iters[1]), str(iters[32]), "--warmup", str(a.warmup)]
        if a.no_torchscript:
            cmd.append("--no-torchscript")
        r = run("w1-pytorch", cmd, envs["torch"])
        try:
            j = last_json(r["stdout"]) if r["rc"] == 0 else {}
        except ValueError:
            j = {}
        for b in (1, 32):
            per[f"torch_b{b}"].append(j.get(f"eager_b{b}", {}).get("ms_per_image"))
            per[f"torchscript_b{b}"].append(j.get(f"torchscript_b{b}", {}).get("ms_per_image"))
        rss["torch"].append(r["maxrss_mb"])
        results.setdefault("versions", {})["torch"] = j.get("torch")

    sides = [graft, ort, torch]
    for k in range(a.rounds_w1):
        for f in sides[k % 3:] + sides[:k % 3]:
            f()
    results["w1"] = {"rounds": per, "median": {k: median(v) for k, v in per.items()}, "rss_mb": rss,
                     "load_after": load()}


def run_w3(a, run, envs, results):
    print(f"W3: full fine-tune step, batch 32 ({a.rounds_w3} rounds; load {load()})", flush=True)
    per = {"graft": [], "torch": []}
    rss = {"graft": [], "torch": []}
    for k in range(a.rounds_w3):
        order = ["graft", "torch"] if k % 2 == 0 else ["torch", "graft"]
        for side in order:
            if side == "graft":
                r = run("w3-graft", [a.graft, "bench", W3_MODEL, "--batch", "32", "--train", "full",
                                     "--threads", str(a.threads), "--iters", str(a.iters_w3),
                                     "--warmup", str(a.warmup_w3)], envs["graft"])
                per["graft"].append(parse_graft_bench(r))
            else:
                r = run("w3-pytorch", [PY, "bench/torch_peers.py", "--threads", str(a.threads), "w3",
                                       "--batch", "32", "--iters", str(a.iters_w3), "--warmup", str(a.warmup_w3)],
                        envs["torch"])
                try:
                    per["torch"].append(last_json(r["stdout"])["train_full_b32"]["ms_per_image"] if r["rc"] == 0 else None)
                except (ValueError, KeyError):
                    per["torch"].append(None)
            if r["rc"] == 0:
                rss[side].append(r["maxrss_mb"])
    results["w3"] = {"rounds": per, "median": {k: median(v) for k, v in per.items()},
                     "rss_mb": {k: max(v) if v else None for k, v in rss.items()}, "load_after": load()}


def run_w2(a, run, envs, results, work):
    print(f"W2: frozen-trunk fine-tune, {a.epochs} epochs ({a.rounds_w2} rounds; load {load()})", flush=True)
    lists = [STAMPS, "data/demo/train.txt", STAMPS, "data/demo/test.txt", "--class-names", "data/demo/labels.txt"]

    def graft_train(name, cache, seed):
        out = os.path.join(work, name)
        shutil.rmtree(out, ignore_errors=True)
        r = run(name, [a.graft, "train", NSFWJS, *lists, "--epochs", str(a.epochs), "--seed", str(seed),
                       "--cache-dir", cache, "--out", out], envs["graft"])
        return graft_train_result(r, out)

    def torch_w2(mode, seeds):
        r = run(f"w2-pytorch-{mode}", [PY, "bench/torch_peers.py", "--threads", str(a.threads), "w2", "--mode", mode,
                                       "--epochs", str(a.epochs), "--seeds", *map(str, seeds)], envs["torch"])
        if r["rc"] != 0:
            return None
        try:
            j = last_json(r["stdout"])
        except ValueError:
            return None
        j.update(wall_s=r["wall_s"], maxrss_mb=r["maxrss_mb"])
        return j

    rounds = []
    seeds = list(range(a.seeds))
    for k in range(a.rounds_w2):
        cache = os.path.join(work, f"cache-{k}")  # fresh: the cold run computes every feature
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        rd = {}
        rd["graft_cold"] = graft_train(f"w2-graft-cold-{k}", cache, 0)
        rd["torch_recompute"] = torch_w2("recompute", [0])
        rd["graft_warm"] = graft_train(f"w2-graft-warm-{k}", cache, 0)
        rd["torch_cached"] = torch_w2("cached", seeds if k == 0 else [0])
        if k == 0 and len(seeds) > 1:  # accuracy over seeds (warm cache; not timed)
            rd["graft_seeds"] = {"0": rd["graft_cold"]}
            for s in seeds[1:]:
                rd["graft_seeds"][str(s)] = graft_train(f"w2-graft-seed{s}", cache, s)
        rounds.append(rd)
    results["w2"] = {"rounds": rounds, "load_after": load(), "epochs": a.epochs, "seeds": seeds}


def run_profiles(a, run, envs, results):
    print(f"graft --profile (W1 batch 32, W3, W2's TF.js trunk at batch 32; load {load()})", flush=True)
    prof = {}
    for name, model, extra, iters in (("w1_b32", FEATURES_MODEL, [], a.iters_b32),
                                      ("w3", W3_MODEL, ["--train", "full"], a.iters_w3),
                                      ("w2_trunk_b32 (the TF.js model, inference)", NSFWJS, [], a.iters_b32)):
        r = run(f"profile-{name.split()[0]}", [a.graft, "bench", model, "--batch", "32", *extra, "--threads",
                                    str(a.threads), "--iters", str(min(iters, 3)), "--warmup", str(min(a.warmup, 2)),
                                    "--profile"],
                envs["graft"])
        prof[name] = parse_profile(r["stdout"], a.profile_top) if r["rc"] == 0 else ""
    results["profiles"] = prof


# ------------------------------------------------------------- the table

def fmt_ratio(x):
    return "–" if x is None else f"{x:.3f}×" if x < 0.1 else f"{x:.2f}×"


def ratio(g, p):
    return g / p if g is not None and p else None


def summarize(results):
    """Rows: (workload, graft figure, peer, peer figure, graft/peer, target, met)."""
    rows = []

    def add(workload, g, peer, p, unit, target, ok):
        r = ratio(g, p)
        met = "–" if r is None or ok is None else ("yes" if ok(r) else "no")
        fmt = (lambda v: "–" if v is None else f"{v:.2f} {unit}") if unit != "MB" else \
              (lambda v: "–" if v is None else f"{v:.0f} MB")
        rows.append([workload, fmt(g), peer, fmt(p), fmt_ratio(r), target, met])

    le = lambda t: (lambda r: r <= t)
    if "w1" in results:
        m = results["w1"]["median"]
        for b in (1, 32):
            add(f"W1 trunk forward b{b}, ms/image", m[f"graft_b{b}"], "ONNX Runtime", m[f"ort_b{b}"], "ms",
                "≤ 1.0×", le(1.0))
            add(f"W1 trunk forward b{b}, ms/image", m[f"graft_b{b}"], "PyTorch tuned, eager", m[f"torch_b{b}"], "ms",
                "", None)
            if m.get(f"torchscript_b{b}") is not None:
                add(f"W1 trunk forward b{b}, ms/image", m[f"graft_b{b}"], "PyTorch TorchScript",
                    m[f"torchscript_b{b}"], "ms", "", None)
    if "w2" in results:
        rd = results["w2"]["rounds"]
        get = lambda side, key: median([(r.get(side) or {}).get(key) for r in rd])
        cold, warm = get("graft_cold", "wall_s"), get("graft_warm", "wall_s")
        rec, cac = get("torch_recompute", "total_s"), get("torch_cached", "total_s")
        e = results["w2"]["epochs"]
        add(f"W2 fine-tune {e} epochs, s (graft cold cache)", cold, "PyTorch recomputing the trunk", rec, "s",
            "≤ 0.10× (≥ 10× faster)", le(0.10))
        add(f"W2 fine-tune {e} epochs, s (graft cold cache)", cold, "PyTorch, features cached by hand", cac, "s",
            "< 1.0×", lambda r: r < 1.0)
        add(f"W2 fine-tune {e} epochs, s (graft warm cache)", warm, "PyTorch recomputing the trunk", rec, "s",
            "", None)
        add(f"W2 fine-tune {e} epochs, s (graft warm cache)", warm, "PyTorch, features cached by hand", cac, "s",
            "", None)
        acc = accuracy_summary(results)
        if acc:
            g, p = acc["graft_best_mean"], acc["torch_best_mean"]
            rows.append([f"W2 test accuracy, best epoch, mean of {acc['seeds']} seeds",
                         f"{g:.3f}", "PyTorch, same recipe", f"{p:.3f}",
                         f"{100 * (g - p):+.1f} points", "≥ −1 point", "yes" if g - p >= -0.01 - 1e-9 else "no"])
            rows.append([f"W2 test accuracy, last epoch, mean of {acc['seeds']} seeds",
                         f"{acc['graft_last_mean']:.3f}", "PyTorch, same recipe", f"{acc['torch_last_mean']:.3f}",
                         f"{100 * (acc['graft_last_mean'] - acc['torch_last_mean']):+.1f} points", "", "–"])
    if "w3" in results:
        m = results["w3"]["median"]
        add("W3 full fine-tune step b32, ms/image", m["graft"], "PyTorch tuned", m["torch"], "ms", "≤ 0.5×", le(0.5))
    if "w2" in results:
        rd = results["w2"]["rounds"]
        g = max([(r.get("graft_cold") or {}).get("maxrss_mb") or 0 for r in rd]) or None
        for side, label in (("torch_recompute", "PyTorch recomputing"), ("torch_cached", "PyTorch cached")):
            p = max([(r.get(side) or {}).get("maxrss_mb") or 0 for r in rd]) or None
            add("W5 peak RSS, W2 (graft cold)", g, label, p, "MB", "≤ 1.0×", le(1.0))
    if "w3" in results:
        rss = results["w3"]["rss_mb"]
        add("W5 peak RSS, W3", rss["graft"], "PyTorch tuned", rss["torch"], "MB", "≤ 1.0×", le(1.0))
    return rows


def accuracy_summary(results):
    rd = results["w2"]["rounds"][0]
    gs = rd.get("graft_seeds") or {"0": rd.get("graft_cold")}
    tc = rd.get("torch_cached") or {}
    ts = tc.get("seeds") or ({"0": {"best": tc["best"], "last": tc["last"]}} if "best" in tc else {})
    common = [s for s in gs if gs[s] and "best" in gs[s] and s in ts]
    if not common:
        return None
    mean = lambda xs: sum(xs) / len(xs)
    return {"seeds": len(common),
            "graft_best_mean": mean([gs[s]["best"] for s in common]),
            "graft_last_mean": mean([gs[s]["last"] for s in common]),
            "torch_best_mean": mean([ts[s]["best"] for s in common]),
            "torch_last_mean": mean([ts[s]["last"] for s in common]),
            "graft_best": {s: gs[s]["best"] for s in common}, "torch_best": {s: ts[s]["best"] for s in common}}


HEADER = ["workload", "graft", "peer", "peer's figure", "graft / peer", "target", "met"]


def text_table(rows):
    widths = [max(len(str(r[i])) for r in rows + [HEADER]) for i in range(len(HEADER))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))
    return "\n".join([line(HEADER), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(rows):
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] * 4 + ["---:", "---", "---"]) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def details(results):
    """The figures behind the table: each round, W2's parts."""
    lines = []
    f = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"
    if "w1" in results:
        lines.append("W1 rounds (ms/image): " + "; ".join(
            f"{k} " + "/".join(f(v, 3) for v in vals) for k, vals in results["w1"]["rounds"].items()))
    if "w3" in results:
        lines.append("W3 rounds (ms/image): " + "; ".join(
            f"{k} " + "/".join(f(v) for v in vals) for k, vals in results["w3"]["rounds"].items()))
    if "w2" in results:
        for k, rd in enumerate(results["w2"]["rounds"]):
            parts = []
            for side in ("graft_cold", "graft_warm"):
                g = rd.get(side)
                if g:
                    parts.append(f"{side}: {f(g['wall_s'])} s wall (features {f(g.get('features_s'), 1)} s, "
                                 f"{g.get('computed', '?')} computed / {g.get('from_cache', '?')} cached; "
                                 f"training {f(g.get('train_s'), 1)} s), best {f(g.get('best'))}, "
                                 f"last {f(g.get('last'))}, RSS {f(g['maxrss_mb'], 0)} MB")
            for side in ("torch_recompute", "torch_cached"):
                t = rd.get(side)
                if t:
                    parts.append(f"{side}: {f(t['total_s'])} s (preprocessing {f(t['preprocess_s'], 1)} s, "
                                 + (f"features {f(t['features_s'], 1)} s, " if "features_s" in t else "")
                                 + f"training {f(t['train_s'], 1)} s; process {f(t['wall_s'], 1)} s with "
                                 f"Python and torch start-up), best {f(t['best'])}, last {f(t['last'])}, "
                                 f"RSS {f(t['maxrss_mb'], 0)} MB")
            lines.append(f"W2 round {k}: " + "; ".join(parts))
        acc = accuracy_summary(results)
        if acc:
            lines.append("W2 best-epoch accuracy per seed: graft " +
                         " ".join(f"{s}:{v:.2f}" for s, v in acc["graft_best"].items()) + "; PyTorch " +
                         " ".join(f"{s}:{v:.2f}" for s, v in acc["torch_best"].items()))
    return lines


# ------------------------------------------------------------------ main

def build_commit(rev):
    """Builds graft_cli from a clean `git archive` of REV (not the work tree,
    which may hold someone's unfinished edits) in build-bench-commit/, with
    ccache when present; returns the binary and the commit's description."""
    sha = subprocess.run(["git", "rev-parse", "--verify", rev + "^{commit}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    top = os.path.join(ROOT, "build-bench-commit")
    src, build = os.path.join(top, "src"), os.path.join(top, "build")
    stamp = os.path.join(top, "commit")
    binary = os.path.join(build, "graft")
    label = subprocess.run(["git", "describe", "--always", "--abbrev=10", sha], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if not (os.path.exists(stamp) and open(stamp).read().strip() == sha and os.access(binary, os.X_OK)):
        print(f"building graft at {label} in {os.path.relpath(build, ROOT)} ...", flush=True)
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
        launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
        env = dict(os.environ, CCACHE_BASEDIR=src)
        subprocess.run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DGRAFT_BUILD_TESTS=OFF",
                        "-DGRAFT_BUILD_BENCH=OFF", *launcher], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2), "--target", "graft_cli"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        with open(stamp, "w") as f:
            f.write(sha + "\n")
    return binary, label


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graft", default="build/graft", help="the graft binary (default build/graft)")
    p.add_argument("--build-commit", metavar="REV",
                   help="build graft from a clean git archive of REV (e.g. HEAD) in build-bench-commit/ and use it")
    p.add_argument("--workloads", default="W1,W2,W3", help="any of W1,W2,W3 (W5 comes from W2 and W3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds-w1", type=int, default=3)
    p.add_argument("--iters-b1", type=int, default=30, help="W1 batch-1 runs per process")
    p.add_argument("--iters-b32", type=int, default=8, help="W1 batch-32 runs per process")
    p.add_argument("--rounds-w3", type=int, default=5,
                   help="W3 processes per side (with 2 the median is their mean, and one round in a busy "
                        "stretch of the shared machine decides it)")
    p.add_argument("--iters-w3", type=int, default=5, help="W3 steps per process")
    p.add_argument("--warmup-w3", type=int, default=2, help="W3 steps before timing")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds-w2", type=int, default=3,
                   help="W2 rounds (each times graft cold and warm and both PyTorch runs; one round's graft "
                        "cold run ranged 1.26-1.71 s on this host)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3, help="W2 accuracy: seeds 0..N-1 (timings are seed 0's)")
    p.add_argument("--no-torchscript", action="store_true", help="W1: skip the TorchScript peer")
    p.add_argument("--torch-omp-wait-policy", default="PASSIVE",
                   help="OMP_WAIT_POLICY for the PyTorch processes (default PASSIVE; 'unset' leaves libgomp's "
                        "default). On a busy machine libgomp's spinning made PyTorch up to 50x slower at batch 1 "
                        "and 2x at W3; graft, which also runs on libgomp, falls back to one thread after a stall "
                        "by itself and runs with the variable unset")
    p.add_argument("--no-profile", action="store_true", help="skip graft's per-op profiles (W1 b32, W3, W2's trunk)")
    p.add_argument("--profile-top", type=int, default=12)
    p.add_argument("--no-setup", action="store_true", help="do not run scripts/setup_bench.sh")
    p.add_argument("--quick", action="store_true", help="a smoke test: one round, few iterations, 2 epochs")
    p.add_argument("--timeout", type=float, default=900, help="seconds one process may take")
    p.add_argument("--out", default="out/bench", help="folder for results.md, results.json and logs/")
    a = p.parse_args()
    if a.quick:
        a.rounds_w1 = a.rounds_w3 = a.rounds_w2 = 1
        a.iters_b1, a.iters_b32, a.iters_w3, a.warmup, a.warmup_w3, a.epochs, a.seeds = 5, 2, 2, 1, 1, 2, 1
    workloads = {w.strip().upper() for w in a.workloads.split(",") if w.strip()}
    os.chdir(ROOT)
    if not a.no_setup:
        subprocess.run(["scripts/setup_bench.sh"], check=True)
    label = None
    if a.build_commit:
        a.graft, label = build_commit(a.build_commit)
    a.graft = os.path.abspath(a.graft)
    if not os.access(a.graft, os.X_OK):
        sys.exit(f"run_peers: no graft binary at {a.graft}; build it (scripts/build.sh, or cmake -S . -B build-bench "
                 f"-DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2 --target graft_cli) and pass --graft")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    run = Runner(os.path.join(out, "logs"), a.timeout)
    shutil.rmtree(run.log_dir, ignore_errors=True)
    os.makedirs(run.log_dir)

    info = machine_info(a.graft)
    if label:
        info["commit"] = label  # the archived commit, not the work tree
    base = {k: v for k, v in os.environ.items()
            if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    base["OMP_NUM_THREADS"] = str(a.threads)
    tcmalloc = sorted(glob.glob("/usr/lib/*/libtcmalloc.so.4"))
    torch_env = dict(base)
    if tcmalloc:
        torch_env["LD_PRELOAD"] = tcmalloc[0]
    if info["avx512"]:
        torch_env["OPENBLAS_CORETYPE"] = "SkylakeX"
    if a.torch_omp_wait_policy.lower() != "unset":
        torch_env["OMP_WAIT_POLICY"] = a.torch_omp_wait_policy
    envs = {"graft": dict(base), "ort": dict(base), "torch": torch_env}
    info["pytorch_env"] = " ".join(f"{k}={torch_env[k]}" for k in ("LD_PRELOAD", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                                                                    "OMP_WAIT_POLICY") if k in torch_env)
    command = "/usr/bin/python3 bench/run_peers.py " + shlex.join(sys.argv[1:])
    results = {"machine": info, "command": command, "load_start": load(), "args": vars(a)}
    print(f"machine: {machine_line(info)}")
    print(f"graft {info['commit']} ({info['graft']}); ONNX Runtime (npm onnxruntime-node) {info['onnxruntime_node']}, "
          f"node {info['node']}; PyTorch env: {info['pytorch_env']}")
    print(f"load average at the start: {results['load_start']}", flush=True)

    start = time.time()
    with tempfile.TemporaryDirectory(prefix="graft-bench-") as work:
        if "W1" in workloads:
            run_w1(a, run, envs, results)
        if "W3" in workloads:
            run_w3(a, run, envs, results)
        if "W2" in workloads:
            run_w2(a, run, envs, results, work)
        if not a.no_profile:
            run_profiles(a, run, envs, results)
    results["seconds"] = time.time() - start
    results["load_end"] = load()

    rows = summarize(results)
    results["table"] = rows
    print()
    print(f"machine: {machine_line(info)}")
    print(f"load average: {results['load_start']} at the start, {results['load_end']} at the end; "
          f"{results['seconds']:.0f} s in all")
    print(text_table(rows))
    for line in details(results):
        print(line)
    if results.get("profiles"):
        for name, text in results["profiles"].items():
            print(f"\ngraft per-op profile, {name} (top {a.profile_top}):\n{text}")

    md = [f"Machine: {machine_line(info)}  ",
          f"graft `{info['commit']}`; ONNX Runtime {info['onnxruntime_node']} (npm onnxruntime-node, node "
          f"{info['node']}); PyTorch {results.get('versions', {}).get('torch', '?')} (Debian python3-torch; "
          f"`{info['pytorch_env']}`, 2 threads, channels_last)  ",
          f"Load average (1/5/15 min): {results['load_start']} at the start, {results['load_end']} at the end; "
          f"{results['seconds']:.0f} s in all  ",
          f"Command: `{command}`", "", md_table(rows), ""]
    md += [f"- {line}" for line in details(results)]
    for name, text in (results.get("profiles") or {}).items():
        md += ["", f"graft per-op profile, {name} (`graft bench --profile`, top {a.profile_top}):", "", "```",
               text, "```"]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(f"\nwrote {os.path.relpath(out, ROOT)}/results.md, results.json and logs/")


if __name__ == "__main__":
    main()
