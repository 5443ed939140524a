#!/usr/bin/env bash
# The README's first command: install what is needed, build, and run the
# seed's job on real data — an ImageNet-initialised MobileNetV2 (the nsfwjs
# TF.js model, fetched from npm by setup.sh) fine-tuned on 121 real photos
# of mammals, fruit, birds and flowers (Debian's tuxpaint stamps), tested
# on 50 others — next to the same recipe on a randomly initialised trunk.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
scripts/make_demo_data.sh data/demo
STAMPS=/usr/share/tuxpaint/stamps
echo
echo "== graft train (the seed's form: MODEL TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST)"
build/graft train models/nsfwjs_mobilenet_v2/model.json \
  "$STAMPS" data/demo/train.txt "$STAMPS" data/demo/test.txt \
  --class-names data/demo/labels.txt --baseline-random --out out/demo "$@"
echo
echo "The fine-tuned model is out/demo/model.onnx (any ONNX runtime serves it);"
echo "the report is out/demo/report.html. Try: build/graft predict out/demo/model.onnx $STAMPS/animals/birds/silver-gull.png"
