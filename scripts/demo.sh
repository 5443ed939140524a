#!/usr/bin/env bash
# The README's first command: install, build, and run graft on its built-in
# default model. Training (the seed's job) lands with the training engine;
# until then the demo inspects a MobileNetV2 and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=tests/data/models/mobilenet_v2_w035/model.onnx
[ -f "$model" ] || model=$(ls tests/data/models/*/model.onnx | head -n 1)
dir=$(dirname "$model")
echo
echo "== graft inspect $model"
build/graft inspect "$model" | tail -n 8
echo
echo "== graft run $model --input $dir/input.npy --out out/demo"
build/graft run "$model" --input "$dir/input.npy" --out out/demo
