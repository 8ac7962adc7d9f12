//! Tests of the fused CPU kernels against the reference net under burn's autodiff.

use super::*;
use crate::device::cpu_device;
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
        let reference = net.forward_train(&Images::new(&pixels, &device), device_masks.as_ref());
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
        for ((name, ours), theirs) in names.iter().zip(fused.grads()).zip(burn_grads(&net, &g)) {
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
