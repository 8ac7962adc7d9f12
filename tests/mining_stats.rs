//! The mining statistics a step reads back with its loss (`tripletlab_core::run::MiningStats`):
//! the hand-computed batches of `common/mining.rs` on the CPU device through both selection
//! paths, with and without autodiff (what the autodiff and host engines compute the loss on);
//! the same figures from the autodiff and the host engine's steps; and the driver's reports
//! (each step's figures, their sum per epoch, the run's list). wgpu: `tests/wgpu_backend.rs`.
//! Also the triplets panel's host mining (`tripletlab_core::run::terms`): the same figures as the
//! device's on every hand-computed batch, and the driver's samples of real batches.

mod common;

use burn::tensor::{Tensor, TensorData};
use tripletlab_core::run::{DEVICE_STATS, Metric, Mining};
use tripletlab_core::run::{
    Event, MiningStats, StepEngine, Summary, TrainConfig, TripletKind, TripletSample, terms,
};
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::loss::{Selection, pairwise_distances};
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_engine::train::{Host, StepOutcome, Trainer, run};

#[test]
fn hand_computed_batches_on_the_cpu() {
    common::mining::check(&cpu_device(), Selection::Device, "device selection");
    common::mining::check(&cpu_device(), Selection::ReadBack, "host selection");
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

/// The panel's terms, listed on the host from the distance matrix, add up to exactly the
/// figures the device computes beside the loss, and to the loss, on every hand-computed batch.
#[test]
fn the_host_terms_add_up_to_the_device_figures_on_every_hand_case() {
    for case in common::mining::CASES {
        let b = case.x.len();
        let x = Tensor::<2>::from_data(TensorData::new(case.x.to_vec(), [b, 1]), &cpu_device());
        let dist: Vec<f32> = pairwise_distances(x, Metric::SquaredL2)
            .into_data()
            .try_into_vec()
            .unwrap();
        let listed = terms(&dist, case.labels, case.mining, case.margin, false);
        let count = |kind| listed.iter().filter(|t| t.kind == kind).count() as u64;
        let got = MiningStats {
            terms: listed.len() as u64,
            semi_hard: count(TripletKind::SemiHard),
            fallback: count(TripletKind::Fallback),
            no_negative: count(TripletKind::NoNegative),
            active: listed.iter().filter(|t| t.active()).count() as u64,
            sum_d_ap: listed.iter().map(|t| f64::from(t.d_ap)).sum(),
            sum_d_an: listed
                .iter()
                .filter(|t| t.negative.is_some())
                .map(|t| f64::from(t.d_an))
                .sum(),
        };
        assert_eq!(got, case.want, "{}", case.name);
        // Semi-hard averages over its terms, batch-hard over every anchor (here the anchors
        // without a positive add 0).
        let over = match case.mining {
            Mining::SemiHard => listed.len(),
            Mining::Hard => b,
        };
        let loss = listed.iter().map(|t| t.loss).sum::<f32>() / over as f32;
        assert!(
            (loss - case.loss).abs() <= 1e-5 * case.loss,
            "{}: {loss}",
            case.name
        );
    }
}

#[derive(Default)]
struct Collect {
    steps: Vec<MiningStats>,
    epochs: Vec<MiningStats>,
    triplets: Vec<TripletSample>,
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
            Event::Triplets(sample) => self.triplets.push(*sample),
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
/// A short run driven to its end (2 epochs of 6 steps, 64 test images, no final kNN) with
/// `config`'s other settings, and what it reported.
fn driven(config: TrainConfig) -> (Trainer, Collect, Summary) {
    let config = TrainConfig {
        epochs: 2,
        train_limit: Some(192),
        test_limit: Some(64),
        knn_against_train: false,
        ..config
    };
    let mut trainer = Trainer::new(config, &common::mnist(), &cpu_device()).unwrap();
    let mut host = Collect::default();
    let summary = pollster::block_on(run(&mut trainer, &mut host)).unwrap();
    (trainer, host, summary)
}

#[test]
fn the_driver_reports_each_step_and_adds_up_each_epoch() {
    let (_, host, summary) = driven(TrainConfig {
        read_every: 4,
        ..TrainConfig::default()
    });
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

/// With each test embedding (here every 3 steps and at each epoch end) the driver samples the
/// latest batch: triplets of real examples (the anchor's class twice, then another), their
/// images the training set's, and their distances those of the weights after the step.
#[test]
fn the_driver_samples_the_latest_batch_with_each_test_embedding() {
    let (trainer, host, _) = driven(TrainConfig {
        embed_every: 3,
        ..TrainConfig::default()
    });
    let at: Vec<_> = host.triplets.iter().map(|t| (t.epoch, t.step)).collect();
    assert_eq!(at, vec![(1, 3), (1, 6), (2, 3), (2, 6)]);
    let train = trainer.train_set();
    for sample in &host.triplets {
        assert_eq!((sample.batch, sample.mined_among), (32, 32));
        assert!(sample.terms > 0 && sample.semi_hard + sample.fallback == sample.terms);
        assert!(sample.active <= sample.terms);
        assert_eq!(sample.shown.len(), 4, "{sample:?}");
        for t in &sample.shown {
            let n = t.negative.as_ref().expect("a batch of several classes");
            assert_eq!(t.anchor.label, t.positive.label);
            assert_ne!(n.label, t.anchor.label);
            assert_ne!(t.anchor.index, t.positive.index);
            for e in [&t.anchor, &t.positive, n] {
                assert_eq!(e.image, train.image(e.index));
                assert_eq!(e.label, train.labels[e.index]);
            }
            assert!((0.0..=2.0).contains(&t.d_ap) && (0.0..=2.0).contains(&t.d_an));
            assert_eq!(t.kind == TripletKind::SemiHard, t.d_an > t.d_ap, "{t:?}");
            let margin = TrainConfig::default().margin;
            assert!((t.loss - (margin + t.d_ap - t.d_an).max(0.0)).abs() < 1e-5);
        }
        let anchors: std::collections::BTreeSet<_> =
            sample.shown.iter().map(|t| t.anchor.index).collect();
        assert_eq!(anchors.len(), 4, "each from a different anchor");
    }
    // The last sample was taken with the final weights: its distances are theirs.
    let last = host.triplets.last().unwrap();
    let embed = |i: usize| pollster::block_on(trainer.embed_rows(train, i..i + 1)).unwrap();
    for t in &last.shown {
        let (a, p) = (embed(t.anchor.index), embed(t.positive.index));
        assert_eq!(a.len(), EMBEDDING_DIM);
        let d: f32 = a
            .iter()
            .zip(&p)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        assert!((d - t.d_ap).abs() < 1e-4, "d(a,p) {d} vs {}", t.d_ap);
    }
}
