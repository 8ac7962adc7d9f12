//! The settings of a training run: the validated [`TrainConfig`] (defaults are the notebook's),
//! the loss's [`Metric`] and [`Mining`], the batches' [`Sampler`], the learning rate's
//! [`LrSchedule`], the step [`StepEngine`] and [`ConfigError`]. Plain data: no device, no
//! browser, no terminal (the page's form builds one too).

use serde::{Deserialize, Serialize};

use super::settings;
use crate::data::{NUM_CLASSES, PkEpoch};

/// Distance used between embeddings (TFA's `distance_metric`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Euclidean distance (not squared): TFA's default `"L2"`.
    #[default]
    L2,
    /// Squared Euclidean distance: `"squared-L2"`.
    SquaredL2,
    /// `max(1 - cos, 0)`: `"angular"`.
    Angular,
}

names!(Metric, "distance metric", {
    L2 => "l2",
    SquaredL2 => "squared-l2" | "squared_l2" | "sql2",
    Angular => "angular" | "cosine",
});

/// How the negative of each triplet is mined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mining {
    /// TFA `TripletSemiHardLoss` (the notebook's loss).
    #[default]
    SemiHard,
    /// TFA `TripletHardLoss` (hardest positive, hardest negative per anchor).
    Hard,
}

names!(Mining, "mining strategy", {
    SemiHard => "semi-hard" | "semihard" | "semi_hard",
    Hard => "hard",
});

/// How the training set is cut into batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sampler {
    /// The notebook's `shuffle(buffer)` then `batch(n)` ([`crate::data::epoch_order`]).
    #[default]
    Shuffle,
    /// `P` classes × `K` examples a batch ([`crate::data::pk_order`]; `P·K` = the batch size).
    Pk,
}

names!(Sampler, "sampler", {
    Shuffle => "shuffle",
    Pk => "pk" | "p×k" | "pxk",
});

/// How the learning rate moves over the run (see [`super::lr_at`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The same rate at every step (after any warm-up): the notebook's.
    #[default]
    Constant,
    /// Half a cosine from the rate down to 0 at the last step (after any warm-up).
    Cosine,
}

names!(LrSchedule, "learning-rate schedule", {
    Constant => "constant",
    Cosine => "cosine",
});

/// Everything that defines a training run. Defaults are the notebook's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// The learning rate over the steps (after the warm-up).
    pub lr_schedule: LrSchedule,
    /// Steps over which the rate climbs linearly to `lr` (0: none).
    pub warmup_steps: usize,
    /// Triplet margin.
    pub margin: f32,
    /// Distance between embeddings.
    pub metric: Metric,
    /// Negative mining.
    pub mining: Mining,
    /// Soft-margin variant of the batch-hard loss.
    pub soft: bool,
    /// Seed of the weights, the data order and dropout.
    pub seed: u64,
    /// How batches are drawn.
    pub sampler: Sampler,
    /// Examples of each class in a batch (`K`) with [`Sampler::Pk`]; `P` = batch size / `K`.
    pub per_class: usize,
    /// Shuffle-buffer size (tf.data `shuffle(1024)`); 0 means a full shuffle.
    pub shuffle_buffer: usize,
    /// Train on the first N training examples only.
    pub train_limit: Option<usize>,
    /// Embed, score and export the first N test examples only.
    pub test_limit: Option<usize>,
    /// Dropout rate.
    pub dropout: f64,
    /// Losses read back from the device in one go (1 = every step).
    pub read_every: usize,
    /// Refresh the test embeddings every N steps as well as at each epoch end (0 = epoch ends).
    pub embed_every: usize,
    /// At the end, embed the training set too and score cosine kNN-1/kNN-5 against it.
    pub knn_against_train: bool,
    /// How steps are computed (see [`StepEngine`]).
    pub engine: StepEngine,
}

/// How a training step is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepEngine {
    /// [`StepEngine::Fused`], except for batches above `tripletlab_engine::gpu::max_batch` on a GPU
    /// (then [`StepEngine::Autodiff`]).
    #[default]
    Auto,
    /// Hand-fused kernels: the host kernels of `tripletlab_engine::fused` on the CPU device, the WGSL
    /// kernels of `tripletlab_engine::gpu` on a wgpu / WebGPU device.
    Fused,
    /// burn's autodiff of [`EmbedNet`] and burn's Adam, on any device (burn places Adam's ε
    /// slightly differently from Keras: see [`AdamSettings::factors`]).
    Autodiff,
}

names!(StepEngine, "engine", {
    Auto => "auto",
    Fused => "fused",
    Autodiff => "autodiff",
});

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 32,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            margin: 1.0,
            metric: Metric::L2,
            mining: Mining::SemiHard,
            soft: false,
            seed: 0,
            sampler: Sampler::Shuffle,
            per_class: 4,
            shuffle_buffer: 1024,
            train_limit: None,
            test_limit: None,
            dropout: 0.3,
            read_every: 8,
            embed_every: 0,
            knn_against_train: true,
            engine: StepEngine::Auto,
        }
    }
}

/// A rejected setting: which field, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The field's name as used on the command line and in URLs.
    pub field: std::borrow::Cow<'static, str>,
    /// What is wrong, for a person.
    pub message: String,
}

/// Largest accepted batch size (the semi-hard loss needs `B²` memory, the device path `B³/chunk`).
pub const MAX_BATCH: usize = 4096;
/// Largest accepted number of epochs.
pub const MAX_EPOCHS: usize = 1000;

impl TrainConfig {
    /// Every problem with these settings (empty when they are usable).
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut bad = |field: &'static str, message: String| {
            errors.push(ConfigError {
                field: field.into(),
                message,
            })
        };
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            bad(
                settings::EPOCHS.key,
                format!("must be between 1 and {MAX_EPOCHS}"),
            );
        }
        if !(2..=MAX_BATCH).contains(&self.batch_size) {
            bad(
                settings::BATCH.key,
                format!(
                    "must be between 2 and {MAX_BATCH} (a triplet needs two examples of a class)"
                ),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            bad(settings::LR.key, "must be a number in (0, 1]".into());
        }
        if !(self.margin.is_finite() && (0.0..=100.0).contains(&self.margin)) {
            bad(
                settings::MARGIN.key,
                "must be a number between 0 and 100".into(),
            );
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            bad(settings::DROPOUT.key, "must be in [0, 1)".into());
        }
        if self.train_limit == Some(0) || self.train_limit.is_some_and(|n| n < 2) {
            bad(
                settings::TRAIN_LIMIT.key,
                "must be at least 2 examples".into(),
            );
        }
        if self.test_limit.is_some_and(|n| n < 2) {
            bad(
                settings::TEST_LIMIT.key,
                "must be at least 2 examples".into(),
            );
        }
        if let Some(problem) = self.pk_problem() {
            bad(settings::PER_CLASS.key, problem);
        }
        if self.read_every == 0 {
            bad(settings::READ_EVERY.key, "must be at least 1".into());
        }
        errors
    }

    /// Classes per batch (`P`) with [`Sampler::Pk`]: the batch size over `per_class`.
    pub fn classes_per_batch(&self) -> usize {
        self.batch_size / self.per_class.max(1)
    }

    /// What is wrong with the P×K settings, when they are used: `K ≥ 2`, `P·K` = the batch
    /// size, `2 ≤ P ≤` [`NUM_CLASSES`]. (Whether the training set has `P` classes with `K`
    /// examples is the trainer's check: it needs the data.)
    fn pk_problem(&self) -> Option<String> {
        let (b, k) = (self.batch_size, self.per_class);
        if self.sampler != Sampler::Pk {
            return None;
        }
        if k < 2 {
            return Some(format!(
                "must be at least 2 (a triplet needs two examples of a class), not {k}"
            ));
        }
        if !b.is_multiple_of(k) {
            return Some(format!(
                "the batch of {b} is not P classes × {k}: pick a K that divides the batch"
            ));
        }
        let p = b / k;
        if p < 2 {
            return Some(format!(
                "a batch of {b} holds P = {p} class of {k}; a triplet needs a second class"
            ));
        }
        if p > NUM_CLASSES {
            return Some(format!(
                "a batch of {b} at {k} a class needs P = {p} classes; the data has at most \
                 {NUM_CLASSES}"
            ));
        }
        None
    }

    /// The shape of this run's P×K epochs over the training labels (`None` with another
    /// sampler); refused at `per_class` when not even one batch fits (fewer than `P` classes
    /// with `K` examples).
    pub fn pk_epoch(&self, train_labels: &[u8]) -> Result<Option<PkEpoch>, ConfigError> {
        if self.sampler != Sampler::Pk {
            return Ok(None);
        }
        PkEpoch::of(train_labels, self.classes_per_batch(), self.per_class)
            .map(Some)
            .map_err(|message| ConfigError {
                field: settings::PER_CLASS.key.into(),
                message,
            })
    }

    /// `Ok` when usable, else the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
