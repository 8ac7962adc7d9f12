//! PCA to two dimensions: [`pca_2d`], and [`Pca2d`] for a host that computes it in slices.
//! Deterministic subspace iteration; knows nothing of t-SNE.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

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

/// Makes the largest-magnitude entry (the first on ties) positive.
pub(super) fn orient(axis: &mut [f64]) {
    let mut best = 0;
    for (i, x) in axis.iter().enumerate() {
        if x.abs() > axis[best].abs() {
            best = i;
        }
    }
    if axis[best] < 0.0 {
        axis.iter_mut().for_each(|x| *x = -*x);
    }
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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

/// Top two eigenpairs (value, unit vector) of the symmetric positive
/// semi-definite `c` (`dim ≥ 2`), largest first.
///
/// Subspace iteration on a block of [`SUBSPACE`] vectors with a Rayleigh-Ritz
/// step every iteration; the start block comes from a fixed-seed generator,
/// so the result is a pure function of `c`.
pub(super) fn top_two_eigen(c: &[f64], dim: usize) -> Vec<(f64, Vec<f64>)> {
    let p = dim.min(SUBSPACE);
    let mut rng = Pcg64::seed_from_u64(0x9ca5_eed5);
    let mut basis: Vec<Vec<f64>> = (0..p).map(|_| random_vector(&mut rng, dim)).collect();
    orthonormalize(&mut basis, &mut rng);
    let mut images = vec![vec![0.0f64; dim]; p];
    let mut iteration = 0;
    loop {
        iteration += 1;
        // images = C · basis, as axpy updates over rows of C (vectorisable).
        for img in images.iter_mut() {
            img.fill(0.0);
        }
        for (j, cj) in c.chunks_exact(dim).enumerate() {
            for (img, v) in images.iter_mut().zip(&basis) {
                let s = v[j];
                for (o, &x) in img.iter_mut().zip(cj) {
                    *o += s * x;
                }
            }
        }
        // Rayleigh-Ritz: eigen-decompose H = Vᵀ C V.
        let mut h = vec![0.0f64; p * p];
        for a in 0..p {
            for b in a..p {
                let v = 0.5 * (dot(&basis[a], &images[b]) + dot(&basis[b], &images[a]));
                h[a * p + b] = v;
                h[b * p + a] = v;
            }
        }
        let (values, vectors) = jacobi_eigen(&mut h, p);
        let combine = |set: &[Vec<f64>], k: usize| -> Vec<f64> {
            let mut out = vec![0.0f64; dim];
            for (a, v) in set.iter().enumerate() {
                let s = vectors[a * p + k];
                out.iter_mut().zip(v).for_each(|(o, x)| *o += s * x);
            }
            out
        };
        let ritz: Vec<Vec<f64>> = (0..p).map(|k| combine(&basis, k)).collect();
        let ritz_images: Vec<Vec<f64>> = (0..p).map(|k| combine(&images, k)).collect();
        let scale = values[0].abs().max(f64::MIN_POSITIVE);
        let converged = (0..2).all(|k| {
            let residual: f64 = ritz_images[k]
                .iter()
                .zip(&ritz[k])
                .map(|(cu, u)| (cu - values[k] * u).powi(2))
                .sum();
            residual.sqrt() <= EIGEN_TOL * scale
        });
        if converged || iteration >= MAX_SUBSPACE_ITERS {
            return ritz
                .into_iter()
                .zip(values)
                .take(2)
                .map(|(v, value)| (value, v))
                .collect();
        }
        basis = ritz_images;
        orthonormalize(&mut basis, &mut rng);
    }
}

pub(super) fn random_vector(rng: &mut Pcg64, dim: usize) -> Vec<f64> {
    (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Gram-Schmidt (two passes for stability), in order, so the first vector
/// keeps its direction. A vector that (numerically) lies in the span of the
/// previous ones is replaced by a fresh random one.
pub(super) fn orthonormalize(vectors: &mut [Vec<f64>], rng: &mut Pcg64) {
    for k in 0..vectors.len() {
        let (done, rest) = vectors.split_at_mut(k);
        let v = &mut rest[0];
        // k < dim, so a random vector is independent with probability one;
        // the bound only guarantees termination.
        for _attempt in 0..16 {
            let before = dot(v, v).sqrt();
            for _pass in 0..2 {
                for u in done.iter() {
                    let proj = dot(v, u);
                    v.iter_mut().zip(u).for_each(|(x, y)| *x -= proj * y);
                }
            }
            let after = dot(v, v).sqrt();
            if after > 1e-10 * before {
                v.iter_mut().for_each(|x| *x /= after);
                break;
            }
            *v = random_vector(rng, v.len());
        }
    }
}

/// Eigen-decomposition of the symmetric `p × p` matrix `h` (destroyed) by
/// cyclic Jacobi rotations. Returns the eigenvalues in decreasing order and
/// the matching eigenvectors as the columns of a row-major `p × p` matrix.
pub(super) fn jacobi_eigen(h: &mut [f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; p * p];
    for i in 0..p {
        v[i * p + i] = 1.0;
    }
    for _sweep in 0..64 {
        let (mut off, mut total) = (0.0f64, 0.0f64);
        for i in 0..p {
            for j in 0..p {
                let x2 = h[i * p + j] * h[i * p + j];
                total += x2;
                if i != j {
                    off += x2;
                }
            }
        }
        if off <= 1e-30 * total {
            break;
        }
        for a in 0..p {
            for b in a + 1..p {
                let hab = h[a * p + b];
                if hab == 0.0 {
                    continue;
                }
                let tau = (h[b * p + b] - h[a * p + a]) / (2.0 * hab);
                // The smaller rotation angle; `signum(±0) = ±1`.
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let cos = 1.0 / (1.0 + t * t).sqrt();
                let sin = t * cos;
                for k in 0..p {
                    let (x, y) = (h[k * p + a], h[k * p + b]);
                    h[k * p + a] = cos * x - sin * y;
                    h[k * p + b] = sin * x + cos * y;
                }
                for k in 0..p {
                    let (x, y) = (h[a * p + k], h[b * p + k]);
                    h[a * p + k] = cos * x - sin * y;
                    h[b * p + k] = sin * x + cos * y;
                }
                for k in 0..p {
                    let (x, y) = (v[k * p + a], v[k * p + b]);
                    v[k * p + a] = cos * x - sin * y;
                    v[k * p + b] = sin * x + cos * y;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&i, &j| h[j * p + j].total_cmp(&h[i * p + i]).then(i.cmp(&j)));
    let values = order.iter().map(|&i| h[i * p + i]).collect();
    let mut vectors = vec![0.0f64; p * p];
    for (new, &old) in order.iter().enumerate() {
        for k in 0..p {
            vectors[k * p + new] = v[k * p + old];
        }
    }
    (values, vectors)
}

// ---------------------------------------------------------------------------
// t-SNE
// ---------------------------------------------------------------------------
