//! Online triplet losses with TensorFlow Addons 0.23 semantics.
//!
//! * [`semi_hard_triplet_loss`] is `tfa.losses.TripletSemiHardLoss` (FaceNet's semi-hard mining):
//!   for every ordered positive pair (a, p) the negative is the closest one that is *strictly*
//!   farther than p; when there is none, the *farthest* negative; when the anchor has no
//!   negatives at all, the row minimum of the distance matrix. The loss is the mean of
//!   `max(margin + D[a,p] - D[a,n], 0)` over *all* ordered positive pairs, and NaN when the batch
//!   has no positive pair (0 / 0, as in TFA).
//! * [`hard_triplet_loss`] is `tfa.losses.TripletHardLoss` (batch-hard, optional soft margin).
//!
//! Labels live on the host (the trainer knows them), so the label masks are built there and
//! uploaded; everything that depends on the embeddings stays on the device. The negative
//! selection has two interchangeable implementations that give the same values and gradients:
//!
//! * [`Selection::Device`]: pure tensor arithmetic (comparisons, masked argmin), no read-back,
//!   no sort, so it runs on WebGPU inside the training step. It works on the distances *detached*
//!   from the autodiff graph, `chunk` anchors at a time (`chunk x B x B` scratch, at most
//!   `max(DEVICE_CHUNK_ELEMS, B x B)` elements), and keeps only each (anchor, positive)'s chosen
//!   column: every chunk's scratch is freed before the next one is built, so the step holds
//!   O(B²) memory, not the B x B x B floats an autodiff graph of the comparison would keep. It
//!   still makes B³ comparisons (as TFA does), so its time grows ×8 per doubling.
//! * [`Selection::ReadBack`]: reads the distance matrix back once, sorts each anchor's negatives and
//!   binary-searches each positive (O(B² log B) time, O(B²) memory). This is what makes large
//!   batches cheap on the CPU (TFA materialises B x B x B tensors). It needs a synchronous
//!   read, so [`Selection::Auto`] never takes it on WebGPU in the browser (it does on the CPU
//!   device there, where a read is immediate).
//!
//! Both paths produce the same `[B, B]` column indices (the lowest column among exact ties), and
//! the chosen distances are then gathered from the differentiable distance matrix, so values and
//! gradients are the same either way.
//!
//! [`mined_loss`] also returns what the mining found ([`tripletlab_core::run::MiningStats`]: how many
//! terms took a semi-hard negative, fell back, had no negative, are still active, and their
//! distances), in one small tensor on the same device, detached from the graph: the sums over
//! the embeddings computed there from the same selection, the counts that depend on the labels
//! alone from the host. So a trainer reads them with the loss in one read.
//!
//! Gradient conventions follow TF's autodiff: `max(x, 0)` passes the gradient at `x == 0`;
//! zero L2 distances have zero gradient; the chosen negative is a constant selection (the
//! gradient flows into the selected distance only). Where TF splits a gradient equally among
//! exactly tied minima/maxima (duplicate rows, exact distance ties), this implementation gives
//! it to one of them: the lowest column index for the semi-hard negative (both paths), and
//! whatever burn's `max_dim`/`min_dim` backward picks for the farthest-negative fallback and the
//! batch-hard loss. The loss value is identical either way.

mod hard;
mod selection;

use burn::tensor::{Device, Tensor, TensorData};

use hard::hard;
pub use hard::hard_triplet_loss;
pub use selection::select_semi_hard_device;
use selection::{can_read_back, semi_hard_host};

use tripletlab_core::run::{Metric, Mining};

/// Where the semi-hard negative is selected (see the module docs). Same values either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Device for small batches and on WebGPU in the browser; host for large batches elsewhere
    /// (natively, and on the browser's CPU device).
    #[default]
    Auto,
    /// Tensor arithmetic on the device: no read-back, usable inside a WebGPU step.
    Device,
    /// Sort-and-search on the CPU after one read-back of the distance matrix (native only).
    ReadBack,
}

/// Above this batch size [`Selection::Auto`] picks the host path where it can read back.
pub const AUTO_READ_BACK_THRESHOLD: usize = 64;
/// Largest `chunk x B x B` scratch tensor (elements) the device selection builds at once, unless
/// one anchor alone (`B x B`) is bigger: 4 MiB of f32, so the scratch stays O(B²) and small.
pub const DEVICE_CHUNK_ELEMS: usize = 1 << 20;

/// Label masks of a batch, computed on the host.
struct Masks {
    /// `label[a] == label[p] && a != p`, as 0/1.
    positive: Tensor<2>,
    /// `label[a] != label[n]`, as 0/1.
    negative: Tensor<2>,
    /// Number of ordered positive pairs.
    num_positive: usize,
    /// `[B, 1]`: whether each anchor has a positive, as 0/1 (host values).
    anchor_has_positive: Vec<f32>,
    /// Whether the batch is one class: then no anchor has a negative (otherwise every one has).
    one_class: bool,
    /// Host copy of `negative`, for the host selection path.
    negative_host: Vec<bool>,
}

fn masks<L: PartialEq>(labels: &[L], device: &Device) -> Masks {
    let b = labels.len();
    let mut pos = vec![0f32; b * b];
    let mut neg = vec![0f32; b * b];
    let mut neg_host = vec![false; b * b];
    let mut num_positive = 0;
    for a in 0..b {
        for n in 0..b {
            let same = labels[a] == labels[n];
            if same && a != n {
                pos[a * b + n] = 1.0;
                num_positive += 1;
            }
            if !same {
                neg[a * b + n] = 1.0;
                neg_host[a * b + n] = true;
            }
        }
    }
    let anchor_has_positive = pos
        .chunks(b.max(1))
        .map(|row| if row.contains(&1.0) { 1.0 } else { 0.0 })
        .collect();
    Masks {
        positive: Tensor::from_data(TensorData::new(pos, [b, b]), device),
        negative: Tensor::from_data(TensorData::new(neg, [b, b]), device),
        num_positive,
        anchor_has_positive,
        one_class: !neg_host.contains(&true),
        negative_host: neg_host,
    }
}

/// `tf.maximum(x, 0)` with TF's gradient convention: the gradient passes where `x >= 0`.
fn relu_tf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let keep = x.clone().greater_equal_elem(0.0).float().detach();
    x * keep
}

/// Pairwise distance matrix `[B, B]` exactly as TFA computes it (see the module docs).
pub fn pairwise_distances(embeddings: Tensor<2>, metric: Metric) -> Tensor<2> {
    let [b, _] = embeddings.dims();
    let device = embeddings.device();
    match metric {
        Metric::L2 | Metric::SquaredL2 => {
            let sq = embeddings.clone().powi_scalar(2).sum_dim(1); // [B, 1]
            let gram = embeddings.clone().matmul(embeddings.transpose());
            let d2 = sq.clone() + sq.transpose() - gram * 2.0;
            let d2 = relu_tf(d2);
            let zero = d2.clone().lower_equal_elem(0.0).float().detach();
            let dist = if metric == Metric::SquaredL2 {
                d2
            } else {
                (d2 + zero.clone() * 1e-16).sqrt()
            };
            let off_diagonal = Tensor::<2>::eye(b, &device).neg().add_scalar(1.0);
            dist * zero.neg().add_scalar(1.0) * off_diagonal
        }
        Metric::Angular => {
            let norm = embeddings
                .clone()
                .powi_scalar(2)
                .sum_dim(1)
                .clamp_min(1e-12)
                .sqrt();
            let f = embeddings / norm;
            let cos = f.clone().matmul(f.transpose());
            relu_tf(cos.neg().add_scalar(1.0))
        }
    }
}

/// TFA's `masked_minimum(data, mask)` along dim 1: `min((D - rowmax)·mask) + rowmax`.
fn masked_minimum(data: Tensor<2>, mask: Tensor<2>) -> Tensor<2> {
    let rowmax = data.clone().max_dim(1);
    ((data - rowmax.clone()) * mask).min_dim(1) + rowmax
}

/// TFA's `masked_maximum(data, mask)` along dim 1: `max((D - rowmin)·mask) + rowmin`.
fn masked_maximum(data: Tensor<2>, mask: Tensor<2>) -> Tensor<2> {
    let rowmin = data.clone().min_dim(1);
    ((data - rowmin.clone()) * mask).max_dim(1) + rowmin
}

/// FaceNet semi-hard triplet loss with TFA 0.23 semantics. `embeddings` is `[B, D]`, `labels`
/// has `B` entries (only compared for equality). Returns a one-element tensor; NaN when no label
/// occurs twice. Uses [`Selection::Auto`].
pub fn semi_hard_triplet_loss<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
) -> Tensor<1> {
    semi_hard_triplet_loss_with(embeddings, labels, margin, metric, Selection::Auto)
}

/// [`semi_hard_triplet_loss`] with an explicit [`Selection`].
pub fn semi_hard_triplet_loss_with<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
    selection: Selection,
) -> Tensor<1> {
    semi_hard(embeddings, labels, margin, metric, selection, false).0
}

/// A batch's loss (as [`triplet_loss`], with an explicit [`Selection`] for semi-hard mining)
/// and its mining statistics.
pub struct Mined {
    /// The loss, `[1]`, in the autodiff graph.
    pub loss: Tensor<1>,
    /// [`DEVICE_STATS`] sums in the order of [`MiningStats::from_device`], detached, on the
    /// same device.
    pub stats: Tensor<1>,
}

/// The loss chosen by `mining` and what its mining found (see the module docs).
pub fn mined_loss<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
    (mining, soft): (Mining, bool),
    selection: Selection,
) -> Mined {
    let (loss, stats) = match mining {
        Mining::SemiHard => semi_hard(embeddings, labels, margin, metric, selection, true),
        Mining::Hard => hard(embeddings, labels, margin, metric, soft, true),
    };
    Mined {
        loss,
        stats: stats.expect("statistics were asked for"),
    }
}

/// The semi-hard loss, and its statistics when `with_stats`.
fn semi_hard<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
    selection: Selection,
    with_stats: bool,
) -> (Tensor<1>, Option<Tensor<1>>) {
    let [b, _] = embeddings.dims();
    assert_eq!(b, labels.len(), "one label per embedding row");
    let device = embeddings.device();
    let m = masks(labels, &device);
    let dist = pairwise_distances(embeddings, metric);

    let use_host = match selection {
        Selection::ReadBack => true,
        Selection::Device => false,
        Selection::Auto => b > AUTO_READ_BACK_THRESHOLD && can_read_back(&device),
    };
    // Column of the semi-hard negative of each (a, p), and whether one exists.
    let (index, has_semi) = if use_host {
        semi_hard_host(&dist, &m, &device)
    } else {
        select_semi_hard_device(&dist, &m.negative)
    };
    // Same rounding as TFA's masked minimum: (D[a,n] - rowmax[a]) + rowmax[a], gathered from the
    // differentiable matrix, so the gradient flows into the chosen distance only.
    let rowmax = dist.clone().max_dim(1);
    let semi = (dist.clone() - rowmax.clone()).gather(1, index) + rowmax;
    // Fallback: the farthest negative (row minimum when the anchor has no negatives).
    let farthest = masked_maximum(dist.clone(), m.negative.clone()); // [B, 1]
    let negative = semi.mask_where(has_semi.clone().bool_not(), farthest.expand([b, b]));

    let per_pair =
        relu_tf((dist.clone() - negative.clone()).add_scalar(margin) * m.positive.clone());
    let stats = with_stats.then(|| {
        // A semi-hard negative exists only where the anchor has negatives; `per_pair` is 0
        // outside the positive pairs.
        stats_of(
            Terms {
                count: m.num_positive,
                one_class: m.one_class,
                farther: has_semi.float() * m.positive.clone(),
                active: per_pair.clone().greater_elem(0.0).float(),
                d_ap: dist * m.positive.clone(),
                d_an: negative * m.positive,
            },
            &device,
        )
    });
    (per_pair.sum().div_scalar(m.num_positive as f32), stats)
}

/// The loss terms of a batch for [`stats_of`], entry by entry (`[B, B]` pairs for semi-hard
/// mining, `[B, 1]` anchors for batch-hard), each already 0 outside the terms. What depends on
/// the labels alone (how many terms, whether they have negatives) is known on the host: the
/// device only sums what depends on the embeddings (a dozen small launches in all).
struct Terms {
    /// How many terms.
    count: usize,
    /// Whether the batch is one class (no term has a negative; else every term has).
    one_class: bool,
    /// 0/1: the chosen negative is strictly farther than the positive.
    farther: Tensor<2>,
    /// 0/1: the loss term is `> 0`.
    active: Tensor<2>,
    /// The positive's distance.
    d_ap: Tensor<2>,
    /// The chosen negative's distance.
    d_an: Tensor<2>,
}

/// The [`DEVICE_STATS`] values of [`MiningStats::from_device`], detached, on `device`.
fn stats_of(t: Terms, device: &Device) -> Tensor<1> {
    let no_negative = if t.one_class { t.count } else { 0 };
    let known = [t.count as f32, no_negative as f32];
    // Without negatives nothing was chosen: no semi-hard negative, no negative distance.
    let chosen = |sum: Tensor<1>| {
        if t.one_class {
            sum.mul_scalar(0.0)
        } else {
            sum
        }
    };
    Tensor::cat(
        vec![
            Tensor::from_data(TensorData::new(known.to_vec(), [2]), device),
            chosen(t.farther.detach().sum()),
            t.active.detach().sum(),
            t.d_ap.detach().sum(),
            chosen(t.d_an.detach().sum()),
        ],
        0,
    )
}

/// The loss chosen by `mining` (the `soft` flag only matters for [`Mining::Hard`]).
pub fn triplet_loss<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    margin: f32,
    metric: Metric,
    mining: Mining,
    soft: bool,
) -> Tensor<1> {
    match mining {
        Mining::SemiHard => semi_hard_triplet_loss(embeddings, labels, margin, metric),
        Mining::Hard => hard_triplet_loss(embeddings, labels, margin, metric, soft),
    }
}

/// Whether a batch with these labels gives a defined (non-NaN) loss for `mining`: semi-hard
/// needs at least one positive pair. Batch-hard is always defined.
pub fn batch_is_usable<L: PartialEq>(labels: &[L], mining: Mining) -> bool {
    match mining {
        Mining::Hard => !labels.is_empty(),
        Mining::SemiHard => labels
            .iter()
            .enumerate()
            .any(|(i, l)| labels[i + 1..].contains(l)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tripletlab_core::run::select_semi_hard;

    #[test]
    fn metric_and_mining_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>().unwrap(), m);
        }
        for m in Mining::ALL {
            assert_eq!(m.as_str().parse::<Mining>().unwrap(), m);
        }
        assert_eq!("squared-L2".parse::<Metric>().unwrap(), Metric::SquaredL2);
        assert!("manhattan".parse::<Metric>().is_err());
    }

    #[test]
    fn host_selection_is_strict_and_picks_closest_farther_negative() {
        // One anchor row: columns 0 (anchor), 1 (positive at 1.0), 2..5 negatives.
        let b = 5;
        let mut dist = vec![0f32; b * b];
        dist[..5].copy_from_slice(&[0.0, 1.0, 1.0, 3.0, 2.0]);
        let mut neg = vec![false; b * b];
        neg[2..5].fill(true);
        let (index, exists) = select_semi_hard(&dist, &neg, b);
        // D[0,2] == D[0,1] is not strictly farther: the answer is column 4 (2.0), not 3 (3.0).
        assert!(exists[1]);
        assert_eq!(index[1], 4);
        // For p = 3 (distance 3.0) no negative is farther.
        assert!(!exists[3]);
    }

    #[test]
    fn device_selection_picks_the_same_columns_as_the_host_across_chunks() {
        use rand::{Rng, SeedableRng};
        let device = crate::device::cpu_device();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        // 300 anchors are 28 chunks of DEVICE_CHUNK_ELEMS / 300² = 11 (the last one partial).
        for b in [1usize, 2, 7, 64, 300] {
            assert!(
                b < 300 || DEVICE_CHUNK_ELEMS / (b * b) < b,
                "300 must need several chunks"
            );
            // Integer-valued distances: many exact ties, where the lowest column must win.
            let dist: Vec<f32> = (0..b * b).map(|_| rng.random_range(0..6) as f32).collect();
            let labels: Vec<u8> = (0..b).map(|_| rng.random_range(0..4)).collect();
            let negative: Vec<bool> = (0..b * b).map(|k| labels[k / b] != labels[k % b]).collect();
            let (want_index, want_exists) = select_semi_hard(&dist, &negative, b);
            let mask: Vec<f32> = negative
                .iter()
                .map(|&n| if n { 1.0 } else { 0.0 })
                .collect();
            let d = Tensor::<2>::from_data(TensorData::new(dist, [b, b]), &device);
            let n = Tensor::<2>::from_data(TensorData::new(mask, [b, b]), &device);
            let (index, exists) = select_semi_hard_device(&d, &n);
            let exists: Vec<i64> = exists.int().into_data().try_into_vec_as().expect("int");
            let exists: Vec<bool> = exists.iter().map(|&e| e != 0).collect();
            let index: Vec<i64> = index.into_data().try_into_vec_as().expect("int");
            assert_eq!(exists, want_exists, "B = {b}");
            for k in (0..b * b).filter(|&k| want_exists[k]) {
                assert_eq!(
                    index[k],
                    want_index[k],
                    "B = {b}, (a, p) = ({}, {})",
                    k / b,
                    k % b
                );
            }
        }
    }

    #[test]
    fn usable_batches() {
        assert!(batch_is_usable(&[1, 2, 1], Mining::SemiHard));
        assert!(!batch_is_usable(&[1, 2, 3], Mining::SemiHard));
        assert!(batch_is_usable(&[1, 2, 3], Mining::Hard));
    }
}
