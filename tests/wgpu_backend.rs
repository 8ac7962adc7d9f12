//! The same kernels the page runs on WebGPU, exercised natively on burn's wgpu backend. Without
//! a GPU this runs on Mesa's lavapipe (a software Vulkan driver, installed by
//! `scripts/setup-native.sh`): golden loss cases with the device-side selection (the path the
//! browser uses) and a few training steps. Set TRIPLETLAB_SKIP_WGPU=1 only on a machine that
//! has no Vulkan driver at all; the test then says so instead of passing silently.

use std::sync::Arc;

use tripletlab::backend::{BackendKind, native_device};
use tripletlab::cases::{evaluate_case, parse_cases};
use tripletlab::data::load_dir;
use tripletlab::loss::Selection;
use tripletlab::train::{Event, Host, TrainConfig, Trainer, run};

fn device() -> Option<burn::tensor::Device> {
    match native_device(BackendKind::Wgpu) {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("TRIPLETLAB_SKIP_WGPU").is_some() => {
            eprintln!("SKIPPED (TRIPLETLAB_SKIP_WGPU set): {e}");
            None
        }
        Err(e) => panic!("{e} — install mesa-vulkan-drivers (scripts/setup-native.sh)"),
    }
}

#[test]
fn golden_cases_on_wgpu_match_tfa() {
    let Some(device) = device() else { return };
    let cases = parse_cases(include_str!("golden/triplet_semihard.json")).unwrap();
    let mut checked = 0;
    for case in cases.iter().filter(|c| !c.ill_conditioned && !c.nondifferentiable_point) {
        let got = evaluate_case(case, &device, Selection::Device);
        let want = case.expected_loss.unwrap();
        if want.is_nan() {
            assert!(got.loss.is_nan(), "{}: {}", case.name, got.loss);
            continue;
        }
        // GPU matmuls sum in another order than Eigen: a little more slack than on the CPU.
        assert!(
            (got.loss - want).abs() <= 1e-5 + 1e-4 * want.abs(),
            "{}: loss {} vs TFA {}",
            case.name,
            got.loss,
            want
        );
        let want_grad = case.expected_grad.as_ref().unwrap();
        for (i, (g, w)) in got.grad.iter().zip(want_grad).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 + 1e-3 * w.abs(),
                "{}: grad[{i}] {g} vs TFA {w}",
                case.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} cases checked");
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
    let Some(device) = device() else { return };
    let split = load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/www/data/mnist"))).unwrap();
    let config = TrainConfig {
        epochs: 2,
        train_limit: Some(128),
        test_limit: Some(64),
        knn_against_train: false,
        read_every: 4,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &split, &device).unwrap();
    let mut host = Collect { losses: Vec::new(), embeddings: None };
    let summary = pollster::block_on(run(&mut trainer, &mut host)).unwrap();
    assert_eq!(host.losses.len(), 8);
    assert!(host.losses.iter().all(|l| l.is_finite() && *l >= 0.0), "{:?}", host.losses);
    assert!(summary.epoch_losses[1] < summary.epoch_losses[0] + 0.1, "{:?}", summary.epoch_losses);
    let e = host.embeddings.unwrap();
    assert_eq!(e.len(), 64 * 256);
    assert!(e.iter().all(|v| v.is_finite()));
}
