//! WebGPU detection and burn device start-up, with the CPU fallback and a start-up timeout.
//! Works in the worker (its `WorkerNavigator`) and in a window (the wasm tests) alike.

use burn::tensor::{Device, DeviceKind};
use futures::FutureExt;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use tripletlab_core::backend::{BackendChoice, BackendKind};
use tripletlab_engine::device::cpu_device;

/// How long WebGPU may take to start before the CPU is used instead.
pub const WEBGPU_START_TIMEOUT_MS: u32 = 15_000;

/// The device the page trains on, and how it was chosen.
#[derive(Clone)]
pub struct DeviceInfo {
    /// The burn device.
    pub device: Device,
    /// WebGPU or the CPU.
    pub kind: BackendKind,
    /// For the header: the adapter's vendor/architecture, "software adapter", or "CPU".
    pub adapter: String,
    /// Why the CPU is used instead of WebGPU (shown in a banner), when it is.
    pub fallback: Option<String>,
}

use tripletlab_core::run::first_line;
use tripletlab_protocol::js::get;
pub use tripletlab_protocol::js::js_error_text;

fn get_str(target: &JsValue, key: &str) -> String {
    get(target, key).as_string().unwrap_or_default()
}

/// A WebGPU adapter the browser offered.
#[derive(Clone, Debug)]
pub struct Adapter {
    /// For the header: "WebGPU vendor / architecture", with "(software adapter)" when it is one.
    pub text: String,
    /// A software emulation (SwiftShader or a browser's fallback adapter).
    pub software: bool,
}

/// Asks the browser for a WebGPU adapter; `Err` says why there is none.
pub async fn detect_webgpu() -> Result<Adapter, String> {
    let navigator = get(&js_sys::global(), "navigator");
    let gpu = get(&navigator, "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU (navigator.gpu is missing)".into());
    }
    let request: Function = get(&gpu, "requestAdapter")
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is not a function".to_string())?;
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &"powerPreference".into(),
        &"high-performance".into(),
    );
    let promise: Promise = request
        .call1(&gpu, &options)
        .map_err(|e| format!("requestAdapter failed: {}", js_error_text(&e)))?
        .dyn_into()
        .map_err(|_| "requestAdapter did not return a promise".to_string())?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| format!("requestAdapter failed: {}", js_error_text(&e)))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(
            "WebGPU is present but no adapter is available (blocked or unsupported GPU)".into(),
        );
    }
    // `adapter.info` (current browsers); older ones had `requestAdapterInfo()`.
    let mut info = get(&adapter, "info");
    if info.is_undefined()
        && let Ok(f) = get(&adapter, "requestAdapterInfo").dyn_into::<Function>()
        && let Ok(p) = f.call0(&adapter).and_then(|p| p.dyn_into::<Promise>())
    {
        info = JsFuture::from(p).await.unwrap_or(JsValue::UNDEFINED);
    }
    let vendor = get_str(&info, "vendor");
    let architecture = get_str(&info, "architecture");
    let description = get_str(&info, "description");
    let fallback = get(&info, "isFallbackAdapter").as_bool().unwrap_or(false)
        || get(&adapter, "isFallbackAdapter")
            .as_bool()
            .unwrap_or(false);
    let software = fallback
        || architecture.to_ascii_lowercase().contains("swiftshader")
        || description.to_ascii_lowercase().contains("swiftshader");
    let mut parts: Vec<String> = [vendor, architecture]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() && !description.is_empty() {
        parts.push(description);
    }
    let mut text = if parts.is_empty() {
        "WebGPU (adapter details hidden)".to_string()
    } else {
        format!("WebGPU {}", parts.join(" / "))
    };
    if software {
        text.push_str(" (software adapter)");
    }
    Ok(Adapter { text, software })
}

/// Chooses the device (see [`BackendChoice`]): WebGPU when a usable adapter exists and burn's
/// runtime starts on it, else the CPU, with the reason as a sentence for the banner.
///
/// On a software adapter the CPU is the default: the CPU step (the fused kernels of
/// `tripletlab_engine::fused`, one thread) is far faster there than the emulated GPU.
///
/// `start` counts the WebGPU devices this worker has started before (after a lost device, the
/// next one): burn keeps a lost device's runtime registered under its selector, so each start
/// uses a selector of its own (in a browser every selector asks for the high-performance
/// adapter).
pub async fn init_device(choice: BackendChoice, start: usize) -> DeviceInfo {
    let cpu = |reason: String| DeviceInfo {
        device: cpu_device(),
        kind: BackendKind::Cpu,
        adapter: "CPU (fused kernels, one thread)".into(),
        fallback: Some(reason),
    };
    if choice == BackendChoice::Cpu {
        return cpu("The CPU backend was requested (backend=cpu in the URL)".into());
    }
    match detect_webgpu().await {
        Err(why) => cpu(format!(
            "No WebGPU: {why}. Training runs on the CPU instead, which is slower than a GPU"
        )),
        Ok(adapter) if adapter.software && choice == BackendChoice::Auto => cpu(format!(
            "The only WebGPU adapter is a software emulation ({}). Training runs on the CPU, \
             which is faster than that here; add backend=webgpu to the URL to use the adapter anyway",
            adapter.text
        )),
        Ok(adapter) => {
            let options = match start {
                0 => Device::wgpu_options(),
                n => Device::wgpu_options().device_kind(DeviceKind::DiscreteGpu(n)),
            };
            let start = options.init_async().fuse();
            let timeout = gloo_timers::future::TimeoutFuture::new(WEBGPU_START_TIMEOUT_MS).fuse();
            futures::pin_mut!(start, timeout);
            futures::select! {
                started = start => match started {
                    Ok(device) => DeviceInfo {
                        device,
                        kind: BackendKind::Gpu,
                        adapter: adapter.text,
                        fallback: None,
                    },
                    Err(e) => cpu(format!(
                        "WebGPU could not be started ({}). Training runs on the CPU instead, which is slower than a GPU",
                        first_line(e)
                    )),
                },
                () = timeout => cpu(format!(
                    "WebGPU did not start within {} s. Training runs on the CPU instead; reload the page to try WebGPU again",
                    WEBGPU_START_TIMEOUT_MS / 1000
                )),
            }
        }
    }
}
