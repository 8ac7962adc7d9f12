//! The batch-hard triplet loss (TFA 0.23 `TripletHardLoss`): per anchor the farthest positive
//! and the closest negative, with its mining statistics.

use burn::tensor::{Tensor, TensorData};
use tripletlab_core::run::Metric;

use super::{Terms, masked_maximum, masked_minimum, masks, pairwise_distances, relu_tf, stats_of};

/// Batch-hard triplet loss with TFA 0.23 `TripletHardLoss` semantics: per anchor the farthest
/// positive and the closest negative, `max(d_ap - d_an + margin, 0)` (or `softplus(d_ap - d_an)`
/// when `soft`), averaged over all anchors.
pub fn hard_triplet_loss<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
    soft: bool,
) -> Tensor<1> {
    hard(embeddings, labels, margin, metric, soft, false).0
}

/// The batch-hard loss, and its statistics when `with_stats`.
pub(super) fn hard<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
    soft: bool,
    with_stats: bool,
) -> (Tensor<1>, Option<Tensor<1>>) {
    let [b, _] = embeddings.dims();
    assert_eq!(b, labels.len(), "one label per embedding row");
    let m = masks(labels, &embeddings.device());
    let dist = pairwise_distances(embeddings, metric);
    let hardest_positive = masked_maximum(dist.clone(), m.positive.clone());
    let hardest_negative = masked_minimum(dist, m.negative.clone());
    let gap = hardest_positive.clone() - hardest_negative.clone();
    let per_anchor = if soft {
        gap.exp().log1p()
    } else {
        relu_tf(gap.add_scalar(margin))
    };
    let stats = with_stats.then(|| {
        let device = per_anchor.device();
        let count = m.anchor_has_positive.iter().filter(|&&w| w > 0.0).count();
        let term = Tensor::<2>::from_data(TensorData::new(m.anchor_has_positive, [b, 1]), &device);
        let farther = hardest_negative.clone().greater(hardest_positive.clone());
        stats_of(
            Terms {
                count,
                one_class: m.one_class,
                farther: farther.float() * term.clone(),
                active: per_anchor.clone().greater_elem(0.0).float() * term.clone(),
                d_ap: hardest_positive * term.clone(),
                d_an: hardest_negative * term,
            },
            &device,
        )
    });
    (per_anchor.mean(), stats)
}
