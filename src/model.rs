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
//! the right; it is computed here as that pad, the four shifted views concatenated along the
//! channels (an im2col of width 4·C), and one matrix multiply. Forward, weight gradient and input
//! gradient are then matmuls and slices, which every backend (flex on the CPU, wgpu natively,
//! WebGPU in the browser) runs well.

use burn::module::Param;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// Input image side (the net is fixed at 28×28×1, as in the notebook).
pub const IMAGE_SIDE: usize = 28;
/// Pixels per image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Output embedding width.
pub const EMBEDDING_DIM: usize = 256;
const CONV1: usize = 64;
const CONV2: usize = 32;
const FLAT: usize = 7 * 7 * CONV2;

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

    fn from_parts(&self, parts: [Vec<f32>; 6], device: &Device) -> EmbedNet {
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

    /// Loads weights from a safetensors file with the tensors of [`WEIGHT_TENSORS`] (Keras
    /// layouts; extra tensors are ignored). This reads both the files [`EmbedNet::to_safetensors`]
    /// writes and the Keras reference weights.
    pub fn load_safetensors(&self, bytes: &[u8], device: &Device) -> Result<EmbedNet, WeightsError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
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

/// `[B, H, W, C]` → `[B, H, W, O]`: Keras Conv2D(kernel 2, padding "same") + bias + relu.
fn conv2x2_same_relu(x: Tensor<4>, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
    let [b, h, w, c] = x.dims();
    let [_, out] = kernel.dims();
    let device = x.device();
    // Keras "same" with an even kernel pads only at the bottom and the right.
    let x = Tensor::cat(vec![x, Tensor::zeros([b, 1, w, c], &device)], 1);
    let x = Tensor::cat(vec![x, Tensor::zeros([b, h + 1, 1, c], &device)], 2);
    // im2col in (kh, kw, c) order, matching the HWIO kernel reshaped to [4·C, O].
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
/// a seeded PCG stream and uploaded with the batch: cheap (≈ 0.45 M draws per batch of 32), the
/// same on every backend, and reproducible from the seed.
pub struct DropoutMasks {
    after_pool1: Tensor<4>,
    after_pool2: Tensor<4>,
}

impl DropoutMasks {
    /// Masks for `batch` images, or `None` when `rate` is 0.
    pub fn draw(rng: &mut Pcg64Mcg, batch: usize, rate: f64, device: &Device) -> Option<Self> {
        if rate <= 0.0 {
            return None;
        }
        let keep = 1.0 - rate;
        let scale = (1.0 / keep) as f32;
        // A 32-bit uniform below `threshold` keeps the unit (probability `keep`).
        let threshold = (keep * 4_294_967_296.0) as u64;
        let mut draw = |shape: [usize; 4]| {
            let n = shape.iter().product::<usize>();
            let mut values = Vec::with_capacity(n + 1);
            while values.len() < n {
                let r: u64 = rng.random();
                for half in [r & 0xffff_ffff, r >> 32] {
                    values.push(if half < threshold { scale } else { 0.0 });
                }
            }
            values.truncate(n);
            Tensor::<4>::from_data(TensorData::new(values, shape), device)
        };
        Some(Self {
            after_pool1: draw([batch, 14, 14, CONV1]),
            after_pool2: draw([batch, 7, 7, CONV2]),
        })
    }
}

impl EmbedNet {
    /// Dense output before normalisation, `[B, 256]`, from pixels/255 in `[B, 28, 28, 1]`,
    /// with dropout applied through `masks` (training) or not at all (`None`, inference).
    pub fn forward_unnormalized_with(&self, images: Tensor<4>, masks: Option<&DropoutMasks>) -> Tensor<2> {
        let [b, _, _, _] = images.dims();
        let x = conv2x2_same_relu(images, self.conv1_kernel.val(), self.conv1_bias.val());
        let mut x = max_pool2(x);
        if let Some(m) = masks {
            x = x * m.after_pool1.clone();
        }
        let x = conv2x2_same_relu(x, self.conv2_kernel.val(), self.conv2_bias.val());
        let mut x = max_pool2(x);
        if let Some(m) = masks {
            x = x * m.after_pool2.clone();
        }
        x.reshape([b, FLAT]).matmul(self.dense_kernel.val()) + self.dense_bias.val().unsqueeze_dim(0)
    }

    /// Dense output before normalisation (inference: no dropout).
    pub fn forward_unnormalized(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_unnormalized_with(images, None)
    }

    /// Unit-norm embeddings `[B, 256]` (inference: no dropout).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        l2_normalize(self.forward_unnormalized(images))
    }

    /// Unit-norm embeddings `[B, 256]` with dropout through `masks` (training).
    pub fn forward_train(&self, images: Tensor<4>, masks: Option<&DropoutMasks>) -> Tensor<2> {
        l2_normalize(self.forward_unnormalized_with(images, masks))
    }

    /// Uploads `n` images given as pixels/255 (`n·784` values) as `[n, 28, 28, 1]`.
    pub fn images_tensor(pixels: Vec<f32>, device: &Device) -> Tensor<4> {
        let n = pixels.len() / IMAGE_PIXELS;
        Tensor::from_data(
            TensorData::new(pixels, [n, IMAGE_SIDE, IMAGE_SIDE, 1]),
            device,
        )
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
