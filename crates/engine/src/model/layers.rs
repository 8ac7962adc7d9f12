//! The net's layers on burn tensors, as the reference definition the engines are tested
//! against: conv1's im2col built on the host ([`Images`]), conv + pool stages, L2
//! normalisation, and the dropout masks shared with the fused engines.

use burn::prelude::*;
use rand::Rng;
use rand_pcg::Pcg64Mcg;

use super::*;

/// A batch of images prepared for [`EmbedNet`]: conv1's im2col, built on the host.
///
/// Conv1 (2×2, "same") followed by 2×2 max-pooling reads, for each pooled cell `(i, j)` and
/// each of the window's four offsets `q = (di, dj)`, the 2×2 patch at `(2i + di, 2j + dj)`. The
/// four patch matrices (one per `q`, rows = cells, columns = taps in Keras' (kh, kw) order) are
/// laid out here from the pixels, so on the device conv1 + pool is four small matmuls and an
/// element-wise maximum: no padding, slicing or concatenation of the net's largest activation,
/// in the forward pass or the backward pass. Rows cover a 15×15 grid: the 14×14 pooled cells plus
/// the zero row and column conv2's padding needs (zeroed after the stage by the dropout mask in
/// training, by `padding_mask` in inference).
pub struct Images {
    pub(super) patches: [Tensor<2>; 4],
    pub(super) len: usize,
}

impl Images {
    /// Prepares `n` images given as pixels/255 (`n·784` values, row-major 28×28 each).
    pub fn new(pixels: &[f32], device: &Device) -> Self {
        let n = pixels.len() / IMAGE_PIXELS;
        let rows = n * GRID1_CELLS;
        let mut patches: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; rows * 4]);
        for (b, image) in pixels.chunks_exact(IMAGE_PIXELS).enumerate() {
            for i in 0..GRID1 - 1 {
                for j in 0..GRID1 - 1 {
                    let row = (b * GRID1_CELLS + i * GRID1 + j) * 4;
                    for (out, patch) in patches.iter_mut().zip(window_patches(image, i, j)) {
                        out[row..row + 4].copy_from_slice(&patch);
                    }
                }
            }
        }
        let patches =
            patches.map(|p| Tensor::<2>::from_data(TensorData::new(p, [rows, 4]), device));
        Self { patches, len: n }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Conv1's four 2×2 input patches for pooled cell `(i, j)` of one 28×28 image, one per offset
/// `q = (di, dj)` of the pooling window in row-major order, each in Keras' (kh, kw) tap order;
/// pixels beyond the bottom/right edge are Keras' "same" zero padding.
pub(crate) fn window_patches(image: &[f32], i: usize, j: usize) -> [[f32; 4]; 4] {
    let pixel = |y: usize, x: usize| {
        if y < IMAGE_SIDE && x < IMAGE_SIDE {
            image[y * IMAGE_SIDE + x]
        } else {
            0.0
        }
    };
    std::array::from_fn(|q| {
        let (y, x) = (2 * i + q / 2, 2 * j + q % 2);
        [
            pixel(y, x),
            pixel(y, x + 1),
            pixel(y + 1, x),
            pixel(y + 1, x + 1),
        ]
    })
}

/// `[1, 15, 15, 1]`: 1 on the 14×14 pooled cells, 0 on conv2's padding row and column. Only
/// inference needs it; in training the dropout mask zeroes the padding.
pub(super) fn padding_mask(device: &Device) -> Tensor<4> {
    let pad: Vec<f32> = (0..GRID1_CELLS)
        .map(|k| {
            if k / GRID1 < GRID1 - 1 && k % GRID1 < GRID1 - 1 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(pad, [1, GRID1, GRID1, 1]), device)
}

/// Conv1 (Keras Conv2D(64, 2, "same") + relu) and 2×2 max-pooling: `[B, 15, 15, 64]`, the
/// 14×14 pooled map with its padding row and column not yet zeroed (the caller multiplies by a
/// mask that zeroes them). Max-pooling commutes with the bias and the relu (both monotone), so
/// they are applied after the maximum, on a quarter of the values; the result is the same
/// number, bit for bit.
pub(super) fn conv1_pool(images: &Images, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
    let [p0, p1, p2, p3] = images.patches.clone();
    let y = |p: Tensor<2>| p.matmul(kernel.clone());
    let m = y(p0).max_pair(y(p1)).max_pair(y(p2).max_pair(y(p3)));
    burn::tensor::activation::relu(m + bias.unsqueeze_dim(0))
        .reshape([images.len, GRID1, GRID1, CONV1])
}

/// Conv2 (Keras Conv2D(32, 2, "same") + relu) and 2×2 max-pooling: `[B, 15, 15, 64]` (zero in
/// the last row and column: the "same" padding) → `[B, 7, 7, 32]`. The convolution is the sum
/// over the four taps of a shifted view times that tap's `[64, 32]` block of the kernel, so its
/// backward pass needs no concatenation; bias and relu again come after the pooling.
pub(super) fn conv2_pool(x: Tensor<4>, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
    let [b, _, _, c] = x.dims();
    let (h, w) = (GRID1 - 1, GRID1 - 1);
    let y = (0..4)
        .map(|t| {
            let (kh, kw) = (t / 2, t % 2);
            let view = x
                .clone()
                .slice([0..b, kh..kh + h, kw..kw + w, 0..c])
                .reshape([b * h * w, c]);
            view.matmul(kernel.clone().slice([t * c..(t + 1) * c, 0..CONV2]))
        })
        .reduce(|a, y| a + y)
        .expect("four taps");
    let pooled = max_pool2(y.reshape([b, h, w, CONV2]));
    burn::tensor::activation::relu(pooled + bias.reshape([1, 1, 1, CONV2]))
}

/// `[B, H, W, C]` → `[B, H/2, W/2, C]`: 2×2 max-pooling, stride 2, on the NHWC layout, as the
/// element-wise maximum of the window's four strided views. Its backward pass is element-wise
/// masks (no index gather/scatter, which made a reduction-based pool 40 % of a CPU step).
pub(super) fn max_pool2(x: Tensor<4>) -> Tensor<4> {
    let [b, h, w, c] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    let x = x.reshape([b, h2, 2, w2, 2, c]);
    let part = |i: usize, j: usize| {
        x.clone()
            .slice([0..b, 0..h2, i..i + 1, 0..w2, j..j + 1, 0..c])
    };
    part(0, 0)
        .max_pair(part(0, 1))
        .max_pair(part(1, 0).max_pair(part(1, 1)))
        .reshape([b, h2, w2, c])
}

/// `tf.math.l2_normalize` along dim 1: `x / sqrt(max(sum x², 1e-12))`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-12).sqrt();
    x / norm
}

/// Inverted-dropout masks for one training batch: each entry is 0 (dropped, probability
/// `rate`) or `1 / (1 - rate)`, as Keras' `Dropout` in training. They are drawn on the host from
/// a seeded PCG stream and uploaded with the batch: cheap (≈ 0.45 M units per batch of 32, four
/// per 64-bit draw), the same on every backend, and reproducible from the seed.
pub struct DropoutMasks {
    pub(super) after_pool1: Tensor<4>,
    pub(super) after_pool2: Tensor<4>,
}

impl DropoutMasks {
    /// Masks for `batch` images, or `None` when `rate` is 0.
    pub fn draw(rng: &mut Pcg64Mcg, batch: usize, rate: f64, device: &Device) -> Option<Self> {
        let [first, second] = Self::draw_host(rng, batch, rate)?;
        Some(Self {
            after_pool1: Tensor::from_data(
                TensorData::new(first, [batch, GRID1, GRID1, CONV1]),
                device,
            ),
            after_pool2: Tensor::from_data(TensorData::new(second, [batch, 7, 7, CONV2]), device),
        })
    }

    /// The same masks as [`DropoutMasks::draw`] (same values from the same stream), as host
    /// vectors: `[B, 15, 15, 64]` after the first pooling (zero on conv2's padding row and
    /// column) and `[B, 7, 7, 32]` after the second. `None` when `rate` is 0.
    pub fn draw_host(rng: &mut Pcg64Mcg, batch: usize, rate: f64) -> Option<[Vec<f32>; 2]> {
        if rate <= 0.0 {
            return None;
        }
        let keep = 1.0 - rate;
        let scale = (1.0 / keep) as f32;
        // Each 64-bit draw gives four 16-bit uniforms; one below `threshold` keeps its unit
        // (probability `keep` to within 2⁻¹⁶).
        let threshold = (keep * 65_536.0).round() as u64;
        let mut fill = |out: &mut [f32]| {
            for chunk in out.chunks_mut(4) {
                let r: u64 = rng.random();
                for (k, v) in chunk.iter_mut().enumerate() {
                    *v = if (r >> (16 * k)) & 0xffff < threshold {
                        scale
                    } else {
                        0.0
                    };
                }
            }
        };
        // The first mask covers conv2's padded 15×15 grid: zero on the padding row and column
        // (which also zeroes them); each image row of 14 cells is drawn in one piece.
        let mut first = vec![0.0; batch * GRID1_CELLS * CONV1];
        for b in 0..batch {
            for i in 0..GRID1 - 1 {
                let at = (b * GRID1_CELLS + i * GRID1) * CONV1;
                fill(&mut first[at..at + (GRID1 - 1) * CONV1]);
            }
        }
        let mut second = vec![0.0; batch * 7 * 7 * CONV2];
        fill(&mut second);
        Some([first, second])
    }
}
