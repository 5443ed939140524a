#!/usr/bin/env bash
# Installs every Debian package graft's build, tests and demo need on a fresh
# Debian 12 machine. Safe to run again: apt skips what is already there.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config clang libclang-rt-14-dev  # clang: the fuzz targets (scripts/fuzz.sh)
  libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
  libdnnl-dev ocl-icd-opencl-dev  # oneDNN's CMake config looks for OpenCL (a Recommends, not a Depends)
  libjpeg62-turbo-dev libpng-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  chromium  # renders report.html headless in the report test
)
command -v npm >/dev/null || packages+=(nodejs npm)

"$(dirname "$0")/install_missing.sh" setup "${packages[@]}"
echo "setup: all build and test packages present"

# From the npm registry: ONNX Runtime (the independent runtime the tests
# compare exported models with; its install script would download, so skip
# it: the package ships the CPU library) and the nsfwjs MobileNetV2, the
# ImageNet-initialised backbone of the demo.
cd "$(dirname "$0")/.."
if [ ! -d tools/ort/node_modules/onnxruntime-node ]; then
  mkdir -p tools/ort
  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund onnxruntime-node@1.30.0)
fi
scripts/fetch_nsfwjs.sh
