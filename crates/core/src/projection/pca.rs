//! PCA to two dimensions: [`pca_2d`], and [`Pca2d`] for a host that computes it in slices.
//! Deterministic subspace iteration; knows nothing of t-SNE.

use super::eigen::{dot, orient, top_two_eigen};
use super::*;

/// Projects the rows onto their first two principal components.
///
/// The data are centred, the covariance is accumulated in `f64`, and the top
/// two eigenvectors are found by deterministic subspace iteration with
/// Rayleigh-Ritz extraction (no randomness between calls). Each component's
/// sign is chosen so that its largest-magnitude loading is positive (the
/// first such loading on ties), so the picture does not flip between
/// refreshes.
///
/// Degenerate inputs give zeros rather than errors: no rows give an empty
/// result, a single row or identical rows give `[0, 0]` for every row, and a
/// second coordinate is 0 when `dim == 1` or the data have no variance
/// beyond the first direction (below 1e-12 of it).
///
/// For 2,000 rows of dimension 256 this takes a few tens of milliseconds.
///
/// # Errors
/// [`ProjectionError::Shape`] for a ragged buffer or NaN or infinite values.
pub fn pca_2d(data: &[f32], dim: usize) -> Result<Vec<[f32; 2]>, ProjectionError> {
    let mut job = Pca2d::new(data, dim)?;
    job.advance(data, usize::MAX);
    Ok(job.finish(data))
}

/// [`pca_2d`] a block of rows at a time, for a host that must stay responsive: the scatter
/// matrix is O(n·dim²), a few hundred milliseconds for 10,000 embeddings in a browser. Every
/// call gets the same `data`; the result is bit-identical to [`pca_2d`]'s.
pub struct Pca2d {
    dim: usize,
    rows: usize,
    mean: Vec<f64>,
    scatter: Scatter,
}

impl Pca2d {
    /// Checks `data` and takes its mean.
    ///
    /// # Errors
    /// As [`pca_2d`].
    pub fn new(data: &[f32], dim: usize) -> Result<Self, ProjectionError> {
        let rows = check_data(data, dim)?;
        let mean = column_mean(data, dim);
        Ok(Self {
            dim,
            rows,
            mean,
            scatter: Scatter::new(dim),
        })
    }

    /// Folds up to `rows` more rows (rounded up to a multiple of 4) into the scatter matrix;
    /// `true` once every row is in.
    pub fn advance(&mut self, data: &[f32], rows: usize) -> bool {
        debug_assert_eq!(data.len(), self.rows * self.dim, "the data of Pca2d::new");
        let start = self.scatter.rows;
        let end = start
            .saturating_add(rows.div_ceil(4).saturating_mul(4))
            .min(self.rows);
        self.scatter
            .add(&data[start * self.dim..end * self.dim], &self.mean);
        end == self.rows
    }

    /// The coordinates of every row (folding in any rows not advanced yet).
    pub fn finish(self, data: &[f32]) -> Vec<[f32; 2]> {
        self.finish_with_basis(data).0
    }

    /// [`Pca2d::finish`], and the fitted basis, which places further rows in the same layout.
    pub fn finish_with_basis(mut self, data: &[f32]) -> (Vec<[f32; 2]>, PcaBasis) {
        self.advance(data, usize::MAX);
        let cov = self.scatter.into_matrix();
        let pca = Pca::from_scatter(self.mean, &cov, self.rows);
        let points = to_f32(pca.project(data));
        (points, PcaBasis(pca))
    }
}

/// The mean and axes of a finished [`Pca2d`]: where any row of the same width lands in its
/// layout.
pub struct PcaBasis(Pca);

impl PcaBasis {
    /// The layout position of `row` (as the fitted rows were placed); `None` when the width
    /// differs or a value is not finite.
    pub fn place(&self, row: &[f32]) -> Option<[f32; 2]> {
        (row.len() == self.0.mean.len() && row.iter().all(|x| x.is_finite()))
            .then(|| to_f32(self.0.project(row))[0])
    }
}

fn to_f32(points: Vec<[f64; 2]>) -> Vec<[f32; 2]> {
    points
        .into_iter()
        .map(|[x, y]| [x as f32, y as f32])
        .collect()
}

/// The mean of each column.
pub(super) fn column_mean(data: &[f32], dim: usize) -> Vec<f64> {
    let n = data.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for row in data.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    mean
}

/// Mean and (up to two) unit principal axes of a data set.
pub(super) struct Pca {
    mean: Vec<f64>,
    /// Axes in decreasing order of variance; missing axes project to 0.
    axes: Vec<Vec<f64>>,
}

/// Block size of the subspace iteration (more vectors than the two wanted
/// speed up convergence when the second and third eigenvalues are close).
pub(super) const SUBSPACE: usize = 6;
/// Maximum subspace iterations; only reached for nearly isotropic data,
/// where the exact axes do not matter.
pub(super) const MAX_SUBSPACE_ITERS: usize = 300;
/// Convergence: residual `|C u - θ u|` relative to the largest eigenvalue.
pub(super) const EIGEN_TOL: f64 = 1e-9;
/// Axes with less variance than this fraction of the first are dropped.
pub(super) const MIN_RELATIVE_VARIANCE: f64 = 1e-12;

impl Pca {
    /// Fits on validated, finite data.
    pub(super) fn fit(data: &[f32], dim: usize) -> Self {
        let mut job = Scatter::new(dim);
        let mean = column_mean(data, dim);
        job.add(data, &mean);
        Self::from_scatter(mean, &job.into_matrix(), data.len() / dim)
    }

    /// From the column `mean` and the scatter matrix `cov` of `n` rows.
    pub(super) fn from_scatter(mean: Vec<f64>, cov: &[f64], n: usize) -> Self {
        let dim = mean.len();
        if n < 2 {
            return Self {
                mean,
                axes: Vec::new(),
            };
        }
        let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
        if trace <= 0.0 {
            return Self {
                mean,
                axes: Vec::new(),
            };
        }
        let pairs = if dim == 1 {
            vec![(trace, vec![1.0])]
        } else {
            top_two_eigen(cov, dim)
        };
        let first = pairs[0].0;
        let axes = pairs
            .into_iter()
            .filter(|&(value, _)| value > first * MIN_RELATIVE_VARIANCE)
            .map(|(_, mut axis)| {
                orient(&mut axis);
                axis
            })
            .collect();
        Self { mean, axes }
    }

    /// Coordinates of every row on the (up to two) axes.
    pub(super) fn project(&self, data: &[f32]) -> Vec<[f64; 2]> {
        let dim = self.mean.len();
        let mut centred = vec![0.0f64; dim];
        data.chunks_exact(dim)
            .map(|row| {
                for ((c, &x), m) in centred.iter_mut().zip(row).zip(&self.mean) {
                    *c = f64::from(x) - m;
                }
                let mut out = [0.0; 2];
                for (o, axis) in out.iter_mut().zip(&self.axes) {
                    *o = dot(&centred, axis);
                }
                out
            })
            .collect()
    }
}

/// `Σ (x - mean)(x - mean)ᵀ` over rows added in any number of calls, full `dim × dim`
/// storage once done.
///
/// Rows are folded in four at a time into the upper triangle, so the matrix is streamed a
/// quarter as often; the inner loop is element-wise and vectorises. Added in blocks of whole
/// groups of four, the sum is the same, bit for bit, as in one go.
pub(super) struct Scatter {
    dim: usize,
    cov: Vec<f64>,
    /// Rows added so far.
    rows: usize,
    group: [Vec<f64>; 4],
}

impl Scatter {
    pub(super) fn new(dim: usize) -> Self {
        Self {
            dim,
            cov: vec![0.0f64; dim * dim],
            rows: 0,
            group: [(); 4].map(|_| vec![0.0f64; dim]),
        }
    }

    pub(super) fn add(&mut self, data: &[f32], mean: &[f64]) {
        let dim = self.dim;
        let rows = &mut self.group;
        for group in data.chunks(4 * dim) {
            for (k, row) in rows.iter_mut().enumerate() {
                // Missing rows of the last group stay zero and add nothing.
                let src = group.get(k * dim..(k + 1) * dim);
                for (d, r) in row.iter_mut().enumerate() {
                    *r = src.map_or(0.0, |s| f64::from(s[d]) - mean[d]);
                }
            }
            let [r0, r1, r2, r3] = &*rows;
            for i in 0..dim {
                let (a, b, c, e) = (r0[i], r1[i], r2[i], r3[i]);
                let upper = &mut self.cov[i * dim + i..(i + 1) * dim];
                let xs = r0[i..].iter().zip(&r1[i..]).zip(&r2[i..]).zip(&r3[i..]);
                for (cij, (((x0, x1), x2), x3)) in upper.iter_mut().zip(xs) {
                    *cij += a * x0 + b * x1 + c * x2 + e * x3;
                }
            }
        }
        self.rows += data.len() / dim;
    }

    /// The symmetric matrix.
    pub(super) fn into_matrix(self) -> Vec<f64> {
        let (dim, mut cov) = (self.dim, self.cov);
        for i in 0..dim {
            for j in i + 1..dim {
                cov[j * dim + i] = cov[i * dim + j];
            }
        }
        cov
    }
}

// ---------------------------------------------------------------------------
// t-SNE
// ---------------------------------------------------------------------------
