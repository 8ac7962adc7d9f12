//! The same kernels the page runs on WebGPU, exercised natively on burn's wgpu backend. Without
//! a GPU this runs on Mesa's lavapipe (a software Vulkan driver, installed by
//! `scripts/setup-native.sh`): golden loss cases with the device-side selection (the path the
//! browser uses) and a few training steps. Set TRIPLETLAB_SKIP_WGPU=1 only on a machine that
//! has no Vulkan driver at all; each test then prints "SKIPPED" past the harness's capture, so
//! `make test` shows it (`common::wgpu_device`).

mod common;

use std::sync::Arc;

use common::golden::{self, HARD, SEMI_HARD};
use common::mnist;
use tripletlab_core::run::{Event, TrainConfig};
use tripletlab_engine::cases::evaluate_case;
use tripletlab_engine::loss::Selection;
use tripletlab_engine::train::{Host, Trainer, run};

fn device(test: &str) -> Option<burn::tensor::Device> {
    common::wgpu_device(test)
}

/// Every golden case (semi-hard and batch-hard) on wgpu with the device-side selection (the
/// browser's path): every loss,
/// every gradient (another subgradient only at the flagged cases), at ten times the CPU's
/// tolerance; the ill-conditioned case lands on TF's float32 value as on the CPU.
#[test]
fn golden_cases_on_wgpu_match_tfa() {
    let Some(device) = device("golden_cases_on_wgpu_match_tfa") else {
        return;
    };
    let report = golden::check(SEMI_HARD, &device, Selection::Device, golden::WGPU);
    golden::assert_report("wgpu", &report, SEMI_HARD);
    let report = golden::check(HARD, &device, Selection::Device, golden::WGPU);
    golden::assert_report("wgpu batch-hard", &report, HARD);
    let case = golden::cases(SEMI_HARD)
        .into_iter()
        .find(|c| c.ill_conditioned)
        .unwrap();
    let (got, want) = (
        evaluate_case(&case, &device, Selection::Device).loss,
        case.expected_loss.unwrap(),
    );
    assert!(
        (got - want).abs() <= 1e-3,
        "ill-conditioned: {got} vs TF's {want}"
    );
}

/// One golden case through the WGSL loss kernels (`gpu::triplet_loss`, the WGSL engine's loss).
fn wgsl_case(
    case: &tripletlab_engine::cases::LossCase,
    device: &burn::tensor::Device,
) -> tripletlab_engine::cases::CaseResult {
    let (readout, grad) = golden::wgsl_loss(case, device);
    tripletlab_engine::cases::CaseResult {
        name: case.name.clone(),
        loss: read(readout)[0],
        grad: grad.into_data().try_into_vec::<f32>().unwrap(),
        dim: case.dim,
    }
}

/// Every golden case (semi-hard and batch-hard, hard and soft margin, every distance) through
/// the WGSL loss kernels: every loss (NaN where TF's is), every gradient (another subgradient
/// only at the flagged cases), at the wgpu tolerance; the ill-conditioned case lands on TF's
/// float32 value.
#[test]
fn golden_cases_through_the_wgsl_loss_kernels() {
    let Some(device) = device("golden_cases_through_the_wgsl_loss_kernels") else {
        return;
    };
    for (json, what) in [(SEMI_HARD, "wgsl semi-hard"), (HARD, "wgsl batch-hard")] {
        let mut report = golden::Report::default();
        for case in golden::cases(json).iter().filter(|c| !c.ill_conditioned) {
            golden::judge(case, &wgsl_case(case, &device), golden::WGPU, &mut report);
        }
        golden::assert_report(what, &report, json);
    }
    // The ill-conditioned cases: the semi-hard one within 1e-3 of TF's float32 value, the
    // soft margin's overflow to infinity exactly.
    for case in [SEMI_HARD, HARD]
        .into_iter()
        .flat_map(golden::cases)
        .filter(|c| c.ill_conditioned)
    {
        let (got, want) = (wgsl_case(&case, &device).loss, case.expected_loss.unwrap());
        let pinned = if want.is_infinite() {
            got == want
        } else {
            (got - want).abs() <= 1e-3
        };
        assert!(pinned, "{}: {got} vs TF's {want}", case.name);
    }
}

/// The hand-computed mining statistics (`common/mining.rs`) and losses through the WGSL loss
/// kernels, exactly (integer distances).
#[test]
fn hand_computed_mining_statistics_through_the_wgsl_loss_kernels() {
    use burn::tensor::{Tensor, TensorData};
    use tripletlab_core::run::{Metric, MiningStats};
    use tripletlab_engine::gpu::{LossSettings, triplet_loss};
    let Some(device) = device("hand_computed_mining_statistics_through_the_wgsl_loss_kernels")
    else {
        return;
    };
    for case in common::mining::CASES {
        let b = case.x.len();
        let x = Tensor::<2>::from_data(TensorData::new(case.x.to_vec(), [b, 1]), &device);
        let settings = LossSettings {
            margin: case.margin,
            metric: Metric::SquaredL2,
            mining: case.mining,
            soft: false,
        };
        let v = read(triplet_loss(x, case.labels, settings).unwrap().0);
        assert_eq!(
            MiningStats::from_device(&v[1..]),
            case.want,
            "{}",
            case.name
        );
        assert!(
            (v[0] - case.loss).abs() <= 1e-5 * case.loss,
            "{}: loss {}, by hand {}",
            case.name,
            v[0],
            case.loss
        );
    }
}

/// A NaN embedding makes the loss NaN for every mining and distance, as burn's and TF's masked
/// sums do, even where no term chose the NaN row's distances (here a one-class anchor pair's
/// fallback takes the row minimum): the engine's Adam then skips the step.
#[test]
fn a_nan_embedding_gives_a_nan_loss_through_the_wgsl_loss_kernels() {
    use burn::tensor::{Tensor, TensorData};
    use tripletlab_core::run::{Metric, Mining};
    use tripletlab_engine::gpu::{LossSettings, triplet_loss};
    let Some(device) = device("a_nan_embedding_gives_a_nan_loss_through_the_wgsl_loss_kernels")
    else {
        return;
    };
    for (mining, soft) in [
        (Mining::SemiHard, false),
        (Mining::Hard, false),
        (Mining::Hard, true),
    ] {
        for metric in [Metric::L2, Metric::SquaredL2, Metric::Angular] {
            let x =
                Tensor::<2>::from_data(TensorData::new(vec![0.3, 1.0, f32::NAN], [3, 1]), &device);
            let settings = LossSettings {
                margin: 1.0,
                metric,
                mining,
                soft,
            };
            let loss = read(triplet_loss(x, &[0u8, 0, 1], settings).unwrap().0)[0];
            assert!(loss.is_nan(), "{mining} soft {soft} {metric}: {loss}");
        }
    }
}

/// The WGSL engine's loss against burn's (the host engine's) on real embeddings, for every
/// mining, margin and distance the settings offer, at a batch of 96 (many anchors, 10 classes),
/// and for two settings at 300 (rows over several workgroups, 90,000 pairs): the same loss,
/// statistics and gradient to float rounding (at 300 but for one near-tie, see below).
#[test]
fn the_wgsl_loss_agrees_with_burn_s_on_every_setting() {
    use burn::tensor::{Tensor, TensorData};
    use tripletlab_core::run::{Metric, Mining, MiningStats};
    use tripletlab_engine::gpu::{LossSettings, triplet_loss};
    use tripletlab_engine::loss::mined_loss;
    use tripletlab_engine::model::EmbedNetConfig;
    let Some(device) = device("the_wgsl_loss_agrees_with_burn_s_on_every_setting") else {
        return;
    };
    let cpu = tripletlab_engine::device::cpu_device();
    let split = mnist();
    let net = EmbedNetConfig::new().init(3, &cpu);
    let mut settings_at = Vec::new();
    for (mining, soft) in [
        (Mining::SemiHard, false),
        (Mining::Hard, false),
        (Mining::Hard, true),
    ] {
        for metric in [Metric::L2, Metric::SquaredL2, Metric::Angular] {
            for margin in [0.05f32, 1.0] {
                settings_at.push((96, mining, soft, metric, margin));
            }
        }
    }
    settings_at.push((300, Mining::SemiHard, false, Metric::L2, 1.0));
    settings_at.push((300, Mining::Hard, false, Metric::Angular, 0.05));
    for (b, mining, soft, metric, margin) in settings_at {
        let mut pixels = Vec::new();
        split
            .train
            .pixels_f32(&(0..b).collect::<Vec<_>>(), &mut pixels);
        let labels = &split.train.labels[..b];
        let images = tripletlab_engine::model::Images::new(&pixels, &cpu);
        let emb: Vec<f32> = net.forward(&images).into_data().try_into_vec().unwrap();
        {
            {
                let what = format!("B {b}, {mining} soft {soft} {metric} margin {margin}");
                let settings = LossSettings {
                    margin,
                    metric,
                    mining,
                    soft,
                };
                let x = Tensor::<2>::from_data(TensorData::new(emb.clone(), [b, 256]), &device);
                let (readout, grad) = triplet_loss(x, labels, settings).unwrap();
                let (got, got_grad) = (
                    read(readout),
                    grad.into_data().try_into_vec::<f32>().unwrap(),
                );
                let x = Tensor::<2>::from_data(
                    TensorData::new(emb.clone(), [b, 256]),
                    &cpu.clone().autodiff(),
                )
                .require_grad();
                let mined = mined_loss(
                    x.clone(),
                    labels,
                    margin,
                    metric,
                    (mining, soft),
                    Default::default(),
                );
                let want_grad: Vec<f32> = x
                    .grad(&mined.loss.backward())
                    .unwrap()
                    .into_data()
                    .try_into_vec()
                    .unwrap();
                let want: Vec<f32> = Tensor::cat(vec![mined.loss.detach(), mined.stats], 0)
                    .into_data()
                    .try_into_vec()
                    .unwrap();
                assert!(
                    (got[0] - want[0]).abs() <= 1e-5 * want[0].abs().max(1.0),
                    "{what}: loss {} vs {}",
                    got[0],
                    want[0]
                );
                let (g, w) = (
                    MiningStats::from_device(&got[1..]),
                    MiningStats::from_device(&want[1..]),
                );
                let counts =
                    |s: &MiningStats| (s.terms, s.semi_hard, s.fallback, s.no_negative, s.active);
                assert_eq!(counts(&g), counts(&w), "{what}");
                assert!(w.terms > 0, "{what}: {w:?}");
                for (x, y) in [(g.sum_d_ap, w.sum_d_ap), (g.sum_d_an, w.sum_d_an)] {
                    assert!(
                        (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                        "{what}: {g:?} vs {w:?}"
                    );
                }
                // Rows whose gradient differs beyond rounding. Among the 300² pairs a distance
                // can sit within rounding of the positive's (0.73532 vs 0.73756 here), and the
                // two sums round differently: one pair then picks another semi-hard negative,
                // which moves three rows (the anchor, both negatives), not the loss's value.
                let scale = want_grad.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                let differ = (0..b)
                    .filter(|&r| {
                        (r * 256..(r + 1) * 256)
                            .any(|k| (got_grad[k] - want_grad[k]).abs() > 1e-4 * scale)
                    })
                    .count();
                let allowed = if b <= 96 { 0 } else { 3 };
                assert!(
                    differ <= allowed,
                    "{what}: the gradients of {differ} rows differ (worst {})",
                    worst(&got_grad, &want_grad)
                );
            }
        }
    }
}

struct Collect {
    losses: Vec<f32>,
    embeddings: Option<Arc<Vec<f32>>>,
}

impl Host for Collect {
    async fn proceed(&mut self) -> bool {
        true
    }
    fn event(&mut self, event: Event) {
        match event {
            Event::Step { loss, .. } => self.losses.push(loss),
            Event::Embeddings { vectors, .. } => self.embeddings = Some(vectors),
            _ => {}
        }
    }
    fn now_ms(&self) -> f64 {
        0.0
    }
}

#[test]
fn a_few_training_steps_on_wgpu() {
    let Some(device) = device("a_few_training_steps_on_wgpu") else {
        return;
    };
    let split = mnist();
    let config = TrainConfig {
        epochs: 2,
        train_limit: Some(128),
        test_limit: Some(64),
        knn_against_train: false,
        read_every: 4,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &split, &device).unwrap();
    let mut host = Collect {
        losses: Vec::new(),
        embeddings: None,
    };
    let summary = pollster::block_on(run(&mut trainer, &mut host)).unwrap();
    assert_eq!(host.losses.len(), 8);
    assert!(
        host.losses.iter().all(|l| l.is_finite() && *l >= 0.0),
        "{:?}",
        host.losses
    );
    // Whether these steps learn is `tests/learning.rs`'s question (held-out loss, every engine).
    assert_eq!(summary.epoch_losses.len(), 2);
    let e = host.embeddings.unwrap();
    assert_eq!(e.len(), 64 * 256);
    assert!(e.iter().all(|v| v.is_finite()));
}

fn read(t: burn::tensor::Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// Largest difference, relative to the largest magnitude in `want` (absolute below 1e-3).
fn worst(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f32::max)
}

/// The WGSL kernels (the page's WebGPU engine) against the fused host kernels (themselves
/// tested against burn's autodiff of the model): the same embeddings with and without dropout,
/// the same six gradients, the same Adam update; a non-finite loss leaves the weights alone.
#[test]
fn wgsl_kernels_match_the_host_kernels() {
    use burn::tensor::{Tensor, TensorData};
    use rand::SeedableRng;
    use tripletlab_engine::fused::{AdamSettings, FusedNet};
    use tripletlab_engine::gpu::GpuNet;
    use tripletlab_engine::model::{DropoutMasks, EmbedNetConfig};

    let Some(device) = device("wgsl_kernels_match_the_host_kernels") else {
        return;
    };
    let cpu = tripletlab_engine::device::cpu_device();
    let split = mnist();
    let parts = EmbedNetConfig::new().init(7, &cpu).to_parts().unwrap();
    // Non-zero biases, so that the bias paths are exercised.
    let mut parts = parts;
    for (i, v) in parts[1].iter_mut().enumerate() {
        *v = 0.01 * ((i % 7) as f32 - 3.0);
    }
    for (i, v) in parts[3].iter_mut().enumerate() {
        *v = 0.02 * ((i % 5) as f32 - 2.0);
    }
    let mut host = FusedNet::new(parts.clone(), AdamSettings::default());
    let flat: Vec<f32> = parts.concat();
    let n_flat = flat.len();
    let mut gpu = GpuNet::new(
        Tensor::<1>::from_data(TensorData::new(flat, [n_flat]), &device),
        AdamSettings::default(),
    )
    .unwrap();

    for n in [11usize, 1, 32] {
        let idx: Vec<usize> = (0..n).map(|i| (i * 37 + n) % split.train.len()).collect();
        let mut pixels = Vec::new();
        split.train.pixels_f32(&idx, &mut pixels);
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(n as u64);
        let masks = DropoutMasks::draw_host(&mut rng, n, 0.3);

        let want = host.forward_train(&pixels, masks.as_ref()).to_vec();
        let got = gpu.forward_train(&pixels, masks.as_ref()).unwrap();
        let got = got.into_data().try_into_vec::<f32>().unwrap();
        assert!(
            worst(&got, &want) < 1e-4,
            "n={n}: embeddings differ by {}",
            worst(&got, &want)
        );

        let d: Vec<f32> = (0..n * 256)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect();
        host.backward(&pixels, &d);
        gpu.backward(Tensor::<2>::from_data(
            TensorData::new(d, [n, 256]),
            &device,
        ))
        .unwrap();
        let grads = read(gpu.grads().unwrap());
        let mut at = 0;
        for (k, want) in host.grads().iter().enumerate() {
            let got = &grads[at..at + want.len()];
            at += want.len();
            assert!(
                want.iter().any(|v| *v != 0.0),
                "n={n}: gradient {k} is all zero"
            );
            assert!(
                worst(got, want) < 1e-4,
                "n={n}: gradient {k} differs by {}",
                worst(got, want)
            );
        }

        // Adam from the same gradients (Adam divides by √v, so tiny gradients' rounding
        // differences would otherwise become visible steps).
        let mut at = 0;
        for g in host.grads_mut().iter_mut() {
            let len = g.len();
            g.copy_from_slice(&grads[at..at + len]);
            at += len;
        }
        host.adam_step(1e-3);
        let loss = Tensor::<1>::from_data(TensorData::new(vec![0.5f32], [1]), &device);
        gpu.adam_step(1e-3, loss).unwrap();
        let got = read(gpu.params());
        let want: Vec<f32> = host.params().concat();
        assert!(
            worst(&got, &want) < 1e-5,
            "n={n}: weights after Adam differ by {}",
            worst(&got, &want)
        );

        // Inference (no dropout), in a piece of another size.
        let want = host.embed(&pixels);
        let got = gpu
            .embed(&pixels)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(
            worst(&got, &want) < 1e-4,
            "n={n}: inference embeddings differ by {}",
            worst(&got, &want)
        );
    }

    // A non-finite loss: Adam leaves the weights as they were.
    let before = read(gpu.params());
    for bad in [f32::NAN, f32::INFINITY] {
        let loss = Tensor::<1>::from_data(TensorData::new(vec![bad], [1]), &device);
        gpu.adam_step(1e-3, loss).unwrap();
        assert_eq!(read(gpu.params()), before, "loss {bad} changed the weights");
    }
    // Bad input is an error, not a panic.
    assert!(gpu.embed(&[0.5; 100]).is_err());
    assert!(GpuNet::new(Tensor::<1>::zeros([5], &device), AdamSettings::default()).is_err());
    assert!(GpuNet::new(Tensor::<1>::zeros([410_208], &cpu), AdamSettings::default()).is_err());
}

/// Whole steps: the trainer on wgpu defaults to the WGSL engine and takes the same steps as the
/// CPU trainer (same initial weights, batches and dropout masks), so the same losses, including
/// a partial batch and an epoch rollover, and the same embeddings after them (to rounding at a
/// negligible learning rate, loosely at the real one).
#[test]
fn wgsl_engine_steps_like_the_cpu_engine() {
    use tripletlab_core::run::StepEngine;
    use tripletlab_engine::train::StepOutcome;
    let Some(device) = device("wgsl_engine_steps_like_the_cpu_engine") else {
        return;
    };
    let split = mnist();
    let config = TrainConfig {
        train_limit: Some(650),
        test_limit: Some(64),
        ..TrainConfig::default()
    };
    // The WGSL engine's batch limit is the device's: what its largest storage binding holds.
    let max = tripletlab_engine::gpu::max_batch(&device).expect("a wgpu device");
    let cpu = tripletlab_engine::device::cpu_device();
    assert_eq!(tripletlab_engine::gpu::max_batch(&cpu), None);
    eprintln!("the WGSL engine takes batches of up to {max} on this device");
    let at = |batch_size| TrainConfig {
        batch_size,
        ..config.clone()
    };
    assert_eq!(
        Trainer::new(at(max), &split, &device).unwrap().engine(),
        StepEngine::Fused
    );
    if max < tripletlab_core::run::MAX_BATCH {
        // Above it: burn's autodiff when asked for "auto", an error for the fused engine.
        assert_eq!(
            Trainer::new(at(max + 1), &split, &device).unwrap().engine(),
            StepEngine::Autodiff
        );
        let explicit = TrainConfig {
            engine: StepEngine::Fused,
            ..at(max + 1)
        };
        assert!(Trainer::new(explicit, &split, &device).is_err());
    }
    let losses = |t: &mut Trainer| -> Vec<f32> {
        (0..22)
            .map(|_| match t.step().unwrap() {
                StepOutcome::Trained { readout, .. } => readout.slice(0..1).into_scalar::<f32>(),
                StepOutcome::Skipped { reason } => panic!("skipped: {reason}"),
            })
            .collect()
    };
    let pair = |lr| {
        let config = TrainConfig {
            lr,
            ..config.clone()
        };
        let gpu = Trainer::new(config.clone(), &split, &device).unwrap();
        let cpu = Trainer::new(config, &split, &tripletlab_engine::device::cpu_device()).unwrap();
        (gpu, cpu)
    };
    // At a negligible learning rate the weights barely move: every loss and the embeddings
    // after 22 steps agree to float rounding (batches, masks and wiring are the same).
    let (mut gpu, mut cpu) = pair(1e-9);
    assert_eq!(gpu.engine(), StepEngine::Fused);
    let (a, b) = (losses(&mut gpu), losses(&mut cpu));
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * y.abs().max(1.0),
            "lr 1e-9, step {step}: wgsl {x} vs host {y}"
        );
    }
    let ea = pollster::block_on(gpu.embed(gpu.test_set())).unwrap();
    let eb = pollster::block_on(cpu.embed(cpu.test_set())).unwrap();
    assert!(
        worst(&ea, &eb) < 1e-4,
        "embeddings after 22 steps at lr 1e-9 differ by {}",
        worst(&ea, &eb)
    );
    // At the real rate Adam turns rounding differences in near-zero gradients into whole steps
    // and the semi-hard choice can flip, so the runs drift apart; a wrong gradient or update
    // shows from the second step on.
    let (mut gpu, mut cpu) = pair(1e-3);
    let (a, b) = (losses(&mut gpu), losses(&mut cpu));
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        let tolerance = if step < 3 { 1e-4 } else { 2e-2 };
        assert!(
            (x - y).abs() <= tolerance * y.abs().max(1.0),
            "step {step}: wgsl {x} vs host {y}"
        );
    }
    assert!(a[20] < a[0], "training lowers the loss: {a:?}");
    let ea = pollster::block_on(gpu.embed(gpu.test_set())).unwrap();
    // The weights the engine exposes are the ones it trains, and uploaded weights are the
    // ones it starts from.
    let model = gpu.model();
    let again = Trainer::with_model(TrainConfig::default(), &split, &device, model).unwrap();
    let ec = pollster::block_on(again.embed(gpu.test_set())).unwrap();
    assert!(worst(&ec, &ea) < 1e-6);
}

/// The hand-computed mining statistics (`common/mining.rs`) on wgpu, through both selection
/// paths, with and without autodiff (the WGSL engine computes its loss on the autodiff wgpu
/// device), exactly as on the CPU.
#[test]
fn hand_computed_mining_statistics_on_wgpu() {
    let Some(device) = device("hand_computed_mining_statistics_on_wgpu") else {
        return;
    };
    common::mining::check(&device, Selection::Device, "wgpu, device selection");
    common::mining::check(&device, Selection::ReadBack, "wgpu, host selection");
}

/// The WGSL engine's steps report the same mining statistics as the host engine's (same
/// weights, batches and dropout masks, a negligible learning rate), read with the loss.
#[test]
fn wgsl_engine_reports_the_mining_statistics_of_the_cpu_engine() {
    use tripletlab_core::run::DEVICE_STATS;
    use tripletlab_core::run::{MiningStats, StepEngine};
    use tripletlab_engine::train::StepOutcome;
    let Some(device) = device("wgsl_engine_reports_the_mining_statistics_of_the_cpu_engine") else {
        return;
    };
    let split = mnist();
    let config = TrainConfig {
        train_limit: Some(160),
        test_limit: Some(32),
        lr: 1e-9,
        ..TrainConfig::default()
    };
    let mut gpu = Trainer::new(config.clone(), &split, &device).unwrap();
    let mut cpu = Trainer::new(config, &split, &tripletlab_engine::device::cpu_device()).unwrap();
    assert_eq!(gpu.engine(), StepEngine::Fused);
    let stats = |t: &mut Trainer| match t.step().unwrap() {
        StepOutcome::Trained { readout, .. } => {
            let v = read(readout);
            assert_eq!(v.len(), 1 + DEVICE_STATS);
            MiningStats::from_device(&v[1..])
        }
        StepOutcome::Skipped { reason } => panic!("skipped: {reason}"),
    };
    for step in 0..5 {
        let (got, want) = (stats(&mut gpu), stats(&mut cpu));
        let counts = |s: &MiningStats| (s.terms, s.semi_hard, s.fallback, s.no_negative, s.active);
        assert_eq!(counts(&got), counts(&want), "step {step}");
        assert!(want.terms > 0 && want.active > 0, "{want:?}");
        for (g, w) in [(got.sum_d_ap, want.sum_d_ap), (got.sum_d_an, want.sum_d_an)] {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "step {step}: {got:?} vs {want:?}"
            );
        }
    }
}
