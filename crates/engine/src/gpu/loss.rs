//! The triplet losses on the device as four WGSL kernels (`loss_*.wgsl`): TFA's semi-hard and
//! batch-hard losses (hard or soft margin) over every distance, their gradient w.r.t. the
//! embeddings and the step's mining statistics, written together into one small readout. The
//! same values as [`crate::loss`] (burn's tensor ops, TFA-exact), in 3 or 4 launches instead of
//! about 130, with no read-back: the labels' part (positive pairs, classes) is known on the host
//! and travels with the launch's parameters.
//!
//! * `loss_dist`: the distance matrix (one thread per pair);
//! * `loss_select` (semi-hard only): each positive pair's semi-hard negative, if any (one thread
//!   per pair, one scan of the anchor's row: B³ comparisons in all, as TFA's, O(B²) memory);
//! * `loss_rows`: per anchor, the row's extremes and fallback negative (once per row), dLoss/dD's
//!   row and the row's sums (one thread per anchor, so each row is summed in a fixed order:
//!   deterministic);
//! * `loss_grad`: dLoss/de (one thread per value) and the readout.
//!
//! Ties and subgradients follow [`crate::loss`]: the lowest column among tied semi-hard
//! negatives, the first farthest negative for the fallback and the first extreme of a batch-hard
//! row; TF's gradient convention at a hinge of exactly 0. Knows no net: [`super::GpuNet`] runs
//! it between its forward and backward passes.

use burn::backend::wgpu::CubeTensor;
use burn::prelude::*;
use burn::tensor::DType;
use cubecl::server::Handle;

use super::kernels::*;
use super::net::{buffer, empty, tensor};
use tripletlab_core::run::{DEVICE_STATS, Metric, Mining};

/// What the loss computes: TFA's loss of `mining` at `margin` over `metric` (`soft`: batch-hard's
/// soft margin).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossSettings {
    pub margin: f32,
    pub metric: Metric,
    pub mining: Mining,
    pub soft: bool,
}

/// The loss kernels' parameters for a batch of `dim`-wide embeddings with these `labels` (only
/// compared for equality): the settings, what the labels alone decide (how many terms, whether
/// the batch is one class, the mean's denominator), then each row's class as the first row with
/// its label.
pub(super) fn info<L: PartialEq>(labels: &[L], dim: usize, s: LossSettings) -> Vec<u32> {
    let b = labels.len();
    let class: Vec<usize> = (0..b)
        .map(|i| {
            labels[..i]
                .iter()
                .position(|l| *l == labels[i])
                .unwrap_or(i)
        })
        .collect();
    let mut size = vec![0usize; b];
    for &c in &class {
        size[c] += 1;
    }
    let positive_pairs: usize = size.iter().map(|&n| n * n.saturating_sub(1)).sum();
    let with_positive = class.iter().filter(|&&c| size[c] > 1).count();
    let one_class = b > 0 && class.iter().all(|&c| c == 0);
    let (mining, terms, denominator) = match s.mining {
        Mining::SemiHard => (MINING_SEMI_HARD, positive_pairs, positive_pairs as f32),
        Mining::Hard => (MINING_HARD, with_positive, b as f32),
    };
    let metric = METRICS
        .iter()
        .position(|(_, m)| *m == s.metric)
        .expect("every metric has a number");
    let mut out = vec![0u32; LOSS_INFO.len()];
    let mut set = |name: &str, value: u32| {
        let at = LOSS_INFO
            .iter()
            .position(|n| *n == name)
            .expect("a parameter");
        out[at] = value;
    };
    set("B", b as u32);
    set("D", dim as u32);
    set("METRIC", metric as u32);
    set("MINING", mining);
    set("SOFT", u32::from(s.soft));
    set("MARGIN", s.margin.to_bits());
    set("TERMS", terms as u32);
    set("NO_NEGATIVE", if one_class { terms as u32 } else { 0 });
    set("ONE_CLASS", u32::from(one_class));
    set("DENOMINATOR", denominator.to_bits());
    out.extend(class.iter().map(|&c| c as u32));
    out
}

/// Launches the loss on `emb` (`[b, d]`, on the device) with `info` (see [`info`], uploaded):
/// the readout (`[1 +` [`DEVICE_STATS`]`]`: the loss, then the statistics) and dLoss/d`emb`.
pub(super) fn launch_loss(
    emb: &CubeTensor,
    (b, d): (usize, usize),
    (mining, metric): (Mining, Metric),
    info: &Handle,
) -> Result<(CubeTensor, CubeTensor), String> {
    let pairs = b * b;
    let f32s = |len: usize| empty(emb, vec![len], DType::F32);
    let angular = metric == Metric::Angular;
    let semi_hard = mining == Mining::SemiHard;
    let dist = f32s(pairs);
    // Buffers a setting does not use hold one `vec4`.
    let cosv = f32s(if angular { pairs } else { 4 });
    let sq = f32s(b);
    let neg = empty(emb, vec![if semi_hard { pairs } else { 4 }], DType::U32);
    let g = f32s(pairs);
    let rowsum = f32s(b * 5);
    let grad = empty(emb, vec![b, d], DType::F32);
    let readout = f32s(1 + DEVICE_STATS);
    launch(
        LOSS_DIST,
        pairs,
        &[("emb", emb), ("dist", &dist), ("cosv", &cosv), ("sq", &sq)],
        info,
    )?;
    if semi_hard {
        launch(LOSS_SELECT, pairs, &[("dist", &dist), ("neg", &neg)], info)?;
    }
    launch(
        LOSS_ROWS,
        b,
        &[
            ("dist", &dist),
            ("neg", &neg),
            ("g", &g),
            ("rowsum", &rowsum),
        ],
        info,
    )?;
    launch(
        LOSS_GRAD,
        b * d,
        &[
            ("emb", emb),
            ("dist", &dist),
            ("cosv", &cosv),
            ("sq", &sq),
            ("g", &g),
            ("rowsum", &rowsum),
            ("grad", &grad),
            ("readout", &readout),
        ],
        info,
    )?;
    Ok((readout, grad))
}

/// The loss of `embeddings` (`[B, D]`, on a wgpu / WebGPU device) with `labels` (one per row,
/// compared for equality): the readout (`[1 +` [`DEVICE_STATS`]`]`: the loss, then the mining
/// statistics in [`tripletlab_core::run::MiningStats::from_device`]'s order) and the gradient of the
/// loss w.r.t. `embeddings`, both on the device (nothing is read back). NaN where TFA's is (no
/// positive pair for the semi-hard loss). Fails on another device or a batch of no rows.
pub fn triplet_loss<L: PartialEq>(
    embeddings: Tensor<2>,
    labels: &[L],
    settings: LossSettings,
) -> Result<(Tensor<1>, Tensor<2>), String> {
    let [b, d] = embeddings.dims();
    if b != labels.len() || b == 0 || d == 0 {
        return Err(format!(
            "{} labels for a [{b}, {d}] batch of embeddings",
            labels.len()
        ));
    }
    let emb = buffer(embeddings.inner())?;
    let info = upload_info(&emb, &info(labels, d, settings));
    let (readout, grad) = launch_loss(&emb, (b, d), (settings.mining, settings.metric), &info)?;
    Ok((tensor(readout), tensor(grad)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mining: Mining) -> LossSettings {
        LossSettings {
            margin: 0.5,
            metric: Metric::Angular,
            mining,
            soft: false,
        }
    }

    #[test]
    fn the_parameters_carry_what_the_labels_decide() {
        let at = |name: &str| LOSS_INFO.iter().position(|n| *n == name).unwrap();
        // Classes 7 (rows 0, 2, 3), 1 (row 1), -4 (row 4, 5): 3·2 + 0 + 2·1 = 8 ordered pairs.
        let labels = [7i64, 1, 7, 7, -4, -4];
        let semi = info(&labels, 16, settings(Mining::SemiHard));
        assert_eq!(semi.len(), LOSS_INFO.len() + 6);
        assert_eq!(&semi[LOSS_INFO.len()..], &[0, 1, 0, 0, 4, 4]);
        assert_eq!(semi[at("B")], 6);
        assert_eq!(semi[at("D")], 16);
        assert_eq!(semi[at("METRIC")], 2);
        assert_eq!(semi[at("MINING")], MINING_SEMI_HARD);
        assert_eq!(f32::from_bits(semi[at("MARGIN")]), 0.5);
        assert_eq!(semi[at("TERMS")], 8);
        assert_eq!(f32::from_bits(semi[at("DENOMINATOR")]), 8.0);
        assert_eq!((semi[at("ONE_CLASS")], semi[at("NO_NEGATIVE")]), (0, 0));
        // Batch-hard: the 5 anchors with a positive are its terms; the mean is over all 6.
        let hard = info(&labels, 16, settings(Mining::Hard));
        assert_eq!(hard[at("MINING")], MINING_HARD);
        assert_eq!(hard[at("TERMS")], 5);
        assert_eq!(f32::from_bits(hard[at("DENOMINATOR")]), 6.0);
        // One class: every term lacks a negative. No pair at all: a denominator of 0 (NaN).
        let one = info(&[3u8, 3, 3], 2, settings(Mining::SemiHard));
        assert_eq!((one[at("ONE_CLASS")], one[at("NO_NEGATIVE")]), (1, 6));
        let none = info(&[1u8, 2, 3], 2, settings(Mining::SemiHard));
        assert_eq!(f32::from_bits(none[at("DENOMINATOR")]), 0.0);
    }
}
