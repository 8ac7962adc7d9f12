#!/usr/bin/env bash
# Installs what the browser build and its tests need, only what is missing (quiet when all is
# present): the wasm32 target, trunk, wasm-bindgen-cli (the exact version in Cargo.lock),
# Chromium + chromedriver, and the npm packages of tests/browser (playwright-core, binaryen's
# wasm-opt). The tools build in cargo's temporary directory, not in CARGO_TARGET_DIR, so that
# `make test` can install them while the project builds there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

TRUNK_VERSION=0.21.14
say() { echo "setup-web: $*" >&2; }

# The wasm-bindgen version the crate links against (Cargo.lock), which the CLI must match.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$WB_VERSION" ]; then
  say "cannot find wasm-bindgen in Cargo.lock"; exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
  say "installing trunk $TRUNK_VERSION"
  env -u CARGO_TARGET_DIR cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WB_VERSION\$" \
  || ! command -v wasm-bindgen-test-runner >/dev/null; then
  say "installing wasm-bindgen-cli $WB_VERSION"
  env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

if [ ! -x /usr/lib/chromium/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing chromium and chromium-driver (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "node and npm are needed for the browser tests (apt-get install nodejs npm)"; exit 1
fi
if [ ! -x tests/browser/node_modules/.bin/wasm-opt ] \
  || [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  say "installing the npm packages of tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
