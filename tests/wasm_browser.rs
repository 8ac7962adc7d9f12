//! Browser tests (wasm-bindgen-test in headless Chromium, see scripts/test-web.sh):
//! golden TFA loss cases computed on WebGPU, a few training steps on WebGPU, and the same on
//! the CPU fallback (burn flex compiled to wasm).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use burn::tensor::Device;
use wasm_bindgen_test::*;

use tripletlab::backend::cpu_device;
use tripletlab::cases::{LossCase, evaluate_case_async, parse_cases};
use tripletlab::data::{Split, load_split};
use tripletlab::loss::Selection;
use tripletlab::model::EMBEDDING_DIM;
use tripletlab::train::{Event, Host, StepEngine, TrainConfig, Trainer, run};

wasm_bindgen_test_configure!(run_in_browser);

const GOLDEN: &str = include_str!("golden/triplet_semihard.json");
/// A few small cases over all three metrics and the three margins, plus the notebook's shape.
const CASES: [&str; 7] = [
    "doc_example_L2",
    "doc_example_angular",
    "b4_two_pairs_d2_m0.2",
    "b5_d3_fallback_farthest_negative",
    "b10_d16_singletons_and_pairs_squaredL2",
    "b32_d16_mnistlike_angular_m0.2",
    "b32_d256_notebook_config",
];

thread_local! {
    static GPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The WebGPU device (burn's runtime can be initialised once per page).
async fn webgpu() -> Device {
    if let Some(d) = GPU.with(|g| g.borrow().clone()) {
        return d;
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .expect("WebGPU device (Chromium needs --enable-unsafe-webgpu, see webdriver.json)");
    GPU.with(|g| *g.borrow_mut() = Some(device.clone()));
    device
}

fn golden_cases() -> Vec<LossCase> {
    let all = parse_cases(GOLDEN).expect("golden file parses");
    CASES
        .iter()
        .map(|name| {
            all.iter()
                .find(|c| c.name == *name)
                .unwrap_or_else(|| panic!("golden case {name} missing"))
                .clone()
        })
        .collect()
}

fn close(a: f32, b: f32, rtol: f32, atol: f32) -> bool {
    (a - b).abs() <= atol + rtol * b.abs()
}

async fn check_golden(device: &Device, backend: &str) {
    for case in golden_cases() {
        let result = evaluate_case_async(&case, device, Selection::Device)
            .await
            .unwrap_or_else(|e| panic!("{backend} {}: {e}", case.name));
        let expected = case.expected_loss.expect("golden loss");
        assert!(
            close(result.loss, expected, 1e-4, 1e-6),
            "{backend} {}: loss {} vs golden {expected}",
            case.name,
            result.loss
        );
        if let Some(grad) = &case.expected_grad
            && !case.nondifferentiable_point
            && !case.ill_conditioned
        {
            assert_eq!(grad.len(), result.grad.len(), "{}", case.name);
            for (i, (g, e)) in result.grad.iter().zip(grad).enumerate() {
                assert!(
                    close(*g, *e, 1e-3, 1e-5),
                    "{backend} {}: grad[{i}] {g} vs golden {e}",
                    case.name
                );
            }
        }
    }
}

fn mnist() -> Split {
    load_split(
        include_bytes!("../www/data/mnist/train-images-idx3-ubyte.gz"),
        include_bytes!("../www/data/mnist/train-labels-idx1-ubyte.gz"),
        include_bytes!("../www/data/mnist/t10k-images-idx3-ubyte.gz"),
        include_bytes!("../www/data/mnist/t10k-labels-idx1-ubyte.gz"),
    )
    .expect("bundled MNIST loads")
}

struct Recorder {
    events: Vec<Event>,
}

impl Host for Recorder {
    async fn proceed(&mut self) -> bool {
        gloo_timers::future::TimeoutFuture::new(0).await;
        true
    }
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
    fn now_ms(&self) -> f64 {
        web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| p.now())
            .unwrap_or(0.0)
    }
}

/// Trains two short epochs on a 128-example subset; the loss must be finite and go down, and
/// the embeddings must be unit-norm.
async fn check_training(device: &Device, backend: &str) {
    let split = mnist();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 32,
        train_limit: Some(128),
        test_limit: Some(64),
        read_every: 2,
        knn_against_train: false,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &split, device).expect("trainer");
    // Both devices run the fused engine: host kernels compiled to wasm with SIMD on the CPU,
    // the WGSL kernels (src/gpu.rs) on WebGPU.
    assert_eq!(trainer.engine(), StepEngine::Fused, "{backend}");
    let mut host = Recorder { events: Vec::new() };
    let summary = run(&mut trainer, &mut host)
        .await
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
    let losses: Vec<f32> = host
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Step { loss, .. } => Some(*loss),
            _ => None,
        })
        .collect();
    web_sys::console::log_1(
        &format!(
            "{backend}: losses {losses:?}, {:.1} ex/s",
            summary.examples_per_s
        )
        .into(),
    );
    assert_eq!(
        losses.len() + summary.skipped_batches,
        8,
        "{backend}: steps"
    );
    assert!(
        losses.iter().all(|l| l.is_finite()),
        "{backend}: {losses:?}"
    );
    assert_eq!(summary.epoch_losses.len(), 2);
    assert!(
        summary.epoch_losses[1] < summary.epoch_losses[0],
        "{backend}: epoch losses {:?} did not decrease",
        summary.epoch_losses
    );
    let vectors = host
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Embeddings { vectors, .. } => Some(vectors.clone()),
            _ => None,
        })
        .expect("embeddings");
    assert_eq!(vectors.len(), 64 * EMBEDDING_DIM);
    for row in vectors.chunks(EMBEDDING_DIM) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{backend}: norm {norm}");
    }
}

#[wasm_bindgen_test]
async fn golden_loss_cases_on_webgpu() {
    check_golden(&webgpu().await, "webgpu").await;
}

#[wasm_bindgen_test]
async fn training_steps_on_webgpu() {
    check_training(&webgpu().await, "webgpu").await;
}

#[wasm_bindgen_test]
async fn golden_loss_cases_on_cpu_fallback() {
    check_golden(&cpu_device(), "cpu").await;
}

#[wasm_bindgen_test]
async fn training_steps_on_cpu_fallback() {
    check_training(&cpu_device(), "cpu").await;
}

#[wasm_bindgen_test]
async fn page_detects_webgpu() {
    let adapter = tripletlab::worker::device::detect_webgpu().await;
    assert!(adapter.is_ok(), "{adapter:?}");
    // Headless Chromium's only adapter here is SwiftShader: the page must see it as software
    // (and so train on the CPU unless asked otherwise).
    let adapter = adapter.expect("adapter");
    assert!(adapter.software, "{adapter:?}");
    assert!(adapter.text.contains("software adapter"), "{adapter:?}");
}
