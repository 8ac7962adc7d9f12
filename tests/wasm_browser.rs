//! Browser tests (wasm-bindgen-test in headless Chromium, see scripts/test-web.sh):
//! every golden TFA loss case (semi-hard and batch-hard) computed on WebGPU with burn's tensor
//! ops and with the WGSL engine's loss kernels (the browser's own WGSL compiler), a few training
//! steps on WebGPU, and the same on the CPU fallback (burn flex compiled to wasm); and the
//! page's verdict on the WebGPU adapter.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use burn::tensor::Device;
use wasm_bindgen_test::*;

use tripletlab_core::data::{Split, load_split};
use tripletlab_core::run::{Event, StepEngine, TrainConfig};
use tripletlab_engine::cases::{CaseResult, LossCase, evaluate_case_async};
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::loss::Selection;
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_engine::train::{Host, Trainer, read_f32, run};

wasm_bindgen_test_configure!(run_in_browser);

#[path = "common/golden.rs"]
mod golden;

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

/// Every golden case of both files (TFA's semi-hard and batch-hard losses) on `device`, judged
/// as natively (`tests/common/golden.rs`) at the wgpu tolerances; the ill-conditioned cases
/// land where TF's float32 formula does (the semi-hard one within 1e-3, the soft-margin one's
/// overflow to infinity).
async fn check_golden(device: &Device, backend: &str) {
    for json in [golden::SEMI_HARD, golden::HARD] {
        let mut report = golden::Report::default();
        for case in golden::cases(json) {
            let got = if backend == WGSL {
                wgsl_case(&case, device).await
            } else {
                // The selection the page's trainer takes (`Auto`: on the device for batches up
                // to 64, as every golden case is; the host path is checked natively).
                evaluate_case_async(&case, device, Selection::Auto)
                    .await
                    .unwrap_or_else(|e| panic!("{backend} {}: {e}", case.name))
            };
            if !case.ill_conditioned {
                golden::judge(&case, &got, golden::WGPU, &mut report);
                continue;
            }
            let want = case.expected_loss.expect("golden loss");
            if backend == WGSL && want.is_finite() {
                // TF's float32 value there is rounding (1e4 offsets cancel in |a|²+|b|²−2a·b),
                // and the browser's WGSL compiler may fuse a·b + c into one FMA, which rounds
                // otherwise: only a finite loss is asked for (lavapipe pins it natively).
                assert!(
                    got.loss.is_finite() && got.loss >= 0.0,
                    "{backend} {}: {}",
                    case.name,
                    got.loss
                );
                web_sys::console::log_1(
                    &format!("{backend} {}: {} (TF {want})", case.name, got.loss).into(),
                );
                continue;
            }
            let pinned = if want.is_infinite() {
                got.loss == want
            } else {
                (got.loss - want).abs() <= 1e-3
            };
            assert!(pinned, "{backend} {}: {} vs TF {want}", case.name, got.loss);
        }
        golden::assert_report(backend, &report, json);
        web_sys::console::log_1(
            &format!(
                "{backend}: {} losses; gradients element by element on {}, as another \
                 subgradient on {}",
                report.losses,
                report.grads_exact,
                report.grads_subgradient.len()
            )
            .into(),
        );
    }
}

/// [`check_golden`]'s name for the WGSL loss kernels on WebGPU.
const WGSL: &str = "webgpu, wgsl loss";

/// One case through the WGSL engine's loss kernels (`gpu::triplet_loss`), read asynchronously.
async fn wgsl_case(case: &LossCase, device: &Device) -> CaseResult {
    let (readout, grad) = golden::wgsl_loss(case, device);
    CaseResult {
        name: case.name.clone(),
        loss: read_f32(readout).await.expect("readout")[0],
        grad: read_f32(grad).await.expect("gradient"),
        dim: case.dim,
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
    // the WGSL kernels (crates/engine/src/gpu/) on WebGPU.
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
async fn golden_loss_cases_through_the_wgsl_kernels_on_webgpu() {
    check_golden(&webgpu().await, WGSL).await;
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

/// The page's verdict on the adapter agrees with what the adapter says of itself, read here
/// straight from `navigator.gpu`: software (a fallback adapter, or SwiftShader as in this
/// test's Chromium) or not, and the header says which. On any machine, whatever its GPU.
#[wasm_bindgen_test]
async fn page_detects_webgpu() {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::JsCast;
    let adapter = tripletlab_worker::device::detect_webgpu()
        .await
        .expect("an adapter");
    let get = |o: &wasm_bindgen::JsValue, k: &str| Reflect::get(o, &k.into()).unwrap();
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    let request: Function = get(&gpu, "requestAdapter").dyn_into().unwrap();
    let promise: Promise = request.call0(&gpu).unwrap().dyn_into().unwrap();
    let raw = wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
    let info = get(&raw, "info");
    let text = |k: &str| get(&info, k).as_string().unwrap_or_default().to_lowercase();
    let says_software = get(&info, "isFallbackAdapter").as_bool() == Some(true)
        || text("architecture").contains("swiftshader")
        || text("description").contains("swiftshader");
    assert_eq!(adapter.software, says_software, "{adapter:?}");
    assert_eq!(
        adapter.text.contains("software adapter"),
        says_software,
        "{adapter:?}"
    );
    assert!(
        adapter.text.starts_with("WebGPU"),
        "the header names WebGPU: {adapter:?}"
    );
}
