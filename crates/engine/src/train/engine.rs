//! The three ways a step is computed, each owning its weights, its step, its embedding and its
//! copy-out of the model: [`Engine::Autodiff`] (burn's autodiff and Adam, any device),
//! [`Engine::FusedCpu`] (the hand-fused host kernels of [`crate::fused`], the CPU device) and
//! [`Engine::FusedWgsl`] (the WGSL kernels of [`crate::gpu`], a wgpu / WebGPU device). Which one is
//! decided once, by [`choose`] (pure). Knows no data order and no driver: the trainer hands it a
//! batch.

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand_pcg::Pcg64Mcg;

use super::read_f32;
use crate::device::cpu_device;
use crate::fused::{AdamSettings, FusedNet};
use crate::gpu::{EMBED_PIECE, GpuNet, LossSettings};
use crate::loss::{Mined, Selection, mined_loss};
use crate::model::{DropoutMasks, EMBEDDING_DIM, EmbedNet, EmbedNetConfig, Images};
use tripletlab_core::run::{ConfigError, StepEngine, TrainConfig, TrainError};

/// Which [`Engine`]: the same three names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Autodiff,
    FusedCpu,
    FusedWgsl,
}

/// The engine for the requested `engine` setting, on the CPU device (`on_cpu`) or a wgpu one
/// whose WGSL engine takes batches up to `wgsl_max` (`None`: it cannot run there).
pub fn choose(
    requested: StepEngine,
    on_cpu: bool,
    batch_size: usize,
    wgsl_max: Option<usize>,
) -> Result<EngineKind, ConfigError> {
    let fused = if on_cpu {
        EngineKind::FusedCpu
    } else {
        EngineKind::FusedWgsl
    };
    let fits = on_cpu || wgsl_max.is_some_and(|max| batch_size <= max);
    match requested {
        StepEngine::Autodiff => Ok(EngineKind::Autodiff),
        // Above the WGSL engine's batch limit, burn's autodiff on the GPU.
        StepEngine::Auto if fits => Ok(fused),
        StepEngine::Auto => Ok(EngineKind::Autodiff),
        StepEngine::Fused if fits => Ok(fused),
        StepEngine::Fused => Err(ConfigError {
            field: tripletlab_core::run::settings::ENGINE.key.into(),
            message: format!(
                "the fused GPU engine takes batches of up to {} on this device",
                wgsl_max.unwrap_or(0)
            ),
        }),
    }
}

/// The weights and the optimiser, in the form the engine works on. One per trainer, made once:
/// the autodiff variant's size (burn's module and optimiser, inline) costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    /// burn's autodiff and Adam on the device.
    Autodiff {
        model: EmbedNet,
        optim: ModuleOptimizer,
    },
    /// The fused CPU kernels (the CPU device).
    FusedCpu(Box<FusedNet>),
    /// The fused WGSL kernels (a wgpu / WebGPU device).
    FusedWgsl(Box<GpuNet>),
}

/// One batch, ready for a step.
pub struct Batch<'a> {
    /// `n·784` values, pixels/255.
    pub pixels: &'a [f32],
    /// The `n` labels.
    pub labels: &'a [u8],
}

/// Images embedded per forward pass when the host or autodiff engine embeds a whole set.
const EMBED_CHUNK: usize = 500;

impl Engine {
    /// `kind` with the weights of `model` (on the trainer's autodiff device).
    pub fn build(kind: EngineKind, model: EmbedNet) -> Result<Self, TrainError> {
        let adam = AdamSettings::KERAS;
        Ok(match kind {
            EngineKind::FusedCpu => {
                let parts = model
                    .to_parts()
                    .map_err(|e| TrainError::Device(e.to_string()))?;
                Engine::FusedCpu(Box::new(FusedNet::new(parts, adam)))
            }
            EngineKind::FusedWgsl => {
                let net = GpuNet::new(model.to_flat(), adam).map_err(TrainError::Device)?;
                Engine::FusedWgsl(Box::new(net))
            }
            EngineKind::Autodiff => Engine::Autodiff {
                model: model.train(),
                optim: AdamConfig::new()
                    .with_beta_1(adam.beta_1)
                    .with_beta_2(adam.beta_2)
                    .with_epsilon(adam.epsilon)
                    .init(),
            },
        })
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Engine::Autodiff { .. } => EngineKind::Autodiff,
            Engine::FusedCpu(_) => EngineKind::FusedCpu,
            Engine::FusedWgsl(_) => EngineKind::FusedWgsl,
        }
    }

    /// A copy of the weights as the reference net, on `device` (the trainer's autodiff one).
    pub fn model(&self, device: &Device) -> EmbedNet {
        match self {
            Engine::Autodiff { model, .. } => model.clone(),
            Engine::FusedCpu(net) => EmbedNetConfig::new().from_parts(net.params().clone(), device),
            Engine::FusedWgsl(net) => EmbedNetConfig::new().from_flat(net.params().autodiff()),
        }
    }

    /// One optimiser step on `batch` with the settings of `config`, dropout masks from `rng`;
    /// returns the batch loss followed by its [`tripletlab_core::run::MiningStats`] sums (`[1 +`
    /// [`tripletlab_core::run::DEVICE_STATS`]`]`, detached), still on the device, to be read in one go. Every
    /// engine leaves the weights untouched when the loss is not finite (where it can read it:
    /// see [`loss_is_finite`]).
    pub fn step(
        &mut self,
        batch: Batch<'_>,
        config: &TrainConfig,
        rng: &mut Pcg64Mcg,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError> {
        let n = batch.labels.len();
        let (rate, lr) = (config.dropout, config.lr);
        let loss_of = |embeddings: Tensor<2>| {
            let c = config;
            let mining = (c.mining, c.soft);
            mined_loss(
                embeddings,
                batch.labels,
                c.margin,
                c.metric,
                mining,
                Selection::Auto,
            )
        };
        match self {
            Engine::Autodiff { model, optim } => {
                let images = Images::new(batch.pixels, device);
                let masks = DropoutMasks::draw(rng, n, rate, device);
                let mined = loss_of(model.forward_train(&images, masks.as_ref()));
                let loss = mined.loss.clone();
                // Adam only once the loss is known to be finite (one read of the loss, where the
                // device allows a synchronous one), as the fused engines do: the weights and
                // Adam's moments never take a NaN, and the driver stops the run on its read.
                if loss_is_finite(&loss, device)? {
                    let grads = GradientsParams::from_grads(loss.backward(), &*model);
                    *model = optim.step(lr, model.clone(), grads);
                }
                Ok(readout(mined))
            }
            Engine::FusedCpu(net) => {
                let masks = DropoutMasks::draw_host(rng, n, rate);
                let embeddings = net.forward_train(batch.pixels, masks.as_ref()).to_vec();
                // The bridge from the loss to the kernels: the loss and its gradient w.r.t. the
                // embeddings in burn (TFA-exact), on the CPU where reading them back is
                // immediate; the weights stay untouched when the loss is not finite (the driver
                // then stops the run).
                let x =
                    Tensor::<2>::from_data(TensorData::new(embeddings, [n, EMBEDDING_DIM]), device)
                        .require_grad();
                let mined = loss_of(x.clone());
                let loss = mined.loss.clone();
                if loss.clone().into_scalar::<f32>().is_finite() {
                    let grads = loss.backward();
                    let d = x.grad(&grads).map(|g| g.into_data().try_into_vec::<f32>());
                    if let Some(Ok(d)) = d {
                        net.backward(batch.pixels, &d);
                        net.adam_step(lr);
                    }
                }
                Ok(readout(mined))
            }
            Engine::FusedWgsl(net) => {
                // The whole step on the device, the loss as WGSL kernels too (`gpu::loss`):
                // nothing leaves it, and Adam checks the loss itself.
                let masks = DropoutMasks::draw_host(rng, n, rate);
                let loss = LossSettings {
                    margin: config.margin,
                    metric: config.metric,
                    mining: config.mining,
                    soft: config.soft,
                };
                net.train_step(batch.pixels, masks.as_ref(), batch.labels, loss, lr)
                    .map_err(TrainError::Device)
            }
        }
    }

    /// Images per forward pass when embedding a set (bounds the work buffers).
    pub fn embed_piece(&self) -> usize {
        match self {
            Engine::FusedWgsl(_) => EMBED_PIECE,
            _ => EMBED_CHUNK,
        }
    }

    /// Unit-norm embeddings of `pixels` (at most [`Engine::embed_piece`] images), dropout off,
    /// read back asynchronously; `device` is the plain (not autodiff) device.
    pub async fn embed(&self, pixels: &[f32], device: &Device) -> Result<Vec<f32>, TrainError> {
        match self {
            Engine::Autodiff { model, .. } => {
                read_f32(model.valid().forward(&Images::new(pixels, device))).await
            }
            Engine::FusedCpu(net) => Ok(net.embed(pixels)),
            Engine::FusedWgsl(net) => {
                read_f32(net.embed(pixels).map_err(TrainError::Device)?).await
            }
        }
    }
}

/// What a step leaves on the device for the driver's read: the loss, then the statistics.
fn readout(mined: Mined) -> Tensor<1> {
    Tensor::cat(vec![mined.loss.detach(), mined.stats], 0)
}

/// Whether a step's loss is finite, read synchronously before the autodiff engine applies Adam.
/// A browser cannot block on WebGPU, so there (and only there: `engine=autodiff` or a batch
/// above the WGSL engine's limit, neither of which the page offers) the step is applied unread
/// and the driver stops the run when it reads the loss.
fn loss_is_finite(loss: &Tensor<1>, device: &Device) -> Result<bool, TrainError> {
    if cfg!(target_arch = "wasm32") && device.clone().inner() != cpu_device() {
        return Ok(true);
    }
    let data = loss.clone().try_into_data().map_err(TrainError::device)?;
    let values = data.try_into_vec::<f32>().map_err(TrainError::device)?;
    Ok(values.iter().all(|v| v.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_chosen_from_the_setting_the_device_and_the_batch() {
        use EngineKind::*;
        use StepEngine as S;
        // CPU: the fused CPU kernels, whatever the batch; autodiff when asked.
        assert_eq!(choose(S::Auto, true, 4096, None), Ok(FusedCpu));
        assert_eq!(choose(S::Fused, true, 32, None), Ok(FusedCpu));
        assert_eq!(choose(S::Autodiff, true, 32, None), Ok(Autodiff));
        // A GPU: the WGSL kernels up to their limit, then burn's autodiff (or a refusal).
        assert_eq!(choose(S::Auto, false, 2330, Some(2330)), Ok(FusedWgsl));
        assert_eq!(choose(S::Auto, false, 2331, Some(2330)), Ok(Autodiff));
        assert_eq!(choose(S::Fused, false, 2330, Some(2330)), Ok(FusedWgsl));
        let refused = choose(S::Fused, false, 2331, Some(2330)).unwrap_err();
        assert_eq!(refused.field, "engine");
        assert!(
            refused.message.contains("up to 2330"),
            "{}",
            refused.message
        );
        assert_eq!(
            choose(S::Auto, false, 32, None),
            Ok(Autodiff),
            "no WGSL engine there"
        );
    }
}
