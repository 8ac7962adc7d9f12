//! Training: a validated [`TrainConfig`], a [`Trainer`] that performs one optimiser step at a
//! time, and [`run`], the one async driver that turns steps into a stream of [`Event`]s.
//!
//! The driver is shared by the native CLI (driven with `pollster::block_on`, rendering events
//! with a progress bar) and the page (driven by `wasm_bindgen_futures`, folding events into its
//! reducer). Nothing here knows which one it runs under: the [`Host`] supplies the clock, the
//! pause/stop decisions and the yield to the browser's event loop. Device reads on the training
//! path are asynchronous and batched (`read_every` losses per read), so WebGPU is never stalled
//! after every step.

use std::sync::Arc;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backend::cpu_device;
use crate::data::{Dataset, Split, batches, epoch_order};
use crate::fused::{AdamSettings, FusedNet};
use crate::gpu::{EMBED_PIECE, GpuNet, MAX_BATCH as GPU_MAX_BATCH};
use crate::loss::{Metric, Mining, batch_is_usable, triplet_loss};
use crate::metrics::{self, Metrics};
use crate::model::{DropoutMasks, EMBEDDING_DIM, EmbedNet, EmbedNetConfig, IMAGE_PIXELS, Images};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

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
    /// [`StepEngine::Fused`], except for batches above [`crate::gpu::MAX_BATCH`] on a GPU
    /// (then [`StepEngine::Autodiff`]).
    #[default]
    Auto,
    /// Hand-fused kernels: the host kernels of [`crate::fused`] on the CPU device, the WGSL
    /// kernels of [`crate::gpu`] on a wgpu / WebGPU device.
    Fused,
    /// burn's autodiff of [`EmbedNet`] and burn's Adam, on any device (burn places Adam's ε
    /// slightly differently from Keras: see [`AdamSettings::factors`]).
    Autodiff,
}

impl StepEngine {
    /// Name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StepEngine::Auto => "auto",
            StepEngine::Fused => "fused",
            StepEngine::Autodiff => "autodiff",
        }
    }
}

impl std::str::FromStr for StepEngine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(StepEngine::Auto),
            "fused" => Ok(StepEngine::Fused),
            "autodiff" => Ok(StepEngine::Autodiff),
            other => Err(format!("unknown engine '{other}' (expected auto, fused or autodiff)")),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 32,
            lr: 1e-3,
            margin: 1.0,
            metric: Metric::L2,
            mining: Mining::SemiHard,
            soft: false,
            seed: 0,
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
            errors.push(ConfigError { field: field.into(), message })
        };
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            bad("epochs", format!("must be between 1 and {MAX_EPOCHS}"));
        }
        if !(2..=MAX_BATCH).contains(&self.batch_size) {
            bad(
                "batch",
                format!("must be between 2 and {MAX_BATCH} (a triplet needs two examples of a class)"),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            bad("lr", "must be a number in (0, 1]".into());
        }
        if !(self.margin.is_finite() && (0.0..=100.0).contains(&self.margin)) {
            bad("margin", "must be a number between 0 and 100".into());
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            bad("dropout", "must be in [0, 1)".into());
        }
        if self.train_limit == Some(0) || self.train_limit.is_some_and(|n| n < 2) {
            bad("train_limit", "must be at least 2 examples".into());
        }
        if self.test_limit.is_some_and(|n| n < 2) {
            bad("test_limit", "must be at least 2 examples".into());
        }
        if self.read_every == 0 {
            bad("read_every", "must be at least 1".into());
        }
        errors
    }

    /// `Ok` when usable, else the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// Why training could not start or had to stop.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TrainError {
    /// Invalid settings.
    #[error("invalid setting {0}")]
    Config(#[from] ConfigError),
    /// The loss became NaN or infinite (diverged): training stopped.
    #[error("the loss became {value} at epoch {epoch}, step {step}: training stopped (try a smaller learning rate)")]
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

/// What a training run reports, in order. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// An epoch ended.
    EpochEnd {
        /// Epoch (1-based).
        epoch: usize,
        /// Mean loss over the epoch's trained steps (NaN if none was trained).
        mean_loss: f32,
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
    /// Final metrics.
    pub metrics: Metrics,
    /// Training examples per second (optimiser steps only).
    pub examples_per_s: f64,
    /// Seconds of training (steps only, no evaluation).
    pub train_seconds: f64,
    /// Seconds in all.
    pub total_seconds: f64,
}

/// What [`Trainer::step`] did.
pub enum StepOutcome {
    /// A step was taken; `loss` is still on the device.
    Trained {
        /// The batch loss, `[1]`, detached.
        loss: Tensor<1>,
        /// Examples in the batch.
        examples: usize,
    },
    /// The batch was skipped.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// The weights and the optimiser, in the form the step engine works on.
enum Engine {
    /// burn's autodiff and Adam on the device.
    Autodiff { model: EmbedNet, optim: ModuleOptimizer },
    /// The fused host kernels (the CPU device).
    Fused(Box<FusedNet>),
    /// The fused WGSL kernels (a wgpu / WebGPU device).
    Shaders(Box<GpuNet>),
}

/// Which [`Engine`] a trainer builds (chosen once, from the settings and the device).
#[derive(Clone, Copy)]
enum EngineKind {
    Autodiff,
    Host,
    Shaders,
}

/// Keras' Adam: β 0.9 / 0.999, ε 1e-7.
const ADAM: AdamSettings = AdamSettings { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 };

/// Owns the model, the optimiser, the data and the position in the data.
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    engine: Engine,
    train: Dataset,
    test: Dataset,
    order: Vec<usize>,
    epoch: usize,
    cursor: usize,
    dropout_rng: Pcg64Mcg,
}

/// Images embedded per forward pass when embedding a whole set.
const EMBED_CHUNK: usize = 500;

impl Trainer {
    /// Validates `config`, applies the subsets and initialises the model on `device`.
    pub fn new(config: TrainConfig, split: &Split, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let train = match config.train_limit {
            Some(n) => split.train.truncated(n),
            None => split.train.clone(),
        };
        let test = match config.test_limit {
            Some(n) => split.test.truncated(n),
            None => split.test.clone(),
        };
        if train.len() < 2 {
            return Err(TrainError::Data("the training set needs at least 2 examples".into()));
        }
        if test.is_empty() {
            return Err(TrainError::Data("the test set is empty".into()));
        }
        if train.rows * train.cols != IMAGE_PIXELS || test.rows * test.cols != IMAGE_PIXELS {
            return Err(TrainError::Data("images must be 28×28".into()));
        }
        let on_cpu = device.clone().inner() == cpu_device();
        let fits = on_cpu || config.batch_size <= GPU_MAX_BATCH;
        let fused = match config.engine {
            StepEngine::Autodiff => false,
            // Above the WGSL engine's batch limit, burn's autodiff on the GPU.
            StepEngine::Auto => fits,
            StepEngine::Fused if !fits => {
                return Err(TrainError::Config(ConfigError {
                    field: "engine".into(),
                    message: format!("the fused GPU engine takes batches of up to {GPU_MAX_BATCH}"),
                }));
            }
            StepEngine::Fused => true,
        };
        let kind = match (fused, on_cpu) {
            (false, _) => EngineKind::Autodiff,
            (true, true) => EngineKind::Host,
            (true, false) => EngineKind::Shaders,
        };
        let device = device.clone().autodiff();
        let model = EmbedNetConfig::new().init(config.seed, &device);
        let engine = Self::engine_for(model, kind)?;
        Ok(Self::assemble(config, device, engine, train, test))
    }

    fn engine_for(model: EmbedNet, kind: EngineKind) -> Result<Engine, TrainError> {
        match kind {
            EngineKind::Host => {
                let parts = model.to_parts().map_err(|e| TrainError::Device(e.to_string()))?;
                Ok(Engine::Fused(Box::new(FusedNet::new(parts, ADAM))))
            }
            EngineKind::Shaders => {
                let net = GpuNet::new(model.to_flat(), ADAM).map_err(TrainError::Device)?;
                Ok(Engine::Shaders(Box::new(net)))
            }
            EngineKind::Autodiff => {
                let optim = AdamConfig::new()
                    .with_beta_1(ADAM.beta_1)
                    .with_beta_2(ADAM.beta_2)
                    .with_epsilon(ADAM.epsilon)
                    .init();
                Ok(Engine::Autodiff { model: model.train(), optim })
            }
        }
    }

    /// Like [`Trainer::new`] but starting from given weights (e.g. an uploaded file).
    pub fn with_model(
        config: TrainConfig,
        split: &Split,
        device: &Device,
        model: EmbedNet,
    ) -> Result<Self, TrainError> {
        let mut trainer = Self::new(config, split, device)?;
        let kind = match trainer.engine {
            Engine::Autodiff { .. } => EngineKind::Autodiff,
            Engine::Fused(_) => EngineKind::Host,
            Engine::Shaders(_) => EngineKind::Shaders,
        };
        trainer.engine = Self::engine_for(model.to_device(&trainer.device), kind)?;
        Ok(trainer)
    }

    fn assemble(
        config: TrainConfig,
        device: Device,
        engine: Engine,
        train: Dataset,
        test: Dataset,
    ) -> Self {
        let config_seed = config.seed;
        let mut trainer = Self {
            config,
            device,
            engine,
            train,
            test,
            order: Vec::new(),
            epoch: 0,
            cursor: 0,
            dropout_rng: Pcg64Mcg::seed_from_u64(config_seed ^ 0x6472_6f70_6f75_7421),
        };
        trainer.start_epoch(0);
        trainer
    }

    fn start_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
        self.cursor = 0;
        self.order = epoch_order(
            self.train.len(),
            self.config.shuffle_buffer,
            self.config.seed,
            epoch,
        );
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The model being trained (a copy of the weights, on the trainer's device).
    pub fn model(&self) -> EmbedNet {
        match &self.engine {
            Engine::Autodiff { model, .. } => model.clone(),
            Engine::Fused(net) => EmbedNetConfig::new().from_parts(net.params().clone(), &self.device),
            Engine::Shaders(net) => EmbedNetConfig::new().from_flat(net.params().autodiff()),
        }
    }

    /// The engine that computes the steps: [`StepEngine::Fused`] or [`StepEngine::Autodiff`].
    pub fn engine(&self) -> StepEngine {
        match self.engine {
            Engine::Autodiff { .. } => StepEngine::Autodiff,
            Engine::Fused(_) | Engine::Shaders(_) => StepEngine::Fused,
        }
    }

    /// Steps in one epoch (the last batch may be partial).
    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.config.batch_size)
    }

    /// The (possibly truncated) training set.
    pub fn train_set(&self) -> &Dataset {
        &self.train
    }

    /// The (possibly truncated) test set.
    pub fn test_set(&self) -> &Dataset {
        &self.test
    }

    /// Zero-based epoch and step the next call to [`Trainer::step`] will run.
    pub fn position(&self) -> (usize, usize) {
        (self.epoch, self.cursor)
    }

    /// Runs one optimiser step on the next batch and advances; after the last batch of an
    /// epoch the next call starts the following epoch (with a fresh shuffle). Fails only if the
    /// device does (the WGSL engine's launches check their inputs).
    pub fn step(&mut self) -> Result<StepOutcome, TrainError> {
        if self.cursor >= self.steps_per_epoch() {
            self.start_epoch(self.epoch + 1);
        }
        let batch: Vec<usize> = batches(&self.order, self.config.batch_size)
            .nth(self.cursor)
            .expect("cursor within the epoch")
            .to_vec();
        self.cursor += 1;
        let labels = self.train.labels_of(&batch);
        if !batch_is_usable(&labels, self.config.mining) {
            return Ok(StepOutcome::Skipped {
                reason: format!(
                    "no two examples of the same class among the batch's {}",
                    labels.len()
                ),
            });
        }
        let mut pixels = Vec::new();
        self.train.pixels_f32(&batch, &mut pixels);
        let (rate, lr) = (self.config.dropout, self.config.lr);
        let loss_of = |embeddings: Tensor<2>| {
            let c = &self.config;
            triplet_loss(embeddings, &labels, c.margin, c.metric, c.mining, c.soft)
        };
        let loss = match &mut self.engine {
            Engine::Autodiff { model, optim } => {
                let images = Images::new(&pixels, &self.device);
                let masks = DropoutMasks::draw(&mut self.dropout_rng, batch.len(), rate, &self.device);
                let loss = loss_of(model.forward_train(&images, masks.as_ref()));
                // Adam only once the loss is known to be finite (one read of the loss, where the
                // device allows a synchronous one), as the fused engines do: the weights and
                // Adam's moments never take a NaN, and the driver stops the run on its read.
                if loss_is_finite(&loss, &self.device)? {
                    let grads = GradientsParams::from_grads(loss.backward(), &*model);
                    *model = optim.step(lr, model.clone(), grads);
                }
                loss
            }
            Engine::Fused(net) => {
                let masks = DropoutMasks::draw_host(&mut self.dropout_rng, batch.len(), rate);
                let embeddings = net.forward_train(&pixels, masks.as_ref()).to_vec();
                // The loss and its gradient w.r.t. the embeddings in burn (TFA-exact), on the CPU
                // where reading them back is immediate; the weights stay untouched when the loss
                // is not finite (the driver then stops the run).
                let x = Tensor::<2>::from_data(TensorData::new(embeddings, [batch.len(), EMBEDDING_DIM]), &self.device)
                    .require_grad();
                let loss = loss_of(x.clone());
                if loss.clone().into_scalar::<f32>().is_finite() {
                    let grads = loss.backward();
                    let d = x.grad(&grads).map(|g| g.into_data().try_into_vec::<f32>());
                    if let Some(Ok(d)) = d {
                        net.backward(&pixels, &d);
                        net.adam_step(lr);
                    }
                }
                loss
            }
            Engine::Shaders(net) => {
                // As on the host, but nothing leaves the device: the loss and its gradient come
                // from burn's autodiff of the loss alone, and Adam checks the loss itself.
                let masks = DropoutMasks::draw_host(&mut self.dropout_rng, batch.len(), rate);
                let embeddings = net.forward_train(&pixels, masks.as_ref()).map_err(TrainError::Device)?;
                let x = embeddings.autodiff().require_grad();
                let loss = loss_of(x.clone());
                let grads = loss.backward();
                let d = x.grad(&grads).ok_or_else(|| TrainError::Device("the loss has no gradient".into()))?;
                net.backward(d).map_err(TrainError::Device)?;
                net.adam_step(lr, loss.clone().detach().inner()).map_err(TrainError::Device)?;
                loss
            }
        };
        Ok(StepOutcome::Trained {
            loss: loss.detach(),
            examples: batch.len(),
        })
    }

    /// Embeds a whole dataset with dropout off, reading back asynchronously.
    pub async fn embed(&self, set: &Dataset) -> Result<Vec<f32>, TrainError> {
        self.embed_rows(set, 0..set.len()).await
    }

    /// Embeds rows `rows` of `set` with dropout off, reading back asynchronously.
    pub async fn embed_rows(&self, set: &Dataset, rows: std::ops::Range<usize>) -> Result<Vec<f32>, TrainError> {
        let device = self.device.clone().inner();
        let mut out = Vec::with_capacity(rows.len() * EMBEDDING_DIM);
        let all: Vec<usize> = rows.collect();
        let piece = if matches!(self.engine, Engine::Shaders(_)) { EMBED_PIECE } else { EMBED_CHUNK };
        for chunk in all.chunks(piece) {
            let mut pixels = Vec::new();
            set.pixels_f32(chunk, &mut pixels);
            match &self.engine {
                Engine::Autodiff { model, .. } => {
                    let images = Images::new(&pixels, &device);
                    out.extend_from_slice(&read_f32(model.valid().forward(&images)).await?);
                }
                Engine::Fused(net) => out.extend_from_slice(&net.embed(&pixels)),
                Engine::Shaders(net) => {
                    let embeddings = net.embed(&pixels).map_err(TrainError::Device)?;
                    out.extend_from_slice(&read_f32(embeddings).await?);
                }
            }
        }
        Ok(out)
    }
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

/// What the driver needs from whoever runs it (terminal or browser).
#[allow(async_fn_in_trait)]
pub trait Host {
    /// Called before every step. The browser yields to its event loop here and waits while the
    /// user has paused. Return `false` to stop the run (it then ends with `Done { stopped }`).
    async fn proceed(&mut self) -> bool;
    /// Called between the bounded slices of long work (embedding a set, the metrics), so that
    /// a host that must stay responsive can look at its commands; same answer as
    /// [`Host::proceed`]. Long work never runs more than [`SLICE_ROWS`] rows between two calls.
    async fn pulse(&mut self) -> bool {
        true
    }
    /// Called after every epoch end with the trainer, e.g. to keep a host copy of the weights
    /// that survives a lost device. Nothing by default.
    async fn epoch_saved(&mut self, _trainer: &Trainer) {}
    /// Receives every event.
    fn event(&mut self, event: Event);
    /// Milliseconds on a monotonic clock.
    fn now_ms(&self) -> f64;
}

/// Rows embedded (or kNN queries answered) between two [`Host::pulse`] calls: about 20–80 ms
/// of work on the slowest path (one wasm thread), a negligible cost natively.
pub const SLICE_ROWS: usize = 128;

/// Embeds `set` in slices, pulsing the host between them; `None` when the host said stop.
async fn embed_sliced<H: Host>(
    trainer: &Trainer,
    set: &Dataset,
    host: &mut H,
) -> Result<Option<Vec<f32>>, TrainError> {
    let mut out = Vec::new();
    out.try_reserve_exact(set.len() * EMBEDDING_DIM)
        .map_err(|_| TrainError::Data(format!("not enough memory to embed {} images", set.len())))?;
    let mut start = 0;
    while start < set.len() {
        if !host.pulse().await {
            return Ok(None);
        }
        let end = (start + SLICE_ROWS).min(set.len());
        out.extend_from_slice(&trainer.embed_rows(set, start..end).await?);
        start = end;
    }
    Ok(Some(out))
}

/// Computes the metrics in slices of queries, pulsing the host between them; `None` when the
/// host said stop.
async fn evaluate_sliced<H: Host>(
    test: &[f32],
    test_labels: &[u32],
    train: Option<(&[f32], &[u32])>,
    host: &mut H,
) -> Result<Option<Metrics>, TrainError> {
    let mut evaluation = metrics::Evaluation::new(test, test_labels, train, EMBEDDING_DIM)
        .map_err(|e| TrainError::Metrics(e.to_string()))?;
    loop {
        if !host.pulse().await {
            return Ok(None);
        }
        if evaluation.advance(SLICE_ROWS) {
            return Ok(Some(evaluation.finish()));
        }
    }
}

/// Whether a step's loss is finite, read synchronously before the autodiff engine applies Adam.
/// A browser cannot block on WebGPU, so there (and only there: a batch above the WGSL engine's
/// limit, or `engine=autodiff`, on WebGPU) the step is applied unread and the driver stops the
/// run when it reads the loss.
fn loss_is_finite(loss: &Tensor<1>, device: &Device) -> Result<bool, TrainError> {
    if cfg!(target_arch = "wasm32") && device.clone().inner() != cpu_device() {
        return Ok(true);
    }
    let data = loss.clone().try_into_data().map_err(|e| TrainError::Device(format!("{e:?}")))?;
    let values = data.try_into_vec::<f32>().map_err(|e| TrainError::Device(format!("{e:?}")))?;
    Ok(values.iter().all(|v| v.is_finite()))
}

fn to_u32(labels: &[u8]) -> Vec<u32> {
    labels.iter().map(|&l| u32::from(l)).collect()
}

/// Runs `trainer` to the end of its epochs, reporting through `host`. Returns the summary that
/// was also sent as [`Event::Done`], or the error that was also sent as [`Event::Failed`].
pub async fn run<H: Host>(trainer: &mut Trainer, host: &mut H) -> Result<Summary, TrainError> {
    let result = drive(trainer, host).await;
    match &result {
        Ok(summary) => host.event(Event::Done(summary.clone())),
        Err(e) => host.event(Event::Failed(e.clone())),
    }
    result
}

async fn drive<H: Host>(trainer: &mut Trainer, host: &mut H) -> Result<Summary, TrainError> {
    let config = trainer.config().clone();
    let steps_per_epoch = trainer.steps_per_epoch();
    let test_labels = Arc::new(trainer.test_set().labels.clone());
    host.event(Event::Started {
        epochs: config.epochs,
        steps_per_epoch,
        train_examples: trainer.train_set().len(),
        test_examples: trainer.test_set().len(),
    });
    let start = host.now_ms();
    let mut train_ms = 0.0;
    let mut examples = 0usize;
    let mut summary = Summary {
        stopped: false,
        epochs_completed: 0,
        steps: 0,
        skipped_batches: 0,
        epoch_losses: Vec::new(),
        metrics: Metrics::default(),
        examples_per_s: 0.0,
        train_seconds: 0.0,
        total_seconds: 0.0,
    };
    let mut last_test: Option<Arc<Vec<f32>>> = None;
    let mut global_step = 0usize;

    'epochs: for epoch in 1..=config.epochs {
        let mut pending: Vec<(usize, usize, Tensor<1>)> = Vec::new(); // (step, global, loss)
        let mut loss_sum = 0f64;
        let mut trained = 0usize;
        for step in 1..=steps_per_epoch {
            if !host.proceed().await {
                summary.stopped = true;
            }
            if summary.stopped {
                break;
            }
            let t0 = host.now_ms();
            global_step += 1;
            match trainer.step()? {
                StepOutcome::Trained { loss, examples: n } => {
                    examples += n;
                    pending.push((step, global_step, loss));
                }
                StepOutcome::Skipped { reason } => {
                    summary.skipped_batches += 1;
                    host.event(Event::Skipped { epoch, step, reason });
                }
            }
            let flush = pending.len() >= config.read_every || step == steps_per_epoch;
            if flush && !pending.is_empty() {
                let losses = read_losses(&mut pending).await?;
                let now = host.now_ms();
                let busy_s = (train_ms + now - t0) / 1000.0;
                let examples_per_s = if busy_s > 0.0 { examples as f64 / busy_s } else { 0.0 };
                let elapsed_s = (now - start) / 1000.0;
                for (step, global_step, loss) in losses {
                    if !loss.is_finite() {
                        return Err(TrainError::NonFinite { epoch, step, value: loss });
                    }
                    loss_sum += f64::from(loss);
                    trained += 1;
                    summary.steps += 1;
                    host.event(Event::Step {
                        epoch,
                        step,
                        steps_per_epoch,
                        global_step,
                        loss,
                        examples_per_s,
                        elapsed_s,
                    });
                }
            }
            train_ms += host.now_ms() - t0;
            if config.embed_every > 0 && global_step % config.embed_every == 0 && step != steps_per_epoch {
                let Some(vectors) = embed_sliced(trainer, trainer.test_set(), host).await? else {
                    summary.stopped = true;
                    break;
                };
                let vectors = Arc::new(vectors);
                host.event(Event::Embeddings {
                    epoch,
                    global_step,
                    vectors,
                    labels: test_labels.clone(),
                });
            }
        }
        // Losses of a stopped epoch that were not read yet.
        if !pending.is_empty() {
            for (_, _, loss) in read_losses(&mut pending).await? {
                if loss.is_finite() {
                    loss_sum += f64::from(loss);
                    trained += 1;
                    summary.steps += 1;
                }
            }
        }
        // A stopped run ends at once: the embeddings and metrics of the last finished
        // evaluation stay the run's (the host may embed the stopped weights afterwards).
        if summary.stopped {
            break 'epochs;
        }
        let Some(vectors) = embed_sliced(trainer, trainer.test_set(), host).await? else {
            summary.stopped = true;
            break 'epochs;
        };
        let vectors = Arc::new(vectors);
        last_test = Some(vectors.clone());
        host.event(Event::Embeddings {
            epoch,
            global_step,
            vectors: vectors.clone(),
            labels: test_labels.clone(),
        });
        let mean_loss = if trained > 0 { (loss_sum / trained as f64) as f32 } else { f32::NAN };
        let Some(metrics) = evaluate_sliced(&vectors, &to_u32(&test_labels), None, host).await? else {
            summary.stopped = true;
            break 'epochs;
        };
        summary.epoch_losses.push(mean_loss);
        summary.epochs_completed = epoch;
        summary.metrics = metrics.clone();
        host.event(Event::EpochEnd {
            epoch,
            mean_loss,
            metrics,
            elapsed_s: (host.now_ms() - start) / 1000.0,
        });
        host.epoch_saved(trainer).await;
    }

    if config.knn_against_train && !summary.stopped {
        if let Some(test_vectors) = &last_test {
            // Stopped during the final evaluation: the last epoch's metrics stand.
            match embed_sliced(trainer, trainer.train_set(), host).await? {
                None => summary.stopped = true,
                Some(train_vectors) => {
                    let train_labels = to_u32(&trainer.train_set().labels);
                    let train = Some((train_vectors.as_slice(), train_labels.as_slice()));
                    match evaluate_sliced(test_vectors, &to_u32(&test_labels), train, host).await? {
                        None => summary.stopped = true,
                        Some(metrics) => summary.metrics = metrics,
                    }
                }
            }
        }
    }
    summary.train_seconds = train_ms / 1000.0;
    summary.examples_per_s = if train_ms > 0.0 { examples as f64 / (train_ms / 1000.0) } else { 0.0 };
    summary.total_seconds = (host.now_ms() - start) / 1000.0;
    Ok(summary)
}

/// Reads the pending losses in one device round trip.
async fn read_losses(
    pending: &mut Vec<(usize, usize, Tensor<1>)>,
) -> Result<Vec<(usize, usize, f32)>, TrainError> {
    let drained: Vec<_> = pending.drain(..).collect();
    let tensors: Vec<Tensor<1>> = drained.iter().map(|(_, _, t)| t.clone()).collect();
    let values = read_f32(Tensor::cat(tensors, 0)).await?;
    Ok(drained
        .into_iter()
        .zip(values)
        .map(|((s, g, _), v)| (s, g, v))
        .collect())
}

/// Reads a tensor's values back asynchronously (the only kind of read the browser allows); a
/// failure (e.g. a lost GPU device) becomes [`TrainError::Device`].
pub async fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?
        .try_into_vec()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load_dir;

    fn mnist() -> Split {
        load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/mnist")).expect("bundled mnist")
    }

    fn losses(trainer: &mut Trainer, steps: usize) -> Vec<f32> {
        (0..steps)
            .map(|_| match trainer.step().expect("step") {
                StepOutcome::Trained { loss, .. } => loss.into_scalar::<f32>(),
                StepOutcome::Skipped { reason } => panic!("skipped: {reason}"),
            })
            .collect()
    }

    /// The fused CPU engine and burn's autodiff engine take the same steps: same initial
    /// weights, batches and dropout masks. With a negligible learning rate the weights barely
    /// move, so all 22 losses (a partial batch and an epoch rollover included) agree to float
    /// rounding. At the real rate the two Adams differ only in where ε goes (Keras' vs burn's,
    /// see [`AdamSettings::factors`]), which moves weights with near-zero gradients; losses
    /// then agree to a looser bound.
    #[test]
    fn fused_and_autodiff_engines_agree_step_by_step() {
        let split = mnist();
        let config = |engine, lr| TrainConfig {
            // 21 steps per epoch, the last one of 10 images; 22 steps start a second epoch.
            train_limit: Some(650),
            test_limit: Some(64),
            engine,
            lr,
            ..TrainConfig::default()
        };
        let cpu = cpu_device();
        let pair = |lr| {
            let fused = Trainer::new(config(StepEngine::Auto, lr), &split, &cpu).expect("trainer");
            let autodiff = Trainer::new(config(StepEngine::Autodiff, lr), &split, &cpu).expect("trainer");
            (fused, autodiff)
        };
        let (mut fused, mut autodiff) = pair(1e-9);
        assert_eq!(fused.engine(), StepEngine::Fused, "the CPU device defaults to the fused engine");
        assert_eq!(autodiff.engine(), StepEngine::Autodiff);
        let (a, b) = (losses(&mut fused, 22), losses(&mut autodiff, 22));
        for (step, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "lr 1e-9, step {step}: fused {x} vs autodiff {y}");
        }
        let ea = pollster::block_on(fused.embed(fused.test_set())).expect("embed");
        let eb = pollster::block_on(autodiff.embed(autodiff.test_set())).expect("embed");
        let worst = ea.iter().zip(&eb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "embeddings after 22 steps at lr 1e-9 differ by {worst}");
        let (mut fused, mut autodiff) = pair(1e-3);
        let (a, b) = (losses(&mut fused, 22), losses(&mut autodiff, 22));
        for (step, (x, y)) in a.iter().zip(&b).enumerate() {
            let tolerance = if step < 2 { 1e-4 } else { 2e-2 };
            assert!((x - y).abs() <= tolerance * y.abs().max(1.0), "step {step}: fused {x} vs autodiff {y}");
        }
        assert!(a[20] < a[0], "training lowers the loss: {a:?}");
        let ea = pollster::block_on(fused.embed(fused.test_set())).expect("embed");
        // The weights the fused engine exposes are the ones it trains.
        let model = fused.model();
        let mut pixels = Vec::new();
        let all: Vec<usize> = (0..fused.test_set().len()).collect();
        fused.test_set().pixels_f32(&all, &mut pixels);
        let images = Images::new(&pixels, &cpu);
        let direct = model.valid().forward(&images).into_data().try_into_vec::<f32>().expect("f32");
        let worst = ea.iter().zip(&direct).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "model() disagrees with the fused forward by {worst}");
        // Given weights (an uploaded file) are the ones the fused engine starts from.
        let parts = model.to_parts().expect("weights");
        let again = Trainer::with_model(config(StepEngine::Auto, 1e-3), &split, &cpu, model).expect("trainer");
        assert_eq!(again.engine(), StepEngine::Fused);
        assert_eq!(again.model().to_parts().expect("weights"), parts);
    }
}
