//! The notebook's net on a wgpu / WebGPU device as hand-written WGSL kernels: forward pass,
//! backward pass and Adam, launched on burn's own device and buffers (burn's `template`
//! extension), so the loss between them stays burn's TFA-exact code and nothing is read back.
//!
//! It is the GPU twin of [`crate::fused`] (same layouts, dropout masks, first-maximum pooling
//! and Adam), tested against it: same embeddings, gradients and updates to float rounding
//! (`tests/wgpu_backend.rs` runs both on Mesa's lavapipe). burn's generic kernels (tiled
//! matmuls with workgroup barriers, dozens of small element-wise passes under autodiff) are what
//! a step cost before; here a step is eleven dispatches plus the loss:
//!
//! * forward — `stage1` (conv1 at the four offsets of each pooling window, first maximum, bias,
//!   relu, dropout, into conv2's zero-padded 15×15 grid; one thread per value), `stage2` (conv2
//!   over the grid at the four offsets, pooling, bias, relu, dropout; one thread per pooled
//!   output: conv2's full-resolution output is never stored), `dense`, `normalize`;
//! * backward — `norm_back`, `dense_back_input` (gated by stage 2), `dense_back_weight`,
//!   `conv2_back_weight` and `conv2_back_input` (summing only the winning positions of each
//!   pooling window), `conv1_back`;
//! * `adam` over all weights at once; it leaves them untouched when the loss is not finite.
//!
//! Every kernel is a `run(id)` called from one shared entry point (`ENTRY`), one thread per
//! output value (or four) with no workgroup memory or barriers, each
//! output summed by one thread in a fixed order, so results are deterministic. The weights, the
//! gradients and Adam's moments each live in one flat buffer in [`crate::model::WEIGHT_TENSORS`] order.

use burn::backend::wgpu::{
    CubeBackend, CubeDim, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous,
};
use burn::prelude::*;
use burn::tensor::{DType, Shape};
use cubecl::CubeCount;
use cubecl::prelude::KernelId;
use cubecl::server::KernelArguments;

use crate::fused::AdamSettings;
use crate::model::{
    CONV1, CONV2, EMBEDDING_DIM, FLAT, GRID1, GRID1_CELLS, IMAGE_PIXELS, IMAGE_SIDE, PARAM_SIZES,
};

/// Threads per workgroup (every kernel is one-dimensional).
const WORKGROUP: u32 = 64;
/// Most workgroups along one dispatch dimension (WebGPU's guaranteed limit).
const MAX_GROUPS: usize = 65_535;
/// Weights in all.
const PARAMS: usize = {
    let mut total = 0;
    let mut i = 0;
    while i < PARAM_SIZES.len() {
        total += PARAM_SIZES[i];
        i += 1;
    }
    total
};
/// Images per forward pass when embedding a whole set (bounds the work buffers: ≈ 8 MB).
pub const EMBED_PIECE: usize = 128;
/// Bytes per image of the engine's largest buffer, conv2's zero-padded input grid (`a1`):
/// a batch's buffer must fit in one storage binding of the device.
const LARGEST_BYTES_PER_IMAGE: u64 = (GRID1_CELLS * CONV1 * 4) as u64;
/// The largest batch whose buffers fit in `max_buffer_bytes` (the device's largest storage
/// binding and buffer), at most [`crate::train::MAX_BATCH`]: 2,330 in the 128 MiB that
/// WebGPU guarantees, every batch the settings allow in 1 GiB.
pub fn max_batch_for(max_buffer_bytes: u64) -> usize {
    usize::try_from(max_buffer_bytes / LARGEST_BYTES_PER_IMAGE)
        .unwrap_or(usize::MAX)
        .min(crate::train::MAX_BATCH)
}

/// The WGSL engine's largest batch on `device` (see [`max_batch_for`]); `None` when it is not
/// a wgpu / WebGPU device.
pub fn max_batch(device: &Device) -> Option<usize> {
    let probe = buffer(Tensor::<1>::zeros([1], device)).ok()?;
    Some(max_batch_for(
        probe.client.properties().memory.max_page_size,
    ))
}

/// One WGSL kernel: its name (the compilation cache key), shared declarations it needs after
/// the header, and its body.
#[derive(Clone, Copy)]
struct Wgsl {
    name: &'static str,
    prelude: &'static str,
    body: &'static str,
}

/// The pixels binding and the padded `pixel` reader (stage 1 and conv1's backward pass).
const PIXELS_PRELUDE: &str = include_str!("gpu/pixels.wgsl");

macro_rules! kernel {
    ($name:ident) => {
        kernel!($name, "")
    };
    ($name:ident, $prelude:expr) => {
        Wgsl {
            name: stringify!($name),
            prelude: $prelude,
            body: include_str!(concat!("gpu/", stringify!($name), ".wgsl")),
        }
    };
}

const STAGE1: Wgsl = kernel!(stage1, PIXELS_PRELUDE);
const STAGE2: Wgsl = kernel!(stage2);
const DENSE: Wgsl = kernel!(dense);
const NORMALIZE: Wgsl = kernel!(normalize);
const NORM_BACK: Wgsl = kernel!(norm_back);
const DENSE_BACK_INPUT: Wgsl = kernel!(dense_back_input);
const DENSE_BACK_WEIGHT: Wgsl = kernel!(dense_back_weight);
const CONV2_BACK_WEIGHT: Wgsl = kernel!(conv2_back_weight);
const CONV2_BACK_INPUT: Wgsl = kernel!(conv2_back_input);
const CONV1_BACK: Wgsl = kernel!(conv1_back, PIXELS_PRELUDE);
const ADAM: Wgsl = kernel!(adam);

/// Every kernel, for the tests.
#[cfg(test)]
const ALL: [Wgsl; 11] = [
    STAGE1,
    STAGE2,
    DENSE,
    NORMALIZE,
    NORM_BACK,
    DENSE_BACK_INPUT,
    DENSE_BACK_WEIGHT,
    CONV2_BACK_WEIGHT,
    CONV2_BACK_INPUT,
    CONV1_BACK,
    ADAM,
];

/// The entry point every kernel ends with: the thread's linear index (dispatches wider than
/// [`MAX_GROUPS`] workgroups use a second dimension) handed to the kernel's `run`.
const ENTRY: &str = "
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    run(gid.x + gid.y * groups.x * WG);
}
";

/// Constants and helpers every kernel starts with, generated from the Rust constants so the
/// two cannot disagree.
fn header() -> String {
    let mut offsets = [0usize; 6];
    for i in 1..6 {
        offsets[i] = offsets[i - 1] + PARAM_SIZES[i - 1];
    }
    let consts = [
        ("WG", WORKGROUP as usize),
        ("SIDE", IMAGE_SIDE),
        ("PIXELS", IMAGE_PIXELS),
        ("CONV1", CONV1),
        ("CONV2", CONV2),
        ("GRID", GRID1),
        ("CELLS", GRID1_CELLS),
        ("SIDE1", GRID1 - 1),
        ("UNITS1", (GRID1 - 1) * (GRID1 - 1)),
        ("SIDE2", 7),
        ("UNITS2", 49),
        ("FLAT", FLAT),
        ("EMB", EMBEDDING_DIM),
        ("W1", offsets[0]),
        ("B1", offsets[1]),
        ("W2", offsets[2]),
        ("B2", offsets[3]),
        ("W3", offsets[4]),
        ("B3", offsets[5]),
    ];
    let mut out = String::new();
    for (name, value) in consts {
        out.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    out.push_str(
        "fn is_nan(x: f32) -> bool {\n    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;\n}\n\
         fn is_nan4(x: vec4<f32>) -> vec4<bool> {\n    return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);\n}\n\
         fn is_finite(x: f32) -> bool {\n    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;\n}\n",
    );
    out
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(header())
            .add_template(self.prelude)
            .add_template(self.body)
            .add_template(ENTRY)
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.name)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Launches `kernel` with one thread per index below `threads`, on `buffers` in binding order
/// followed by an `info` array of `u32`s.
fn launch(kernel: Wgsl, threads: usize, buffers: &[&CubeTensor], info: &[u32]) {
    let client = &buffers[0].client;
    let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
    let info = client.create_from_slice(&bytes);
    let groups = threads.div_ceil(WORKGROUP as usize).max(1);
    let (x, y) = if groups <= MAX_GROUPS {
        (groups, 1)
    } else {
        (MAX_GROUPS, groups.div_ceil(MAX_GROUPS))
    };
    let mut bindings: Vec<_> = buffers.iter().map(|t| t.handle.clone().binding()).collect();
    bindings.push(info.binding());
    client.launch(
        Box::new(SourceKernel::new(kernel, CubeDim::new_1d(WORKGROUP))),
        CubeCount::Static(x as u32, y as u32, 1),
        KernelArguments::new().with_buffers(bindings),
    );
}

/// A burn tensor's buffer, contiguous. Fails if the tensor is not on a wgpu device.
fn buffer<const D: usize>(tensor: Tensor<D>) -> Result<CubeTensor, String> {
    tensor
        .try_into_primitive::<CubeBackend>()
        .map(into_contiguous)
        .map_err(|e| format!("the WGSL engine needs a wgpu / WebGPU device ({e:?})"))
}

/// A burn tensor on the buffer's device with the buffer's contents.
fn tensor<const D: usize>(buffer: CubeTensor) -> Tensor<D> {
    Tensor::from_primitive::<CubeBackend>(buffer)
}

/// A new uninitialised buffer of `len` 32-bit values on `like`'s device.
fn empty(like: &CubeTensor, shape: Vec<usize>, dtype: DType) -> CubeTensor {
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
        })
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
        masks: Option<&[Vec<f32>; 2]>,
    ) -> Result<Forward, String> {
        let p = &self.params;
        let (mask1, mask2) = match masks {
            Some([m1, m2]) => {
                if m1.len() != n * GRID1_CELLS * CONV1 || m2.len() != n * FLAT {
                    return Err("dropout masks of another batch size".into());
                }
                (
                    upload(m1.clone(), &self.device)?,
                    upload(m2.clone(), &self.device)?,
                )
            }
            None => (empty(p, vec![4], DType::F32), empty(p, vec![4], DType::F32)),
        };
        // Unused buffers still need one `vec4` for the kernels that read them as such.
        let kept_len = |len: usize| if train { len } else { 4 };
        let units1 = n * (GRID1 - 1) * (GRID1 - 1) * CONV1;
        let a1 = empty(p, vec![n * GRID1_CELLS * CONV1], DType::F32);
        let arg1 = empty(p, vec![kept_len(units1)], DType::U32);
        let gate1 = empty(p, vec![kept_len(units1)], DType::F32);
        let flags = [n as u32, u32::from(train), u32::from(masks.is_some())];
        launch(
            STAGE1,
            n * GRID1_CELLS * CONV1,
            &[pixels, p, &mask1, &a1, &arg1, &gate1],
            &flags,
        );
        let a2 = empty(p, vec![n * FLAT], DType::F32);
        let arg2 = empty(p, vec![kept_len(n * FLAT)], DType::U32);
        let gate2 = empty(p, vec![kept_len(n * FLAT)], DType::F32);
        launch(
            STAGE2,
            n * FLAT / 4,
            &[&a1, p, &mask2, &a2, &arg2, &gate2],
            &flags,
        );
        let z = empty(p, vec![n, EMBEDDING_DIM], DType::F32);
        launch(DENSE, n * EMBEDDING_DIM / 4, &[&a2, p, &z], &[n as u32]);
        let embeddings = empty(p, vec![n, EMBEDDING_DIM], DType::F32);
        launch(
            NORMALIZE,
            n * EMBEDDING_DIM,
            &[&z, &embeddings],
            &[n as u32],
        );
        Ok(Forward {
            a1,
            a2,
            z,
            embeddings,
            kept: train.then_some([arg1, gate1, arg2, gate2]),
        })
    }

    fn pixels(&self, pixels: &[f32]) -> Result<(CubeTensor, usize), String> {
        if pixels.is_empty() || pixels.len() % IMAGE_PIXELS != 0 {
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
        let (pixels, n) = self.pixels(pixels)?;
        if n > self.max_batch {
            return Err(format!(
                "a batch of {n} images is above the WGSL engine's {} on this device",
                self.max_batch
            ));
        }
        let f = self.forward(&pixels, n, true, masks)?;
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
        Ok(tensor(f.embeddings))
    }

    /// Gradients of the weights (flat, see [`GpuNet::grads`]) from the gradient of the loss
    /// w.r.t. the embeddings of the last [`GpuNet::forward_train`].
    pub fn backward(&mut self, d_embeddings: Tensor<2>) -> Result<(), String> {
        let s = self
            .saved
            .as_ref()
            .ok_or("backward without a forward pass")?;
        let n = s.n;
        if d_embeddings.dims() != [n, EMBEDDING_DIM] {
            return Err(format!(
                "gradient of shape {:?} for a batch of {n}",
                d_embeddings.dims()
            ));
        }
        let d = buffer(d_embeddings.inner())?;
        let p = &self.params;
        let info = [n as u32];
        let dz = empty(p, vec![n * EMBEDDING_DIM], DType::F32);
        launch(NORM_BACK, n * EMBEDDING_DIM, &[&s.z, &d, &dz], &info);
        let g2 = empty(p, vec![n * FLAT], DType::F32);
        launch(DENSE_BACK_INPUT, n * FLAT, &[&dz, p, &s.gate2, &g2], &info);
        let grads = empty(p, vec![PARAMS], DType::F32);
        launch(
            DENSE_BACK_WEIGHT,
            (FLAT + 1) * EMBEDDING_DIM / 4,
            &[&s.a2, &dz, &grads],
            &info,
        );
        launch(
            CONV2_BACK_WEIGHT,
            CONV1 * CONV2 + CONV2,
            &[&s.a1, &g2, &s.arg2, &grads],
            &info,
        );
        let g1 = empty(p, vec![n * (GRID1 - 1) * (GRID1 - 1) * CONV1], DType::F32);
        launch(
            CONV2_BACK_INPUT,
            n * (GRID1 - 1) * (GRID1 - 1) * CONV1 / 4,
            &[&g2, &s.arg2, p, &s.gate1, &g1],
            &info,
        );
        launch(
            CONV1_BACK,
            5 * CONV1,
            &[&s.pixels, &g1, &s.arg1, &grads],
            &info,
        );
        self.grads = Some(grads);
        Ok(())
    }

    /// One Adam update with the gradients of the last [`GpuNet::backward`] (Keras' update,
    /// [`AdamSettings::factors`]). `loss` is that batch's loss on the device: when it is not finite the
    /// kernel leaves the weights and moments as they were (the host never reads it).
    pub fn adam_step(&mut self, lr: f64, loss: Tensor<1>) -> Result<(), String> {
        let grads = self.grads.as_ref().ok_or("Adam step without gradients")?;
        let loss = buffer(loss.inner())?;
        self.time += 1;
        let AdamSettings { beta_1, beta_2, .. } = self.adam;
        let (combined, eps) = self.adam.factors(self.time);
        let info = [
            PARAMS as u32,
            (lr as f32).to_bits(),
            beta_1.to_bits(),
            beta_2.to_bits(),
            combined.to_bits(),
            eps.to_bits(),
        ];
        let p = &self.params;
        let outs = [(); 3].map(|_| empty(p, vec![PARAMS], DType::F32));
        let [params, m, v] = &outs;
        launch(
            ADAM,
            PARAMS,
            &[
                p,
                grads,
                &self.moment_1,
                &self.moment_2,
                params,
                m,
                v,
                &loss,
            ],
            &info,
        );
        let [params, m, v] = outs;
        (self.params, self.moment_1, self.moment_2) = (params, m, v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template engine would read `{{ … }}` as a placeholder.
    #[test]
    fn kernels_have_no_template_markers() {
        for k in ALL {
            let text = format!("{}{}", k.prelude, k.body);
            assert!(!text.contains("{{") && !text.contains("}}"), "{}", k.name);
            assert!(
                k.body.contains("fn run(id: u32)"),
                "{} is called through ENTRY",
                k.name
            );
        }
        assert!(!header().contains("{{"));
        assert!(
            ENTRY.contains(&format!("@workgroup_size({WORKGROUP})")),
            "ENTRY must match WORKGROUP"
        );
    }

    #[test]
    fn header_offsets_follow_the_weight_order() {
        let h = header();
        assert!(h.contains("const W1: u32 = 0u;"));
        assert!(h.contains("const B1: u32 = 256u;"));
        assert!(h.contains("const W3: u32 = 8544u;"));
        assert!(h.contains("const B3: u32 = 409952u;"));
        assert_eq!(PARAMS, 410_208);
    }

    #[test]
    fn the_batch_limit_follows_the_device_s_largest_binding() {
        // WebGPU's guaranteed 128 MiB: conv2's input grid (57,600 bytes an image) of 2,330.
        assert_eq!(LARGEST_BYTES_PER_IMAGE, 57_600);
        assert_eq!(max_batch_for(128 << 20), 2_330);
        // SwiftShader's 1 GiB holds every batch the settings allow.
        assert_eq!(max_batch_for(1 << 30), crate::train::MAX_BATCH);
        assert_eq!(max_batch_for(u64::MAX), crate::train::MAX_BATCH);
        assert_eq!(max_batch_for(57_599), 0);
    }
}
