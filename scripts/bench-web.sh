#!/usr/bin/env bash
# Browser benchmark: ms per training step and examples/s (batch 32) on WebGPU (SwiftShader
# here) and on the CPU fallback in headless Chromium, time from page load to ready, the main
# thread's long tasks while training and the delay of Stop (tests/browser/bench.mjs), and the
# release .wasm sizes (page and worker) raw and gzipped, and the WebGPU calls of the worker per
# training step and per 100 embedded images (part `counts`: dispatches, submits, bind groups,
# passes, buffers, read-backs; device-independent). Builds the release page into dist/.
#   BENCH_PARTS=paths,fashion,block,layouts,counts   only these parts (all by default)
#   BENCH_NO_BUILD=1                                 use dist/ (or TRIPLETLAB_DIST) as it is
#   BENCH_BASELINE_DIST=<dir>                        counts also for that built dist ("before")
set -euo pipefail
# Paths given from where the script was started.
for var in BENCH_BASELINE_DIST TRIPLETLAB_DIST; do
  if [ -n "${!var:-}" ]; then
    export "$var=$(realpath "${!var}")"
  fi
done
cd "$(dirname "$0")/.."
export PATH="$PWD/tests/browser/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

scripts/setup-web.sh
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  trunk build --release
fi
total=0
dist="${TRIPLETLAB_DIST:-dist}" # the dist the benchmark serves (tests/browser/harness.mjs)
for wasm in "$dist/tripletlab_bg.wasm" "$dist/tripletlab-worker_bg.wasm"; do
  raw=$(stat -c %s "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  total=$((total + gz))
  echo "release $(basename "$wasm"): $raw bytes raw, $gz bytes gzipped ($(awk "BEGIN { printf \"%.1f\", $gz / 1024 }") KiB)"
done
echo "release wasm, page + worker: $total bytes gzipped ($(awk "BEGIN { printf \"%.2f\", $total / 1048576 }") MiB)"
node tests/browser/bench.mjs "$@"

# TensorFlow.js 4.22 peer of the same training step (net, TFA loss, Adam) in the same headless
# Chromium: tfjs-webgpu and tfjs-wasm (bench/web/README.md). Skipped when BENCH_PARTS picks
# only some parts of ours.
[ -z "${BENCH_PARTS:-}" ] || exit 0
[ -f bench/web/node_modules/@tensorflow/tfjs-backend-wasm/package.json ] ||
  (cd bench/web && npm ci --no-audit --no-fund --silent)
node bench/web/bench-tfjs.mjs
