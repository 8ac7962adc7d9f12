//! Which backend runs the work ([`BackendKind`]) and which device the page asks for
//! ([`BackendChoice`]): names and choices only. Opening a device is the engine's
//! (`tripletlab_engine::device`); this crate links no burn.

use serde::{Deserialize, Serialize};

/// Which burn backend runs the work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendKind {
    /// burn's `flex` CPU backend (multi-threaded and SIMD natively; one thread in wasm).
    #[default]
    Cpu,
    /// burn's wgpu backend (Vulkan/Metal/DX12 natively, WebGPU in the browser).
    Gpu,
}

names!(BackendKind, "backend", {
    Cpu => "cpu" | "flex",
    Gpu => "wgpu" | "gpu" | "webgpu",
});

/// Which device the page should train on (URL `backend=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// WebGPU on a hardware adapter; the CPU when there is none or only a software one.
    #[default]
    Auto,
    /// The CPU (`backend=cpu`).
    Cpu,
    /// The GPU (WebGPU) whenever an adapter exists, software ones included (`backend=webgpu`).
    Gpu,
}

impl BackendChoice {
    /// From the URL value (`cpu`, `webgpu`/`wgpu`/`gpu`, any case; anything else is automatic).
    pub fn from_url(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("cpu") => BackendChoice::Cpu,
            Some("webgpu" | "wgpu" | "gpu") => BackendChoice::Gpu,
            _ => BackendChoice::Auto,
        }
    }
}
