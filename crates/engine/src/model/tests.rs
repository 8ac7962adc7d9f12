//! Tests of the reference net: layouts, Keras' initialisation, masks and weights files.

use super::*;
use crate::device::cpu_device;
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
        x.reshape([n, FLAT]).matmul(net.dense_kernel.val()) + net.dense_bias.val().unsqueeze_dim(0),
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
        let grad =
            |g: &GradientsParams, p: &Param<Tensor<2>>| values(g.get::<2>(p.id).expect("gradient"));
        let grad1 =
            |g: &GradientsParams, p: &Param<Tensor<1>>| values(g.get::<1>(p.id).expect("gradient"));
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
