#!/usr/bin/env bash
# Installs what the native build and tests need, idempotently and quietly when present:
# the Rust toolchain's cargo (expected on the machine), rustfmt and clippy (the gates of
# `make test`) and Mesa's Vulkan driver (lavapipe), on
# which the wgpu backend's kernels are tested without a GPU.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
fi
# The gates of `make test`.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  echo "setup: installing mesa-vulkan-drivers (lavapipe) for the native wgpu tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
