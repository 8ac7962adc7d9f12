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
//! * [`Selection::Device`]: pure tensor arithmetic (comparisons, masked min/max), no read-back,
//!   no sort, so it runs on WebGPU inside the training step. It needs `B x B x chunk` scratch
//!   memory, where the anchors are processed `chunk` at a time so the memory stays bounded.
//! * [`Selection::Host`]: reads the distance matrix back once, sorts each anchor's negatives and
//!   binary-searches each positive (O(B² log B) time, O(B²) memory), then gathers the chosen
//!   negatives on the device. This is what makes large batches cheap (TFA materialises
//!   B x B x B tensors). It needs a synchronous read, so it is native only.
//!
//! Gradient conventions follow TF's autodiff: `max(x, 0)` passes the gradient at `x == 0`;
//! zero L2 distances have zero gradient; the chosen negative is a constant selection (the
//! gradient flows into the selected distance only). Where TF splits a gradient equally among
//! exactly tied minima/maxima (duplicate rows, exact distance ties), this implementation gives
//! it to one of them: the lowest column index on the host path, and whatever burn's
//! `min_dim`/`max_dim` backward picks on the device path. The loss value is identical either way.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Distance used between embeddings (TFA's `distance_metric`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Euclidean distance (not squared): TFA's default `"L2"`.
    #[default]
    L2,
    /// Squared Euclidean distance: `"squared-L2"`.
    SquaredL2,
    /// `max(1 - cos, 0)`: `"angular"`.
    Angular,
}

impl Metric {
    /// All metrics, in the order the UI lists them.
    pub const ALL: [Metric; 3] = [Metric::L2, Metric::SquaredL2, Metric::Angular];

    /// The short name used on the command line and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::SquaredL2 => "squared-l2",
            Metric::Angular => "angular",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    /// Accepts the CLI/URL names and TFA's spellings (`L2`, `squared-L2`, `angular`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "l2" => Ok(Metric::L2),
            "squared-l2" | "squared_l2" | "sql2" => Ok(Metric::SquaredL2),
            "angular" | "cosine" => Ok(Metric::Angular),
            other => Err(format!(
                "unknown distance metric '{other}' (expected l2, squared-l2 or angular)"
            )),
        }
    }
}

/// How the negative of each triplet is mined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mining {
    /// TFA `TripletSemiHardLoss` (the notebook's loss).
    #[default]
    SemiHard,
    /// TFA `TripletHardLoss` (hardest positive, hardest negative per anchor).
    Hard,
}

impl Mining {
    /// All mining strategies, in the order the UI lists them.
    pub const ALL: [Mining; 2] = [Mining::SemiHard, Mining::Hard];

    /// The short name used on the command line and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mining::SemiHard => "semi-hard",
            Mining::Hard => "hard",
        }
    }
}

impl std::fmt::Display for Mining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mining {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "semi-hard" | "semihard" | "semi_hard" => Ok(Mining::SemiHard),
            "hard" => Ok(Mining::Hard),
            other => Err(format!(
                "unknown mining strategy '{other}' (expected semi-hard or hard)"
            )),
        }
    }
}

/// Where the semi-hard negative is selected (see the module docs). Same values either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Device for small batches (and always on wasm), host for large ones.
    #[default]
    Auto,
    /// Tensor arithmetic on the device: no read-back, usable inside a WebGPU step.
    Device,
    /// Sort-and-search on the host after one read of the distance matrix (native only).
    Host,
}

/// Above this batch size [`Selection::Auto`] picks the host path natively.
pub const AUTO_HOST_THRESHOLD: usize = 64;
/// Largest `chunk x B x B` scratch tensor (elements) the device path builds at once.
const DEVICE_CHUNK_ELEMS: usize = 1 << 24;

/// Label masks of a batch, computed on the host.
struct Masks {
    /// `label[a] == label[p] && a != p`, as 0/1.
    positive: Tensor<2>,
    /// `label[a] != label[n]`, as 0/1.
    negative: Tensor<2>,
    /// Number of ordered positive pairs.
    num_positive: usize,
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
    Masks {
        positive: Tensor::from_data(TensorData::new(pos, [b, b]), device),
        negative: Tensor::from_data(TensorData::new(neg, [b, b]), device),
        num_positive,
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
    let [b, _] = embeddings.dims();
    assert_eq!(b, labels.len(), "one label per embedding row");
    let device = embeddings.device();
    let m = masks(labels, &device);
    let dist = pairwise_distances(embeddings, metric);

    let use_host = match selection {
        Selection::Host => true,
        Selection::Device => false,
        Selection::Auto => !cfg!(target_arch = "wasm32") && b > AUTO_HOST_THRESHOLD,
    };
    // Distance of the semi-hard negative of each (a, p), and whether one exists.
    let (semi, has_semi) = if use_host {
        semi_hard_host(&dist, &m, &device)
    } else {
        semi_hard_device(&dist, &m)
    };
    // Fallback: the farthest negative (row minimum when the anchor has no negatives).
    let farthest = masked_maximum(dist.clone(), m.negative.clone()); // [B, 1]
    let negative = semi.mask_where(has_semi.bool_not(), farthest.expand([b, b]));

    let per_pair = relu_tf((dist - negative).add_scalar(margin) * m.positive);
    per_pair.sum().div_scalar(m.num_positive as f32)
}

/// Device path: `[B, B]` semi-hard distances (garbage where none exists) and the existence mask.
fn semi_hard_device(dist: &Tensor<2>, m: &Masks) -> (Tensor<2>, Tensor<2, Bool>) {
    let [b, _] = dist.dims();
    let rowmax = dist.clone().max_dim(1); // [B, 1]
    let chunk = (DEVICE_CHUNK_ELEMS / (b * b).max(1)).clamp(1, b);
    let mut semis = Vec::new();
    let mut exists = Vec::new();
    for a0 in (0..b).step_by(chunk) {
        let a1 = (a0 + chunk).min(b);
        let c = a1 - a0;
        let rows = dist.clone().slice([a0..a1, 0..b]); // [c, B]: D[a, ·]
        let d_an = rows.clone().unsqueeze_dim::<3>(1).expand([c, b, b]); // [a, p, n] = D[a, n]
        let d_ap = rows.unsqueeze_dim::<3>(2).expand([c, b, b]); // [a, p, n] = D[a, p]
        let neg = m
            .negative
            .clone()
            .slice([a0..a1, 0..b])
            .unsqueeze_dim::<3>(1)
            .expand([c, b, b]);
        let cond = d_an.clone().greater(d_ap).float().detach() * neg; // [a, p, n]
        let max_c = rowmax.clone().slice([a0..a1, 0..1]).unsqueeze_dim::<3>(2); // [c, 1, 1]
        let semi = ((d_an - max_c.clone()) * cond.clone()).min_dim(2) + max_c; // [c, B, 1]
        semis.push(semi.reshape([c, b]));
        exists.push(cond.sum_dim(2).reshape([c, b]).greater_elem(0.0));
    }
    (Tensor::cat(semis, 0), Tensor::cat(exists, 0))
}

/// Host path: one read of `dist`, per-anchor sort of the negatives, binary search per positive.
fn semi_hard_host(dist: &Tensor<2>, m: &Masks, device: &Device) -> (Tensor<2>, Tensor<2, Bool>) {
    let [b, _] = dist.dims();
    let host: Vec<f32> = dist
        .clone()
        .into_data()
        .try_into_vec()
        .expect("distance matrix is f32");
    let (index, exists) = select_semi_hard(&host, &m.negative_host, b);
    let index = Tensor::<2, Int>::from_data(TensorData::new(index, [b, b]), device);
    let exists = Tensor::<2, Bool>::from_data(TensorData::new(exists, [b, b]), device);
    // Same rounding as TFA's masked minimum: (D[a,n] - rowmax[a]) + rowmax[a].
    let rowmax = dist.clone().max_dim(1);
    let semi = (dist.clone() - rowmax.clone()).gather(1, index) + rowmax;
    (semi, exists)
}

/// For each (a, p): the column of the smallest `D[a, n] > D[a, p]` among the negatives of `a`
/// (lowest column on ties) and whether one exists. `dist` and `negative` are row-major `B x B`.
pub fn select_semi_hard(dist: &[f32], negative: &[bool], b: usize) -> (Vec<i64>, Vec<bool>) {
    let mut index = vec![0i64; b * b];
    let mut exists = vec![false; b * b];
    let mut sorted: Vec<(f32, usize)> = Vec::with_capacity(b);
    for a in 0..b {
        let row = &dist[a * b..(a + 1) * b];
        sorted.clear();
        sorted.extend(
            (0..b)
                .filter(|&n| negative[a * b + n])
                .map(|n| (row[n], n)),
        );
        sorted.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        for p in 0..b {
            let threshold = row[p];
            let first = sorted.partition_point(|&(d, _)| !(d > threshold));
            if let Some(&(_, n)) = sorted.get(first) {
                index[a * b + p] = n as i64;
                exists[a * b + p] = true;
            }
        }
    }
    (index, exists)
}

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
    let [b, _] = embeddings.dims();
    assert_eq!(b, labels.len(), "one label per embedding row");
    let m = masks(labels, &embeddings.device());
    let dist = pairwise_distances(embeddings, metric);
    let hardest_positive = masked_maximum(dist.clone(), m.positive);
    let hardest_negative = masked_minimum(dist, m.negative);
    let gap = hardest_positive - hardest_negative;
    let per_anchor = if soft {
        gap.exp().log1p()
    } else {
        relu_tf(gap.add_scalar(margin))
    };
    per_anchor.mean()
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
        for n in 2..5 {
            neg[n] = true;
        }
        let (index, exists) = select_semi_hard(&dist, &neg, b);
        // D[0,2] == D[0,1] is not strictly farther: the answer is column 4 (2.0), not 3 (3.0).
        assert!(exists[1]);
        assert_eq!(index[1], 4);
        // For p = 3 (distance 3.0) no negative is farther.
        assert!(!exists[3]);
    }

    #[test]
    fn usable_batches() {
        assert!(batch_is_usable(&[1, 2, 1], Mining::SemiHard));
        assert!(!batch_is_usable(&[1, 2, 3], Mining::SemiHard));
        assert!(batch_is_usable(&[1, 2, 3], Mining::Hard));
    }
}
