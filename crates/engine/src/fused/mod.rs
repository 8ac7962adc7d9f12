//! The notebook's net on the CPU as hand-fused kernels: forward pass, backward pass and Adam
//! over host memory, with the matrix products done by `gemm` (the kernels burn's `flex`
//! backend uses) and everything between them fused into single passes.
//!
//! This is how a training step on the CPU device runs (see `train::Engine`); the device path
//! ([`EmbedNet`](crate::model::EmbedNet) under burn's autodiff) stays the definition it is
//! tested against: same weights, layouts, dropout masks and tie-breaking, so the two agree to
//! float rounding (`tests` below, and `train`'s tests for whole steps). The loss is not here:
//! the trainer runs the TFA-exact loss in burn on the embeddings and hands back its gradient.
//!
//! Per batch, split into chunks of [`CHUNK`] images (run in parallel natively, in turn in wasm;
//! the split does not depend on the thread count, so results do not either):
//!
//! * stage 1 — conv1 (K = 4) evaluated at the four offsets of each 2×2 pooling window, the first
//!   maximum kept (burn's `max_pair` chain keeps the first too), bias, relu and the dropout mask,
//!   written straight into conv2's zero-padded 15×15 input grid. What the backward pass needs is
//!   kept: the winning offset (one byte) and the relu·dropout gate of each unit. The 28×28×64
//!   activation is never stored.
//! * conv2 — four `gemm`s, one per tap, over row-shifted views of that grid (no im2col copy);
//! * stage 2 — 2×2 max-pooling, bias, relu and dropout in one pass, again keeping offset and gate.
//! * the dense layer and the row normalisation on the whole batch.
//!
//! The backward pass mirrors it: the dense layer's products on the whole batch, then per chunk
//! the pooling scatter, conv2's weight gradient and input gradient as `gemm`s on the same
//! shifted views, and conv1's weight gradient accumulated from the kept offsets. Per-chunk
//! partial gradients are summed in chunk order. Adam is Keras' update (see
//! [`AdamSettings::factors`]), element-wise.
//!
//! `products`: the `gemm` calls on row/column views and the per-chunk parallelism; `passes`:
//! the forward and backward passes. This file: [`FusedNet`] (weights, gradients, Adam's moments,
//! reusable buffers) and [`AdamSettings`].

mod passes;
mod products;
#[cfg(test)]
mod tests;

use passes::*;
use products::*;

use crate::model::{
    CONV1, CONV2, EMBEDDING_DIM, FLAT, GRID1, GRID1_CELLS, IMAGE_PIXELS, PARAM_SIZES,
    window_patches,
};

/// Images per chunk of work.
pub const CHUNK: usize = 8;
/// Side of the pooled map after stage 1 (the 15×15 grid less its padding row/column).
const SIDE1: usize = GRID1 - 1;
/// Side of the pooled map after stage 2.
const SIDE2: usize = crate::model::SIDE2;
/// Conv2's taps (kh, kw) as row offsets in the flattened 15×15 grid.
const TAPS: [usize; 4] = [0, 1, GRID1, GRID1 + 1];
/// Zero rows after a chunk's last grid, so that every tap's shifted view stays in bounds.
const TAIL: usize = GRID1 + 1;

/// Adam's settings (the update is Keras', see [`AdamSettings::factors`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSettings {
    /// β₁.
    pub beta_1: f32,
    /// β₂.
    pub beta_2: f32,
    /// ε.
    pub epsilon: f32,
}

impl AdamSettings {
    /// For step `time` (1-based): the step-size factor `√(1 − β₂ᵗ) / (1 − β₁ᵗ)` and the ε of
    /// the update `p −= lr · factor · m / (√v + ε)`. This is Keras' Adam: its ε is the paper's
    /// "ε hat", added to the raw `√v` (burn's `Adam`, which the autodiff engine uses, adds it to
    /// the bias-corrected `√v̂` instead, i.e. its ε is scaled by `√(1 − β₂ᵗ)`; the two differ
    /// only where `√v` is near ε).
    pub fn factors(&self, time: i32) -> (f32, f32) {
        let factor = (1.0 - self.beta_2.powi(time)).sqrt() / (1.0 - self.beta_1.powi(time));
        (factor, self.epsilon)
    }
}

impl AdamSettings {
    /// Keras' Adam (the notebook's optimiser): β 0.9 / 0.999, ε 1e-7.
    pub const KERAS: AdamSettings = AdamSettings {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self::KERAS
    }
}

/// The net's weights, their gradients and Adam's moments, all on the host, plus reusable
/// work buffers.
pub struct FusedNet {
    params: [Vec<f32>; 6],
    grads: [Vec<f32>; 6],
    moment_1: [Vec<f32>; 6],
    moment_2: [Vec<f32>; 6],
    time: i32,
    adam: AdamSettings,
    batch: Batch,
}

/// Activations of the last forward pass that the backward pass needs.
#[derive(Default)]
struct Batch {
    n: usize,
    chunks: Vec<ChunkWork>,
    /// `[n, 1568]`: stage 2's output (the dense layer's input).
    a2: Vec<f32>,
    /// `[n, 256]`: the dense layer's output.
    dense: Vec<f32>,
    /// `[n]`: the norm each row was divided by, and whether it is the row's own norm (the
    /// squared norm is at least the 1e-12 floor, so the norm's gradient flows).
    norms: Vec<(f32, bool)>,
    /// `[n, 256]`: the embeddings.
    embeddings: Vec<f32>,
    /// `[n, 256]` / `[n, 1568]`: gradients w.r.t. the dense output and its input.
    d_dense: Vec<f32>,
    d_a2: Vec<f32>,
}

/// One chunk's buffers.
#[derive(Default)]
struct ChunkWork {
    /// `[m·225 + TAIL, 64]`: conv2's zero-padded input grid.
    a1: Vec<f32>,
    /// `[m, 14, 14, 64]`: winning pooling offset and relu·dropout gate of stage 1.
    arg1: Vec<u8>,
    gate1: Vec<f32>,
    /// `[m·225, 32]`: conv2's output on the grid (rows in the padding are not used).
    y2: Vec<f32>,
    /// `[m, 7, 7, 32]`: winning offset and gate of stage 2.
    arg2: Vec<u8>,
    gate2: Vec<f32>,
    /// Gradients w.r.t. `y2` and `a1`.
    d_y2: Vec<f32>,
    d_a1: Vec<f32>,
    /// This chunk's share of the conv gradients: conv1 kernel, conv1 bias, conv2 kernel, conv2 bias.
    grads: [Vec<f32>; 4],
}

/// `len` zeros.
fn zeroed<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
    v.clear();
    v.resize(len, T::default());
}

/// `len` elements, old contents kept (for buffers every element of which is written before it
/// is read).
fn sized<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
    v.resize(len, T::default());
}

impl FusedNet {
    /// From the six weight tensors, flat, in [`crate::model::WEIGHT_TENSORS`] order and layout.
    /// Panics if a size is wrong (the callers pass tensors of a checked net).
    pub fn new(params: [Vec<f32>; 6], adam: AdamSettings) -> Self {
        for (p, size) in params.iter().zip(PARAM_SIZES) {
            assert_eq!(p.len(), size, "weight tensor size");
        }
        let zeros = || PARAM_SIZES.map(|s| vec![0.0; s]);
        Self {
            params,
            grads: zeros(),
            moment_1: zeros(),
            moment_2: zeros(),
            time: 0,
            adam,
            batch: Batch::default(),
        }
    }

    /// The weights, in [`crate::model::WEIGHT_TENSORS`] order and layout.
    pub fn params(&self) -> &[Vec<f32>; 6] {
        &self.params
    }

    /// The gradients of the last [`FusedNet::backward`].
    pub fn grads(&self) -> &[Vec<f32>; 6] {
        &self.grads
    }

    /// The gradients, to replace (e.g. to apply Adam to gradients computed elsewhere).
    pub fn grads_mut(&mut self) -> &mut [Vec<f32>; 6] {
        &mut self.grads
    }

    /// Unit-norm embeddings (`n × 256`) of `pixels` (`n × 784`, pixels/255) without dropout.
    /// Keeps nothing for a backward pass.
    pub fn embed(&self, pixels: &[f32]) -> Vec<f32> {
        // In pieces, so that the work buffers stay small whatever the number of images.
        const PIECE: usize = 16 * CHUNK;
        let mut batch = Batch::default();
        let mut out = Vec::with_capacity(pixels.len() / IMAGE_PIXELS * EMBEDDING_DIM);
        for piece in pixels.chunks(PIECE * IMAGE_PIXELS) {
            forward(&self.params, &mut batch, piece, None);
            out.extend_from_slice(&batch.embeddings);
        }
        out
    }

    /// Training forward pass: unit-norm embeddings (`n × 256`), with the dropout `masks` of
    /// [`crate::model::DropoutMasks::draw_host`] (or none). Keeps what [`FusedNet::backward`]
    /// needs.
    pub fn forward_train(&mut self, pixels: &[f32], masks: Option<&[Vec<f32>; 2]>) -> &[f32] {
        forward(&self.params, &mut self.batch, pixels, masks);
        &self.batch.embeddings
    }

    /// Gradients of the weights from the gradient of the loss w.r.t. the embeddings of the
    /// last [`FusedNet::forward_train`] (same `pixels`).
    pub fn backward(&mut self, pixels: &[f32], d_embeddings: &[f32]) {
        backward(
            &self.params,
            &mut self.batch,
            &mut self.grads,
            pixels,
            d_embeddings,
        );
    }

    /// One Adam update with the gradients of the last [`FusedNet::backward`]: Keras' update
    /// ([`AdamSettings::factors`]), element by element.
    pub fn adam_step(&mut self, lr: f64) {
        self.time += 1;
        let AdamSettings { beta_1, beta_2, .. } = self.adam;
        let (combined, eps) = self.adam.factors(self.time);
        let lr = lr as f32;
        let (f1, f2) = (1.0 - beta_1, 1.0 - beta_2);
        let mut work = Vec::new();
        for (((p, g), m), v) in self
            .params
            .iter_mut()
            .zip(&self.grads)
            .zip(&mut self.moment_1)
            .zip(&mut self.moment_2)
        {
            const PIECE: usize = 1 << 14;
            work.extend(
                p.chunks_mut(PIECE)
                    .zip(g.chunks(PIECE))
                    .zip(m.chunks_mut(PIECE))
                    .zip(v.chunks_mut(PIECE)),
            );
        }
        each(work, |(((p, g), m), v)| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = *m * beta_1 + g * f1;
                *v = *v * beta_2 + g * g * f2;
                *p -= (*m * combined) / (v.sqrt() + eps) * lr;
            }
        });
    }
}
