//! What a run reports and how it is steered: the [`Event`] stream (the CLI and the page consume
//! the same one), its [`Summary`], [`TrainError`], and the [`Control`] a host applies. Plain data
//! with serde, so the page's worker can send it as it is.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Collapse, ConfigError, MiningStats, TripletSample};
use crate::data::PkEpoch;
use crate::metrics::Metrics;

/// Why training could not start or had to stop.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TrainError {
    /// Invalid settings.
    #[error("invalid setting {0}")]
    Config(#[from] ConfigError),
    /// The loss became NaN or infinite (diverged): training stopped.
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training stopped (try a smaller learning rate)"
    )]
    NonFinite {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// The value read.
        value: f32,
    },
    /// Reading from the device failed (e.g. the GPU device was lost).
    #[error("the GPU device failed: {0}")]
    Device(String),
    /// Metrics could not be computed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The dataset is not usable with these settings.
    #[error("data: {0}")]
    Data(String),
}

/// A runtime error's text for one line of the page: its first line, without wasm-bindgen's
/// `JsValue(…)` wrapper (the `Debug` text of a JS error inside goes on with its stack, one frame
/// a line).
pub fn first_line(error: impl std::fmt::Display) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    first.replace("JsValue(", "")
}

impl TrainError {
    /// A device failure, from the runtime's error (whose `Debug` nests each cause under
    /// "Caused by:" and ends with a backtrace section): its innermost cause, on one line.
    pub fn device(error: impl std::fmt::Debug) -> Self {
        let text = format!("{error:?}");
        let cause = text
            .split("Backtrace:")
            .next()
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && *l != "Caused by:")
            .unwrap_or("unknown error");
        TrainError::Device(cause.to_string())
    }
}

/// What a training run reports, in order. See the module docs. `<&str>::from(&event)` names
/// the variant (for logs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
pub enum Event {
    /// Training begins.
    Started {
        /// Epochs to run.
        epochs: usize,
        /// Steps in each epoch.
        steps_per_epoch: usize,
        /// Training examples used.
        train_examples: usize,
        /// Test examples embedded.
        test_examples: usize,
        /// The shape of every epoch when batches are P×K (how many batches, how many examples
        /// they see, why the epoch ends).
        pk_epoch: Option<PkEpoch>,
    },
    /// One optimiser step finished (its loss has been read).
    Step {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Steps since the start (1-based), skipped batches included.
        global_step: usize,
        /// The batch's loss.
        loss: f32,
        /// What the batch's mining found (read with the loss).
        mining: MiningStats,
        /// Training examples per second since the start.
        examples_per_s: f64,
        /// Seconds since the start.
        elapsed_s: f64,
    },
    /// A batch was not used.
    Skipped {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Why.
        reason: String,
    },
    /// Fresh test-set embeddings (row-major, [`EMBEDDING_DIM`] wide) and their labels.
    Embeddings {
        /// Epoch they were taken in (1-based).
        epoch: usize,
        /// Global step they were taken after.
        global_step: usize,
        /// `labels.len() × 256` values.
        vectors: Arc<Vec<f32>>,
        /// Test labels, in test-set order.
        labels: Arc<Vec<u8>>,
    },
    /// A few triplets of the latest trained batch, mined as the loss mines (taken with each
    /// test embedding; boxed: an [`Event`] stays small).
    Triplets(Box<TripletSample>),
    /// An epoch ended.
    EpochEnd {
        /// Epoch (1-based).
        epoch: usize,
        /// Mean loss over the epoch's trained steps (NaN if none was trained).
        mean_loss: f32,
        /// The epoch's mining statistics and collapse indicator (boxed: an [`Event`] stays
        /// small).
        figures: Box<EpochFigures>,
        /// Test-set metrics after the epoch (kNN against train only at the very end).
        metrics: Metrics,
        /// Seconds since the start.
        elapsed_s: f64,
    },
    /// The run finished (or was stopped by the host).
    Done(Summary),
    /// The run failed; events before this one are still valid.
    Failed(TrainError),
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Whether the host stopped the run early.
    pub stopped: bool,
    /// Epochs completed.
    pub epochs_completed: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Batches skipped (no positive pair).
    pub skipped_batches: usize,
    /// Mean loss of each completed epoch.
    pub epoch_losses: Vec<f32>,
    /// The mining statistics and collapse indicator of each completed epoch (shared: an
    /// [`Event`] stays small).
    pub epoch_figures: Arc<Vec<EpochFigures>>,
    /// Final metrics.
    pub metrics: Metrics,
    /// Training examples per second (optimiser steps only).
    pub examples_per_s: f64,
    /// Seconds of training (steps only, no evaluation).
    pub train_seconds: f64,
    /// Seconds in all.
    pub total_seconds: f64,
}

/// An epoch's figures besides its loss and metrics (as in [`Event::EpochEnd`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochFigures {
    /// The mining statistics of the epoch's trained steps, added up.
    pub mining: MiningStats,
    /// Whether the test embeddings after the epoch are collapsing.
    pub collapse: Collapse,
}

/// What the user asked a running training to do (the page's buttons; the CLI never pauses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Keep stepping.
    #[default]
    Run,
    /// Wait before the next step (or the next slice of an evaluation).
    Pause,
    /// End the run at the next step or slice boundary (it finishes with `Done { stopped: true }`).
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_js_error_is_its_first_line_without_the_wrapper() {
        // The text burn's wgpu start gave for a refused device request (e2e test).
        let text = "Unable to request a wgpu device: JsValue(Error: device request refused in \
                    the test\nError: device request refused in the test\n    at \
                    GPUAdapter.requestDevice (<anonymous>:1:64)\n    at \
                    tripletlab.wasm.wasm-function[1234]:0x5678)";
        assert_eq!(
            first_line(text),
            "Unable to request a wgpu device: Error: device request refused in the test"
        );
        assert_eq!(first_line("plain"), "plain");
        assert_eq!(first_line(""), "");
    }

    #[test]
    fn a_device_error_is_its_innermost_cause_on_one_line() {
        // The text cubecl's error gave for a destroyed WebGPU device (e2e test).
        let debug = "An error happened during execution\nCaused by:\n  An error happened during \
                     execution\nCaused by:\n  the staging buffer could not be mapped: Error \
                     occurred when trying to async map a buffer\nBacktrace:\nNo backtrace available";
        struct Raw(&'static str);
        impl std::fmt::Debug for Raw {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        assert_eq!(
            TrainError::device(Raw(debug)),
            TrainError::Device(
                "the staging buffer could not be mapped: Error occurred when trying to async map \
                 a buffer"
                    .into()
            )
        );
        assert_eq!(
            TrainError::device(Raw("")),
            TrainError::Device("unknown error".into())
        );
    }
}
