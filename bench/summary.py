#!/usr/bin/env python3
"""Prints one side-by-side table from a `make bench` run and writes it as JSON.

Inputs (standard library only):
  * criterion's results, `<criterion dir>/<group>/<id>/new/estimates.json` (nanoseconds per
    iteration; the median is used: the machine is shared and noisy), for the groups
    `train_step` (cpu, wgpu), `semi_hard_loss_grad` (one id per B) and `semi_hard_selection`;
    results older than --since are ignored (a skipped wgpu bench must not show a stale figure);
  * bench/out/keras.json (bench/keras/keras_step.py's output);
  * bench/out/loss-memory.json (benches/loss.rs's peak-memory probe) and
    bench/out/step-breakdown.json (benches/step.rs's phase timing);
  * bench/reference/tfa-loss-cpu.json and bench/reference/keras-baseline.json.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32
TARGET_STEP, GOAL_STEP, TARGET_LOSS = 1.0, 1.5, 100.0


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def estimate_ms(criterion, group, ident, since):
    path = os.path.join(criterion, group, str(ident), "new", "estimates.json")
    if since is not None:
        try:
            if os.path.getmtime(path) < since:
                return None
        except OSError:
            return None
    est = read_json(path)
    if not est:
        return None
    return est["median"]["point_estimate"] / 1e6


def fmt(x, spec=".1f", none="n/a"):
    return none if x is None else format(x, spec)


def ratio(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec) + "×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion", required=True, help="$CARGO_TARGET_DIR/criterion")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    ap.add_argument("--since", type=float, default=None, help="ignore criterion results older than this epoch time")
    ap.add_argument("--note", default="", help="free text printed under the title (machine load etc.)")
    args = ap.parse_args()

    out = args.out_dir
    keras = read_json(os.path.join(out, "keras.json")) or {}
    memory = read_json(os.path.join(out, "loss-memory.json")) or {}
    tfa_ref = (read_json(os.path.join(HERE, "reference", "tfa-loss-cpu.json")) or {}).get("ms_per_call_by_batch", {})
    baseline = read_json(os.path.join(HERE, "reference", "keras-baseline.json")) or {}
    est = lambda g, i: estimate_ms(args.criterion, g, i, args.since)  # noqa: E731

    # ---- training step ------------------------------------------------------------------
    rows = []

    def step_row(name, ms, note=""):
        rows.append({"path": name, "ms_per_step": ms, "examples_per_s": None if ms is None else BATCH * 1000.0 / ms, "note": note})

    step_row("tripletlab, CPU (fused engine)", est("train_step", "cpu"), "Trainer::step + loss read")
    wgpu_ms = est("train_step", "wgpu")
    step_row("tripletlab, wgpu", wgpu_ms, "Vulkan (lavapipe without a GPU)" if wgpu_ms is not None else "skipped: no adapter")
    fit = keras.get("fit") or {}
    tob = keras.get("train_on_batch") or {}
    step_row("Keras 2.15 + TFA 0.23, model.fit (original)", fit.get("ms_per_step"), "steady epoch" if fit else "not run")
    step_row("Keras, train_on_batch loop", tob.get("ms_per_step"), "per-call Python overhead" if tob else "not run")
    ref_eps = []
    for name, run in (baseline.get("runs") or {}).items():
        if name.startswith("mnist10k/"):
            ref_eps += run.get("train_examples_per_s", [])[1:]
    ref_eps_mean = sum(ref_eps) / len(ref_eps) if ref_eps else None
    rows.append({
        "path": "Keras reference file (keras-baseline.json)",
        "ms_per_step": None if not ref_eps_mean else BATCH * 1000.0 / ref_eps_mean,
        "examples_per_s": ref_eps_mean,
        "note": "mnist10k, epochs 2-5, earlier run",
    })
    step_row("tripletlab, CPU, burn autodiff engine", est("train_step", "cpu_autodiff"), "--engine autodiff")
    keras_eps = rows[2]["examples_per_s"]
    for r in rows:
        r["vs_keras_fit"] = (r["examples_per_s"] / keras_eps) if (r["examples_per_s"] and keras_eps) else None

    bd = read_json(os.path.join(out, "step-breakdown.json")) or {}
    if args.since is not None and bd:
        try:
            if os.path.getmtime(os.path.join(out, "step-breakdown.json")) < args.since:
                bd = {}
        except OSError:
            bd = {}
    bd_ms = bd.get("ms") or {}
    labels = [
        ("inference_forward", "inference forward of the batch"),
        ("masks", "step phase: dropout masks"),
        ("forward", "step phase: forward"),
        ("loss", "step phase: semi-hard loss + gradient (burn)"),
        ("backward", "step phase: backward"),
        ("adam", "step phase: Adam update"),
        ("manual_step", "whole step (phases above)"),
        ("trainer_step", "Trainer::step + loss read"),
    ]
    breakdown = [{"stage": k, "label": label, "ms": bd_ms.get(k)} for k, label in labels]

    # ---- loss ---------------------------------------------------------------------------
    loss_rows = []
    keras_loss = keras.get("tfa_loss_ms") or {}
    for b in (32, 128, 256, 512, 1024, 2048):
        ours = est("semi_hard_loss_grad", b)
        ref = tfa_ref.get(str(b))
        here = keras_loss.get(str(b))
        loss_rows.append({
            "batch": b,
            "ours_ms": ours,
            "tfa_ref_ms": ref,
            "tfa_this_run_ms": here,
            "speedup_vs_ref": (ref / ours) if (ref and ours) else None,
            "speedup_vs_this_run": (here / ours) if (here and ours) else None,
        })
    selection = []
    for b in (32, 128, 256):
        selection.append({"batch": b, "device_ms": est("semi_hard_selection", f"device/{b}"), "host_ms": est("semi_hard_selection", f"host/{b}")})
    mem_rows = memory.get("rows") or []
    mem2048 = next((r for r in mem_rows if r.get("batch") == 2048), None)

    # ---- print --------------------------------------------------------------------------
    w = sys.stdout.write
    w("\n" + "=" * 96 + "\n")
    w("tripletlab bench: training step (batch 32, the notebook's net, semi-hard L2, Adam, mnist10k)\n")
    if args.note:
        w(args.note.rstrip() + "\n")
    w("=" * 96 + "\n")
    w(f"{'path':<46}{'ms/step':>9}{'ex/s':>9}{'vs Keras':>10}   note\n")
    for r in rows:
        w(f"{r['path']:<46}{fmt(r['ms_per_step']):>9}{fmt(r['examples_per_s'], '.0f'):>9}{ratio(r['vs_keras_fit']):>10}   {r['note']}\n")
    cpu_ratio = rows[0]["vs_keras_fit"]
    if cpu_ratio is not None:
        verdict = "GOAL met" if cpu_ratio >= GOAL_STEP else ("target met" if cpu_ratio >= TARGET_STEP else "BELOW target")
        w(f"CPU step vs the original (Keras fit): {cpu_ratio:.2f}×  (target ≥ {TARGET_STEP:.1f}×, goal {GOAL_STEP:.1f}×): {verdict}\n")
    if bd_ms:
        whole = bd_ms.get("manual_step")
        w(f"\nFused CPU step breakdown (median ms over {bd.get('rounds')} interleaved rounds; share of the whole step)\n")
        for r in breakdown:
            share = f"{100.0 * r['ms'] / whole:5.0f} %" if (r["ms"] is not None and whole and r["stage"] in ("masks", "forward", "loss", "backward", "adam")) else ""
            w(f"  {r['label']:<52}{fmt(r['ms'], '.2f'):>9}  {share}\n")
    w("\nSemi-hard loss + gradient, CPU, 256-d (ours: burn flex autodiff, Selection::Auto; TFA 0.23: tf.function)\n")
    w(f"{'B':>6}{'ours ms':>11}{'TFA ref ms':>13}{'speed-up':>11}{'TFA here ms':>14}{'speed-up':>11}\n")
    for r in loss_rows:
        w(
            f"{r['batch']:>6}{fmt(r['ours_ms'], '.3f'):>11}{fmt(r['tfa_ref_ms'], '.1f', '-'):>13}"
            f"{ratio(r['speedup_vs_ref'], '.1f') if r['tfa_ref_ms'] else '-':>11}"
            f"{fmt(r['tfa_this_run_ms'], '.1f', '-'):>14}{ratio(r['speedup_vs_this_run'], '.1f') if r['tfa_this_run_ms'] else '-':>11}\n"
        )
    r1024 = next(r for r in loss_rows if r["batch"] == 1024)
    if r1024["speedup_vs_ref"] is not None:
        s = r1024["speedup_vs_ref"]
        w(f"B = 1024 speed-up over TFA: {s:.0f}×  (target ≥ {TARGET_LOSS:.0f}×): {'target met' if s >= TARGET_LOSS else 'BELOW target'}\n")
    if any(r["device_ms"] or r["host_ms"] for r in selection):
        w("Selection paths (loss + gradient ms; Auto uses device up to B = 128, host above): " + ", ".join(
            f"B={r['batch']}: device {fmt(r['device_ms'], '.2f')} / host {fmt(r['host_ms'], '.2f')}" for r in selection) + "\n")
    device_rows = memory.get("device_rows") or []
    for title, path_rows in (("host selection (what Auto takes natively above B = 128)", mem_rows),
                             ("device selection on the CPU (what the GPU paths run)", device_rows)):
        if not path_rows:
            continue
        w(f"Peak memory of one loss + gradient, {title} (fresh process each; VmHWM; 'loss' = above the warmed-up process):\n")
        prev = None
        for r in path_rows:
            growth = f"  ×{r['loss_peak_delta_mib'] / prev:.2f} per doubling" if prev else ""
            ref = tfa_ref.get(str(r["batch"]))
            tfa = f"  (TFA ref {ref:.0f} ms)" if ref else ""
            w(f"  B = {r['batch']:>4}: {r['peak_rss_mib']:7.0f} MiB peak RSS, {r['loss_peak_delta_mib']:7.0f} MiB for the loss, {r['single_call_s']:.3f} s{tfa}{growth}\n")
            prev = r["loss_peak_delta_mib"] or None
    if mem_rows or device_rows:
        w("  (×4 per doubling is O(B²); TFA's B×B×B tensors would grow ×8)\n")
    if mem2048:
        w(f"B = 2048: {mem2048['loss_peak_delta_mib']:.0f} MiB above the warmed-up process ({mem2048['peak_rss_mib']:.0f} MiB peak RSS in all)\n")
    w("TFA ref: bench/reference/tfa-loss-cpu.json (TF 2.15.1 on this 2-core machine); TFA here: this run, small B only.\n")

    summary = {
        "note": args.note,
        "batch": BATCH,
        "train_step": rows,
        "cpu_vs_keras_fit": cpu_ratio,
        "cpu_step_breakdown": breakdown,
        "loss": loss_rows,
        "loss_selection_paths": selection,
        "loss_memory": mem_rows,
        "loss_memory_device_selection": device_rows,
        "keras": keras,
        "targets": {"step_vs_keras": TARGET_STEP, "step_goal": GOAL_STEP, "loss_speedup_at_1024": TARGET_LOSS},
    }
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    w(f"\nwrote {os.path.relpath(path)}\n")


if __name__ == "__main__":
    main()
