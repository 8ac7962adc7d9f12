//! Semi-hard triplet loss + gradient (burn autodiff, CPU `flex` device) at growing batch sizes,
//! beside TensorFlow Addons 0.23's figures (`bench/reference/tfa-loss-cpu.json`), and the peak
//! memory of one loss + gradient, measured in a fresh child process per batch size.
//!
//! * Timing (criterion, group `semi_hard_loss_grad`, id = B): 256-d unit-norm rows, 10 classes,
//!   L2, margin 1, [`Selection::Auto`] (device-side selection up to B = 128, host sort above).
//!   Each iteration uploads the embeddings, computes the loss, back-propagates and reads the
//!   gradient back (`into_data`), so all the work is done when it returns.
//! * Group `semi_hard_selection`, ids `device/B` and `host/B`: both selection paths forced at
//!   B = 32, 128, 256, around the point where `Auto` switches.
//! * Memory and time per selection path: this binary re-runs itself with
//!   `TRIPLETLAB_LOSS_PEAK=PATH:B` (PATH = `host` or `device`); the child warms up (device,
//!   thread pool, allocator) on a small batch, reads `VmHWM` (peak resident set) from
//!   `/proc/self/status`, runs one loss + gradient at B with that selection forced, reads
//!   `VmHWM` again and prints both and the call's time as JSON. The parent collects them for
//!   B = 512 … 4096 on both paths (the ratio between consecutive sizes shows the growth: ×4 per
//!   doubling is O(B²), ×8 would be TFA's O(B³)), prints them beside TFA's times from
//!   `bench/reference/tfa-loss-cpu.json`, and writes `bench/out/loss-memory.json` (`rows`: the
//!   host path, which `Auto` takes natively at these sizes; `device_rows`: the device path).
//!   `TRIPLETLAB_LOSS_PEAK_MAX=B` caps the sizes (the device path's time is O(B³): its
//!   comparisons are chunked, not avoided).
//!
//! `cargo bench --bench loss` runs everything; `cargo test --benches` (criterion's test mode)
//! runs each timing once and probes memory at one small size only.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tripletlab_core::run::Metric;
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::loss::{Selection, semi_hard_triplet_loss_with};

const DIM: usize = 256;
const CLASSES: u32 = 10;
const BATCHES: [usize; 6] = [32, 128, 256, 512, 1024, 2048];
const MEMORY_BATCHES: [usize; 4] = [512, 1024, 2048, 4096];
const PEAK_ENV: &str = "TRIPLETLAB_LOSS_PEAK";
const PEAK_MAX_ENV: &str = "TRIPLETLAB_LOSS_PEAK_MAX";
/// The two selection paths the memory probe compares, by the name used in `PEAK_ENV`.
const PATHS: [(&str, Selection); 2] =
    [("host", Selection::ReadBack), ("device", Selection::Device)];

/// `b` unit-norm rows of width [`DIM`] and `b` labels in `0..10`, from a fixed seed.
fn batch(b: usize) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed ^ b as u64);
    let mut x = Vec::with_capacity(b * DIM);
    for _ in 0..b {
        let row: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        x.extend(row.iter().map(|v| v / norm));
    }
    let labels = (0..b).map(|_| rng.random_range(0..CLASSES)).collect();
    (x, labels)
}

/// One loss + gradient, read back. Returns the loss value (the gradient is black-boxed).
fn loss_and_grad(device: &Device, x: &[f32], labels: &[u32]) -> f32 {
    loss_and_grad_with(device, x, labels, Selection::Auto)
}

/// [`loss_and_grad`] with `selection` forced.
fn loss_and_grad_with(device: &Device, x: &[f32], labels: &[u32], selection: Selection) -> f32 {
    let b = labels.len();
    let emb = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [b, DIM]), device).require_grad();
    let loss = semi_hard_triplet_loss_with(emb.clone(), labels, 1.0, Metric::L2, selection);
    let grads = loss.backward();
    let grad = emb.grad(&grads).expect("the embeddings require a gradient");
    black_box(grad.into_data());
    loss.into_scalar::<f32>()
}

fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

fn timing(c: &mut Criterion) {
    let device = cpu_device().autodiff();
    let mut group = c.benchmark_group("semi_hard_loss_grad");
    group.sample_size(10);
    for &b in &BATCHES {
        let (x, labels) = batch(b);
        // Keep the whole group near a minute on two busy cores.
        let (warm, measure) = if b >= 512 { (1, 3) } else { (1, 2) };
        group.warm_up_time(Duration::from_secs(warm));
        group.measurement_time(Duration::from_secs(measure));
        group.sampling_mode(if b >= 512 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        group.throughput(Throughput::Elements(b as u64));
        group.bench_with_input(BenchmarkId::from_parameter(b), &b, |bencher, _| {
            bencher.iter(|| loss_and_grad(&device, &x, &labels))
        });
    }
    group.finish();

    // Both selection paths where `Auto` switches (it picks the device path up to B = 128):
    // same values, different cost on the CPU.
    let mut group = c.benchmark_group("semi_hard_selection");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(1));
    group.sampling_mode(SamplingMode::Flat);
    for &b in &[32usize, 128, 256] {
        let (x, labels) = batch(b);
        for (name, selection) in [("device", Selection::Device), ("host", Selection::ReadBack)] {
            group.bench_with_input(BenchmarkId::new(name, b), &b, |bencher, _| {
                bencher.iter(|| loss_and_grad_with(&device, &x, &labels, selection))
            });
        }
    }
    group.finish();
}

/// `VmHWM` (peak resident set size) of this process in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Child process: warm up, then one loss + gradient at `b` with `selection`; prints one JSON line.
fn peak_child(path: &str, selection: Selection, b: usize) {
    let device = cpu_device().autodiff();
    let (wx, wl) = batch(32);
    loss_and_grad_with(&device, &wx, &wl, selection);
    let (x, labels) = batch(b);
    let before = vm_hwm_kib().unwrap_or(0);
    let t = Instant::now();
    let loss = loss_and_grad_with(&device, &x, &labels, selection);
    let secs = t.elapsed().as_secs_f64();
    let after = vm_hwm_kib().unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "selection": path,
            "batch": b,
            "baseline_peak_rss_mib": before as f64 / 1024.0,
            "peak_rss_mib": after as f64 / 1024.0,
            "loss_peak_delta_mib": after.saturating_sub(before) as f64 / 1024.0,
            "single_call_s": secs,
            "loss": loss,
        })
    );
}

/// TFA 0.23's milliseconds per loss + gradient by batch size (`bench/reference`).
fn tfa_reference_ms() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/reference/tfa-loss-cpu.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|v| v["ms_per_call_by_batch"].clone())
        .unwrap_or(serde_json::Value::Null)
}

/// Runs the child for one path and size; `None` (with a message) when it fails.
fn probe(exe: &std::path::Path, path: &str, b: usize) -> Option<serde_json::Value> {
    let out = Command::new(exe)
        .env(PEAK_ENV, format!("{path}:{b}"))
        .output();
    match out {
        Ok(o) if o.status.success() => match serde_json::from_slice(o.stdout.trim_ascii()) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("peak memory, {path} B={b}: unreadable child output ({e})");
                None
            }
        },
        Ok(o) => {
            eprintln!(
                "peak memory, {path} B={b}: child failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        }
        Err(e) => {
            eprintln!("peak memory, {path} B={b}: cannot start child ({e})");
            None
        }
    }
}

fn memory_report(sizes: &[usize], write: bool) {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("peak memory: cannot find this executable ({e}); skipped");
            return;
        }
    };
    let max = std::env::var(PEAK_MAX_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let tfa = tfa_reference_ms();
    let mut by_path: Vec<Vec<serde_json::Value>> = vec![Vec::new(); PATHS.len()];
    println!(
        "\nsemi-hard loss + gradient per selection path, CPU flex, 256-d (fresh process per row, VmHWM):"
    );
    println!(
        "{:>6}  {:>7}  {:>9}  {:>13}  {:>15}  {:>11}  {:>11}",
        "B", "path", "call ms", "peak RSS MiB", "loss's own MiB", "×/doubling", "TFA ref ms"
    );
    for (p, (path, _)) in PATHS.iter().enumerate() {
        let mut previous: Option<f64> = None;
        for &b in sizes.iter().filter(|&&b| b <= max) {
            let Some(row) = probe(&exe, path, b) else {
                continue;
            };
            let delta = row["loss_peak_delta_mib"].as_f64().unwrap_or(f64::NAN);
            let growth = previous
                .filter(|p| *p > 0.0)
                .map(|p| format!("{:.2}", delta / p))
                .unwrap_or_else(|| "-".into());
            let reference = tfa[b.to_string()]
                .as_f64()
                .map(|ms| format!("{ms:.1}"))
                .unwrap_or_else(|| "-".into());
            println!(
                "{:>6}  {:>7}  {:>9.1}  {:>13.1}  {:>15.1}  {:>11}  {:>11}",
                b,
                path,
                row["single_call_s"].as_f64().unwrap_or(f64::NAN) * 1000.0,
                row["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
                delta,
                growth,
                reference,
            );
            previous = Some(delta);
            by_path[p].push(row);
        }
    }
    println!(
        "(×/doubling: ≈4 is O(B²); TFA's B×B×B tensors would give ≈8. TFA ref: TF 2.15.1 + \
         Addons 0.23 on this 2-core machine, bench/reference/tfa-loss-cpu.json; it has no figure \
         above 1024, where one call took 29 s)"
    );
    if !write {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    let device_rows = by_path.pop().unwrap_or_default();
    let host_rows = by_path.pop().unwrap_or_default();
    let json = serde_json::json!({
        "what": "peak resident memory and time of one semi-hard loss + gradient (CPU flex, autodiff, 256-d), fresh process per B; rows: Selection::ReadBack (what Auto takes natively above 64), device_rows: Selection::Device (what the browser takes); loss_peak_delta_mib = VmHWM after minus VmHWM after a B=32 warm-up",
        "rows": host_rows,
        "device_rows": device_rows,
        "tfa_reference_ms": tfa,
    });
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join("loss-memory.json");
        match std::fs::write(
            &path,
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        ) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

fn main() {
    tripletlab_engine::device::tune_allocator();
    if let Ok(spec) = std::env::var(PEAK_ENV) {
        let (path, b) = spec.split_once(':').unwrap_or(("host", spec.as_str()));
        let selection = PATHS
            .iter()
            .find(|(name, _)| *name == path)
            .map(|&(_, s)| s);
        match (selection, b.parse()) {
            (Some(selection), Ok(b)) => peak_child(path, selection, b),
            _ => eprintln!("{PEAK_ENV}={spec}: expected host:B or device:B"),
        }
        return;
    }
    let bench = bench_mode();
    let mut c = Criterion::default().configure_from_args();
    timing(&mut c);
    c.final_summary();
    if bench {
        memory_report(&MEMORY_BATCHES, true);
    } else {
        // Test mode (`cargo test --benches`): check the mechanism cheaply.
        memory_report(&[128], false);
    }
}
