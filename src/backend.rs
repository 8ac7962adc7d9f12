//! Choosing a burn device: the CPU (`flex`) everywhere, wgpu natively where a GPU or a Vulkan
//! driver exists, WebGPU in the browser (see `web`).

#[cfg(feature = "engine")]
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Which burn backend runs the work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendKind {
    /// burn's `flex` CPU backend (multi-threaded and SIMD natively; one thread in wasm).
    #[default]
    Cpu,
    /// burn's wgpu backend (Vulkan/Metal/DX12 natively, WebGPU in the browser).
    Wgpu,
}

names!(BackendKind, "backend", {
    Cpu => "cpu" | "flex",
    Wgpu => "wgpu" | "gpu" | "webgpu",
});

/// Which device the page should train on (URL `backend=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// WebGPU on a hardware adapter; the CPU when there is none or only a software one.
    #[default]
    Auto,
    /// The CPU (`backend=cpu`).
    Cpu,
    /// WebGPU whenever an adapter exists, software ones included (`backend=webgpu`).
    WebGpu,
}

impl BackendChoice {
    /// From the URL value (`cpu`, `webgpu`/`wgpu`/`gpu`, any case; anything else is automatic).
    pub fn from_query(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("cpu") => BackendChoice::Cpu,
            Some("webgpu" | "wgpu" | "gpu") => BackendChoice::WebGpu,
            _ => BackendChoice::Auto,
        }
    }
}

/// The CPU device.
#[cfg(feature = "engine")]
pub fn cpu_device() -> Device {
    Device::flex()
}

/// Initialises the native wgpu device (once per process; later calls get the same device), or
/// says why there is none.
#[cfg(all(not(target_arch = "wasm32"), feature = "engine"))]
pub fn native_device(kind: BackendKind) -> Result<Device, String> {
    static WGPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
    match kind {
        BackendKind::Cpu => Ok(cpu_device()),
        BackendKind::Wgpu => WGPU
            .get_or_init(|| {
                // wgpu panics inside some drivers instead of returning an error: contain it.
                match std::panic::catch_unwind(|| Device::wgpu_options().init()) {
                    Ok(Ok(device)) => Ok(device),
                    Ok(Err(e)) => Err(format!("no usable wgpu adapter: {e}")),
                    Err(_) => {
                        Err("no usable wgpu adapter (the driver failed during start-up)".into())
                    }
                }
            })
            .clone(),
    }
}

/// Keeps freed memory in the process instead of returning it to the OS after every step.
///
/// A training step allocates and frees the same few hundred large buffers each time; glibc's
/// defaults hand buffers above 128 KiB back with `munmap` and fault them in again on the next
/// step (millions of page faults per epoch). Raising the mmap and trim thresholds removes that:
/// about 20–30 % off a CPU step here. A no-op outside glibc.
#[cfg(not(target_arch = "wasm32"))]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is called before heavy allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
