//! tripletlab-engine: everything that needs burn. It owns opening a device ([`device`]), the
//! notebook's net ([`model`]), TFA's semi-hard and batch-hard triplet losses ([`loss`]), the two
//! hand-fused engines (the CPU's host kernels, [`fused`], and the WGSL kernels on wgpu / WebGPU,
//! [`gpu`], each tested against burn's autodiff of [`model`] and [`loss`]), the loss's golden
//! cases ([`cases`]), and training ([`train`]: the engines behind one step, the [`train::Trainer`]
//! and the async driver that turns steps into events).
//!
//! It builds on `tripletlab-core` (data, the run's configuration and events, metrics) and must
//! not know a browser, a terminal or a screen: the worker and the CLI drive it through
//! [`train::Host`] and read its events.

pub mod cases;
pub mod device;
pub mod fused;
pub mod gpu;
pub mod loss;
pub mod model;
pub mod train;
