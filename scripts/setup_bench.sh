#!/usr/bin/env bash
# What bench/run_peers.py needs beyond scripts/setup.sh: the PyTorch peer
# (Debian's python3-torch and torchvision, OpenBLAS with threads, tcmalloc),
# ONNX Runtime from npm, the nsfwjs model, the demo's data and the benchmark
# models (scripts/make_bench_models.py, written to models/ when missing).
# Safe to run again: it installs or writes only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3-torch python3-torchvision python3-numpy python3-pil python3-onnx
          libopenblas0-pthread libgoogle-perftools4 tuxpaint-stamps-default)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
scripts/install_missing.sh setup_bench "${packages[@]}"

if [ ! -d tools/ort/node_modules/onnxruntime-node ]; then
  mkdir -p tools/ort
  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund onnxruntime-node@1.30.0)
fi
scripts/fetch_nsfwjs.sh >/dev/null
[ -f data/demo/train.txt ] && [ -f data/demo/test.txt ] || scripts/make_demo_data.sh data/demo
if [ ! -f models/mobilenet_v2_features.onnx ] || [ ! -f models/mobilenet_v2.onnx ]; then
  /usr/bin/python3 scripts/make_bench_models.py models
fi
# W3 trains BatchNorm: the same model with its BatchNormalization nodes kept.
[ -f models/mobilenet_v2_bn.onnx ] || /usr/bin/python3 bench/torch_peers.py export-bn models/mobilenet_v2_bn.onnx
echo "setup_bench: peers, models and data present"
