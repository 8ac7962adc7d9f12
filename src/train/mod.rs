//! Training: a validated [`TrainConfig`], a [`Trainer`] that performs one optimiser step at a
//! time, and [`run`], the one async driver that turns steps into a stream of [`Event`]s.
//!
//! The driver is shared by the native CLI (driven with `pollster::block_on`, rendering events
//! with a progress bar) and the page's worker (driven by `wasm_bindgen_futures`). Nothing here
//! knows which one it runs under: the [`Host`] supplies the clock, the pause/stop decisions and
//! the yield to the browser's event loop. Device reads on the training path are asynchronous
//! and batched (`read_every` losses per read), so WebGPU is never stalled after every step.
//!
//! `config`, `events`, `mining` (a step's mining statistics), `collapse` (the test embedding's
//! collapse indicator), `recipe` (named presets of settings), `schedule` (the learning rate
//! of each step) and `triplets` (a recent batch's mined triplets, shown by the page) are plain data (the page uses them without the `engine` feature); `engine` (the
//! three ways a step is computed), `trainer` and `driver` need burn.

mod collapse;
mod config;
#[cfg(feature = "engine")]
mod driver;
#[cfg(feature = "engine")]
mod engine;
mod events;
#[cfg(feature = "engine")]
mod held_out;
mod mining;
mod recipe;
mod schedule;
pub mod settings;
#[cfg(feature = "engine")]
mod trainer;
mod triplets;

pub use collapse::*;
pub use config::*;
#[cfg(feature = "engine")]
pub use driver::*;
pub use events::*;
#[cfg(feature = "engine")]
pub use held_out::held_out_loss;
pub use mining::*;
pub use recipe::*;
pub use schedule::*;
#[cfg(feature = "engine")]
pub use trainer::*;
pub use triplets::*;
