//! One full training step of the notebook's recipe — batch 32, the notebook's net, semi-hard L2
//! loss (margin 1), Adam 1e-3, dropout 0.3, the bundled mnist10k training set in `shuffle(1024)`
//! order — on the CPU (`flex`) device and on wgpu (skipped with a note when no adapter starts;
//! on a machine without a GPU that is Mesa's lavapipe, a software Vulkan driver).
//!
//! * group `train_step`, ids `cpu` / `wgpu`: [`Trainer::step`] followed by a read of the loss
//!   (`into_scalar`), so each iteration waits for the step to finish. Throughput is 32 examples
//!   per iteration, so criterion also prints examples/s. (The real training loop reads the loss
//!   every 8 steps; reading it every step here is the conservative figure.)
//! * then, outside criterion, where the CPU step's time goes: the phases of a step (upload +
//!   forward, loss, backward, Adam) timed inside the same step, interleaved with an inference
//!   forward, a dropout-free step and a `Trainer::step` (see [`breakdown`]); printed and written
//!   to `bench/out/step-breakdown.json`. (Timing an autodiff forward alone in a criterion
//!   loop was misleading: it came out as long as the whole step.)

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use criterion::{Criterion, SamplingMode, Throughput};
use tripletlab::backend::{BackendKind, cpu_device, native_device};
use tripletlab::data::{Split, load_dir};
use tripletlab::loss::{Metric, Selection, semi_hard_triplet_loss_with};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use tripletlab::model::{DropoutMasks, EmbedNetConfig, Images};
use tripletlab::train::{StepOutcome, TrainConfig, Trainer};

const BATCH: usize = 32;
const DROPOUT: f64 = 0.3;

fn split() -> Split {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/mnist");
    load_dir(&dir).unwrap_or_else(|e| panic!("cannot load {}: {e}", dir.display()))
}

fn config() -> TrainConfig {
    TrainConfig {
        batch_size: BATCH,
        ..TrainConfig::default()
    }
}

/// One trainer step, waiting for it (reads the loss). Skipped batches (no positive pair; at
/// B = 32 with 10 classes practically never) are simply passed over.
fn step(trainer: &mut Trainer) -> f32 {
    loop {
        match trainer.step() {
            StepOutcome::Trained { loss, .. } => return loss.into_scalar::<f32>(),
            StepOutcome::Skipped { .. } => continue,
        }
    }
}

fn train_step(c: &mut Criterion, split: &Split, warm_steps: usize) {
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH as u64));

    let cpu = cpu_device();
    let mut trainer = Trainer::new(config(), split, &cpu).expect("trainer on the CPU");
    // A few steps first: allocator and thread pool warm, Adam's moments allocated.
    for _ in 0..warm_steps {
        step(&mut trainer);
    }
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("cpu", |b| b.iter(|| step(&mut trainer)));
    drop(trainer);

    match native_device(BackendKind::Wgpu) {
        Ok(device) => match Trainer::new(config(), split, &device) {
            Ok(mut trainer) => {
                // The first steps compile the kernels.
                for _ in 0..warm_steps {
                    step(&mut trainer);
                }
                group.warm_up_time(Duration::from_secs(2));
                group.measurement_time(Duration::from_secs(8));
                group.bench_function("wgpu", |b| b.iter(|| step(&mut trainer)));
            }
            Err(e) => println!("train_step/wgpu: SKIPPED (trainer failed on wgpu: {e})"),
        },
        Err(e) => println!("train_step/wgpu: SKIPPED ({e})"),
    }
    group.finish();
}

/// Median of a sample, in milliseconds.
fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Where the CPU step's time goes: the phases of one step timed inside the same step (flex is
/// eager, and each phase ends with a device sync), interleaved round by round with an inference
/// forward, a step of a dropout-free model and a real `Trainer::step`, so that load from other
/// processes hits all of them alike. Medians over the rounds.
fn breakdown(split: &Split, rounds: usize) -> serde_json::Value {
    let inner = cpu_device();
    let device = inner.clone().autodiff();
    let batch_indices: Vec<Vec<usize>> = (0..8)
        .map(|k| (k * BATCH..(k + 1) * BATCH).collect())
        .collect();
    let batches: Vec<(Vec<f32>, Vec<u8>)> = batch_indices
        .iter()
        .map(|idx| {
            let mut px = Vec::new();
            split.train.pixels_f32(idx, &mut px);
            (px, split.train.labels_of(idx))
        })
        .collect();
    let adam = || {
        AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-7)
            .init()
    };
    let sync = |d: &Device| d.sync().expect("device sync");
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;

    let mut model = Some(EmbedNetConfig::new().init(0, &device));
    let mut optim = adam();
    let mut dropout_rng = Pcg64Mcg::seed_from_u64(0);
    let mut plain = Some(EmbedNetConfig::new().init(0, &device));
    let mut plain_optim = adam();
    let mut trainer = Trainer::new(config(), split, &inner).expect("trainer on the CPU");

    let names = [
        "inference_forward",
        "upload_forward",
        "loss",
        "backward",
        "adam",
        "manual_step",
        "manual_step_no_dropout",
        "forward_no_dropout",
        "trainer_step",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let warm = if rounds > 1 { 5 } else { 0 };
    for round in 0..warm + rounds {
        let (px, labels) = &batches[round % batches.len()];
        let mut t = [0f64; 9];

        let eval = model.as_ref().expect("model").valid();
        let t0 = Instant::now();
        black_box(eval.forward(&Images::new(px, &inner)).into_data());
        t[0] = ms(t0);
        drop(eval);

        // One manual step, phase by phase.
        let m = model.take().expect("model");
        let t0 = Instant::now();
        let masks = DropoutMasks::draw(&mut dropout_rng, BATCH, DROPOUT, &device);
        let emb = m.forward_train(&Images::new(px, &device), masks.as_ref());
        sync(&device);
        t[1] = ms(t0);
        let t1 = Instant::now();
        let loss = semi_hard_triplet_loss_with(emb, labels, 1.0, Metric::L2, Selection::Auto);
        sync(&device);
        t[2] = ms(t1);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        sync(&device);
        t[3] = ms(t1);
        let t1 = Instant::now();
        let m = optim.step(1e-3, m, grads);
        sync(&device);
        t[4] = ms(t1);
        black_box(loss.into_scalar::<f32>());
        t[5] = ms(t0);
        model = Some(m);

        // The same step without dropout (rate 0): what the two dropouts cost.
        let m = plain.take().expect("model");
        let t0 = Instant::now();
        let emb = m.forward_train(&Images::new(px, &device), None);
        sync(&device);
        t[7] = ms(t0);
        let loss = semi_hard_triplet_loss_with(emb, labels, 1.0, Metric::L2, Selection::Auto);
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = plain_optim.step(1e-3, m, grads);
        black_box(loss.into_scalar::<f32>());
        t[6] = ms(t0);
        plain = Some(m);

        let t0 = Instant::now();
        black_box(step(&mut trainer));
        t[8] = ms(t0);

        if round >= warm {
            for (s, v) in samples.iter_mut().zip(t) {
                s.push(v);
            }
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median_ms).collect();
    let get = |name: &str| medians[names.iter().position(|n| *n == name).expect("phase")];
    println!("\nCPU step breakdown (batch 32; median ms over {rounds} interleaved rounds):");
    let rows = [
        ("inference forward (no autodiff, no dropout)", get("inference_forward")),
        ("training step, phase 1: upload + dropout masks + forward", get("upload_forward")),
        ("training step, phase 2: semi-hard loss", get("loss")),
        ("training step, phase 3: backward (+ GradientsParams)", get("backward")),
        ("training step, phase 4: Adam update", get("adam")),
        ("training step, all phases + loss read", get("manual_step")),
        ("same step without dropout", get("manual_step_no_dropout")),
        ("  of which upload + forward without dropout", get("forward_no_dropout")),
        ("Trainer::step + loss read (as in train_step/cpu)", get("trainer_step")),
    ];
    for (label, v) in rows {
        println!("  {label:<64} {v:>8.2}");
    }
    let json = serde_json::json!({
        "what": "CPU step phases (flex, batch 32), median ms over interleaved rounds; each phase ends with Device::sync (flex is eager)",
        "rounds": rounds,
        "ms": names.iter().zip(&medians).map(|(n, v)| (n.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    json
}

fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

fn main() {
    tripletlab::backend::tune_allocator();
    let split = split();
    let bench = bench_mode();
    let mut c = Criterion::default().configure_from_args();
    // Warm-up steps before criterion's own warm-up (the first wgpu steps compile kernels);
    // none in test mode (`cargo test --benches` runs each bench once).
    train_step(&mut c, &split, if bench { 5 } else { 0 });
    c.final_summary();
    let json = breakdown(&split, if bench { 30 } else { 1 });
    if bench {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
        let path = dir.join("step-breakdown.json");
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap_or_default()));
        match written {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}
