//! The notebook's embedding network, exactly:
//!
//! ```text
//! Conv2D(64, 2, padding="same", relu) -> MaxPool(2) -> Dropout(0.3)
//! Conv2D(32, 2, padding="same", relu) -> MaxPool(2) -> Dropout(0.3)
//! Flatten -> Dense(256) -> L2-normalise rows
//! ```
//!
//! Tensors are kept in Keras' NHWC layout and the weights in Keras' own shapes
//! (`kernel_hwio` reshaped to `[kh·kw·in, out]`, `dense.kernel_in_out`), so Keras weights load
//! without transposition and the flatten order is Keras' (h, w, c).
//!
//! A 2×2 convolution with Keras `padding="same"` pads one row at the bottom and one column at
//! the right. Each convolution is fused with the max-pooling that follows it: conv1's im2col is
//! built on the host, one patch matrix per offset in the pooling window ([`Images`]), so conv1 +
//! pool is four matmuls and an element-wise maximum; conv2 is a sum of four matmuls of shifted
//! views; bias and relu follow the pooling (they commute with it). Forward, weight gradient and
//! input gradient are then matmuls, views and element-wise ops, which every backend (flex on the
//! CPU, wgpu natively, WebGPU in the browser) runs well, and the full-resolution 28×28×64
//! activation is never padded, sliced or concatenated.

use burn::module::Param;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

pub use crate::shape::{EMBEDDING_DIM, IMAGE_PIXELS, IMAGE_SIDE};
/// Conv1's output channels.
pub(crate) const CONV1: usize = 64;
/// Conv2's output channels.
pub(crate) const CONV2: usize = 32;
/// Width of the flattened `[7, 7, 32]` map the dense layer reads.
pub(crate) const FLAT: usize = 7 * 7 * CONV2;

/// Builds an [`EmbedNet`]. The architecture is fixed; the dropout rate is a training setting
/// (`TrainConfig::dropout`, applied through [`DropoutMasks`]), not part of the net.
#[derive(Config, Debug)]
pub struct EmbedNetConfig {}

/// The notebook's network. See the module docs for the layout.
#[derive(Module, Debug)]
pub struct EmbedNet {
    conv1_kernel: Param<Tensor<2>>,
    conv1_bias: Param<Tensor<1>>,
    conv2_kernel: Param<Tensor<2>>,
    conv2_bias: Param<Tensor<1>>,
    dense_kernel: Param<Tensor<2>>,
    dense_bias: Param<Tensor<1>>,
}

/// Problems with a weights file.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum WeightsError {
    /// Not a safetensors file.
    #[error("not a weights file (safetensors): {0}")]
    Format(String),
    /// A tensor is missing.
    #[error("weights file has no tensor '{0}'")]
    Missing(String),
    /// A tensor has the wrong shape or type.
    #[error("tensor '{name}' has shape {found:?} ({dtype}), expected {expected:?} (F32)")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape found.
        found: Vec<usize>,
        /// Shape expected.
        expected: Vec<usize>,
        /// Element type found.
        dtype: String,
    },
    /// A weight is NaN or infinite.
    #[error("tensor '{0}' contains NaN or infinite values")]
    NotFinite(String),
    /// Reading the weights back from the device failed.
    #[error("could not read the weights from the device: {0}")]
    Device(String),
}

/// Element counts of the weight tensors, in [`WEIGHT_TENSORS`] order (the flat layout of
/// [`EmbedNet::to_flat`] and of the fused engines).
pub(crate) const PARAM_SIZES: [usize; 6] = [
    4 * CONV1,
    CONV1,
    4 * CONV1 * CONV2,
    CONV2,
    FLAT * EMBEDDING_DIM,
    EMBEDDING_DIM,
];

/// Names and Keras shapes of the weight tensors, in file order.
pub const WEIGHT_TENSORS: [(&str, &[usize]); 6] = [
    ("conv1.kernel_hwio", &[2, 2, 1, CONV1]),
    ("conv1.bias", &[CONV1]),
    ("conv2.kernel_hwio", &[2, 2, CONV1, CONV2]),
    ("conv2.bias", &[CONV2]),
    ("dense.kernel_in_out", &[FLAT, EMBEDDING_DIM]),
    ("dense.bias", &[EMBEDDING_DIM]),
];

fn glorot_uniform(rng: &mut Pcg64Mcg, fan_in: usize, fan_out: usize, len: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..len)
        .map(|_| rng.random_range(-limit..limit) as f32)
        .collect()
}

impl EmbedNetConfig {
    /// Keras initialisation (Glorot-uniform kernels, zero biases), drawn on the host from
    /// `seed` so every backend starts from the same weights.
    pub fn init(&self, seed: u64, device: &Device) -> EmbedNet {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x7269_706c_6574_6c61);
        // Keras conv fans: receptive field (2·2) times channels.
        let w1 = glorot_uniform(&mut rng, 4, 4 * CONV1, 4 * CONV1);
        let w2 = glorot_uniform(&mut rng, 4 * CONV1, 4 * CONV2, 4 * CONV1 * CONV2);
        let w3 = glorot_uniform(&mut rng, FLAT, EMBEDDING_DIM, FLAT * EMBEDDING_DIM);
        self.from_parts(
            [
                w1,
                vec![0.0; CONV1],
                w2,
                vec![0.0; CONV2],
                w3,
                vec![0.0; EMBEDDING_DIM],
            ],
            device,
        )
    }

    /// Builds the net from its six weight tensors, flat, in [`WEIGHT_TENSORS`] order and layout.
    pub fn from_parts(&self, parts: [Vec<f32>; 6], device: &Device) -> EmbedNet {
        let [w1, b1, w2, b2, w3, b3] = parts;
        let matrix = |v: Vec<f32>, r: usize, c: usize| {
            Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, [r, c]), device))
        };
        let vector = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [n]), device))
        };
        EmbedNet {
            conv1_kernel: matrix(w1, 4, CONV1),
            conv1_bias: vector(b1),
            conv2_kernel: matrix(w2, 4 * CONV1, CONV2),
            conv2_bias: vector(b2),
            dense_kernel: matrix(w3, FLAT, EMBEDDING_DIM),
            dense_bias: vector(b3),
        }
    }

    /// Builds the net from its weights flattened in [`WEIGHT_TENSORS`] order (the layout of
    /// [`EmbedNet::to_flat`]), on the device `flat` lives on: slices, no copy to the host.
    pub fn from_flat(&self, flat: Tensor<1>) -> EmbedNet {
        let mut at = 0;
        let mut next = |len: usize| {
            // burn's `slice` takes one range per dimension: one here.
            #[allow(clippy::single_range_in_vec_init)]
            let part = flat.clone().slice([at..at + len]);
            at += len;
            part
        };
        let [s1, s2, s3, s4, s5, s6] = PARAM_SIZES;
        EmbedNet {
            conv1_kernel: Param::from_tensor(next(s1).reshape([4, CONV1])),
            conv1_bias: Param::from_tensor(next(s2)),
            conv2_kernel: Param::from_tensor(next(s3).reshape([4 * CONV1, CONV2])),
            conv2_bias: Param::from_tensor(next(s4)),
            dense_kernel: Param::from_tensor(next(s5).reshape([FLAT, EMBEDDING_DIM])),
            dense_bias: Param::from_tensor(next(s6)),
        }
    }

    /// Loads weights from a safetensors file with the tensors of [`WEIGHT_TENSORS`] (Keras
    /// layouts; extra tensors are ignored). This reads both the files [`EmbedNet::to_safetensors`]
    /// writes and the Keras reference weights.
    pub fn load_safetensors(
        &self,
        bytes: &[u8],
        device: &Device,
    ) -> Result<EmbedNet, WeightsError> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
        let mut parts: Vec<Vec<f32>> = Vec::with_capacity(6);
        for (name, shape) in WEIGHT_TENSORS {
            let view = st
                .tensor(name)
                .map_err(|_| WeightsError::Missing(name.to_string()))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(WeightsError::Shape {
                    name: name.to_string(),
                    found: view.shape().to_vec(),
                    expected: shape.to_vec(),
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(WeightsError::NotFinite(name.to_string()));
            }
            parts.push(values);
        }
        let parts: [Vec<f32>; 6] = parts.try_into().expect("six tensors");
        Ok(self.from_parts(parts, device))
    }
}

/// Side of the first pooled grid (14) plus the one zero row/column that conv2's Keras "same"
/// padding adds at the bottom/right: the first stage produces this 15×15 grid directly.
pub(crate) const GRID1: usize = IMAGE_SIDE / 2 + 1;
/// Positions of that grid per image.
pub(crate) const GRID1_CELLS: usize = GRID1 * GRID1;

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
    patches: [Tensor<2>; 4],
    len: usize,
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
fn padding_mask(device: &Device) -> Tensor<4> {
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
fn conv1_pool(images: &Images, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
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
fn conv2_pool(x: Tensor<4>, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
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
fn max_pool2(x: Tensor<4>) -> Tensor<4> {
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
    after_pool1: Tensor<4>,
    after_pool2: Tensor<4>,
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

impl EmbedNet {
    /// Dense output before normalisation, `[B, 256]`, with dropout applied through `masks`
    /// (training) or not at all (`None`, inference).
    pub fn forward_unnormalized_with(
        &self,
        images: &Images,
        masks: Option<&DropoutMasks>,
    ) -> Tensor<2> {
        let x = conv1_pool(images, self.conv1_kernel.val(), self.conv1_bias.val());
        // Dropout; the mask (or, without dropout, the padding mask) zeroes conv2's padding.
        let x = match masks {
            Some(m) => x * m.after_pool1.clone(),
            None => {
                let device = x.device();
                x * padding_mask(&device)
            }
        };
        let mut x = conv2_pool(x, self.conv2_kernel.val(), self.conv2_bias.val());
        if let Some(m) = masks {
            x = x * m.after_pool2.clone();
        }
        x.reshape([images.len, FLAT])
            .matmul(self.dense_kernel.val())
            + self.dense_bias.val().unsqueeze_dim(0)
    }

    /// Dense output before normalisation (inference: no dropout).
    pub fn forward_unnormalized(&self, images: &Images) -> Tensor<2> {
        self.forward_unnormalized_with(images, None)
    }

    /// Unit-norm embeddings `[B, 256]` (inference: no dropout).
    pub fn forward(&self, images: &Images) -> Tensor<2> {
        l2_normalize(self.forward_unnormalized(images))
    }

    /// Unit-norm embeddings `[B, 256]` with dropout through `masks` (training).
    pub fn forward_train(&self, images: &Images, masks: Option<&DropoutMasks>) -> Tensor<2> {
        l2_normalize(self.forward_unnormalized_with(images, masks))
    }

    /// The weight tensors in [`WEIGHT_TENSORS`] order (Keras layouts after a reshape).
    fn weight_tensors(&self) -> Vec<Tensor<1>> {
        vec![
            self.conv1_kernel.val().reshape([4 * CONV1]),
            self.conv1_bias.val(),
            self.conv2_kernel.val().reshape([4 * CONV1 * CONV2]),
            self.conv2_bias.val(),
            self.dense_kernel.val().reshape([FLAT * EMBEDDING_DIM]),
            self.dense_bias.val(),
        ]
    }

    /// The weights flattened and concatenated in [`WEIGHT_TENSORS`] order, on the model's
    /// device without autodiff (the inverse of [`EmbedNetConfig::from_flat`]).
    pub fn to_flat(&self) -> Tensor<1> {
        Tensor::cat(
            self.weight_tensors()
                .into_iter()
                .map(|t| t.detach().inner())
                .collect(),
            0,
        )
    }

    /// Parameter ids in [`WEIGHT_TENSORS`] order (kernels are rank 2, biases rank 1).
    #[cfg(test)]
    pub(crate) fn param_ids(&self) -> [burn::module::ParamId; 6] {
        [
            self.conv1_kernel.id,
            self.conv1_bias.id,
            self.conv2_kernel.id,
            self.conv2_bias.id,
            self.dense_kernel.id,
            self.dense_bias.id,
        ]
    }

    /// The six weight tensors, flat, in [`WEIGHT_TENSORS`] order and layout, read back
    /// synchronously: for devices whose reads complete at once (the CPU, also in wasm).
    pub fn to_parts(&self) -> Result<[Vec<f32>; 6], WeightsError> {
        let parts: Vec<Vec<f32>> = self
            .weight_tensors()
            .into_iter()
            .map(|t| {
                t.detach()
                    .into_data()
                    .try_into_vec()
                    .map_err(|e| WeightsError::Device(format!("{e:?}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(parts.try_into().expect("six tensors"))
    }

    /// Serialises the weights as safetensors with Keras names and shapes ([`WEIGHT_TENSORS`]).
    /// Async because the browser can only read device memory asynchronously.
    pub async fn to_safetensors(&self) -> Result<Vec<u8>, WeightsError> {
        let mut buffers: Vec<Vec<u8>> = Vec::with_capacity(6);
        for t in self.weight_tensors() {
            let data = t
                .detach()
                .into_data_async()
                .await
                .map_err(|e| WeightsError::Device(format!("{e:?}")))?;
            let values: Vec<f32> = data
                .try_into_vec()
                .map_err(|e| WeightsError::Device(format!("{e:?}")))?;
            buffers.push(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
        let views: Vec<(&str, TensorView<'_>)> = WEIGHT_TENSORS
            .iter()
            .zip(&buffers)
            .map(|((name, shape), buf)| {
                let view = TensorView::new(Dtype::F32, shape.to_vec(), buf)
                    .expect("shape and buffer agree");
                (*name, view)
            })
            .collect();
        safetensors::serialize(views, None).map_err(|e| WeightsError::Format(e.to_string()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::cpu_device;
    use burn::optim::GradientsParams;

    /// The straightforward formulation the fused one replaced (validated against Keras): pad,
    /// im2col by concatenation, one matmul, bias, relu, then pooling.
    fn conv_relu_reference(x: Tensor<4>, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let [_, out] = kernel.dims();
        let device = x.device();
        let x = Tensor::cat(vec![x, Tensor::zeros([b, 1, w, c], &device)], 1);
        let x = Tensor::cat(vec![x, Tensor::zeros([b, h + 1, 1, c], &device)], 2);
        let patches = Tensor::cat(
            vec![
                x.clone().slice([0..b, 0..h, 0..w, 0..c]),
                x.clone().slice([0..b, 0..h, 1..w + 1, 0..c]),
                x.clone().slice([0..b, 1..h + 1, 0..w, 0..c]),
                x.slice([0..b, 1..h + 1, 1..w + 1, 0..c]),
            ],
            3,
        );
        let y = patches.reshape([b * h * w, 4 * c]).matmul(kernel) + bias.unsqueeze_dim(0);
        burn::tensor::activation::relu(y).reshape([b, h, w, out])
    }

    fn reference_forward(
        net: &EmbedNet,
        pixels: &[f32],
        masks: Option<&DropoutMasks>,
        device: &Device,
    ) -> Tensor<2> {
        let n = pixels.len() / IMAGE_PIXELS;
        let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [n, 28, 28, 1]), device);
        let mut x = max_pool2(conv_relu_reference(
            x,
            net.conv1_kernel.val(),
            net.conv1_bias.val(),
        ));
        if let Some(m) = masks {
            x = x * m.after_pool1.clone().slice([0..n, 0..14, 0..14, 0..CONV1]);
        }
        let mut x = max_pool2(conv_relu_reference(
            x,
            net.conv2_kernel.val(),
            net.conv2_bias.val(),
        ));
        if let Some(m) = masks {
            x = x * m.after_pool2.clone();
        }
        l2_normalize(
            x.reshape([n, FLAT]).matmul(net.dense_kernel.val())
                + net.dense_bias.val().unsqueeze_dim(0),
        )
    }

    /// A tensor's values as `f32`.
    pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32")
    }

    /// `a` equals `b` to within `tol` times `b`'s largest magnitude.
    pub(crate) fn assert_close(name: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{name}: lengths");
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= tol * scale,
            "{name}: max |Δ| {worst:e} vs max |value| {scale:e}"
        );
    }

    /// Images with MNIST-like structure: a zero background (ties in every pooling window of
    /// it) and random strokes.
    fn images(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        (0..n * IMAGE_PIXELS)
            .map(|_| {
                if rng.random_bool(0.3) {
                    rng.random_range(0.0..1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn fused_layers_match_the_reference_forward_and_gradients() {
        let device = cpu_device().autodiff();
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let net = EmbedNetConfig::new().init(11, &device);
        // Non-zero biases, so that the order of bias, relu and pooling matters if it is wrong.
        let bias = |n: usize, rng: &mut Pcg64Mcg| {
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-0.2..0.2)).collect();
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [n]), &device))
        };
        let net = EmbedNet {
            conv1_bias: bias(CONV1, &mut rng),
            conv2_bias: bias(CONV2, &mut rng),
            dense_bias: bias(EMBEDDING_DIM, &mut rng),
            ..net
        };
        let n = 5;
        let pixels = images(n, 4);
        let weights: Vec<f32> = (0..n * EMBEDDING_DIM)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [n, EMBEDDING_DIM]), &device);
        for dropout in [None, DropoutMasks::draw(&mut rng, n, 0.3, &device)] {
            let fused = net.forward_train(&Images::new(&pixels, &device), dropout.as_ref());
            let reference = reference_forward(&net, &pixels, dropout.as_ref(), &device);
            assert_close(
                "embedding",
                &values(fused.clone()),
                &values(reference.clone()),
                1e-6,
            );
            let objective = |e: Tensor<2>| (e * weights.clone()).sum();
            let g_fused = GradientsParams::from_grads(objective(fused).backward(), &net);
            let g_ref = GradientsParams::from_grads(objective(reference).backward(), &net);
            let grad = |g: &GradientsParams, p: &Param<Tensor<2>>| {
                values(g.get::<2>(p.id).expect("gradient"))
            };
            let grad1 = |g: &GradientsParams, p: &Param<Tensor<1>>| {
                values(g.get::<1>(p.id).expect("gradient"))
            };
            assert_close(
                "conv1 kernel grad",
                &grad(&g_fused, &net.conv1_kernel),
                &grad(&g_ref, &net.conv1_kernel),
                1e-5,
            );
            assert_close(
                "conv2 kernel grad",
                &grad(&g_fused, &net.conv2_kernel),
                &grad(&g_ref, &net.conv2_kernel),
                1e-5,
            );
            assert_close(
                "dense kernel grad",
                &grad(&g_fused, &net.dense_kernel),
                &grad(&g_ref, &net.dense_kernel),
                1e-5,
            );
            assert_close(
                "conv1 bias grad",
                &grad1(&g_fused, &net.conv1_bias),
                &grad1(&g_ref, &net.conv1_bias),
                1e-5,
            );
            assert_close(
                "conv2 bias grad",
                &grad1(&g_fused, &net.conv2_bias),
                &grad1(&g_ref, &net.conv2_bias),
                1e-5,
            );
            assert_close(
                "dense bias grad",
                &grad1(&g_fused, &net.dense_bias),
                &grad1(&g_ref, &net.dense_bias),
                1e-5,
            );
        }
    }

    #[test]
    fn image_patches_and_padding_follow_the_pooling_window() {
        let device = cpu_device();
        // Pixel value = its index, so every patch entry names its source pixel.
        let pixels: Vec<f32> = (0..IMAGE_PIXELS).map(|k| k as f32).collect();
        let images = Images::new(&pixels, &device);
        assert_eq!(images.len(), 1);
        let patches: Vec<Vec<f32>> = images.patches.iter().map(|p| values(p.clone())).collect();
        // Cell (i, j) = (3, 5), offset q = (1, 0): patch at pixel (7, 10).
        let row = 3 * GRID1 + 5;
        assert_eq!(
            &patches[2][row * 4..row * 4 + 4],
            &[206.0, 207.0, 234.0, 235.0]
        );
        // Cell (13, 13), offset (1, 1): pixel (27, 27) and zeros beyond the edge.
        let row = 13 * GRID1 + 13;
        assert_eq!(&patches[3][row * 4..row * 4 + 4], &[783.0, 0.0, 0.0, 0.0]);
        // The padding row and column are all zero patches and masked out.
        let row = 14 * GRID1 + 2;
        assert!(patches.iter().all(|p| p[row * 4..row * 4 + 4] == [0.0; 4]));
        let pad = values(padding_mask(&device));
        assert_eq!(pad.iter().filter(|v| **v == 0.0).count(), 2 * GRID1 - 1);
        assert_eq!(pad[14 * GRID1 + 3], 0.0);
        assert_eq!(pad[3 * GRID1 + 14], 0.0);
        assert_eq!(pad[3 * GRID1 + 13], 1.0);
    }

    #[test]
    fn dropout_masks_keep_the_rate_and_zero_the_padding() {
        let device = cpu_device();
        let mut rng = Pcg64Mcg::seed_from_u64(9);
        let m = DropoutMasks::draw(&mut rng, 8, 0.3, &device).expect("masks");
        let first = values(m.after_pool1.clone());
        let second = values(m.after_pool2.clone());
        let scale = (1.0 / 0.7) as f32;
        assert!(
            first
                .iter()
                .chain(&second)
                .all(|v| *v == 0.0 || *v == scale)
        );
        // Padding cells are always dropped.
        for (k, cell) in first.chunks_exact(CONV1).enumerate() {
            let (i, j) = (k % GRID1_CELLS / GRID1, k % GRID1);
            if i == GRID1 - 1 || j == GRID1 - 1 {
                assert!(cell.iter().all(|v| *v == 0.0), "padding cell {k}");
            }
        }
        let real = 8 * 14 * 14 * CONV1 + second.len();
        let kept = first.iter().chain(&second).filter(|v| **v != 0.0).count();
        let rate = kept as f64 / real as f64;
        assert!((rate - 0.7).abs() < 0.005, "kept {rate}");
        // Same seed, same masks; no dropout, no masks.
        let again =
            DropoutMasks::draw(&mut Pcg64Mcg::seed_from_u64(9), 8, 0.3, &device).expect("masks");
        assert_eq!(values(again.after_pool1), first);
        assert!(DropoutMasks::draw(&mut rng, 8, 0.0, &device).is_none());
    }
}
