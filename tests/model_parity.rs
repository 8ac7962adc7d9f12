//! The network reproduces Keras: load `tests/golden/forward_keras.safetensors` (the notebook's
//! net with perturbed weights, run by Keras 2.15 on 16 test digits) and compare the
//! pre-normalisation dense output and the final embeddings to 1e-5.

use burn::tensor::TensorData;
use safetensors::SafeTensors;
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::model::{EmbedNetConfig, Images};

const GOLDEN: &[u8] = include_bytes!("golden/forward_keras.safetensors");

fn tensor(st: &SafeTensors<'_>, name: &str) -> (Vec<f32>, Vec<usize>) {
    let v = st.tensor(name).unwrap();
    let data = v
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (data, v.shape().to_vec())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn forward_matches_keras() {
    let device = cpu_device();
    let st = SafeTensors::deserialize(GOLDEN).unwrap();
    let model = EmbedNetConfig::new()
        .load_safetensors(GOLDEN, &device)
        .unwrap();
    let (input, shape) = tensor(&st, "input_nhwc");
    assert_eq!(shape, [16, 28, 28, 1]);
    let images = Images::new(&input, &device);
    let dense: Vec<f32> = model
        .forward_unnormalized(&images)
        .into_data()
        .try_into_vec()
        .unwrap();
    let embedding: Vec<f32> = model.forward(&images).into_data().try_into_vec().unwrap();
    let (want_dense, _) = tensor(&st, "dense_output");
    let (want_embedding, _) = tensor(&st, "embedding");
    let d = max_abs_diff(&dense, &want_dense);
    let e = max_abs_diff(&embedding, &want_embedding);
    eprintln!("max |Δ| dense {d:e}, embedding {e:e}");
    assert!(d < 1e-4, "dense output differs by {d}");
    assert!(e < 1e-5, "embedding differs by {e}");
}

#[test]
fn weights_round_trip_through_safetensors() {
    let device = cpu_device();
    let model = EmbedNetConfig::new().init(7, &device);
    let bytes = pollster::block_on(model.to_safetensors()).unwrap();
    let again = EmbedNetConfig::new()
        .load_safetensors(&bytes, &device)
        .unwrap();
    let x = Images::new(&[0.5; 2 * 784], &device);
    let a: Vec<f32> = model.forward(&x).into_data().try_into_vec().unwrap();
    let b: Vec<f32> = again.forward(&x).into_data().try_into_vec().unwrap();
    assert_eq!(a, b);
    // Unit-norm rows.
    for row in a.chunks(256) {
        let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5);
    }
}

#[test]
fn bad_weight_files_are_rejected_with_a_reason() {
    let device = cpu_device();
    let cfg = EmbedNetConfig::new();
    assert!(
        cfg.load_safetensors(b"not a weights file", &device)
            .is_err()
    );
    // A valid safetensors file with the wrong shape for conv1.
    let data = vec![0u8; 4 * 4];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &data).unwrap();
    let bytes = safetensors::serialize(vec![("conv1.kernel_hwio", view)], None).unwrap();
    let err = cfg
        .load_safetensors(&bytes, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv1.kernel_hwio"), "{err}");
    let _ = TensorData::new(vec![0f32], [1]);
}
