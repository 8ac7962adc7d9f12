#!/usr/bin/env bash
# Creates (once) the Python venv with the original notebook's stack for the side-by-side bench:
# TensorFlow 2.15 (CPU) + TensorFlow Addons 0.23. Idempotent: does nothing when both import.
# Used by scripts/bench.sh only (never by `make test`).
set -euo pipefail
VENV="${KERAS_VENV:-$HOME/.cache/tripletlab/keras-venv}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import tensorflow, tensorflow_addons' >/dev/null 2>&1; then
  exit 0
fi
PY="${PYTHON:-python3}"
echo "bench: creating the Keras venv in $VENV (TensorFlow 2.15 CPU + Addons 0.23, a few hundred MB, once)" >&2
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
"$VENV/bin/python" -m pip install --quiet 'tensorflow-cpu==2.15.*' 'tensorflow-addons==0.23.0' 'numpy<2' >&2
"$VENV/bin/python" -c 'import tensorflow, tensorflow_addons' >/dev/null 2>&1
