//! The loss on held-out data: the run's own loss (mining, metric, margin, soft) on embeddings it
//! never trained on, in consecutive batches of the run's batch size. A fixed, seed-independent
//! measure of what training did, beside kNN (which an untrained net already scores well on
//! MNIST). Knows nothing of where the embeddings came from: it takes host vectors.

use burn::tensor::{Tensor, TensorData};

use crate::device::cpu_device;
use crate::loss::{batch_is_usable, triplet_loss};
use tripletlab_core::run::TrainConfig;

/// Mean of the run's loss over the consecutive `batch_size` batches of `vectors` (rows of
/// `dim`, one label each) in their order, the last partial batch included. Batches without a
/// defined loss (semi-hard mining and no label twice) are left out; `None` when none is left or
/// the shapes disagree.
pub fn held_out_loss(
    config: &TrainConfig,
    vectors: &[f32],
    labels: &[u8],
    dim: usize,
) -> Option<f32> {
    if dim == 0 || config.batch_size == 0 || vectors.len() != labels.len() * dim {
        return None;
    }
    let device = cpu_device();
    let (mut sum, mut batches) = (0.0f64, 0usize);
    for (rows, labels) in vectors
        .chunks(config.batch_size * dim)
        .zip(labels.chunks(config.batch_size))
    {
        if !batch_is_usable(labels, config.mining) {
            continue;
        }
        let x =
            Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [labels.len(), dim]), &device);
        let loss = triplet_loss(
            x,
            labels,
            config.margin,
            config.metric,
            config.mining,
            config.soft,
        )
        .into_scalar::<f32>();
        if loss.is_finite() {
            sum += f64::from(loss);
            batches += 1;
        }
    }
    (batches > 0).then(|| (sum / batches as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(batch_size: usize) -> TrainConfig {
        TrainConfig {
            batch_size,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn averages_the_batches_that_have_a_loss() {
        // Batch 1: two classes far apart, each twice: every hinge is 0.
        // Batch 2: one label each, no positive pair: left out.
        // Batch 3 (partial): labels [5, 5], no negative: TFA's term is margin + d(a,p) = 1 + 0.
        let v = [
            1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, // 0 0 1 1
            0.0, 1.0, 0.0, -1.0, 1.0, 0.0, -1.0, 0.0, // 2 3 4 6
            0.0, 1.0, 0.0, 1.0, // 5 5
        ];
        let labels = [0, 0, 1, 1, 2, 3, 4, 6, 5, 5];
        let loss = held_out_loss(&config(4), &v, &labels, 2).unwrap();
        assert!((loss - 0.5).abs() < 1e-6, "{loss}");
        assert_eq!(
            held_out_loss(&config(4), &v[..16], &labels[..8], 2),
            Some(0.0)
        );
        assert_eq!(held_out_loss(&config(4), &v[8..16], &labels[4..8], 2), None);
        assert_eq!(held_out_loss(&config(4), &v, &labels[..9], 2), None);
    }
}
