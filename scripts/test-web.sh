#!/usr/bin/env bash
# The browser tests: (1) wasm-bindgen tests in headless Chromium (golden loss cases and a few
# training steps on WebGPU/SwiftShader, and on the CPU fallback), (2) the Playwright end-to-end
# test of the trunk-built page. Every process started here is stopped by the tests themselves.
#   scripts/test-web.sh [wasm|e2e]   (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
what="${1:-all}"

scripts/setup-web.sh

if [ "$what" = all ] || [ "$what" = wasm ]; then
  # clippy on the wasm32 code (the worker with the engine, the page without it, the browser
  # tests); warnings are errors, as on the host.
  cargo clippy --locked --target wasm32-unknown-unknown --lib --bins --test wasm_browser -- -D warnings
  cargo clippy --locked --target wasm32-unknown-unknown --no-default-features --lib --bins -- -D warnings
  # wasm-bindgen-test-runner drives chromedriver; webdriver.json adds the WebGPU flags.
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
  export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
  export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"
  time cargo test --target wasm32-unknown-unknown --test wasm_browser
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
  time trunk build
  (cd tests/browser && time node --test --test-concurrency=1 e2e.test.mjs)
fi
