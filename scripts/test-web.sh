#!/usr/bin/env bash
# The browser tests: (1) wasm-bindgen tests in headless Chromium (golden loss cases and a few
# training steps on WebGPU/SwiftShader, and on the CPU fallback), (2) the Playwright end-to-end
# test of the trunk-built page, whose downloads the native CLI (built here) recomputes. Every
# process started here is stopped by the tests themselves.
# Run from `make test`, both builds go through clippy-driver (see the Makefile's LINT): the
# wasm32 code is linted as it is compiled.
#   scripts/test-web.sh [wasm|e2e]   (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
what="${1:-all}"

scripts/setup-web.sh

if [ "$what" = all ] || [ "$what" = wasm ]; then
  # wasm-bindgen-test-runner drives chromedriver; webdriver.json adds the WebGPU flags.
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
  export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
  export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"
  time cargo test --target wasm32-unknown-unknown --test wasm_browser
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
  # The e2e test checks the page's downloads against the native CLI (`tripletlab embed`/`eval`).
  # Built as the CLI tests build it (their feature set), so after `make test-native` this reuses
  # that build instead of compiling every dependency again for a plain `cargo build`.
  time cargo test --locked --no-run --test cli
  export TRIPLETLAB_BIN="${TRIPLETLAB_BIN:-$CARGO_TARGET_DIR/debug/tripletlab}"
  time trunk build
  (cd tests/browser && time node --test --test-concurrency=1 e2e.test.mjs)
fi
