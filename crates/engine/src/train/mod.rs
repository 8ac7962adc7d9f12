//! Training: a [`Trainer`] that performs one optimiser step at a time on one of the [`Engine`]s,
//! and [`run`], the one async driver that turns steps into a stream of
//! [`Event`](tripletlab_core::run::Event)s.
//!
//! The driver is shared by the native CLI (driven with `pollster::block_on`, rendering events
//! with a progress bar) and the page's worker (driven by `wasm_bindgen_futures`). Nothing here
//! knows which one it runs under: the [`Host`] supplies the clock, the pause/stop decisions and
//! the yield to the browser's event loop. Device reads on the training path are asynchronous
//! and batched (`read_every` losses per read), so WebGPU is never stalled after every step.

mod driver;
mod engine;
mod held_out;
mod trainer;

pub use driver::{Host, QUEUED_WORK_MS, SLICE_ROWS, embed_sliced, run};
pub use engine::{Batch, Engine, EngineKind, choose};
pub use held_out::held_out_loss;
pub use trainer::{StepOutcome, Trainer, read_f32};
