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

use crate::model::{
    CONV1, CONV2, EMBEDDING_DIM, FLAT, GRID1, GRID1_CELLS, IMAGE_PIXELS, PARAM_SIZES,
    window_patches,
};

/// Images per chunk of work.
pub const CHUNK: usize = 8;
/// Side of the pooled map after stage 1 (the 15×15 grid less its padding row/column).
const SIDE1: usize = GRID1 - 1;
/// Side of the pooled map after stage 2.
const SIDE2: usize = 7;
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

/// Runs `f` on every item: on rayon's pool natively, in turn in wasm.
#[cfg(not(target_arch = "wasm32"))]
fn each<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync + Send) {
    use rayon::prelude::*;
    items.into_par_iter().for_each(f);
}

#[cfg(target_arch = "wasm32")]
fn each<T>(items: Vec<T>, f: impl Fn(T)) {
    items.into_iter().for_each(f);
}

/// Parallelism for a product over the whole batch.
fn batch_parallelism() -> gemm::Parallelism {
    #[cfg(not(target_arch = "wasm32"))]
    {
        gemm::Parallelism::Rayon(0)
    }
    #[cfg(target_arch = "wasm32")]
    {
        gemm::Parallelism::None
    }
}

/// A strided matrix view of a slice: element `(i, j)` at `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    rs: usize,
    cs: usize,
}

/// Row-major `width`-column matrix starting at `offset`.
fn rows(data: &[f32], offset: usize, width: usize) -> View<'_> {
    View {
        data,
        offset,
        rs: width,
        cs: 1,
    }
}

/// The transpose of [`rows`]: column-major, `width` rows between columns.
fn cols(data: &[f32], offset: usize, width: usize) -> View<'_> {
    View {
        data,
        offset,
        rs: 1,
        cs: width,
    }
}

impl View<'_> {
    /// Whether an `r × c` matrix fits inside the slice.
    fn fits(&self, r: usize, c: usize) -> bool {
        self.offset + (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, `dst` row-major with `dst_width` columns, starting at
/// `dst_offset`. Panics if a view does not fit its slice (a bug in this module).
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    dst_offset: usize,
    dst_width: usize,
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    lhs: View<'_>,
    rhs: View<'_>,
    parallelism: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[dst_offset + r * dst_width..][..n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        dst_offset + (m - 1) * dst_width + n <= dst.len(),
        "matmul: destination too small"
    );
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "matmul: operand too small"
    );
    // SAFETY: the asserts above keep every element gemm reads or writes inside its slice; `dst`
    // is a unique borrow, so it cannot overlap the shared borrows behind `lhs` and `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst[dst_offset..].as_mut_ptr(),
            1,
            dst_width as isize,
            accumulate,
            lhs.data[lhs.offset..].as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data[rhs.offset..].as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
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

fn forward(
    params: &[Vec<f32>; 6],
    batch: &mut Batch,
    pixels: &[f32],
    masks: Option<&[Vec<f32>; 2]>,
) {
    assert_eq!(
        pixels.len() % IMAGE_PIXELS,
        0,
        "forward: pixels of whole 28×28 images"
    );
    let n = pixels.len() / IMAGE_PIXELS;
    let [w1, b1, w2, b2, w3, b3] = params;
    batch.n = n;
    batch.norms.clear();
    batch.dense.clear();
    batch.embeddings.clear();
    if n == 0 {
        return;
    }
    // Chunk buffers are kept between batches (a final partial batch uses the first ones).
    let chunk_count = n.div_ceil(CHUNK);
    if batch.chunks.len() < chunk_count {
        batch.chunks.resize_with(chunk_count, ChunkWork::default);
    }
    sized(&mut batch.a2, n * FLAT);

    // Stages 1 and 2 per chunk.
    let mask1 = masks.map(|m| &m[0][..]);
    let mask2 = masks.map(|m| &m[1][..]);
    let tasks: Vec<_> = batch
        .chunks
        .iter_mut()
        .zip(pixels.chunks(CHUNK * IMAGE_PIXELS))
        .zip(batch.a2.chunks_mut(CHUNK * FLAT))
        .enumerate()
        .collect();
    each(tasks, |(c, ((work, px), a2))| {
        let m = px.len() / IMAGE_PIXELS;
        let start = c * CHUNK;
        let mask1 =
            mask1.map(|v| &v[start * GRID1_CELLS * CONV1..(start + m) * GRID1_CELLS * CONV1]);
        let mask2 = mask2.map(|v| &v[start * FLAT..(start + m) * FLAT]);
        stage1_forward(work, px, w1, b1, mask1);
        // Conv2: one product per tap over the shifted grid.
        let grid = m * GRID1_CELLS;
        sized(&mut work.y2, grid * CONV2);
        for (t, &shift) in TAPS.iter().enumerate() {
            matmul(
                &mut work.y2,
                0,
                CONV2,
                t > 0,
                (grid, CONV2, CONV1),
                rows(&work.a1, shift * CONV1, CONV1),
                rows(w2, t * CONV1 * CONV2, CONV2),
                gemm::Parallelism::None,
            );
        }
        stage2_forward(work, m, b2, mask2, a2);
    });

    // Dense layer and normalisation on the whole batch.
    for _ in 0..n {
        batch.dense.extend_from_slice(b3);
    }
    matmul(
        &mut batch.dense,
        0,
        EMBEDDING_DIM,
        true,
        (n, EMBEDDING_DIM, FLAT),
        rows(&batch.a2, 0, FLAT),
        rows(w3, 0, EMBEDDING_DIM),
        batch_parallelism(),
    );
    sized(&mut batch.embeddings, n * EMBEDDING_DIM);
    for (e, out) in batch
        .dense
        .chunks_exact(EMBEDDING_DIM)
        .zip(batch.embeddings.chunks_exact_mut(EMBEDDING_DIM))
    {
        // `tf.math.l2_normalize`: x / sqrt(max(Σx², 1e-12)).
        let sum: f32 = e.iter().map(|v| v * v).sum();
        let norm = sum.max(1e-12).sqrt();
        for (o, v) in out.iter_mut().zip(e) {
            *o = v / norm;
        }
        batch.norms.push((norm, sum >= 1e-12));
    }
}

/// Conv1 at the four offsets of each pooling window, first maximum, bias, relu, dropout (or,
/// without masks, only the zero padding), into conv2's padded grid `work.a1`.
fn stage1_forward(work: &mut ChunkWork, px: &[f32], w1: &[f32], b1: &[f32], mask: Option<&[f32]>) {
    let m = px.len() / IMAGE_PIXELS;
    // Only the pooled cells are written below: the padding row and column and the tail rows
    // must be zero, which they stay from one batch to the next of the same size.
    let len = (m * GRID1_CELLS + TAIL) * CONV1;
    if work.a1.len() != len {
        zeroed(&mut work.a1, len);
    }
    sized(&mut work.arg1, m * SIDE1 * SIDE1 * CONV1);
    sized(&mut work.gate1, m * SIDE1 * SIDE1 * CONV1);
    let w: [&[f32]; 4] = std::array::from_fn(|t| &w1[t * CONV1..(t + 1) * CONV1]);
    for b in 0..m {
        let image = &px[b * IMAGE_PIXELS..(b + 1) * IMAGE_PIXELS];
        for i in 0..SIDE1 {
            for j in 0..SIDE1 {
                let mut best = [0f32; CONV1];
                let mut arg = [0u8; CONV1];
                for (q, p) in window_patches(image, i, j).into_iter().enumerate() {
                    for c in 0..CONV1 {
                        let z = p[0] * w[0][c] + p[1] * w[1][c] + p[2] * w[2][c] + p[3] * w[3][c];
                        if q == 0 || z > best[c] {
                            best[c] = z;
                            arg[c] = q as u8;
                        }
                    }
                }
                let cell = (b * GRID1_CELLS + i * GRID1 + j) * CONV1;
                let unit = ((b * SIDE1 + i) * SIDE1 + j) * CONV1;
                let keep = mask.map(|mk| &mk[cell..cell + CONV1]);
                let out = &mut work.a1[cell..cell + CONV1];
                let gate = &mut work.gate1[unit..unit + CONV1];
                for c in 0..CONV1 {
                    let pre = best[c] + b1[c];
                    let k = keep.map_or(1.0, |k| k[c]);
                    // relu, keeping NaN (as burn does) so that a diverged net shows in the loss.
                    let on = pre > 0.0 || pre.is_nan();
                    out[c] = if on { pre * k } else { 0.0 };
                    gate[c] = if on { k } else { 0.0 };
                }
                work.arg1[unit..unit + CONV1].copy_from_slice(&arg);
            }
        }
    }
}

/// 2×2 max-pooling of conv2's output (first maximum), bias, relu and dropout, into `a2`.
fn stage2_forward(
    work: &mut ChunkWork,
    m: usize,
    b2: &[f32],
    mask: Option<&[f32]>,
    a2: &mut [f32],
) {
    sized(&mut work.arg2, m * FLAT);
    sized(&mut work.gate2, m * FLAT);
    for b in 0..m {
        for i in 0..SIDE2 {
            for j in 0..SIDE2 {
                let mut best = [0f32; CONV2];
                let mut arg = [0u8; CONV2];
                for q in 0..4 {
                    let cell = b * GRID1_CELLS + (2 * i + q / 2) * GRID1 + 2 * j + q % 2;
                    let y = &work.y2[cell * CONV2..(cell + 1) * CONV2];
                    for o in 0..CONV2 {
                        if q == 0 || y[o] > best[o] {
                            best[o] = y[o];
                            arg[o] = q as u8;
                        }
                    }
                }
                let unit = ((b * SIDE2 + i) * SIDE2 + j) * CONV2;
                for o in 0..CONV2 {
                    let pre = best[o] + b2[o];
                    let k = mask.map_or(1.0, |mk| mk[unit + o]);
                    let on = pre > 0.0 || pre.is_nan();
                    a2[unit + o] = if on { pre * k } else { 0.0 };
                    work.gate2[unit + o] = if on { k } else { 0.0 };
                }
                work.arg2[unit..unit + CONV2].copy_from_slice(&arg);
            }
        }
    }
}

fn backward(
    params: &[Vec<f32>; 6],
    batch: &mut Batch,
    grads: &mut [Vec<f32>; 6],
    pixels: &[f32],
    d_embeddings: &[f32],
) {
    let n = batch.n;
    assert_eq!(
        pixels.len(),
        n * IMAGE_PIXELS,
        "backward: pixels of another batch"
    );
    assert_eq!(
        d_embeddings.len(),
        n * EMBEDDING_DIM,
        "backward: gradient of another batch"
    );
    if n == 0 {
        grads.iter_mut().for_each(|g| g.fill(0.0));
        return;
    }
    let [_, _, w2, _, w3, _] = params;

    // Normalisation: d(x/‖x‖) = d/‖x‖ − x·(d·x)/‖x‖³ (only the first term under the floor).
    sized(&mut batch.d_dense, n * EMBEDDING_DIM);
    for (r, &(norm, active)) in batch.norms.iter().enumerate() {
        let span = r * EMBEDDING_DIM..(r + 1) * EMBEDDING_DIM;
        let (x, d) = (&batch.dense[span.clone()], &d_embeddings[span.clone()]);
        let dot: f32 = if active {
            x.iter().zip(d).map(|(a, b)| a * b).sum()
        } else {
            0.0
        };
        let k = dot / (norm * norm * norm);
        for ((o, &dv), &xv) in batch.d_dense[span].iter_mut().zip(d).zip(x) {
            *o = dv / norm - xv * k;
        }
    }
    // Dense layer: bias, kernel (a2ᵀ·d) and input (d·W3ᵀ) gradients.
    let [g1, gb1, g2, gb2, g3, gb3] = grads;
    gb3.fill(0.0);
    for row in batch.d_dense.chunks_exact(EMBEDDING_DIM) {
        for (g, v) in gb3.iter_mut().zip(row) {
            *g += v;
        }
    }
    matmul(
        g3,
        0,
        EMBEDDING_DIM,
        false,
        (FLAT, EMBEDDING_DIM, n),
        cols(&batch.a2, 0, FLAT),
        rows(&batch.d_dense, 0, EMBEDDING_DIM),
        batch_parallelism(),
    );
    sized(&mut batch.d_a2, n * FLAT);
    matmul(
        &mut batch.d_a2,
        0,
        FLAT,
        false,
        (n, FLAT, EMBEDDING_DIM),
        rows(&batch.d_dense, 0, EMBEDDING_DIM),
        cols(w3, 0, EMBEDDING_DIM),
        batch_parallelism(),
    );

    // Stages 2 and 1 per chunk.
    let tasks: Vec<_> = batch
        .chunks
        .iter_mut()
        .zip(pixels.chunks(CHUNK * IMAGE_PIXELS))
        .zip(batch.d_a2.chunks(CHUNK * FLAT))
        .collect();
    each(tasks, |((work, px), d_a2)| {
        let m = px.len() / IMAGE_PIXELS;
        let grid = m * GRID1_CELLS;
        for (g, size) in work.grads.iter_mut().zip(PARAM_SIZES) {
            zeroed(g, size);
        }
        // Pooling, relu and dropout of stage 2: scatter to the winning offsets.
        zeroed(&mut work.d_y2, grid * CONV2);
        for b in 0..m {
            for i in 0..SIDE2 {
                for j in 0..SIDE2 {
                    let unit = ((b * SIDE2 + i) * SIDE2 + j) * CONV2;
                    for o in 0..CONV2 {
                        let g = d_a2[unit + o] * work.gate2[unit + o];
                        work.grads[3][o] += g;
                        let q = work.arg2[unit + o] as usize;
                        let cell = b * GRID1_CELLS + (2 * i + q / 2) * GRID1 + 2 * j + q % 2;
                        work.d_y2[cell * CONV2 + o] = g;
                    }
                }
            }
        }
        // Conv2: kernel gradient (shifted gridᵀ · d_y2) and input gradient (d_y2 · tap kernelᵀ
        // added into the shifted grid), one product per tap.
        // The first tap (shift 0) sets rows 0..grid, the others add; the tail rows beyond are
        // only added to, so they start at zero.
        sized(&mut work.d_a1, work.a1.len());
        work.d_a1[grid * CONV1..].fill(0.0);
        for (t, &shift) in TAPS.iter().enumerate() {
            let block = t * CONV1 * CONV2;
            matmul(
                &mut work.grads[2],
                block,
                CONV2,
                false,
                (CONV1, CONV2, grid),
                cols(&work.a1, shift * CONV1, CONV1),
                rows(&work.d_y2, 0, CONV2),
                gemm::Parallelism::None,
            );
            matmul(
                &mut work.d_a1,
                shift * CONV1,
                CONV1,
                t > 0,
                (grid, CONV1, CONV2),
                rows(&work.d_y2, 0, CONV2),
                cols(w2, block, CONV2),
                gemm::Parallelism::None,
            );
        }
        // Stage 1: gate, bias gradient, and the kernel gradient from the winning patches.
        let [gk1, gb1, ..] = &mut work.grads;
        for b in 0..m {
            let image = &px[b * IMAGE_PIXELS..(b + 1) * IMAGE_PIXELS];
            for i in 0..SIDE1 {
                for j in 0..SIDE1 {
                    let cell = (b * GRID1_CELLS + i * GRID1 + j) * CONV1;
                    let unit = ((b * SIDE1 + i) * SIDE1 + j) * CONV1;
                    let patches = window_patches(image, i, j);
                    for c in 0..CONV1 {
                        let g = work.d_a1[cell + c] * work.gate1[unit + c];
                        gb1[c] += g;
                        let p = patches[work.arg1[unit + c] as usize];
                        for t in 0..4 {
                            gk1[t * CONV1 + c] += p[t] * g;
                        }
                    }
                }
            }
        }
    });
    // Partial conv gradients, summed in chunk order.
    for (total, part) in [g1, gb1, g2, gb2].into_iter().zip(0..4) {
        total.fill(0.0);
        for work in &batch.chunks[..n.div_ceil(CHUNK)] {
            for (t, v) in total.iter_mut().zip(&work.grads[part]) {
                *t += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu_device;
    use crate::model::tests::{assert_close, values};
    use crate::model::{DropoutMasks, EmbedNet, EmbedNetConfig, IMAGE_SIDE, Images};
    use burn::optim::GradientsParams;
    use burn::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    /// MNIST-like images: random strokes in a central box on a zero background, so that
    /// pooling windows of both stages tie (all four inputs equal) over the background and the
    /// tie-breaking rule is exercised.
    fn images(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        (0..n * IMAGE_PIXELS)
            .map(|k| {
                let (y, x) = (k % IMAGE_PIXELS / IMAGE_SIDE, k % IMAGE_SIDE);
                let inside = (6..22).contains(&y) && (6..22).contains(&x);
                if inside && rng.random_bool(0.4) {
                    rng.random_range(0.0..1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// A net with non-zero biases (so that bias, relu and pooling order matter).
    fn parts(seed: u64) -> [Vec<f32>; 6] {
        let device = cpu_device();
        let mut parts = EmbedNetConfig::new()
            .init(seed, &device)
            .to_parts()
            .expect("weights");
        let mut rng = Pcg64Mcg::seed_from_u64(seed + 100);
        for k in [1, 3, 5] {
            parts[k]
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-0.2..0.2));
        }
        parts
    }

    fn burn_grads(net: &EmbedNet, g: &GradientsParams) -> Vec<Vec<f32>> {
        // Same order as WEIGHT_TENSORS: read each parameter's gradient through the record.
        let mut out = Vec::new();
        let mut visit = |id, dims: usize| {
            let v = if dims == 2 {
                values(g.get::<2>(id).expect("grad"))
            } else {
                values(g.get::<1>(id).expect("grad"))
            };
            out.push(v);
        };
        for (k, id) in net.param_ids().into_iter().enumerate() {
            visit(id, if k % 2 == 0 { 2 } else { 1 });
        }
        out
    }

    /// Forward values and all six gradients of `fused` against burn's autodiff of the same
    /// weights, with and without dropout, on `n` images.
    fn check_against_autodiff(fused: &mut FusedNet, n: usize, seed: u64) {
        let device = cpu_device().autodiff();
        let net = EmbedNetConfig::new().from_parts(fused.params().clone(), &device);
        let pixels = images(n, seed);
        let mut rng = Pcg64Mcg::seed_from_u64(seed + 1);
        let objective: Vec<f32> = (0..n * EMBEDDING_DIM)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        for rate in [0.0, 0.3] {
            let masks = DropoutMasks::draw_host(&mut Pcg64Mcg::seed_from_u64(seed + 2), n, rate);
            let device_masks =
                DropoutMasks::draw(&mut Pcg64Mcg::seed_from_u64(seed + 2), n, rate, &device);
            let reference =
                net.forward_train(&Images::new(&pixels, &device), device_masks.as_ref());
            let ours = fused.forward_train(&pixels, masks.as_ref()).to_vec();
            assert_close("embeddings", &ours, &values(reference.clone()), 1e-5);
            let weights = Tensor::<2>::from_data(
                TensorData::new(objective.clone(), [n, EMBEDDING_DIM]),
                &device,
            );
            let g = GradientsParams::from_grads((reference * weights).sum().backward(), &net);
            fused.backward(&pixels, &objective);
            let names = [
                "conv1 kernel",
                "conv1 bias",
                "conv2 kernel",
                "conv2 bias",
                "dense kernel",
                "dense bias",
            ];
            for ((name, ours), theirs) in names.iter().zip(fused.grads()).zip(burn_grads(&net, &g))
            {
                assert_close(
                    &format!("{name} (n = {n}, dropout {rate})"),
                    ours,
                    &theirs,
                    1e-4,
                );
            }
        }
        // Inference: no dropout, nothing kept.
        let inference = fused.embed(&pixels);
        let reference = net.valid().forward(&Images::new(&pixels, &cpu_device()));
        assert_close("inference", &inference, &values(reference), 1e-5);
    }

    /// Against burn's autodiff: with non-zero biases; on batches that are not a multiple of
    /// [`CHUNK`], one image, then a larger batch again on the same (reused) buffers; and with
    /// Keras' initial weights, whose zero biases put pre-activations exactly at 0 on the
    /// background (relu's gradient there is 0).
    #[test]
    fn forward_and_gradients_match_the_autodiff_net() {
        let mut fused = FusedNet::new(parts(7), AdamSettings::default());
        for (n, seed) in [(11, 4), (1, 5), (11, 6)] {
            check_against_autodiff(&mut fused, n, seed);
        }
        let keras_init = EmbedNetConfig::new()
            .init(2, &cpu_device())
            .to_parts()
            .expect("weights");
        check_against_autodiff(
            &mut FusedNet::new(keras_init, AdamSettings::default()),
            9,
            7,
        );
    }

    /// Ties in a pooling window go to its first position (burn's `max_pair` chain, TF's
    /// MaxPool): on a blank image every conv1 window ties, and so does every conv2 window
    /// away from the padding.
    #[test]
    fn pooling_ties_pick_the_first_position() {
        let mut fused = FusedNet::new(parts(5), AdamSettings::default());
        fused.forward_train(&vec![0.0; 2 * IMAGE_PIXELS], None);
        let work = &fused.batch.chunks[0];
        assert!(work.arg1.iter().all(|&q| q == 0), "conv1 pooling");
        for (unit, &q) in work.arg2.iter().enumerate() {
            let cell = unit / CONV2;
            let (i, j) = (cell / SIDE2 % SIDE2, cell % SIDE2);
            if i < SIDE2 - 1 && j < SIDE2 - 1 {
                assert_eq!(q, 0, "conv2 pooling at ({i}, {j})");
            }
        }
        assert!(
            work.arg2.iter().any(|&q| q != 0),
            "windows that touch the padding do not tie"
        );
    }

    /// Adam against Keras' `update_step` (TF 2.15, keras/src/optimizers/adam.py), written out in
    /// f64, over a few steps; tiny gradients show where ε goes (burn's placement would move
    /// those weights ≈ 30× further on the first step).
    #[test]
    fn adam_matches_keras() {
        let p = parts(3);
        let mut fused = FusedNet::new(p.clone(), AdamSettings::default());
        let mut want: Vec<Vec<f64>> = p
            .iter()
            .map(|t| t.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let mut m: Vec<Vec<f64>> = p.iter().map(|t| vec![0.0; t.len()]).collect();
        let mut v = m.clone();
        let (lr, b1, b2, eps) = (1e-3f64, 0.9f64, 0.999f64, 1e-7f64);
        for step in 1..=3 {
            let grad = |k: usize, i: usize| -> f32 {
                match (k + i + step) % 4 {
                    0 => 0.0,
                    1 => 1e-8,
                    2 => -0.05 * ((i % 13) as f32 + 1.0),
                    _ => 3e-4 * step as f32,
                }
            };
            for (k, g) in fused.grads.iter_mut().enumerate() {
                for (i, x) in g.iter_mut().enumerate() {
                    *x = grad(k, i);
                }
            }
            fused.adam_step(lr);
            // Keras: alpha = lr·√(1−β₂ᵗ)/(1−β₁ᵗ); m += (g−m)(1−β₁); v += (g²−v)(1−β₂);
            // var −= m·alpha / (√v + ε).
            let t = step as i32;
            let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            for k in 0..6 {
                for i in 0..want[k].len() {
                    let g = f64::from(grad(k, i));
                    m[k][i] += (g - m[k][i]) * (1.0 - b1);
                    v[k][i] += (g * g - v[k][i]) * (1.0 - b2);
                    want[k][i] -= m[k][i] * alpha / (v[k][i].sqrt() + eps);
                }
            }
            for (k, (ours, theirs)) in fused.params().iter().zip(&want).enumerate() {
                let theirs: Vec<f32> = theirs.iter().map(|&x| x as f32).collect();
                assert_close(&format!("step {step} tensor {k}"), ours, &theirs, 1e-6);
            }
        }
    }

    /// Chunking does not change results: a batch equals its images embedded in other groupings.
    #[test]
    fn results_do_not_depend_on_the_batch_split() {
        let fused = FusedNet::new(parts(1), AdamSettings::default());
        let pixels = images(19, 2);
        let all = fused.embed(&pixels);
        let mut pieces = fused.embed(&pixels[..5 * IMAGE_PIXELS]);
        pieces.extend(fused.embed(&pixels[5 * IMAGE_PIXELS..]));
        assert_close("split", &pieces, &all, 1e-6);
        assert!(
            all.chunks_exact(EMBEDDING_DIM)
                .all(|r| (r.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5)
        );
    }
}
