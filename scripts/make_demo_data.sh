#!/usr/bin/env bash
# The demo's data: real photo cut-outs from Debian's tuxpaint-stamps-default
# (GPL-2) in four classes, split by a fixed seed into 121 training and 50 test
# images (about 29% of each class for the test set), written as list files
# in the seed's format ("relative/path label") next to a labels.txt.
#
#   scripts/make_demo_data.sh [OUT]     (default data/demo)
set -euo pipefail
OUT=${1:-data/demo}
STAMPS=/usr/share/tuxpaint/stamps
if [ ! -d "$STAMPS/animals/mammals" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tuxpaint-stamps-default >/dev/null
fi
mkdir -p "$OUT"
classes=(animals/mammals food/fruit animals/birds plants/flowers)
: > "$OUT/train.txt.tmp"
: > "$OUT/test.txt.tmp"
: > "$OUT/labels.txt.tmp"
label=0
for c in "${classes[@]}"; do
  echo "${c#*/}" >> "$OUT/labels.txt.tmp"
  # A fixed shuffle: files ordered by the md5 of "graft-demo:<path>".
  mapfile -t files < <(cd "$STAMPS" && find "$c" -name '*.png' | sort |
    while read -r f; do printf '%s %s\n' "$(printf 'graft-demo:%s' "$f" | md5sum | cut -c1-12)" "$f"; done |
    sort | cut -d' ' -f2-)
  n=${#files[@]}
  n_test=$(( (n * 2924 + 5000) / 10000 ))
  for i in "${!files[@]}"; do
    if [ "$i" -lt "$n_test" ]; then echo "${files[$i]} $label" >> "$OUT/test.txt.tmp"
    else echo "${files[$i]} $label" >> "$OUT/train.txt.tmp"; fi
  done
  label=$((label + 1))
done
for f in train test labels; do mv "$OUT/$f.txt.tmp" "$OUT/$f.txt"; done
echo "wrote $OUT/train.txt ($(wc -l < "$OUT/train.txt") images), $OUT/test.txt ($(wc -l < "$OUT/test.txt") images), images under $STAMPS"
