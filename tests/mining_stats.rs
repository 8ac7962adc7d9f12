//! The mining statistics a step reads back with its loss (`tripletlab::train::MiningStats`):
//! the hand-computed batches of `common/mining.rs` on the CPU device through both selection
//! paths, with and without autodiff (what the autodiff and host engines compute the loss on);
//! the same figures from the autodiff and the host engine's steps; and the driver's reports
//! (each step's figures, their sum per epoch, the run's list). wgpu: `tests/wgpu_backend.rs`.

mod common;

use tripletlab::backend::cpu_device;
use tripletlab::loss::{DEVICE_STATS, Selection};
use tripletlab::train::{
    Event, Host, MiningStats, StepEngine, StepOutcome, Summary, TrainConfig, Trainer, run,
};

#[test]
fn hand_computed_batches_on_the_cpu() {
    common::mining::check(&cpu_device(), Selection::Device, "device selection");
    common::mining::check(&cpu_device(), Selection::Host, "host selection");
}

/// A step's statistics, read from its readout.
pub fn step_stats(trainer: &mut Trainer) -> (f32, MiningStats) {
    match trainer.step().expect("step") {
        StepOutcome::Trained { readout, .. } => {
            let v: Vec<f32> = readout.into_data().try_into_vec().expect("f32");
            assert_eq!(v.len(), 1 + DEVICE_STATS);
            (v[0], MiningStats::from_device(&v[1..]))
        }
        StepOutcome::Skipped { reason } => panic!("skipped: {reason}"),
    }
}

/// Counts equal, sums to float rounding: the same batch, weights and dropout masks.
pub fn assert_same(got: &MiningStats, want: &MiningStats, at: &str) {
    let counts = |s: &MiningStats| (s.terms, s.semi_hard, s.fallback, s.no_negative, s.active);
    assert_eq!(counts(got), counts(want), "{at}");
    for (g, w) in [(got.sum_d_ap, want.sum_d_ap), (got.sum_d_an, want.sum_d_an)] {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{at}: {got:?} vs {want:?}"
        );
    }
}

/// The host engine's steps and burn's autodiff engine's give the same figures (same initial
/// weights, batches and dropout masks; a negligible learning rate keeps the weights together),
/// and the figures are those of a real batch: 32 images of 10 classes have positive pairs, and
/// most of an untrained net's triplets are active.
#[test]
fn the_host_and_autodiff_engines_report_the_same_figures() {
    let split = common::mnist();
    let config = |engine| TrainConfig {
        train_limit: Some(160),
        test_limit: Some(32),
        lr: 1e-9,
        engine,
        ..TrainConfig::default()
    };
    let cpu = cpu_device();
    let mut host = Trainer::new(config(StepEngine::Fused), &split, &cpu).unwrap();
    let mut autodiff = Trainer::new(config(StepEngine::Autodiff), &split, &cpu).unwrap();
    for step in 0..5 {
        let (loss, got) = step_stats(&mut host);
        let (_, want) = step_stats(&mut autodiff);
        assert_same(&got, &want, &format!("step {step}"));
        assert!(
            got.terms > 0 && got.terms == got.semi_hard + got.fallback,
            "{got:?}"
        );
        assert!(got.active > 0 && loss > 0.0, "{got:?}");
    }
}

#[derive(Default)]
struct Collect {
    steps: Vec<MiningStats>,
    epochs: Vec<MiningStats>,
    summary: Option<Summary>,
}

impl Host for Collect {
    async fn proceed(&mut self) -> bool {
        true
    }
    fn event(&mut self, event: Event) {
        match event {
            Event::Step { mining, .. } => self.steps.push(mining),
            Event::EpochEnd { figures, .. } => self.epochs.push(figures.mining),
            Event::Done(summary) => self.summary = Some(summary),
            _ => {}
        }
    }
    fn now_ms(&self) -> f64 {
        0.0
    }
}

/// Every step reports its figures (read with its loss, several steps a read), each epoch their
/// sum, and the summary the epochs' list with the test embedding's collapse indicator.
#[test]
fn the_driver_reports_each_step_and_adds_up_each_epoch() {
    let split = common::mnist();
    let config = TrainConfig {
        epochs: 2,
        train_limit: Some(192),
        test_limit: Some(64),
        knn_against_train: false,
        read_every: 4,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &split, &cpu_device()).unwrap();
    let mut host = Collect::default();
    let summary = pollster::block_on(run(&mut trainer, &mut host)).unwrap();
    assert_eq!(host.steps.len(), 12);
    assert!(host.steps.iter().all(|s| s.terms > 0), "{:?}", host.steps);
    for (epoch, steps) in host.steps.chunks(6).enumerate() {
        let mut sum = MiningStats::default();
        steps.iter().for_each(|s| sum.add(s));
        assert_eq!(host.epochs[epoch], sum, "epoch {}", epoch + 1);
    }
    let mining: Vec<_> = summary.epoch_figures.iter().map(|e| e.mining).collect();
    assert_eq!(mining, host.epochs);
    assert_eq!(summary.epoch_figures.len(), 2);
    for c in summary.epoch_figures.iter().map(|e| e.collapse) {
        assert!(c.mean_cosine > -1.0 && c.mean_cosine < 1.0, "{c:?}");
        assert!(c.spread > 0.0 && c.spread <= 1.0, "{c:?}");
    }
    assert_eq!(host.summary, Some(summary));
}
