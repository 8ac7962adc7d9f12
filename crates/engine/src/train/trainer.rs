//! The [`Trainer`]: owns the model, the optimiser, the data and the position in the data, and
//! takes one optimiser step at a time on the engine chosen once for its settings and device
//! (burn's autodiff, the fused host kernels, or the WGSL kernels), in the order of the chosen
//! [`Sampler`] and at the rate of the learning-rate schedule ([`lr_at`]).

use burn::prelude::*;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::engine::{Batch, Engine, EngineKind, choose};
use crate::device::cpu_device;
use crate::gpu;
use crate::loss::batch_is_usable;
use crate::model::{EMBEDDING_DIM, EmbedNet, EmbedNetConfig, IMAGE_PIXELS};
use tripletlab_core::data::{Dataset, PkEpoch, Split, batches, epoch_order, pk_order};
use tripletlab_core::run::{Sampler, StepEngine, TrainConfig, TrainError, lr_at};

/// What [`Trainer::step`] did (one a step: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum StepOutcome {
    /// A step was taken; `readout` is still on the device.
    Trained {
        /// The batch loss then its mining statistics, `[1 +` [`tripletlab_core::run::DEVICE_STATS`]`]`,
        /// detached (see [`tripletlab_core::run::MiningStats::from_device`]).
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
    /// The shape of a P×K epoch ([`Sampler::Pk`]).
    pk: Option<PkEpoch>,
    order: Vec<usize>,
    epoch: usize,
    cursor: usize,
    dropout_rng: Pcg64Mcg,
    /// The last batch trained on: `(epoch, step in the epoch)` of its step (1-based) and its
    /// training-set rows.
    last_trained: Option<((usize, usize), Vec<usize>)>,
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
        let pk = config.pk_epoch(&train.labels)?;
        let on_cpu = device.clone().inner() == cpu_device();
        // The WGSL engine's limit comes from the device's largest storage binding.
        let wgsl_max = if on_cpu { None } else { gpu::max_batch(device) };
        let kind = choose(config.engine, on_cpu, config.batch_size, wgsl_max)?;
        let device = device.clone().autodiff();
        let model = EmbedNetConfig::new().init(config.seed, &device);
        let engine = Engine::build(kind, model)?;
        Ok(Self::assemble(config, device, engine, (train, test), pk))
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
        (train, test): (Dataset, Dataset),
        pk: Option<PkEpoch>,
    ) -> Self {
        let config_seed = config.seed;
        let mut trainer = Self {
            config,
            device,
            engine,
            train,
            test,
            pk,
            order: Vec::new(),
            epoch: 0,
            cursor: 0,
            dropout_rng: Pcg64Mcg::seed_from_u64(config_seed ^ 0x6472_6f70_6f75_7421),
            last_trained: None,
        };
        trainer.start_epoch(0);
        trainer
    }

    fn start_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
        self.cursor = 0;
        let c = &self.config;
        self.order = match c.sampler {
            Sampler::Shuffle => epoch_order(self.train.len(), c.shuffle_buffer, c.seed, epoch),
            Sampler::Pk => pk_order(
                &self.train.labels,
                c.classes_per_batch(),
                c.per_class,
                c.seed,
                epoch,
            ),
        };
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
            EngineKind::FusedCpu | EngineKind::FusedWgsl => StepEngine::Fused,
        }
    }

    /// Steps in one epoch: with the shuffle buffer, the whole set in batches (the last one may
    /// be partial); with P×K batches, [`PkEpoch::batches`] (the same every epoch).
    pub fn steps_per_epoch(&self) -> usize {
        match &self.pk {
            Some(pk) => pk.batches,
            None => self.train.len().div_ceil(self.config.batch_size),
        }
    }

    /// The shape of every epoch when batches are P×K ([`Sampler::Pk`]).
    pub fn pk_epoch(&self) -> Option<&PkEpoch> {
        self.pk.as_ref()
    }

    /// The learning rate of the next step ([`lr_at`] over the run's steps).
    pub fn lr(&self) -> f64 {
        let spe = self.steps_per_epoch();
        let (epoch, cursor) = if self.cursor >= spe {
            (self.epoch + 1, 0)
        } else {
            (self.epoch, self.cursor)
        };
        lr_at(&self.config, epoch * spe + cursor, self.config.epochs * spe)
    }

    /// The (possibly truncated) training set.
    pub fn train_set(&self) -> &Dataset {
        &self.train
    }

    /// The (possibly truncated) test set.
    pub fn test_set(&self) -> &Dataset {
        &self.test
    }

    /// The last batch a step trained on: `(epoch, step in the epoch)` of that step (1-based, as
    /// the driver counts them) and its training-set rows; `None` before the first.
    pub fn last_trained(&self) -> Option<((usize, usize), &[usize])> {
        self.last_trained
            .as_ref()
            .map(|(at, rows)| (*at, rows.as_slice()))
    }

    /// Zero-based epoch and step the next call to [`Trainer::step`] will run.
    pub fn position(&self) -> (usize, usize) {
        (self.epoch, self.cursor)
    }

    /// Runs one optimiser step on the next batch and advances; after the last batch of an
    /// epoch the next call starts the following epoch (with a fresh shuffle). Fails only if the
    /// device does (the WGSL engine's launches check their inputs).
    pub fn step(&mut self) -> Result<StepOutcome, TrainError> {
        let lr = self.lr();
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
        // The engines read the rate from the settings they are given: the run's, at this
        // step's rate (the same bits as `lr` with the notebook's constant schedule).
        let config = TrainConfig {
            lr,
            ..self.config.clone()
        };
        let readout = self.engine.step(
            Batch {
                pixels: &pixels,
                labels: &labels,
            },
            &config,
            &mut self.dropout_rng,
            &self.device,
        )?;
        let at = (self.epoch + 1, self.cursor);
        let examples = batch.len();
        self.last_trained = Some((at, batch));
        Ok(StepOutcome::Trained { readout, examples })
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
    use crate::model::Images;
    use tripletlab_core::data::load_dir;

    fn mnist() -> Split {
        load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/data/mnist"))
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

    /// Every engine takes the schedule's rate at each step: with a warm-up of 2⁴⁰ steps the
    /// first steps' rates are ~1e-15, which leaves float32 weights where they were, while the
    /// notebook's constant rate moves them. The trainer's rate follows [`lr_at`] across an
    /// epoch's end.
    #[test]
    fn the_schedule_s_rate_reaches_every_engine() {
        let split = mnist();
        let cpu = cpu_device();
        for engine in [StepEngine::Auto, StepEngine::Autodiff] {
            let config = |warmup_steps| TrainConfig {
                train_limit: Some(96),
                test_limit: Some(32),
                engine,
                lr_schedule: tripletlab_core::run::LrSchedule::Cosine,
                warmup_steps,
                ..TrainConfig::default()
            };
            let start = Trainer::new(config(0), &split, &cpu)
                .expect("trainer")
                .model()
                .to_parts()
                .expect("weights");
            let drift = |trainer: &Trainer| {
                let now = trainer.model().to_parts().expect("weights");
                now.iter()
                    .zip(&start)
                    .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
                    .fold(0f32, f32::max)
            };
            let mut warming = Trainer::new(config(1 << 40), &split, &cpu).expect("trainer");
            let mut plain = Trainer::new(config(0), &split, &cpu).expect("trainer");
            // 3 steps an epoch, 5 epochs: 15 steps in all.
            assert_eq!(plain.steps_per_epoch(), 3);
            for step in 0..4 {
                let c = plain.config().clone();
                assert_eq!(plain.lr(), lr_at(&c, step, 15), "{engine:?} step {step}");
                losses(&mut warming, 1);
                losses(&mut plain, 1);
            }
            assert_eq!(plain.position(), (1, 1), "into the second epoch");
            assert!(drift(&warming) < 1e-9, "{engine:?}: {}", drift(&warming));
            assert!(drift(&plain) > 1e-4, "{engine:?}: {}", drift(&plain));
        }
    }
}
