#!/usr/bin/env bash
# Install the project into a virtualenv, from this source tree or, with a bundle made by
# scripts/build_bundle.py, with no network at all: the bundle's checksums are verified
# and pip may look nowhere else (--no-index). Shared by install-edge.sh and
# install-collector.sh, which add the user, the folders and the service around it.
#
#   scripts/venv-install.sh VENV EXTRAS [BUNDLE]
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$1"
EXTRAS="$2"
BUNDLE="${3:-}"
PYTHON="${PYTHON:-/usr/bin/python3}"

if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "installing python3-venv (Python 3.11 or newer is needed)"
  apt-get install -y -qq --no-install-recommends python3-venv
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if [ -z "$BUNDLE" ]; then
  spec="$SRC"
  [ -n "$EXTRAS" ] && spec="$SRC[$EXTRAS]"
  "$VENV/bin/pip" install --quiet --upgrade "$spec"
  if [[ ",$EXTRAS," == *",vision,"* ]]; then
    # The OCR models; the package's own dependencies would pull in the GUI build of OpenCV.
    "$VENV/bin/pip" install --quiet --no-deps 'rapidocr-onnxruntime>=1.4.4'
  fi
  exit 0
fi

unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked"' EXIT
tar -xzf "$BUNDLE" -C "$unpacked"
wheels="$unpacked/wheels"
(cd "$wheels" && sha256sum --check --quiet SHA256SUMS) || {
  echo "error: $BUNDLE: a wheel does not match its checksum; the bundle is damaged" >&2
  exit 1
}
spec="phuquoc-telemetry"
[ -n "$EXTRAS" ] && spec="phuquoc-telemetry[$EXTRAS]"
# Everything pinned as the bundle was built; rapidocr without its declared dependencies.
grep -v '^rapidocr' "$wheels/requirements.txt" > "$unpacked/pins.txt"
"$VENV/bin/pip" install --quiet --no-index --find-links "$wheels" --upgrade -r "$unpacked/pins.txt" "$spec"
if grep -q '^rapidocr' "$wheels/requirements.txt"; then
  "$VENV/bin/pip" install --quiet --no-index --find-links "$wheels" --no-deps \
    "$(grep '^rapidocr' "$wheels/requirements.txt")"
fi
