//! The [`Trainer`]: owns the model, the optimiser, the data and the position in the data, and
//! takes one optimiser step at a time on the engine chosen once for its settings and device
//! (burn's autodiff, the fused host kernels, or the WGSL kernels).

use burn::prelude::*;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::engine::{Batch, Engine, EngineKind, choose};
use super::{StepEngine, TrainConfig, TrainError};
use crate::backend::cpu_device;
use crate::data::{Dataset, Split, batches, epoch_order};
use crate::gpu;
use crate::loss::batch_is_usable;
use crate::model::{EMBEDDING_DIM, EmbedNet, EmbedNetConfig, IMAGE_PIXELS};

/// What [`Trainer::step`] did (one a step: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum StepOutcome {
    /// A step was taken; `readout` is still on the device.
    Trained {
        /// The batch loss then its mining statistics, `[1 +` [`super::DEVICE_STATS`]`]`,
        /// detached (see [`super::MiningStats::from_device`]).
        readout: Tensor<1>,
        /// Examples in the batch.
        examples: usize,
    },
    /// The batch was skipped.
    Skipped {
        /// Why.
        reason: String,
    },
}

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
            return Err(TrainError::Data(
                "the training set needs at least 2 examples".into(),
            ));
        }
        if test.is_empty() {
            return Err(TrainError::Data("the test set is empty".into()));
        }
        if train.rows * train.cols != IMAGE_PIXELS || test.rows * test.cols != IMAGE_PIXELS {
            return Err(TrainError::Data("images must be 28×28".into()));
        }
        let on_cpu = device.clone().inner() == cpu_device();
        // The WGSL engine's limit comes from the device's largest storage binding.
        let wgsl_max = if on_cpu { None } else { gpu::max_batch(device) };
        let kind = choose(config.engine, on_cpu, config.batch_size, wgsl_max)?;
        let device = device.clone().autodiff();
        let model = EmbedNetConfig::new().init(config.seed, &device);
        let engine = Engine::build(kind, model)?;
        Ok(Self::assemble(config, device, engine, train, test))
    }

    /// Like [`Trainer::new`] but starting from given weights (e.g. an uploaded file).
    pub fn with_model(
        config: TrainConfig,
        split: &Split,
        device: &Device,
        model: EmbedNet,
    ) -> Result<Self, TrainError> {
        let mut trainer = Self::new(config, split, device)?;
        trainer.engine = Engine::build(trainer.engine.kind(), model.to_device(&trainer.device))?;
        Ok(trainer)
    }

    /// How a host starts a run: from safetensors `weights` (a name for the error, and the bytes)
    /// when there are some, else from the seed's initialisation ([`Trainer::new`]). The error
    /// is the host's one line: the weights' name and what is wrong with them, or the trainer's.
    pub fn starting_from(
        config: TrainConfig,
        split: &Split,
        device: &Device,
        weights: Option<(&str, &[u8])>,
    ) -> Result<Self, String> {
        match weights {
            Some((name, bytes)) => {
                let model = EmbedNetConfig::new()
                    .load_safetensors(bytes, device)
                    .map_err(|e| format!("{name}: {e}"))?;
                Self::with_model(config, split, device, model)
            }
            None => Self::new(config, split, device),
        }
        .map_err(|e| e.to_string())
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
        self.engine.model(&self.device)
    }

    /// The engine that computes the steps: [`StepEngine::Fused`] or [`StepEngine::Autodiff`].
    pub fn engine(&self) -> StepEngine {
        match self.engine.kind() {
            EngineKind::Autodiff => StepEngine::Autodiff,
            EngineKind::Host | EngineKind::Wgsl => StepEngine::Fused,
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
        let readout = self.engine.step(
            Batch {
                pixels: &pixels,
                labels: &labels,
            },
            &self.config,
            &mut self.dropout_rng,
            &self.device,
        )?;
        Ok(StepOutcome::Trained {
            readout,
            examples: batch.len(),
        })
    }

    /// Embeds a whole dataset with dropout off, reading back asynchronously.
    pub async fn embed(&self, set: &Dataset) -> Result<Vec<f32>, TrainError> {
        self.embed_rows(set, 0..set.len()).await
    }

    /// Embeds rows `rows` of `set` with dropout off, reading back asynchronously.
    pub async fn embed_rows(
        &self,
        set: &Dataset,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<f32>, TrainError> {
        let device = self.device.clone().inner();
        let mut out = Vec::with_capacity(rows.len() * EMBEDDING_DIM);
        let all: Vec<usize> = rows.collect();
        for chunk in all.chunks(self.engine.embed_piece()) {
            let mut pixels = Vec::new();
            set.pixels_f32(chunk, &mut pixels);
            out.extend_from_slice(&self.engine.embed(&pixels, &device).await?);
        }
        Ok(out)
    }
}

/// Reads a tensor's values back asynchronously (the only kind of read the browser allows); a
/// failure (e.g. a lost GPU device) becomes [`TrainError::Device`].
pub async fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data_async()
        .await
        .map_err(TrainError::device)?
        .try_into_vec()
        .map_err(TrainError::device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load_dir;
    use crate::model::Images;

    fn mnist() -> Split {
        load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/mnist"))
            .expect("bundled mnist")
    }

    fn losses(trainer: &mut Trainer, steps: usize) -> Vec<f32> {
        (0..steps)
            .map(|_| match trainer.step().expect("step") {
                StepOutcome::Trained { readout, .. } => readout.slice(0..1).into_scalar::<f32>(),
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
            let autodiff =
                Trainer::new(config(StepEngine::Autodiff, lr), &split, &cpu).expect("trainer");
            (fused, autodiff)
        };
        let (mut fused, mut autodiff) = pair(1e-9);
        assert_eq!(
            fused.engine(),
            StepEngine::Fused,
            "the CPU device defaults to the fused engine"
        );
        assert_eq!(autodiff.engine(), StepEngine::Autodiff);
        let (a, b) = (losses(&mut fused, 22), losses(&mut autodiff, 22));
        for (step, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                "lr 1e-9, step {step}: fused {x} vs autodiff {y}"
            );
        }
        let ea = pollster::block_on(fused.embed(fused.test_set())).expect("embed");
        let eb = pollster::block_on(autodiff.embed(autodiff.test_set())).expect("embed");
        let worst = ea
            .iter()
            .zip(&eb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-5,
            "embeddings after 22 steps at lr 1e-9 differ by {worst}"
        );
        let (mut fused, mut autodiff) = pair(1e-3);
        let (a, b) = (losses(&mut fused, 22), losses(&mut autodiff, 22));
        for (step, (x, y)) in a.iter().zip(&b).enumerate() {
            let tolerance = if step < 2 { 1e-4 } else { 2e-2 };
            assert!(
                (x - y).abs() <= tolerance * y.abs().max(1.0),
                "step {step}: fused {x} vs autodiff {y}"
            );
        }
        assert!(a[20] < a[0], "training lowers the loss: {a:?}");
        let ea = pollster::block_on(fused.embed(fused.test_set())).expect("embed");
        // The weights the fused engine exposes are the ones it trains.
        let model = fused.model();
        let mut pixels = Vec::new();
        let all: Vec<usize> = (0..fused.test_set().len()).collect();
        fused.test_set().pixels_f32(&all, &mut pixels);
        let images = Images::new(&pixels, &cpu);
        let direct = model
            .valid()
            .forward(&images)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let worst = ea
            .iter()
            .zip(&direct)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-5,
            "model() disagrees with the fused forward by {worst}"
        );
        // Given weights (an uploaded file) are the ones the fused engine starts from.
        let parts = model.to_parts().expect("weights");
        let again = Trainer::with_model(config(StepEngine::Auto, 1e-3), &split, &cpu, model)
            .expect("trainer");
        assert_eq!(again.engine(), StepEngine::Fused);
        assert_eq!(again.model().to_parts().expect("weights"), parts);
    }
}
