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

pub use tripletlab_core::shape::{EMBEDDING_DIM, IMAGE_PIXELS, IMAGE_SIDE};

mod layers;
#[cfg(test)]
pub(crate) mod tests;

pub use layers::*;
/// Conv1's output channels.
pub(crate) const CONV1: usize = 64;
/// Conv2's output channels.
pub(crate) const CONV2: usize = 32;
/// Side of the second pooled map (28 → 14 → 7).
pub(crate) const SIDE2: usize = IMAGE_SIDE / 4;
/// Width of the flattened `[7, 7, 32]` map the dense layer reads.
pub(crate) const FLAT: usize = SIDE2 * SIDE2 * CONV2;

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
