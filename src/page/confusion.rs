//! Where the embedding errs, as the page shows it: the confusion matrices there are to choose
//! from (each epoch's nearest-other-test-item rule, the final kNN-1 against the training set,
//! the raw pixels' kNN-1), and the test items behind a cell. Plain data: no browser, no yew.

use tripletlab_core::metrics::{Confusion, Metrics, Predictions};

use super::state::EpochRow;

/// One matrix the user can pick.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// What it counts, for the select.
    pub title: String,
    /// Each test item's predicted label (`None`: no prediction, left out).
    pub predicted: Vec<Option<u32>>,
}

/// The matrices there are, the most telling last (the final kNN-1 when there is one, else the
/// latest epoch's), then the raw pixels' for comparison.
pub fn sources(
    rows: &[EpochRow],
    final_metrics: Option<&Metrics>,
    raw: Option<&Metrics>,
) -> Vec<Source> {
    let knn1 = |m: &Metrics| {
        m.predictions
            .knn1
            .as_ref()
            .map(|p| p.iter().copied().map(Some).collect::<Vec<_>>())
    };
    let mut out: Vec<Source> = rows
        .iter()
        .filter(|r| !r.metrics.predictions.nearest_other.is_empty())
        .map(|r| Source {
            title: format!(
                "epoch {}: each test image's nearest other test image (as P@1)",
                r.epoch
            ),
            predicted: r.metrics.predictions.nearest_other.clone(),
        })
        .collect();
    if let Some(predicted) = final_metrics.and_then(knn1) {
        out.push(Source {
            title: "final: each test image's nearest training image (kNN-1)".into(),
            predicted,
        });
    }
    if let Some(predicted) = raw.and_then(knn1) {
        out.push(Source {
            title: "raw pixels, no training: nearest training image (kNN-1)".into(),
            predicted,
        });
    }
    out
}

/// The index of the source shown by default: the final kNN-1's, else the latest epoch's.
pub fn default_source(sources: &[Source]) -> usize {
    sources
        .iter()
        .rposition(|s| !s.title.starts_with("raw"))
        .unwrap_or(0)
}

/// The matrix of `source` against the test labels.
pub fn matrix(labels: &[u8], source: &Source) -> Confusion {
    let truth: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
    Predictions::confusion(&truth, &source.predicted)
}

/// The test items of label `truth` predicted as `predicted`, in test-set order.
pub fn members(labels: &[u8], source: &Source, truth: u32, predicted: u32) -> Vec<usize> {
    labels
        .iter()
        .zip(&source.predicted)
        .enumerate()
        .filter(|(_, (t, p))| u32::from(**t) == truth && **p == Some(predicted))
        .map(|(i, _)| i)
        .collect()
}

/// A cell's shade class: right answers in blue, errors in red, in ten shades by the cell's
/// share of its row (errors amplified threefold: they are what the table is for); `None` for an
/// empty cell. Classes, not inline styles: the page's CSP allows none.
pub fn shade(count: u64, row_total: u64, right: bool) -> Option<String> {
    if count == 0 {
        return None;
    }
    let share = if row_total > 0 {
        count as f64 / row_total as f64
    } else {
        0.0
    };
    Some(if right {
        format!("right{}", (share * 9.0).round() as u32)
    } else {
        format!("wrong{}", ((share * 3.0).min(1.0) * 9.0).round() as u32)
    })
}

/// The line over a cell's images: how many, of which class predicted as which, and whether
/// only the first `shown` are drawn.
pub fn cell_caption(items: usize, truth: &str, predicted: &str, shown: usize) -> String {
    let plural = if items == 1 { "" } else { "s" };
    let cut = if items > shown {
        format!(" (the first {shown} shown)")
    } else {
        String::new()
    };
    format!("{items} test image{plural} of {truth} predicted as {predicted}{cut}:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_follow_the_row_share_and_errors_count_threefold() {
        assert_eq!(shade(0, 10, true), None);
        assert_eq!(shade(10, 10, true).as_deref(), Some("right9"));
        assert_eq!(shade(5, 10, true).as_deref(), Some("right5"));
        assert_eq!(shade(1, 10, false).as_deref(), Some("wrong3"));
        assert_eq!(shade(4, 10, false).as_deref(), Some("wrong9"), "capped");
        assert_eq!(shade(1, 0, false).as_deref(), Some("wrong0"));
    }

    #[test]
    fn a_cell_s_caption_counts_its_images() {
        assert_eq!(
            cell_caption(1, "3", "8", 60),
            "1 test image of 3 predicted as 8:"
        );
        assert_eq!(
            cell_caption(61, "3", "8", 60),
            "61 test images of 3 predicted as 8 (the first 60 shown):"
        );
    }

    fn metrics(knn1: Option<Vec<u32>>, nearest_other: Vec<Option<u32>>) -> Metrics {
        Metrics {
            predictions: Predictions {
                knn1,
                nearest_other,
            },
            ..Metrics::default()
        }
    }

    #[test]
    fn each_epoch_then_the_final_knn_then_raw_pixels() {
        let labels = [0u8, 0, 1, 1];
        let rows = vec![
            EpochRow {
                epoch: 1,
                mean_loss: 0.9,
                metrics: metrics(None, vec![Some(1), Some(0), Some(1), None]),
            },
            EpochRow {
                epoch: 2,
                mean_loss: 0.8,
                metrics: metrics(None, vec![Some(0), Some(0), Some(1), Some(1)]),
            },
        ];
        let only_epochs = sources(&rows, None, None);
        assert_eq!(only_epochs.len(), 2);
        assert_eq!(default_source(&only_epochs), 1, "the latest epoch");
        let fin = metrics(Some(vec![0, 1, 1, 1]), vec![]);
        let raw = metrics(Some(vec![1, 1, 1, 0]), vec![]);
        let all = sources(&rows, Some(&fin), Some(&raw));
        assert_eq!(all.len(), 4);
        assert!(all[2].title.starts_with("final"));
        assert!(all[3].title.starts_with("raw pixels"));
        assert_eq!(
            default_source(&all),
            2,
            "the final kNN-1, not the raw pixels"
        );
        // Epoch 1: item 3 has no prediction and is left out.
        let m = matrix(&labels, &all[0]);
        assert_eq!(m.labels, [0, 1]);
        assert_eq!(m.counts, [[1, 1], [0, 1]]);
        assert_eq!(members(&labels, &all[0], 0, 1), [0]);
        assert_eq!(members(&labels, &all[2], 0, 1), [1]);
        assert_eq!(members(&labels, &all[3], 1, 1), [2]);
        assert_eq!(members(&labels, &all[3], 0, 1), [0, 1]);
        assert!(members(&labels, &all[1], 1, 0).is_empty());
    }
}
