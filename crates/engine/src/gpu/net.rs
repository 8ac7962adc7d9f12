//! [`GpuNet`]: the net's weights, Adam's moments and a batch's activations in device buffers,
//! and its passes (forward, backward, Adam) as launches of `kernels`; [`GpuNet::train_step`]
//! runs a whole step with the loss of `loss` between the passes: every upload first, then 14 or
//! 15 launches, so the step reaches the device in one submit, and nothing is read back.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::backend::wgpu::{CubeBackend, CubeTensor, into_contiguous};
use burn::prelude::*;
use burn::tensor::{DType, Shape};
use cubecl::server::Handle;

mod backward;

use super::kernels::*;
use super::loss::{LossSettings, launch_loss};
use super::{PARAMS, max_batch_for};
use crate::fused::AdamSettings;
use crate::model::{CONV1, EMBEDDING_DIM, FLAT, GRID1, GRID1_CELLS, IMAGE_PIXELS};

/// A burn tensor's buffer, contiguous. Fails if the tensor is not on a wgpu device.
pub(super) fn buffer<const D: usize>(tensor: Tensor<D>) -> Result<CubeTensor, String> {
    tensor
        .try_into_primitive::<CubeBackend>()
        .map(into_contiguous)
        .map_err(|e| format!("the WGSL engine needs a wgpu / WebGPU device ({e:?})"))
}

/// A burn tensor on the buffer's device with the buffer's contents.
pub(super) fn tensor<const D: usize>(buffer: CubeTensor) -> Tensor<D> {
    Tensor::from_primitive::<CubeBackend>(buffer)
}

/// A new uninitialised buffer of `len` 32-bit values on `like`'s device.
pub(super) fn empty(like: &CubeTensor, shape: Vec<usize>, dtype: DType) -> CubeTensor {
    let len: usize = shape.iter().product();
    let handle = like.client.empty(len.max(1) * 4);
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::from(shape),
        handle,
        dtype,
    )
}

/// Uploads host values as a flat buffer.
fn upload(values: Vec<f32>, device: &Device) -> Result<CubeTensor, String> {
    let len = values.len();
    buffer(Tensor::<1>::from_data(
        TensorData::new(values, [len]),
        device,
    ))
}

/// The net's weights, Adam's moments and the last batch's activations, on the device.
pub struct GpuNet {
    device: Device,
    /// [`max_batch`] on this device.
    max_batch: usize,
    params: CubeTensor,
    moment_1: CubeTensor,
    moment_2: CubeTensor,
    grads: Option<CubeTensor>,
    time: i32,
    adam: AdamSettings,
    saved: Option<Saved>,
    /// The launch parameters that stay the same from step to step (the batch size, the forward
    /// pass's flags), uploaded once.
    infos: Mutex<HashMap<Vec<u32>, Handle>>,
}

/// What the backward pass needs from the forward pass.
struct Saved {
    n: usize,
    pixels: CubeTensor,
    a1: CubeTensor,
    arg1: CubeTensor,
    gate1: CubeTensor,
    a2: CubeTensor,
    arg2: CubeTensor,
    gate2: CubeTensor,
    z: CubeTensor,
}

/// Forward-pass outputs.
struct Forward {
    a1: CubeTensor,
    a2: CubeTensor,
    z: CubeTensor,
    embeddings: CubeTensor,
    /// Winning offsets and gates (training only).
    kept: Option<[CubeTensor; 4]>,
}

impl GpuNet {
    /// From the weights flattened in [`crate::model::WEIGHT_TENSORS`] order (see
    /// [`crate::model::EmbedNet::to_flat`]), on a wgpu / WebGPU device. Fails on any other
    /// device or if the size is wrong.
    pub fn new(params: Tensor<1>, adam: AdamSettings) -> Result<Self, String> {
        if params.dims()[0] != PARAMS {
            return Err(format!(
                "expected {PARAMS} weights, got {}",
                params.dims()[0]
            ));
        }
        let params = params.inner();
        let device = params.device();
        let zeros = || buffer(Tensor::<1>::zeros([PARAMS], &device));
        let params = buffer(params)?;
        Ok(Self {
            max_batch: max_batch_for(params.client.properties().memory.max_page_size),
            moment_1: zeros()?,
            moment_2: zeros()?,
            params,
            device,
            grads: None,
            time: 0,
            adam,
            saved: None,
            infos: Mutex::new(HashMap::new()),
        })
    }

    /// `values` uploaded as a launch's parameters, once for all the launches that use them.
    fn info(&self, values: &[u32]) -> Handle {
        let mut infos = self.infos.lock().unwrap_or_else(|e| e.into_inner());
        infos
            .entry(values.to_vec())
            .or_insert_with(|| upload_info(&self.params, values))
            .clone()
    }

    /// The dropout masks of [`crate::model::DropoutMasks::draw_host`] for a batch of `n`,
    /// uploaded as bits (bit `e % 32` of word `e / 32` is set where unit `e` is kept: 1/32 of
    /// the floats' bytes), and the kept units' value, the same everywhere (`1 / (1 - rate)`),
    /// which travels with the forward pass's parameters.
    fn masks(&self, masks: &[Vec<f32>; 2], n: usize) -> Result<([CubeTensor; 2], f32), String> {
        let [m1, m2] = masks;
        if m1.len() != n * GRID1_CELLS * CONV1 || m2.len() != n * FLAT {
            return Err("dropout masks of another batch size".into());
        }
        // One pass: the words, the kept value, and whether any other value shows up.
        let (mut scale, mut mixed) = (None::<f32>, false);
        let mut bits = |m: &[f32]| -> Vec<u32> {
            m.chunks(32)
                .map(|c| {
                    c.iter().enumerate().fold(0u32, |w, (k, &v)| {
                        if v == 0.0 {
                            return w;
                        }
                        mixed |= *scale.get_or_insert(v) != v;
                        w | (1 << k)
                    })
                })
                .collect()
        };
        let words = [bits(m1), bits(m2)];
        if mixed {
            return Err("dropout masks hold one value besides 0".into());
        }
        let upload = |words: Vec<u32>| {
            let len = words.len();
            let handle = upload_info(&self.params, &words);
            CubeTensor::new_contiguous(
                self.params.client.clone(),
                self.params.device.clone(),
                Shape::from(vec![len]),
                handle,
                DType::U32,
            )
        };
        let [w1, w2] = words;
        Ok(([upload(w1), upload(w2)], scale.unwrap_or(0.0)))
    }

    /// The weights, flat in [`crate::model::WEIGHT_TENSORS`] order, on the device (no copy is read back).
    pub fn params(&self) -> Tensor<1> {
        tensor(self.params.clone())
    }

    /// The gradients of the last [`GpuNet::backward`], flat like [`GpuNet::params`].
    pub fn grads(&self) -> Option<Tensor<1>> {
        self.grads.clone().map(tensor)
    }

    fn forward(
        &self,
        pixels: &CubeTensor,
        n: usize,
        train: bool,
        masks: Option<([CubeTensor; 2], f32)>,
    ) -> Result<Forward, String> {
        let p = &self.params;
        let scale = masks.as_ref().map_or(0.0, |(_, scale)| *scale);
        let flags = self.info(&[
            n as u32,
            u32::from(train),
            u32::from(masks.is_some()),
            scale.to_bits(),
        ]);
        let rows = self.info(&[n as u32]);
        let [mask1, mask2] = masks
            .map(|(m, _)| m)
            .unwrap_or_else(|| [(); 2].map(|_| empty(p, vec![4], DType::U32)));
        // Unused buffers still need one `vec4` for the kernels that read them as such.
        let kept_len = |len: usize| if train { len } else { 4 };
        let units1 = n * (GRID1 - 1) * (GRID1 - 1) * CONV1;
        let a1 = empty(p, vec![n * GRID1_CELLS * CONV1], DType::F32);
        let arg1 = empty(p, vec![kept_len(units1)], DType::U32);
        let gate1 = empty(p, vec![kept_len(units1)], DType::F32);
        launch(
            STAGE1,
            n * GRID1_CELLS * CONV1,
            &[
                ("pixels", pixels),
                ("params", p),
                ("mask", &mask1),
                ("a1", &a1),
                ("arg1", &arg1),
                ("gate1", &gate1),
            ],
            &flags,
        )?;
        let a2 = empty(p, vec![n * FLAT], DType::F32);
        let arg2 = empty(p, vec![kept_len(n * FLAT)], DType::U32);
        let gate2 = empty(p, vec![kept_len(n * FLAT)], DType::F32);
        launch(
            STAGE2,
            n * FLAT / 4,
            &[
                ("a1", &a1),
                ("params", p),
                ("mask", &mask2),
                ("a2", &a2),
                ("arg2", &arg2),
                ("gate2", &gate2),
            ],
            &flags,
        )?;
        let z = empty(p, vec![n, EMBEDDING_DIM], DType::F32);
        launch(
            DENSE,
            n * EMBEDDING_DIM / 4,
            &[("a2", &a2), ("params", p), ("z", &z)],
            &rows,
        )?;
        let embeddings = empty(p, vec![n, EMBEDDING_DIM], DType::F32);
        launch(
            NORMALIZE,
            n * EMBEDDING_DIM,
            &[("z", &z), ("emb", &embeddings)],
            &rows,
        )?;
        Ok(Forward {
            a1,
            a2,
            z,
            embeddings,
            kept: train.then_some([arg1, gate1, arg2, gate2]),
        })
    }

    fn pixels(&self, pixels: &[f32]) -> Result<(CubeTensor, usize), String> {
        if pixels.is_empty() || !pixels.len().is_multiple_of(IMAGE_PIXELS) {
            return Err(format!(
                "{} pixels are not a whole number of 28×28 images",
                pixels.len()
            ));
        }
        Ok((
            upload(pixels.to_vec(), &self.device)?,
            pixels.len() / IMAGE_PIXELS,
        ))
    }

    /// Unit-norm embeddings `[n, 256]` of `pixels` (`n·784` values, pixels/255, at most
    /// [`max_batch`] images) without dropout, on the device. Keeps nothing for a backward pass.
    pub fn embed(&self, pixels: &[f32]) -> Result<Tensor<2>, String> {
        let (pixels, n) = self.pixels(pixels)?;
        if n > self.max_batch {
            return Err(format!(
                "{n} images at once are above the WGSL engine's {} on this device",
                self.max_batch
            ));
        }
        Ok(tensor(self.forward(&pixels, n, false, None)?.embeddings))
    }

    /// Training forward pass with the dropout `masks` of
    /// [`crate::model::DropoutMasks::draw_host`] (or none): unit-norm embeddings `[n, 256]` on
    /// the device. Keeps what [`GpuNet::backward`] needs.
    pub fn forward_train(
        &mut self,
        pixels: &[f32],
        masks: Option<&[Vec<f32>; 2]>,
    ) -> Result<Tensor<2>, String> {
        let (pixels, n) = self.batch(pixels)?;
        let masks = masks.map(|m| self.masks(m, n)).transpose()?;
        let f = self.forward(&pixels, n, true, masks)?;
        let embeddings = f.embeddings.clone();
        self.keep(n, pixels, f);
        Ok(tensor(embeddings))
    }

    /// A training batch's pixels, uploaded, and its size (at most [`max_batch`] images).
    fn batch(&self, pixels: &[f32]) -> Result<(CubeTensor, usize), String> {
        let (pixels, n) = self.pixels(pixels)?;
        if n > self.max_batch {
            return Err(format!(
                "a batch of {n} images is above the WGSL engine's {} on this device",
                self.max_batch
            ));
        }
        Ok((pixels, n))
    }

    /// One training step on the device: the forward pass of `pixels` with the dropout `masks`
    /// of [`crate::model::DropoutMasks::draw_host`] (or none), the loss of `loss` for `labels`
    /// (one per image), the backward pass and Adam at `lr` (skipped by the kernel when the loss
    /// is not finite). Returns the readout, `[1 +` [`tripletlab_core::run::DEVICE_STATS`]`]` (the loss,
    /// then the mining statistics), on the device. Every upload comes before the first launch.
    pub fn train_step<L: PartialEq>(
        &mut self,
        pixels: &[f32],
        masks: Option<&[Vec<f32>; 2]>,
        labels: &[L],
        loss: LossSettings,
        lr: f64,
    ) -> Result<Tensor<1>, String> {
        let (pixels, n) = self.batch(pixels)?;
        if labels.len() != n {
            return Err(format!("{} labels for a batch of {n}", labels.len()));
        }
        let masks = masks.map(|m| self.masks(m, n)).transpose()?;
        let loss_info = upload_info(
            &self.params,
            &super::loss::info(labels, EMBEDDING_DIM, loss),
        );
        let adam_info = self.adam_info(lr);
        let f = self.forward(&pixels, n, true, masks)?;
        let (readout, d) = launch_loss(
            &f.embeddings,
            (n, EMBEDDING_DIM),
            (loss.mining, loss.metric),
            &loss_info,
        )?;
        self.keep(n, pixels, f);
        self.backward_from(d)?;
        self.adam(&adam_info, &readout)?;
        Ok(tensor(readout))
    }

    /// Keeps what the backward pass needs from a training forward pass.
    fn keep(&mut self, n: usize, pixels: CubeTensor, f: Forward) {
        let [arg1, gate1, arg2, gate2] = f.kept.expect("kept in training");
        self.saved = Some(Saved {
            n,
            pixels,
            a1: f.a1,
            arg1,
            gate1,
            a2: f.a2,
            arg2,
            gate2,
            z: f.z,
        });
    }
}
