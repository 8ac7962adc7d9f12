#!/usr/bin/env bash
# Native benchmark (`make bench`): in one run on this machine
#   1. cargo bench --bench loss --bench step (release): the training step on the CPU and on wgpu,
#      a breakdown of the CPU step, the semi-hard loss + gradient at B = 32 … 2048, and per
#      selection path (host sort, device arithmetic on the CPU) the time and peak memory of one
#      loss + gradient at B = 512 … 4096 beside TFA's reference times (cap the sizes with
#      TRIPLETLAB_LOSS_PEAK_MAX=B);
#   2. the original Keras recipe (TensorFlow 2.15 + Addons 0.23, from PyPI into a venv under
#      ~/.cache/tripletlab, created once; never by `make test`): model.fit epochs, a
#      train_on_batch loop and TFA's loss at small batch sizes;
#   3. the 2-D layouts (PCA, UMAP, t-SNE) of 2,000 and 10,000 test embeddings with the release
#      CLI (`tripletlab project`: seconds and trustworthiness), into bench/out/layouts.txt;
#   4. bench/summary.py: one side-by-side table, also written to bench/out/summary.json.
#
# Knobs: BENCH_SKIP_LAYOUTS=1 skips part 3; BENCH_SKIP_NATIVE=1 / BENCH_SKIP_KERAS=1 reuse the previous results of that half;
# KERAS_EPOCHS (2), KERAS_STEPS (300), KERAS_LOSS_SIZES (32,128,256; 512 takes ~2 s per call in
# TFA, 1024 ~30 s: their reference figures are in bench/reference/tfa-loss-cpu.json);
# KERAS_VENV (~/.cache/tripletlab/keras-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export KERAS_VENV="${KERAS_VENV:-$HOME/.cache/tripletlab/keras-venv}"
OUT=bench/out
mkdir -p "$OUT"

t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
since=$t_start

if [ "${BENCH_SKIP_NATIVE:-0}" != 1 ]; then
  echo "== native: cargo bench --bench loss --bench step (release; the first build takes ~10 min) =="
  cargo bench --locked --bench loss --bench step 2>&1 | tee "$OUT/cargo-bench.log"
else
  echo "== native: skipped (BENCH_SKIP_NATIVE=1), reusing the last criterion results =="
  since=0
fi
t_native=$(date +%s)

keras_note=""
if [ "${BENCH_SKIP_KERAS:-0}" != 1 ]; then
  echo "== Keras 2.15 + TFA 0.23 (the original recipe) =="
  if bash bench/keras/setup-venv.sh; then
    if ! "$KERAS_VENV/bin/python" bench/keras/keras_step.py \
        --epochs "${KERAS_EPOCHS:-2}" --steps "${KERAS_STEPS:-300}" \
        --loss-sizes "${KERAS_LOSS_SIZES:-32,128,256}" >"$OUT/keras.json.tmp"; then
      keras_note="Keras run failed (see above)"
    else
      mv "$OUT/keras.json.tmp" "$OUT/keras.json"
    fi
  else
    keras_note="Keras venv could not be set up (PyPI unreachable?): Keras columns are from an earlier run or n/a"
  fi
else
  echo "== Keras: skipped (BENCH_SKIP_KERAS=1), reusing $OUT/keras.json =="
fi

t_end=$(date +%s)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

note="$(nproc) CPUs; load average $load_start at the start, $load_end at the end (other jobs on the machine skew all figures); native $((t_native - t_start)) s (build included), Keras $((t_end - t_native)) s."
[ -n "$keras_note" ] && note="$note
NOTE: $keras_note"
python3 bench/summary.py --criterion "$CARGO_TARGET_DIR/criterion" --since "$since" --note "$note"

# The 2-D layouts natively: `tripletlab project` (release) on 2,000 test embeddings (mnist10k)
# and 10,000 (Fashion-MNIST's test set), each embedded by the untrained net of seed 0 (the
# layouts' cost depends on the number of points, not on what the net learnt).
if [ "${BENCH_SKIP_LAYOUTS:-0}" != 1 ]; then
  echo "== layouts: tripletlab project --method pca|tsne|umap on 2,000 and 10,000 points (release) =="
  cargo build --locked --release --bin tripletlab 2>&1 | tail -1
  bin="$CARGO_TARGET_DIR/release/tripletlab"
  work=$(mktemp -d)
  "$bin" embed --no-knn --seed 0 --train-limit 64 --out "$work/2k" >/dev/null
  "$bin" embed --no-knn --seed 0 --dataset fashion --train-limit 64 --out "$work/10k" >/dev/null
  : >"$OUT/layouts.txt"
  for set in 2k 10k; do
    for method in pca umap tsne; do
      "$bin" project --vecs "$work/$set/vecs.tsv" --meta "$work/$set/meta.tsv" --method "$method" \
        --out "$work/$set/$method.tsv" | tee -a "$OUT/layouts.txt"
    done
  done
  rm -rf "$work"
fi
