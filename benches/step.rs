//! One full training step of the notebook's recipe — batch 32, the notebook's net, semi-hard L2
//! loss (margin 1), Adam 1e-3, dropout 0.3, the bundled mnist10k training set in `shuffle(1024)`
//! order — on the CPU (`flex`) device and on wgpu (skipped with a note when no adapter starts;
//! on a machine without a GPU that is Mesa's lavapipe, a software Vulkan driver).
//!
//! * group `train_step`: [`Trainer::step`] followed by a read of the loss (`into_scalar`), so
//!   each iteration waits for the step to finish. Ids: `cpu` (the CPU device's default engine,
//!   the fused host kernels of `tripletlab_engine::fused`), `cpu_autodiff` (burn's autodiff and Adam on
//!   the same device) and `wgpu` (the WGSL kernels of `tripletlab_engine::gpu`). Throughput is 32
//!   examples per iteration, so criterion also prints examples/s. (The real training loop reads the loss every 8 steps;
//!   reading it every step here is the conservative figure.)
//! * then, outside criterion, where the fused CPU step's time goes: its phases (dropout masks,
//!   forward, loss + mining statistics + gradient in burn, backward, Adam) timed inside the same step, interleaved
//!   round by round with an inference forward and a `Trainer::step` (see [`breakdown`]);
//!   printed and written to `bench/out/step-breakdown.json`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use burn::prelude::*;
use criterion::{Criterion, SamplingMode, Throughput};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use tripletlab_core::backend::BackendKind;
use tripletlab_core::data::{Split, load_dir};
use tripletlab_core::run::{Metric, Mining};
use tripletlab_core::run::{StepEngine, TrainConfig};
use tripletlab_engine::device::{cpu_device, native_device};
use tripletlab_engine::fused::{AdamSettings, FusedNet};
use tripletlab_engine::loss::{Mined, Selection, mined_loss, semi_hard_triplet_loss_with};
use tripletlab_engine::model::{DropoutMasks, EMBEDDING_DIM, EmbedNetConfig};
use tripletlab_engine::train::{StepOutcome, Trainer};

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

fn config_with(engine: StepEngine) -> TrainConfig {
    TrainConfig { engine, ..config() }
}

/// One trainer step, waiting for it (reads the loss). Skipped batches (no positive pair; at
/// B = 32 with 10 classes practically never) are simply passed over.
fn step(trainer: &mut Trainer) -> f32 {
    loop {
        match trainer.step() {
            // The whole readout (loss and mining statistics), as the driver reads it.
            Ok(StepOutcome::Trained { readout, .. }) => {
                let values: Vec<f32> = readout.into_data().try_into_vec().expect("f32");
                return values[0];
            }
            Ok(StepOutcome::Skipped { .. }) => continue,
            Err(e) => panic!("step failed: {e}"),
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

    let mut trainer =
        Trainer::new(config_with(StepEngine::Autodiff), split, &cpu).expect("trainer on the CPU");
    for _ in 0..warm_steps {
        step(&mut trainer);
    }
    group.bench_function("cpu_autodiff", |b| b.iter(|| step(&mut trainer)));
    drop(trainer);

    match native_device(BackendKind::Gpu) {
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
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Where the fused CPU step's time goes: its phases timed inside the same step, interleaved
/// round by round with an inference forward of the batch and a real `Trainer::step`, so that
/// load from other processes hits all of them alike. Medians over the rounds.
fn breakdown(split: &Split, rounds: usize) -> serde_json::Value {
    let device = cpu_device().autodiff();
    let batches: Vec<(Vec<f32>, Vec<u8>)> = (0..8)
        .map(|k| {
            let idx: Vec<usize> = (k * BATCH..(k + 1) * BATCH).collect();
            let mut px = Vec::new();
            split.train.pixels_f32(&idx, &mut px);
            (px, split.train.labels_of(&idx))
        })
        .collect();
    let parts = EmbedNetConfig::new()
        .init(0, &device)
        .to_parts()
        .expect("weights");
    let mut net = FusedNet::new(parts, AdamSettings::default());
    let mut dropout_rng = Pcg64Mcg::seed_from_u64(0);
    let mut trainer = Trainer::new(config(), split, &cpu_device()).expect("trainer on the CPU");
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;

    let names = [
        "inference_forward",
        "masks",
        "forward",
        "loss",
        "backward",
        "adam",
        "manual_step",
        "trainer_step",
        "loss_without_statistics",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let warm = if rounds > 1 { 5 } else { 0 };
    for round in 0..warm + rounds {
        let (px, labels) = &batches[round % batches.len()];
        let mut t = [0f64; 9];

        let t0 = Instant::now();
        black_box(net.embed(px));
        t[0] = ms(t0);

        // One step, phase by phase, as `Trainer::step` runs it on the CPU.
        let t0 = Instant::now();
        let masks = DropoutMasks::draw_host(&mut dropout_rng, BATCH, DROPOUT);
        t[1] = ms(t0);
        let t1 = Instant::now();
        let embeddings = net.forward_train(px, masks.as_ref()).to_vec();
        t[2] = ms(t1);
        let t1 = Instant::now();
        let x =
            Tensor::<2>::from_data(TensorData::new(embeddings, [BATCH, EMBEDDING_DIM]), &device)
                .require_grad();
        // The loss and its mining statistics, as the engine computes them.
        let mining = (Mining::SemiHard, false);
        let Mined { loss, stats } =
            mined_loss(x.clone(), labels, 1.0, Metric::L2, mining, Selection::Auto);
        black_box(loss.clone().into_scalar::<f32>());
        black_box(stats);
        let grads = loss.backward();
        let d: Vec<f32> = x
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .try_into_vec()
            .expect("f32");
        t[3] = ms(t1);
        let t1 = Instant::now();
        net.backward(px, &d);
        t[4] = ms(t1);
        let t1 = Instant::now();
        net.adam_step(1e-3);
        t[5] = ms(t1);
        t[6] = ms(t0);

        let t0 = Instant::now();
        black_box(step(&mut trainer));
        t[7] = ms(t0);

        // Phase 3 again on the same embeddings without the mining statistics: their cost.
        let x = x.detach().require_grad();
        let t0 = Instant::now();
        let loss = semi_hard_triplet_loss_with(x.clone(), labels, 1.0, Metric::L2, Selection::Auto);
        black_box(loss.clone().into_scalar::<f32>());
        let grads = loss.backward();
        let d: Vec<f32> = x
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .try_into_vec()
            .expect("f32");
        black_box(d);
        t[8] = ms(t0);

        if round >= warm {
            for (s, v) in samples.iter_mut().zip(t) {
                s.push(v);
            }
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median_ms).collect();
    let get = |name: &str| medians[names.iter().position(|n| *n == name).expect("phase")];
    println!("\nFused CPU step breakdown (batch 32; median ms over {rounds} interleaved rounds):");
    let rows = [
        (
            "inference forward of the batch (no dropout)",
            get("inference_forward"),
        ),
        ("training step, phase 1: dropout masks", get("masks")),
        ("training step, phase 2: forward", get("forward")),
        (
            "training step, phase 3: semi-hard loss + statistics + gradient",
            get("loss"),
        ),
        ("training step, phase 4: backward", get("backward")),
        ("training step, phase 5: Adam update", get("adam")),
        ("training step, all phases", get("manual_step")),
        (
            "Trainer::step + loss read (as in train_step/cpu)",
            get("trainer_step"),
        ),
        (
            "phase 3 without the mining statistics (their cost)",
            get("loss_without_statistics"),
        ),
    ];
    for (label, v) in rows {
        println!("  {label:<64} {v:>8.2}");
    }
    serde_json::json!({
        "what": "fused CPU step phases (batch 32), median ms over interleaved rounds",
        "rounds": rounds,
        "ms": names.iter().zip(&medians).map(|(n, v)| (n.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
    })
}

/// On wgpu (the WGSL engine's loss device): the semi-hard loss and its gradient at batch 32,
/// read back, with and without the mining statistics (then read with it, as the driver does),
/// alternately; median ms over `rounds`. Skipped with a note when no adapter starts.
fn statistics_cost_on_wgpu(rounds: usize) {
    let device = match native_device(BackendKind::Gpu) {
        Ok(d) => d.autodiff(),
        Err(e) => return println!("statistics cost on wgpu: SKIPPED ({e})"),
    };
    let values: Vec<f32> = (0..BATCH * EMBEDDING_DIM)
        .map(|k| ((k * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let labels: Vec<u8> = (0..BATCH).map(|k| (k % 10) as u8).collect();
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..5 + rounds {
        for (with, sample) in samples.iter_mut().enumerate() {
            let x = Tensor::<2>::from_data(
                TensorData::new(values.clone(), [BATCH, EMBEDDING_DIM]),
                &device,
            )
            .require_grad();
            let t0 = Instant::now();
            let (loss, read) = if with == 1 {
                let mining = (Mining::SemiHard, false);
                let Mined { loss, stats } = mined_loss(
                    x.clone(),
                    &labels,
                    1.0,
                    Metric::L2,
                    mining,
                    Selection::Device,
                );
                (loss.clone(), Tensor::cat(vec![loss.detach(), stats], 0))
            } else {
                let loss = semi_hard_triplet_loss_with(
                    x.clone(),
                    &labels,
                    1.0,
                    Metric::L2,
                    Selection::Device,
                );
                (loss.clone(), loss.detach())
            };
            let grads = loss.backward();
            let g = x.grad(&grads).expect("gradient");
            black_box(g.into_data());
            black_box(read.into_data());
            if round >= 5 {
                sample.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let [without, with] = samples.map(median_ms);
    println!(
        "semi-hard loss + gradient on wgpu (batch 32, median ms over {rounds} alternate rounds): \
         {without:.2} without the mining statistics, {with:.2} with them"
    );
}

fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

fn main() {
    tripletlab_engine::device::tune_allocator();
    let split = split();
    let bench = bench_mode();
    let mut c = Criterion::default().configure_from_args();
    // Warm-up steps before criterion's own warm-up (the first wgpu steps compile kernels);
    // none in test mode (`cargo test --benches` runs each bench once).
    train_step(&mut c, &split, if bench { 5 } else { 0 });
    c.final_summary();
    let json = breakdown(&split, if bench { 30 } else { 1 });
    statistics_cost_on_wgpu(if bench { 30 } else { 1 });
    if bench {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
        let path = dir.join("step-breakdown.json");
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&json).unwrap_or_default(),
            )
        });
        match written {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}
