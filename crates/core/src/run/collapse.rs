//! [`Collapse`]: whether an embedding is collapsing (every input mapped near one point, the
//! failure a triplet loss can fall into), measured on a set of vectors in O(n·d) on the host.
//! Plain data with serde; knows nothing of where the vectors came from.
//!
//! Both figures are taken on the unit vectors `u_i = x_i / |x_i|` (zero rows left out), whose
//! mean is `c`: the mean pairwise cosine over the `n(n-1)` ordered pairs of distinct rows is
//! `(|Σ u_i|² - n) / (n(n-1))` (no n×n similarity matrix), and the spread is the root mean
//! square distance of the `u_i` to `c`, `sqrt(1 - |c|²)`: 0 when every row points the same way,
//! 1 when `c = 0`. Both come from `|c|`, but they read differently: the cosine says how alike two
//! rows are, the spread how far they reach.

use serde::{Deserialize, Serialize};

/// Above this mean pairwise cosine the embedding is said to be collapsing: two random test
/// images are then on average within about 26° of each other (a spread below about 0.32), while
/// a trained MNIST embedding keeps its ten classes apart (see the CLI test's figures).
pub const COLLAPSE_COSINE: f64 = 0.9;

/// The collapse indicator of a set of embeddings (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Mean cosine similarity of two distinct rows (NaN with fewer than two non-zero rows).
    pub mean_cosine: f64,
    /// Root mean square distance of the unit rows to their mean, in `[0, 1]` (NaN without a
    /// non-zero row).
    pub spread: f64,
    /// `mean_cosine >` [`COLLAPSE_COSINE`].
    pub collapsing: bool,
}

impl Collapse {
    /// The indicator of `vectors`, rows of `dim` values (`dim > 0`; a trailing partial row is
    /// left out).
    pub fn of(vectors: &[f32], dim: usize) -> Self {
        let mut sum = vec![0f64; dim];
        let mut n = 0usize;
        for row in vectors.chunks_exact(dim) {
            let norm = row
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt();
            if norm > 0.0 && norm.is_finite() {
                n += 1;
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += f64::from(v) / norm;
                }
            }
        }
        let total = sum.iter().map(|s| s * s).sum::<f64>();
        let n = n as f64;
        let mean_cosine = (total - n) / (n * (n - 1.0));
        let mean_cosine = if n >= 2.0 { mean_cosine } else { f64::NAN };
        let spread = (1.0 - total / (n * n)).max(0.0).sqrt();
        Self {
            mean_cosine,
            spread,
            collapsing: mean_cosine > COLLAPSE_COSINE,
        }
    }

    /// The one-line warning a host shows when the embedding is collapsing; `None` otherwise.
    pub fn warning(&self) -> Option<String> {
        self.collapsing.then(|| {
            format!(
                "the embedding is collapsing: two test embeddings have a mean cosine of {:.3} \
                 (above {COLLAPSE_COSINE}) and spread {:.3} around their mean direction",
                self.mean_cosine, self.spread
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_is_measured_on_the_unit_rows() {
        // Unit rows (lengths do not matter) (1,0), (-1,0), (0,1), (0,1): of the 6 pairs, rows
        // 1-2 have cosine -1, rows 3-4 +1, the other four 0: mean 0. They sum to (0, 2), so
        // |c| = 1/2 and the spread is sqrt(1 - 1/4).
        let c = Collapse::of(&[2.0, 0.0, -1.0, 0.0, 0.0, 3.0, 0.0, 0.5], 2);
        assert!(c.mean_cosine.abs() < 1e-12, "{c:?}");
        assert!((c.spread - 0.75f64.sqrt()).abs() < 1e-12, "{c:?}");
        assert!(!c.collapsing);
        // Everything on one ray (and a zero row, left out): cosine 1, spread 0, collapsing.
        let c = Collapse::of(&[1.0, 1.0, 2.0, 2.0, 0.0, 0.0, 0.5, 0.5], 2);
        assert!((c.mean_cosine - 1.0).abs() < 1e-12, "{c:?}");
        assert!(c.spread < 1e-6, "{c:?}");
        assert!(c.collapsing);
        let warning = c.warning().expect("a warning");
        assert!(warning.contains("mean cosine of 1.000"), "{warning}");
        // Well apart (cosine 0.47 on average) is no collapse.
        let c = Collapse::of(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 2);
        // cosines: 0, 1/√2, 1/√2: mean 0.4714.
        assert!(
            (c.mean_cosine - 2.0 / 3.0 * 0.5f64.sqrt()).abs() < 1e-12,
            "{c:?}"
        );
        assert!(!c.collapsing);
        assert_eq!(c.warning(), None);
        assert!(Collapse::of(&[1.0, 0.0], 2).mean_cosine.is_nan());
    }
}
