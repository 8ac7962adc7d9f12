//! The [`Trainer`]: owns the model, the optimiser, the data and the position in the data, and
//! takes one optimiser step at a time on the engine chosen once for its settings and device
//! (burn's autodiff, the fused host kernels, or the WGSL kernels).

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::{ConfigError, StepEngine, TrainConfig, TrainError};
use crate::backend::cpu_device;
use crate::data::{Dataset, Split, batches, epoch_order};
use crate::fused::{AdamSettings, FusedNet};
use crate::gpu::{self, EMBED_PIECE, GpuNet};
use crate::loss::{batch_is_usable, triplet_loss};
use crate::model::{DropoutMasks, EMBEDDING_DIM, EmbedNet, EmbedNetConfig, IMAGE_PIXELS, Images};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

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
    Autodiff {
        model: EmbedNet,
        optim: ModuleOptimizer,
    },
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
const ADAM: AdamSettings = AdamSettings {
    beta_1: 0.9,
    beta_2: 0.999,
    epsilon: 1e-7,
};

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
        let gpu_max = if on_cpu { None } else { gpu::max_batch(device) };
        let fits = on_cpu || gpu_max.is_some_and(|max| config.batch_size <= max);
        let fused = match config.engine {
            StepEngine::Autodiff => false,
            // Above the WGSL engine's batch limit, burn's autodiff on the GPU.
            StepEngine::Auto => fits,
            StepEngine::Fused if !fits => {
                return Err(TrainError::Config(ConfigError {
                    field: "engine".into(),
                    message: format!(
                        "the fused GPU engine takes batches of up to {} on this device",
                        gpu_max.unwrap_or(0)
                    ),
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
                let parts = model
                    .to_parts()
                    .map_err(|e| TrainError::Device(e.to_string()))?;
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
                Ok(Engine::Autodiff {
                    model: model.train(),
                    optim,
                })
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
            Engine::Fused(net) => {
                EmbedNetConfig::new().from_parts(net.params().clone(), &self.device)
            }
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
                let masks =
                    DropoutMasks::draw(&mut self.dropout_rng, batch.len(), rate, &self.device);
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
                let x = Tensor::<2>::from_data(
                    TensorData::new(embeddings, [batch.len(), EMBEDDING_DIM]),
                    &self.device,
                )
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
                let embeddings = net
                    .forward_train(&pixels, masks.as_ref())
                    .map_err(TrainError::Device)?;
                let x = embeddings.autodiff().require_grad();
                let loss = loss_of(x.clone());
                let grads = loss.backward();
                let d = x
                    .grad(&grads)
                    .ok_or_else(|| TrainError::Device("the loss has no gradient".into()))?;
                net.backward(d).map_err(TrainError::Device)?;
                net.adam_step(lr, loss.clone().detach().inner())
                    .map_err(TrainError::Device)?;
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
    pub async fn embed_rows(
        &self,
        set: &Dataset,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<f32>, TrainError> {
        let device = self.device.clone().inner();
        let mut out = Vec::with_capacity(rows.len() * EMBEDDING_DIM);
        let all: Vec<usize> = rows.collect();
        let piece = if matches!(self.engine, Engine::Shaders(_)) {
            EMBED_PIECE
        } else {
            EMBED_CHUNK
        };
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

/// Whether a step's loss is finite, read synchronously before the autodiff engine applies Adam.
/// A browser cannot block on WebGPU, so there (and only there: a batch above the WGSL engine's
/// limit, or `engine=autodiff`, on WebGPU) the step is applied unread and the driver stops the
/// run when it reads the loss.
fn loss_is_finite(loss: &Tensor<1>, device: &Device) -> Result<bool, TrainError> {
    if cfg!(target_arch = "wasm32") && device.clone().inner() != cpu_device() {
        return Ok(true);
    }
    let data = loss.clone().try_into_data().map_err(TrainError::device)?;
    let values = data.try_into_vec::<f32>().map_err(TrainError::device)?;
    Ok(values.iter().all(|v| v.is_finite()))
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

    fn mnist() -> Split {
        load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/mnist"))
            .expect("bundled mnist")
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
