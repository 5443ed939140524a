#!/usr/bin/env bash
# Builds graft's libFuzzer targets (clang, ASan + UBSan, in ./build-fuzz) and
# runs each for SECONDS seconds (default 600) on a seed corpus made from real
# files (fuzz/make_seeds.py: the ONNX backend test models, the TF.js
# fixtures, tests/data/images, the demo's list files).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: onnx onnx_session tfjs list_file image
#
# The corpus grows in build-fuzz/corpus/TARGET (kept between runs); a crash,
# leak, timeout or oversized allocation is written to build-fuzz/findings/
# TARGET/ and the run for that target stops. A finding, once fixed, goes to
# tests/data/fuzz_regressions/TARGET/ where fuzz_regressions_test replays it.
# Each run's last status line (executions, coverage) is in
# build-fuzz/findings/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(onnx onnx_session tfjs list_file image)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CXX=clang++ cmake -S . -B build-fuzz -DGRAFT_FUZZ=ON -DGRAFT_BUILD_TESTS=OFF \
  -DGRAFT_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

seeds=build-fuzz/seeds
[ -d "$seeds/onnx" ] || fuzz/make_seeds.py "$seeds"
[ -e "$seeds/onnx_session" ] || ln -s onnx "$seeds/onnx_session"

# Leaks in oneDNN/libgomp/protobuf are not graft's: the same suppressions as
# the sanitizer test run.
export LSAN_OPTIONS="suppressions=$(pwd)/scripts/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t findings=build-fuzz/findings/$t
  mkdir -p "$corpus" "$findings"
  echo "fuzz: $t for ${seconds}s"
  # -rss_limit_mb/-malloc_limit_mb: an input that makes graft allocate over
  # 2 GB at once is a finding (graft must refuse it with an error first).
  build-fuzz/fuzz/fuzz_$t "$corpus" "$seeds/$t" -max_total_time="$seconds" \
    -timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix="$findings/" -print_final_stats=1 \
    >"build-fuzz/findings/$t.log" 2>&1 || status=1
  grep -E "^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss_mb" \
    "build-fuzz/findings/$t.log" | tail -3 || true
  ls "$findings"
done
exit $status
