//! tripletlab: the TensorFlow Addons semi-hard triplet-loss MNIST notebook, rebuilt in Rust with
//! burn, trained natively (CLI) or in the browser on WebGPU (yew page). See README.md.
//!
//! The core (`data`, `model`, `loss`, `train`, `metrics`, `projection`, `export`) is
//! backend-agnostic and synchronous-read-free on the training path on a GPU; `fused` is the
//! CPU device's engine (the same net as hand-fused host kernels, tested against `model` under
//! burn's autodiff) and `gpu` the wgpu / WebGPU device's (the same again as WGSL kernels on
//! burn's device, tested against `fused`). In the browser, `app` and `web` are the page and
//! `worker` its Web Worker (wasm32 only); `protocol` is what the two say to each other and
//! `page` the page's pure logic.
//!
//! Everything that needs burn is behind the `engine` feature (on by default). The page's own
//! wasm is built without it, so it links no burn, cubecl or kernels: only plain data (`data`,
//! `metrics`, `projection`, `export`, `shape`, the settings and events of `train`), the
//! protocol and the UI.

// First: the `names!` macro the modules below use.
#[macro_use]
pub mod names;

pub mod backend;
pub mod baseline;
#[cfg(feature = "engine")]
pub mod cases;
pub mod data;
pub mod export;
#[cfg(feature = "engine")]
pub mod fused;
#[cfg(feature = "engine")]
pub mod gpu;
#[cfg(feature = "engine")]
pub mod loss;
pub mod metrics;
#[cfg(feature = "engine")]
pub mod model;
pub mod page;
pub mod projection;
pub mod projector;
pub mod protocol;
pub mod query;
pub mod shape;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(all(target_arch = "wasm32", feature = "engine"))]
pub mod worker;
