//! The pieces of [`super::State`] the components render: phase, notices, progress, the
//! embeddings' provenance, the metrics rows. Plain data.

use std::sync::Arc;

use tripletlab_core::metrics::Metrics;

/// A shared value compared by identity (big buffers must not be compared element by element
/// on every render).
#[derive(Debug)]
pub struct Shared<T>(pub Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The root's `data-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Starting the device or loading a dataset.
    Loading,
    /// Ready to train.
    Ready,
    /// A run is in progress.
    Training,
    /// A run is paused.
    Paused,
    /// A run finished or was stopped.
    Done,
    /// Something failed (see the banner).
    Error,
}

impl Phase {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Loading => "loading",
            Phase::Ready => "ready",
            Phase::Training => "training",
            Phase::Paused => "paused",
            Phase::Done => "done",
            Phase::Error => "error",
        }
    }
}

/// How serious a banner message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Good to know.
    Info,
    /// Works, but not as well as it could (e.g. the CPU fallback).
    Warning,
    /// Something failed.
    Error,
}

/// One banner message.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// Severity.
    pub level: Level,
    /// The text.
    pub text: String,
    /// About the shown run only (cleared when the next one starts, whatever its level).
    pub of_run: bool,
}

impl Notice {
    /// An error message.
    pub fn error(text: String) -> Self {
        Self {
            level: Level::Error,
            text,
            of_run: false,
        }
    }
    /// A warning.
    pub fn warning(text: String) -> Self {
        Self {
            level: Level::Warning,
            text,
            of_run: false,
        }
    }
    /// A warning about the shown run (e.g. its embedding collapsing).
    pub fn run_warning(text: String) -> Self {
        Self {
            of_run: true,
            ..Self::warning(text)
        }
    }
    /// Information.
    pub fn info(text: String) -> Self {
        Self {
            level: Level::Info,
            text,
            of_run: false,
        }
    }
}

/// Where the run is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressInfo {
    /// Epochs to run.
    pub epochs: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Current epoch (1-based, 0 before the first step).
    pub epoch: usize,
    /// Step within the epoch.
    pub step: usize,
    /// Steps done since the start (skipped ones included).
    pub global_step: usize,
    /// Training examples per second.
    pub examples_per_s: f64,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Training / test examples used.
    pub examples: (usize, usize),
    /// With P×K batches, what an epoch is (and why it ends), in words.
    pub pk_epoch: Option<String>,
    /// The run finished all its steps.
    pub complete: bool,
    /// Where a Stop is.
    pub stop: StopState,
}

/// A Stop, from the click to the end of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopState {
    /// No Stop asked for.
    #[default]
    None,
    /// The user pressed Stop; the worker has not answered yet.
    Requested,
    /// The worker has seen it: no new step or slice starts, the device finishes its queue.
    Seen,
}

impl StopState {
    /// For the page's `data-stop` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            StopState::None => "none",
            StopState::Requested => "requested",
            StopState::Seen => "seen",
        }
    }
}

impl ProgressInfo {
    /// All steps of the run.
    pub fn total_steps(&self) -> usize {
        self.epochs * self.steps_per_epoch
    }
}

/// The latest test-set embeddings (what the downloads export).
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// `labels.len() × 256`, row-major, test-set order.
    pub vectors: Shared<Vec<f32>>,
    /// Test labels.
    pub labels: Shared<Vec<u8>>,
    /// Epoch they were taken in.
    pub epoch: usize,
    /// Step they were taken after.
    pub global_step: usize,
}

impl Embeddings {
    /// For the downloads panel.
    pub fn note(&self) -> String {
        format!(
            "{} test embeddings from epoch {}, step {}",
            self.labels.0.len(),
            self.epoch,
            self.global_step
        )
    }
}

/// What the projection canvas shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionView {
    /// One 2-D point per test embedding.
    pub points: Shared<Vec<[f32; 2]>>,
    /// "PCA, epoch 1 step 8", "t-SNE", …
    pub kind: String,
}

/// One row of the metrics table.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub mean_loss: f32,
    /// Test-set metrics after it.
    pub metrics: Metrics,
}

/// A layout (t-SNE or UMAP) under way.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutJob {
    /// "t-SNE" or "UMAP".
    pub name: &'static str,
    /// Steps done (0 while the neighbours are searched).
    pub done: usize,
    /// Steps in all.
    pub total: usize,
    /// Cancel was pressed; the worker has not confirmed yet.
    pub cancelling: bool,
}

/// The answer to the latest question about the embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryView {
    /// The 28 × 28 image that was embedded.
    pub image: Vec<u8>,
    /// Its true label (a test image's).
    pub label: Option<u8>,
    /// Its nearest training examples' images, 28 × 28 each.
    pub neighbour_images: Vec<u8>,
    /// Neighbours, vote, places.
    pub answer: tripletlab_core::query::Answer,
}

/// The legend name of `label` (its number where the dataset names fewer classes).
pub fn class_name(names: &[String], label: u32) -> String {
    names
        .get(label as usize)
        .cloned()
        .unwrap_or_else(|| label.to_string())
}
