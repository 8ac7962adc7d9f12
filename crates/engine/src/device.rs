//! Opening a burn device: the CPU (`flex`) everywhere, wgpu natively where a GPU or a Vulkan
//! driver exists (WebGPU in the browser is opened by the worker), and the native allocator's
//! tuning for training. Knows no browser and no terminal.

use burn::tensor::Device;
#[cfg(not(target_arch = "wasm32"))]
use tripletlab_core::backend::BackendKind;

/// The CPU device.
pub fn cpu_device() -> Device {
    Device::flex()
}

/// Initialises the native wgpu device (once per process; later calls get the same device), or
/// says why there is none.
#[cfg(not(target_arch = "wasm32"))]
pub fn native_device(kind: BackendKind) -> Result<Device, String> {
    static WGPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
    match kind {
        BackendKind::Cpu => Ok(cpu_device()),
        BackendKind::Gpu => WGPU
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
