#!/usr/bin/env bash
# Browser benchmark: ms per training step and examples/s (batch 32) on WebGPU (SwiftShader
# here) and on the CPU fallback in headless Chromium, time from page load to ready, and the
# release .wasm size raw and gzipped. Builds the release page into dist/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tests/browser/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

scripts/setup-web.sh
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  trunk build --release
fi
wasm=dist/tripletlab_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "release wasm: $raw bytes raw, $gz bytes gzipped ($(awk "BEGIN { printf \"%.2f\", $gz / 1048576 }") MiB)"
node tests/browser/bench.mjs "$@"

# TensorFlow.js 4.22 peer of the same training step (net, TFA loss, Adam) in the same headless
# Chromium: tfjs-webgpu and tfjs-wasm (bench/web/README.md).
[ -f bench/web/node_modules/@tensorflow/tfjs-backend-wasm/package.json ] ||
  (cd bench/web && npm ci --no-audit --no-fund --silent)
node bench/web/bench-tfjs.mjs
