//! Helpers shared by the integration tests (each test file takes what it needs).
#![allow(dead_code)]

pub mod golden;
pub mod learning;
pub mod mining;

use std::io::Write;

use tripletlab_core::backend::BackendKind;
use tripletlab_engine::device::native_device;

/// The switch that lets the wgpu tests skip on a machine without any Vulkan driver.
pub const SKIP_WGPU: &str = "TRIPLETLAB_SKIP_WGPU";

/// burn's wgpu device (lavapipe without a GPU). Without one, the test fails, unless
/// [`SKIP_WGPU`] is set to 1: then it is skipped, and says so on the terminal's stderr
/// (written past the test harness's capture, so `make test` shows it).
pub fn wgpu_device(test: &str) -> Option<burn::tensor::Device> {
    match native_device(BackendKind::Gpu) {
        Ok(d) => Some(d),
        Err(e) if std::env::var(SKIP_WGPU).as_deref() == Ok("1") => {
            // One write, so parallel tests' lines do not interleave.
            let line = format!("SKIPPED {test}: no wgpu device ({e}); {SKIP_WGPU}=1 allows it\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
        Err(e) => panic!(
            "{test}: no wgpu device: {e}. Install mesa-vulkan-drivers (scripts/setup-native.sh), \
             or set {SKIP_WGPU}=1 to skip the wgpu tests on a machine without Vulkan"
        ),
    }
}

/// The bundled mnist10k.
pub fn mnist() -> tripletlab_core::data::Split {
    tripletlab_core::data::load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/www/data/mnist"
    )))
    .expect("bundled MNIST loads")
}
