#!/usr/bin/env bash
# Builds graft a second time with AddressSanitizer + UndefinedBehaviorSanitizer
# (in ./build-asan, RelWithDebInfo, g++) and runs the test suite under it.
# Any ASan error, UBSan report (-fno-sanitize-recover: the test aborts) or
# leak in graft's own code fails the run. scripts/lsan.supp silences leaks
# that belong to third-party libraries only (oneDNN, libgomp, protobuf); it
# is empty so far: the ONNX conformance suite (both kernel sets) runs
# leak-free under it.
# Status (2026-11-28): onnx_conformance and onnx_conformance_reference_kernels
# pass clean here (410 passed, 0 failed, 639 skipped; about 2 s each); the
# full ctest under sanitizers has not been timed yet, so .ci/run does not
# call this script yet.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${GRAFT_ASAN_BUILD:-build-asan}
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
  -DGRAFT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$build" && ctest --output-on-failure -j1 "$@"
