#!/bin/sh
# Fetches the nsfwjs MobileNetV2 (an ImageNet-initialised MobileNetV2 as a
# TF.js layers model, from npm nsfwjs@4.4.0) and unwraps it into a standard
# model.json + group1-shard1of1.bin in DEST (default models/nsfwjs_mobilenet_v2).
# Needs node and npm, and only the npm registry.
set -eu
cd "$(dirname "$0")/.."
DEST=${1:-models/nsfwjs_mobilenet_v2}
if [ -f "$DEST/model.json" ] && [ -f "$DEST/group1-shard1of1.bin" ]; then
  echo "$DEST already holds the model"
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent nsfwjs@4.4.0 >/dev/null && tar xzf nsfwjs-4.4.0.tgz)
SRC="$TMP/package/dist/models/mobilenet_v2"
mkdir -p "$DEST"
node scripts/unwrap_tfjs_module.js "$SRC/model.min.js" "$SRC/group1-shard1of1.min.js" "$DEST"
echo "wrote $DEST/model.json and $DEST/group1-shard1of1.bin"
