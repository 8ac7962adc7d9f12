# tripletlab — two commands do everything on a fresh machine:
#   make serve   installs what is missing, builds the page, serves it on http://127.0.0.1:8080
#   make test    installs what is missing, runs every test (native + headless Chromium)
# Builds share a cache outside the clone so a second run (and CI on the same machine) is warm.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/tripletlab/target
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: all setup setup-native setup-web test test-native test-web serve build-web bench bench-web mutants clean

all: test

setup: setup-native setup-web

setup-native:
	@bash scripts/setup-native.sh

setup-web:
	@bash scripts/setup-web.sh

# On a fresh machine the browser tools (trunk, wasm-bindgen-cli, Chromium, npm packages) are
# installed while the native tests build, so the two overlap; on a warm machine both are no-ops.
test: setup-native
	@log=$$(mktemp); bash scripts/setup-web.sh >"$$log" 2>&1 & web=$$!; \
	  $(MAKE) --no-print-directory test-native; native=$$?; \
	  wait $$web; setup=$$?; cat "$$log"; rm -f "$$log"; \
	  if [ $$setup -ne 0 ]; then echo "setup-web failed" >&2; exit $$setup; fi; \
	  if [ $$native -ne 0 ]; then exit $$native; fi
	@$(MAKE) --no-print-directory test-web

# The gates: formatting first; clippy (warnings are errors) lints our own crate while it is
# compiled for the tests: clippy-driver wraps only the workspace's crates, so the gate costs no
# second (check) build of the dependencies. test-web does the same for wasm32 (the worker, the
# page and the browser tests).
LINT := RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

test-native:
	$(CARGO) fmt --all --check
	$(LINT) $(CARGO) test --locked --workspace --all-targets

test-web:
	@$(LINT) bash scripts/test-web.sh

serve: setup-web
	trunk serve --address 127.0.0.1 --port 8080

# wasm-opt comes from npm's binaryen (Debian's is too old for today's wasm).
build-web: setup-web
	PATH="$(CURDIR)/tests/browser/node_modules/.bin:$$PATH" trunk build --release
	@for w in dist/*.wasm; do echo "$$w: $$(stat -c %s $$w) bytes raw, $$(gzip -9c $$w | wc -c) gzipped"; done

bench: setup-native
	@bash scripts/bench.sh

bench-web: setup-web
	@bash scripts/bench-web.sh

# Mutation testing of the logic with cargo-mutants (installed here once; .cargo/mutants.toml says
# what is excluded and why, and which tests judge a mutant). Mutants are built in place: leave the
# tree alone while it runs. MUTANTS_ARGS narrows it, e.g. MUTANTS_ARGS="--file src/page/form.rs",
# or a change: MUTANTS_ARGS="--in-diff <(git diff main)".
MUTANTS_VERSION := 27.1.0
mutants: setup-native
	@cargo mutants --version 2>/dev/null | grep -q " $(MUTANTS_VERSION)$$" || \
	  env -u CARGO_TARGET_DIR $(CARGO) install --locked cargo-mutants --version $(MUTANTS_VERSION)
	$(CARGO) mutants --in-place --workspace $(MUTANTS_ARGS)

clean:
	rm -rf dist
