//! tripletlab: the TensorFlow Addons semi-hard triplet-loss MNIST notebook, rebuilt in Rust with
//! burn, trained natively (CLI) or in the browser on WebGPU (yew page). See README.md.
//!
//! The core (`data`, `model`, `loss`, `train`, `metrics`, `projection`, `export`) is
//! backend-agnostic and synchronous-read-free on the training path on a GPU; `fused` is the
//! CPU device's engine (the same net as hand-fused host kernels, tested against `model` under
//! burn's autodiff) and `gpu` the wgpu / WebGPU device's (the same again as WGSL kernels on
//! burn's device, tested against `fused`); `web` and `app` are the page's and `worker` its Web Worker's (wasm32 only);
//! `protocol` is what the two say to each other.

pub mod backend;
pub mod cases;
pub mod data;
pub mod export;
pub mod fused;
pub mod gpu;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod page;
pub mod projection;
pub mod protocol;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod worker;
