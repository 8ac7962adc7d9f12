//! 2-D projections of embeddings for display: PCA (instant, deterministic)
//! and Barnes-Hut t-SNE (incremental, so a browser can show progress).
//!
//! Both take a row-major `&[f32]` buffer with `dim` values per row and return
//! one `[x, y]` pair per row.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::metrics::{Neighbor, top_k};

/// Errors from the projection functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    /// An embedding dimension of zero was given.
    #[error("embedding dimension must be at least 1")]
    ZeroDim,
    /// The flat buffer does not hold a whole number of rows.
    #[error("data length {len} is not a multiple of the embedding dimension {dim}")]
    RaggedData {
        /// Length of the flat buffer.
        len: usize,
        /// Requested row length.
        dim: usize,
    },
    /// A value is NaN or infinite.
    #[error("value at row {row}, column {col} is not finite")]
    NonFinite {
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
    /// t-SNE needs at least two points.
    #[error("t-SNE needs at least 2 points, got {n}")]
    TooFewPoints {
        /// Number of rows given.
        n: usize,
    },
    /// The perplexity must be below the number of points.
    #[error("perplexity {perplexity} must be smaller than the number of points ({n})")]
    PerplexityTooLarge {
        /// Requested perplexity.
        perplexity: f32,
        /// Number of points.
        n: usize,
    },
    /// A t-SNE parameter is out of range.
    #[error("t-SNE parameter `{name}` = {value} is invalid: it must be {expected}")]
    InvalidParam {
        /// Field of [`TsneParams`].
        name: &'static str,
        /// Given value.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
}

/// Checks the buffer shape and values; returns the number of rows.
fn check_data(data: &[f32], dim: usize) -> Result<usize, ProjectionError> {
    if dim == 0 {
        return Err(ProjectionError::ZeroDim);
    }
    if !data.len().is_multiple_of(dim) {
        return Err(ProjectionError::RaggedData {
            len: data.len(),
            dim,
        });
    }
    if let Some(pos) = data.iter().position(|x| !x.is_finite()) {
        return Err(ProjectionError::NonFinite {
            row: pos / dim,
            col: pos % dim,
        });
    }
    Ok(data.len() / dim)
}

// ---------------------------------------------------------------------------
// PCA
// ---------------------------------------------------------------------------

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
/// [`ProjectionError::ZeroDim`], [`ProjectionError::RaggedData`], or
/// [`ProjectionError::NonFinite`] for NaN or infinite values.
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
    pub fn finish(mut self, data: &[f32]) -> Vec<[f32; 2]> {
        self.advance(data, usize::MAX);
        let cov = self.scatter.into_matrix();
        Pca::from_scatter(self.mean, &cov, self.rows)
            .project(data)
            .into_iter()
            .map(|[x, y]| [x as f32, y as f32])
            .collect()
    }
}

/// The mean of each column.
fn column_mean(data: &[f32], dim: usize) -> Vec<f64> {
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
struct Pca {
    mean: Vec<f64>,
    /// Axes in decreasing order of variance; missing axes project to 0.
    axes: Vec<Vec<f64>>,
}

/// Block size of the subspace iteration (more vectors than the two wanted
/// speed up convergence when the second and third eigenvalues are close).
const SUBSPACE: usize = 6;
/// Maximum subspace iterations; only reached for nearly isotropic data,
/// where the exact axes do not matter.
const MAX_SUBSPACE_ITERS: usize = 300;
/// Convergence: residual `|C u - θ u|` relative to the largest eigenvalue.
const EIGEN_TOL: f64 = 1e-9;
/// Axes with less variance than this fraction of the first are dropped.
const MIN_RELATIVE_VARIANCE: f64 = 1e-12;

impl Pca {
    /// Fits on validated, finite data.
    fn fit(data: &[f32], dim: usize) -> Self {
        let mut job = Scatter::new(dim);
        let mean = column_mean(data, dim);
        job.add(data, &mean);
        Self::from_scatter(mean, &job.into_matrix(), data.len() / dim)
    }

    /// From the column `mean` and the scatter matrix `cov` of `n` rows.
    fn from_scatter(mean: Vec<f64>, cov: &[f64], n: usize) -> Self {
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
    fn project(&self, data: &[f32]) -> Vec<[f64; 2]> {
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
fn orient(axis: &mut [f64]) {
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

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `Σ (x - mean)(x - mean)ᵀ` over rows added in any number of calls, full `dim × dim`
/// storage once done.
///
/// Rows are folded in four at a time into the upper triangle, so the matrix is streamed a
/// quarter as often; the inner loop is element-wise and vectorises. Added in blocks of whole
/// groups of four, the sum is the same, bit for bit, as in one go.
struct Scatter {
    dim: usize,
    cov: Vec<f64>,
    /// Rows added so far.
    rows: usize,
    group: [Vec<f64>; 4],
}

impl Scatter {
    fn new(dim: usize) -> Self {
        Self {
            dim,
            cov: vec![0.0f64; dim * dim],
            rows: 0,
            group: [(); 4].map(|_| vec![0.0f64; dim]),
        }
    }

    fn add(&mut self, data: &[f32], mean: &[f64]) {
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
    fn into_matrix(self) -> Vec<f64> {
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
fn top_two_eigen(c: &[f64], dim: usize) -> Vec<(f64, Vec<f64>)> {
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

fn random_vector(rng: &mut Pcg64, dim: usize) -> Vec<f64> {
    (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Gram-Schmidt (two passes for stability), in order, so the first vector
/// keeps its direction. A vector that (numerically) lies in the span of the
/// previous ones is replaced by a fresh random one.
fn orthonormalize(vectors: &mut [Vec<f64>], rng: &mut Pcg64) {
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
fn jacobi_eigen(h: &mut [f64], p: usize) -> (Vec<f64>, Vec<f64>) {
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

/// How the t-SNE layout starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TsneInit {
    /// The PCA projection ([`pca_2d`]) scaled so the first coordinate has
    /// standard deviation 1e-4 (as scikit-learn does); falls back to
    /// [`TsneInit::Random`] when the data have no variance.
    #[default]
    Pca,
    /// Gaussian noise with standard deviation 1e-4 drawn from `seed`.
    Random,
}

/// Parameters of [`Tsne`]. Missing fields take their defaults when
/// deserialised.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TsneParams {
    /// Effective number of neighbours (default 30). Must be below the number
    /// of points; each point's input similarities use its
    /// `min(⌊3·perplexity⌋, n - 1)` nearest neighbours.
    pub perplexity: f32,
    /// Total gradient-descent iterations (default 1000).
    pub iterations: usize,
    /// Seed for [`TsneInit::Random`] (the run is deterministic for a seed).
    pub seed: u64,
    /// Barnes-Hut accuracy (default 0.5): a cell is summarised by its centre
    /// of mass when `cell width / distance < theta`; 0 computes the exact
    /// O(n²) repulsion instead (about 7 ms per iteration for 2,000 points).
    pub theta: f32,
    /// Step size; `None` (default) picks `max(n / early_exaggeration / 4, 50)`
    /// (scikit-learn's "auto", i.e. 200 in the convention of the original
    /// bhtsne, which omits the gradient's factor 4).
    pub learning_rate: Option<f32>,
    /// Factor on the input similarities during the first
    /// `exaggeration_iters` iterations (default 12).
    pub early_exaggeration: f32,
    /// Length of the early-exaggeration phase (default 250); momentum is 0.5
    /// during it and 0.8 afterwards.
    pub exaggeration_iters: usize,
    /// Starting layout (default PCA).
    pub init: TsneInit,
}

impl Default for TsneParams {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
            seed: 0,
            theta: 0.5,
            learning_rate: None,
            early_exaggeration: 12.0,
            exaggeration_iters: 250,
            init: TsneInit::Pca,
        }
    }
}

impl TsneParams {
    fn validate(&self, n: usize) -> Result<(), ProjectionError> {
        let invalid = |name, value: f32, expected| ProjectionError::InvalidParam {
            name,
            value: f64::from(value),
            expected,
        };
        if !(self.perplexity.is_finite() && self.perplexity > 0.0) {
            return Err(invalid(
                "perplexity",
                self.perplexity,
                "finite and positive",
            ));
        }
        if f64::from(self.perplexity) >= n as f64 {
            return Err(ProjectionError::PerplexityTooLarge {
                perplexity: self.perplexity,
                n,
            });
        }
        if !(self.theta.is_finite() && self.theta >= 0.0) {
            return Err(invalid("theta", self.theta, "finite and non-negative"));
        }
        if !(self.early_exaggeration.is_finite() && self.early_exaggeration > 0.0) {
            return Err(invalid(
                "early_exaggeration",
                self.early_exaggeration,
                "finite and positive",
            ));
        }
        if let Some(lr) = self.learning_rate
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(invalid("learning_rate", lr, "finite and positive"));
        }
        Ok(())
    }
}

/// An incremental Barnes-Hut t-SNE run (van der Maaten 2014).
///
/// [`Tsne::new`] does the expensive set-up (nearest neighbours and the
/// perplexity calibration); [`Tsne::step`] then advances the optimisation by
/// a few iterations at a time, so a browser can render
/// [`Tsne::embedding`] between calls and stay responsive.
///
/// Cost: the set-up compares every pair of points (O(n²·dim), vectorised;
/// about 0.1 s for 2,000 × 256) and each iteration is O(n log n). It is meant
/// for a few thousand points: beyond ~10,000, callers should subsample. With
/// `theta = 0` each iteration is exact and O(n²), fine up to ~2,000 points.
///
/// Everything is deterministic: the same data, parameters and seed give the
/// same layout, however the iterations are split into `step` calls.
#[derive(Debug, Clone)]
pub struct Tsne {
    params: TsneParams,
    learning_rate: f64,
    /// Symmetric joint input probabilities in CSR form, summing to 1.
    p_start: Vec<usize>,
    p_index: Vec<u32>,
    p_value: Vec<f64>,
    y: Vec<[f64; 2]>,
    update: Vec<[f64; 2]>,
    gains: Vec<[f64; 2]>,
    tree: QuadTree,
    iter: usize,
}

/// A [`Tsne`] in preparation, a block of points at a time: the nearest-neighbour search that
/// calibrates `P` is O(n²·dim), seconds for 10,000 points, so a host that must stay responsive
/// runs it in bounded slices ([`TsnePrep::advance`]) and then [`TsnePrep::finish`]es it.
pub struct TsnePrep {
    params: TsneParams,
    affinities: Affinities,
}

impl TsnePrep {
    /// Validates as [`Tsne::new`] does.
    ///
    /// # Errors
    /// Those of [`Tsne::new`].
    pub fn new(data: &[f32], dim: usize, params: TsneParams) -> Result<Self, ProjectionError> {
        let n = check_data(data, dim)?;
        if n < 2 {
            return Err(ProjectionError::TooFewPoints { n });
        }
        params.validate(n)?;
        Ok(Self {
            affinities: Affinities::new(data, dim, f64::from(params.perplexity)),
            params,
        })
    }

    /// Prepares up to `points` more points; `true` once all are done.
    pub fn advance(&mut self, points: usize) -> bool {
        self.affinities.advance(points)
    }

    /// The run, ready to [`Tsne::step`] (finishing any points not advanced yet).
    pub fn finish(mut self) -> Tsne {
        self.affinities.advance(usize::MAX);
        let n = self.affinities.rows();
        let y = initial_layout(&self.affinities.data, self.affinities.dim, &self.params);
        let (p_start, p_index, p_value) = self.affinities.finish();
        let params = self.params;
        let learning_rate = match params.learning_rate {
            Some(lr) => f64::from(lr),
            None => (n as f64 / f64::from(params.early_exaggeration) / 4.0).max(50.0),
        };
        Tsne {
            params,
            learning_rate,
            p_start,
            p_index,
            p_value,
            y,
            update: vec![[0.0; 2]; n],
            gains: vec![[1.0; 2]; n],
            tree: QuadTree::default(),
            iter: 0,
        }
    }
}

impl Tsne {
    /// Prepares a run on `data` (row-major, `dim` values per row).
    ///
    /// # Errors
    /// [`ProjectionError::ZeroDim`], [`ProjectionError::RaggedData`],
    /// [`ProjectionError::NonFinite`], [`ProjectionError::TooFewPoints`]
    /// (fewer than 2 rows), [`ProjectionError::PerplexityTooLarge`]
    /// (`perplexity >= n`) or [`ProjectionError::InvalidParam`].
    pub fn new(data: &[f32], dim: usize, params: TsneParams) -> Result<Self, ProjectionError> {
        let mut prep = TsnePrep::new(data, dim, params)?;
        prep.advance(usize::MAX);
        Ok(prep.finish())
    }

    /// Runs up to `iters` more iterations (never past
    /// [`total_iters`](Self::total_iters)) and returns the number of
    /// iterations done so far.
    pub fn step(&mut self, iters: usize) -> usize {
        let end = self.iter.saturating_add(iters).min(self.params.iterations);
        while self.iter < end {
            self.iterate();
        }
        self.iter
    }

    /// Iterations done so far.
    pub fn iteration(&self) -> usize {
        self.iter
    }

    /// Total iterations of the run (`params.iterations`).
    pub fn total_iters(&self) -> usize {
        self.params.iterations
    }

    /// Whether all iterations have been run.
    pub fn is_done(&self) -> bool {
        self.iter >= self.params.iterations
    }

    /// The current layout, one `[x, y]` per input row.
    pub fn embedding(&self) -> Vec<[f32; 2]> {
        self.y.iter().map(|&[x, y]| [x as f32, y as f32]).collect()
    }

    /// One gradient-descent iteration with momentum and per-coordinate gains.
    fn iterate(&mut self) {
        let exploring = self.iter < self.params.exaggeration_iters;
        let exaggeration = if exploring {
            f64::from(self.params.early_exaggeration)
        } else {
            1.0
        };
        let momentum = if exploring { 0.5 } else { 0.8 };
        let theta = f64::from(self.params.theta);

        let mut repulsion = vec![[0.0f64; 2]; self.y.len()];
        let z = if theta > 0.0 {
            self.tree.build(&self.y);
            let mut z = 0.0f64;
            for (i, rep) in repulsion.iter_mut().enumerate() {
                z += self.tree.repulsion(&self.y, i, theta, rep);
            }
            z
        } else {
            exact_repulsion(&self.y, &mut repulsion)
        };
        let z = z.max(f64::MIN_POSITIVE);

        for (i, rep) in repulsion.iter().enumerate() {
            let yi = self.y[i];
            let mut attraction = [0.0f64; 2];
            let row = self.p_start[i]..self.p_start[i + 1];
            for (&j, &p) in self.p_index[row.clone()].iter().zip(&self.p_value[row]) {
                let yj = self.y[j as usize];
                let d = [yi[0] - yj[0], yi[1] - yj[1]];
                let pq = p / (1.0 + d[0] * d[0] + d[1] * d[1]);
                attraction[0] += pq * d[0];
                attraction[1] += pq * d[1];
            }
            for k in 0..2 {
                let grad = 4.0 * (exaggeration * attraction[k] - rep[k] / z);
                let gain = &mut self.gains[i][k];
                let update = &mut self.update[i][k];
                *gain = if *update * grad < 0.0 {
                    *gain + 0.2
                } else {
                    *gain * 0.8
                }
                .max(0.01);
                *update = momentum * *update - self.learning_rate * *gain * grad;
            }
        }
        let n = self.y.len() as f64;
        let mut mean = [0.0f64; 2];
        for (y, u) in self.y.iter_mut().zip(&self.update) {
            for k in 0..2 {
                y[k] += u[k];
                mean[k] += y[k] / n;
            }
        }
        for y in &mut self.y {
            y[0] -= mean[0];
            y[1] -= mean[1];
        }
        self.iter += 1;
    }
}

/// Exact version of [`QuadTree::repulsion`] for all points at once (each
/// pair visited once); returns `Z = Σ_{i≠j} q_ij`.
fn exact_repulsion(y: &[[f64; 2]], force: &mut [[f64; 2]]) -> f64 {
    let mut z = 0.0;
    for (i, &yi) in y.iter().enumerate() {
        let mut fi = [0.0f64; 2];
        for (j, &yj) in y.iter().enumerate().skip(i + 1) {
            let d = [yi[0] - yj[0], yi[1] - yj[1]];
            let q = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
            z += 2.0 * q;
            let f = [q * q * d[0], q * q * d[1]];
            fi[0] += f[0];
            fi[1] += f[1];
            force[j][0] -= f[0];
            force[j][1] -= f[1];
        }
        force[i][0] += fi[0];
        force[i][1] += fi[1];
    }
    z
}

/// Symmetric joint probabilities `P` (CSR: row starts, column indices, values; summing to 1)
/// from the `⌊3·perplexity⌋` nearest neighbours of every point, each row calibrated to the
/// perplexity; computed a block of points at a time ([`Affinities::advance`]), since the
/// neighbour search is O(n²·dim): seconds for 10,000 points.
struct Affinities {
    data: Vec<f32>,
    dim: usize,
    perplexity: f64,
    k: usize,
    centred: Vec<f32>,
    sq_norm: Vec<f32>,
    tiled: crate::metrics::Tiled,
    /// `(i, j, p_{j|i})` and its transpose, for the rows done so far.
    cond: Vec<(u32, u32, f64)>,
    next: usize,
}

impl Affinities {
    fn new(data: &[f32], dim: usize, perplexity: f64) -> Self {
        let n = data.len() / dim;
        let k = ((3.0 * perplexity).floor() as usize).clamp(1, n - 1);
        // Centre first: distances from dot products lose less precision.
        let mut mean = vec![0.0f64; dim];
        for row in data.chunks_exact(dim) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &x)| *m += f64::from(x) / n as f64);
        }
        let centred: Vec<f32> = data
            .chunks_exact(dim)
            .flat_map(|row| {
                row.iter()
                    .zip(&mean)
                    .map(|(&x, m)| (f64::from(x) - m) as f32)
            })
            .collect();
        let sq_norm = centred
            .chunks_exact(dim)
            .map(|r| r.iter().map(|x| x * x).sum())
            .collect();
        Self {
            tiled: crate::metrics::Tiled::new(&centred, dim),
            data: data.to_vec(),
            dim,
            perplexity,
            k,
            centred,
            sq_norm,
            cond: Vec::with_capacity(2 * n * k),
            next: 0,
        }
    }

    fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// The conditional probabilities of up to `rows` more points; `true` once all are done.
    fn advance(&mut self, rows: usize) -> bool {
        let (dim, start) = (self.dim, self.next);
        let end = start.saturating_add(rows).min(self.rows());
        let mut neighbours: Vec<Neighbor> = Vec::with_capacity(self.k);
        let mut dist = vec![0.0f64; self.k];
        let mut probs = vec![0.0f64; self.k];
        let Self {
            data,
            perplexity,
            k,
            centred,
            sq_norm,
            tiled,
            cond,
            ..
        } = self;
        tiled.for_each_dot_row(&centred[start * dim..end * dim], |q, row| {
            let i = start + q;
            // Ranking key: 2 x_i·x_j - |x_j|² = |x_i|² - |x_i - x_j|².
            row.iter_mut()
                .zip(sq_norm.iter())
                .for_each(|(s, &nj)| *s = 2.0 * *s - nj);
            top_k(row, *k, Some(i), &mut neighbours);
            // Exact squared distances (in f64) for the chosen neighbours.
            let xi = &data[i * dim..(i + 1) * dim];
            for (d, nb) in dist.iter_mut().zip(&neighbours) {
                let xj = &data[nb.index as usize * dim..(nb.index as usize + 1) * dim];
                *d = xi
                    .iter()
                    .zip(xj)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
            }
            calibrate_row(&dist, *perplexity, &mut probs);
            for (nb, &p) in neighbours.iter().zip(&probs) {
                cond.push((i as u32, nb.index, p));
                cond.push((nb.index, i as u32, p));
            }
        });
        self.next = end;
        self.next == self.rows()
    }

    /// P = (P_cond + P_condᵀ) / total, merged into CSR (after every row is done).
    fn finish(self) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
        let n = self.rows();
        let mut cond = self.cond;
        cond.sort_unstable_by_key(|&(i, j, _)| (i, j));
        let total: f64 = cond.iter().map(|c| c.2).sum();
        let mut p_start = vec![0usize; n + 1];
        let mut p_index = Vec::with_capacity(cond.len());
        let mut p_value: Vec<f64> = Vec::with_capacity(cond.len());
        let mut last: Option<(u32, u32)> = None;
        for (i, j, p) in cond {
            if last == Some((i, j)) {
                if let Some(v) = p_value.last_mut() {
                    *v += p / total;
                }
            } else {
                p_start[i as usize + 1] += 1;
                p_index.push(j);
                p_value.push(p / total);
                last = Some((i, j));
            }
        }
        for i in 0..n {
            p_start[i + 1] += p_start[i];
        }
        (p_start, p_index, p_value)
    }
}

/// Gaussian conditional probabilities over the squared distances `dist` whose
/// perplexity `exp(H)` matches `perplexity`, found by bisection on the
/// precision `β` (within 1e-5 nats, at most 200 steps).
fn calibrate_row(dist: &[f64], perplexity: f64, out: &mut [f64]) {
    let target = perplexity.ln();
    let d_min = dist.iter().copied().fold(f64::INFINITY, f64::min);
    let (mut beta, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
    for _ in 0..200 {
        // Shifting by d_min leaves the normalised probabilities unchanged and
        // keeps at least one exp(0) = 1 term, so the sum never underflows.
        let mut sum = 0.0;
        let mut weighted = 0.0;
        for (o, &d) in out.iter_mut().zip(dist) {
            *o = (-beta * (d - d_min)).exp();
            sum += *o;
            weighted += (d - d_min) * *o;
        }
        let entropy = sum.ln() + beta * weighted / sum;
        out.iter_mut().for_each(|o| *o /= sum);
        let error = entropy - target;
        if error.abs() < 1e-5 {
            break;
        }
        if error > 0.0 {
            lo = beta;
            beta = if hi.is_finite() {
                0.5 * (beta + hi)
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = 0.5 * (beta + lo);
        }
    }
}

/// The starting layout for `params.init`.
fn initial_layout(data: &[f32], dim: usize, params: &TsneParams) -> Vec<[f64; 2]> {
    const STD: f64 = 1e-4;
    let n = data.len() / dim;
    if params.init == TsneInit::Pca {
        let coords = Pca::fit(data, dim).project(data);
        let mean = coords.iter().map(|c| c[0]).sum::<f64>() / n as f64;
        let var = coords.iter().map(|c| (c[0] - mean).powi(2)).sum::<f64>() / n as f64;
        if var > 0.0 {
            let scale = STD / var.sqrt();
            return coords
                .into_iter()
                .map(|[x, y]| [x * scale, y * scale])
                .collect();
        }
    }
    let mut rng = Pcg64::seed_from_u64(params.seed);
    (0..n)
        .map(|_| [STD * gaussian(&mut rng), STD * gaussian(&mut rng)])
        .collect()
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut Pcg64) -> f64 {
    // 1 - U lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A point-region quadtree over the current layout, rebuilt every iteration
/// (its buffers are reused).
#[derive(Debug, Clone, Default)]
struct QuadTree {
    nodes: Vec<Node>,
    /// Point indices, grouped so every node owns a contiguous range.
    order: Vec<u32>,
    scratch: Vec<u32>,
    stack: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    centre: [f64; 2],
    /// Half the side of the (square) cell.
    half: f64,
    centre_of_mass: [f64; 2],
    count: u32,
    /// Range of `QuadTree::order` holding this node's points.
    start: u32,
    end: u32,
    /// Index of the first of four consecutive children; 0 for a leaf (the
    /// root, node 0, is never a child).
    first_child: u32,
}

impl QuadTree {
    fn build(&mut self, y: &[[f64; 2]]) {
        let n = y.len();
        self.order.clear();
        self.order.extend(0..n as u32);
        self.scratch.resize(n, 0);
        self.nodes.clear();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in y {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let half = 0.5 * (hi[0] - lo[0]).max(hi[1] - lo[1]);
        let min_half = half * 1e-12;
        self.nodes.push(Node {
            centre: [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])],
            // Slightly enlarged so points on the upper edges fall inside.
            half: half * (1.0 + 1e-9) + f64::MIN_POSITIVE,
            centre_of_mass: [0.0; 2],
            count: 0,
            start: 0,
            end: n as u32,
            first_child: 0,
        });
        // Breadth-first: nodes are summarised (and maybe split) in the order
        // they were created.
        let mut next = 0;
        while next < self.nodes.len() {
            let node = self.nodes[next];
            let points = &self.order[node.start as usize..node.end as usize];
            let (mut sum, mut lo, mut hi) =
                ([0.0f64; 2], [f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for &j in points {
                let p = y[j as usize];
                for k in 0..2 {
                    sum[k] += p[k];
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            let count = points.len();
            let all_same = lo == hi;
            {
                let node = &mut self.nodes[next];
                node.count = count as u32;
                if count > 0 {
                    node.centre_of_mass = [sum[0] / count as f64, sum[1] / count as f64];
                }
            }
            if count > 1 && !all_same && node.half > min_half {
                self.split(next, y);
            }
            next += 1;
        }
    }

    /// Distributes the points of node `index` over four new children.
    fn split(&mut self, index: usize, y: &[[f64; 2]]) {
        let node = self.nodes[index];
        let (start, end) = (node.start as usize, node.end as usize);
        let quadrant = |j: u32| {
            let p = y[j as usize];
            usize::from(p[0] >= node.centre[0]) | (usize::from(p[1] >= node.centre[1]) << 1)
        };
        let mut counts = [0usize; 4];
        for &j in &self.order[start..end] {
            counts[quadrant(j)] += 1;
        }
        let mut offsets = [start; 4];
        for q in 1..4 {
            offsets[q] = offsets[q - 1] + counts[q - 1];
        }
        let bounds = offsets;
        for &j in &self.order[start..end] {
            let q = quadrant(j);
            self.scratch[offsets[q]] = j;
            offsets[q] += 1;
        }
        self.order[start..end].copy_from_slice(&self.scratch[start..end]);
        let first_child = self.nodes.len();
        self.nodes[index].first_child = first_child as u32;
        let half = 0.5 * node.half;
        for q in 0..4 {
            let dx = if q & 1 == 1 { half } else { -half };
            let dy = if q & 2 == 2 { half } else { -half };
            self.nodes.push(Node {
                centre: [node.centre[0] + dx, node.centre[1] + dy],
                half,
                centre_of_mass: [0.0; 2],
                count: 0,
                start: bounds[q] as u32,
                end: (bounds[q] + counts[q]) as u32,
                first_child: 0,
            });
        }
    }

    /// Adds to `force` the unnormalised repulsion `Σ_j q_ij² (y_i - y_j)` on
    /// point `i` (with `q_ij = 1 / (1 + |y_i - y_j|²)`) and returns its share
    /// `Σ_j q_ij` of the normalisation `Z`, using the centre of mass of every
    /// cell with `width / distance < theta`.
    fn repulsion(&mut self, y: &[[f64; 2]], i: usize, theta: f64, force: &mut [f64; 2]) -> f64 {
        let yi = y[i];
        let mut z = 0.0;
        self.stack.clear();
        self.stack.push(0);
        while let Some(index) = self.stack.pop() {
            let node = self.nodes[index as usize];
            if node.count == 0 {
                continue;
            }
            if node.first_child == 0 {
                for &j in &self.order[node.start as usize..node.end as usize] {
                    if j as usize != i {
                        let yj = y[j as usize];
                        let d = [yi[0] - yj[0], yi[1] - yj[1]];
                        let q = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
                        z += q;
                        force[0] += q * q * d[0];
                        force[1] += q * q * d[1];
                    }
                }
                continue;
            }
            let d = [
                yi[0] - node.centre_of_mass[0],
                yi[1] - node.centre_of_mass[1],
            ];
            let dist2 = d[0] * d[0] + d[1] * d[1];
            let width = 2.0 * node.half;
            if width * width < theta * theta * dist2 {
                let q = 1.0 / (1.0 + dist2);
                let mass = f64::from(node.count) * q;
                z += mass;
                force[0] += mass * q * d[0];
                force[1] += mass * q * d[1];
            } else {
                self.stack.extend(node.first_child..node.first_child + 4);
            }
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: [f32; 2], b: [f32; 2], tol: f32) {
        assert!(
            (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol,
            "{a:?} vs {b:?}"
        );
    }

    #[test]
    fn pca_of_points_on_a_line() {
        // (0,0) (1,1) (2,2) (3,3): mean (1.5, 1.5), axis (1,1)/√2 (both
        // loadings equal: the first is made positive), coordinates
        // (i - 1.5)·√2; no second direction, so y = 0.
        let out = pca_2d(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0], 2).unwrap();
        let s = std::f32::consts::SQRT_2;
        for (i, p) in out.iter().enumerate() {
            assert_close(*p, [(i as f32 - 1.5) * s, 0.0], 1e-5);
        }
    }

    #[test]
    fn pca_keeps_axis_aligned_data() {
        // Variance 2 along x, 0.5 along y: the projection is the input.
        let data = [2.0, 0.0, -2.0, 0.0, 0.0, 1.0, 0.0, -1.0];
        let out = pca_2d(&data, 2).unwrap();
        for (p, q) in out.iter().zip(data.chunks_exact(2)) {
            assert_close(*p, [q[0], q[1]], 1e-6);
        }
    }

    #[test]
    fn pca_recovers_a_rotated_plane_in_3d() {
        // u = (2,3,6)/7 and w = (3,-6,2)/7 are orthonormal. Points
        // 10 + a·u + b·w with (a, b) = (3,0), (-3,0), (0,1), (0,-1): variance
        // 4.5 along u, 0.5 along w, none along u × w. u's largest loading
        // (6/7) is positive; w's (-6/7) is negative, so the second axis is -w
        // and the coordinates are (a, -b).
        let u = [2.0 / 7.0, 3.0 / 7.0, 6.0 / 7.0];
        let w = [3.0 / 7.0, -6.0 / 7.0, 2.0 / 7.0];
        let ab = [(3.0, 0.0), (-3.0, 0.0), (0.0, 1.0), (0.0, -1.0)];
        let data: Vec<f32> = ab
            .iter()
            .flat_map(|&(a, b)| (0..3).map(move |k| 10.0 + a * u[k] + b * w[k]))
            .collect();
        let out = pca_2d(&data, 3).unwrap();
        for (p, &(a, b)) in out.iter().zip(&ab) {
            assert_close(*p, [a, -b], 1e-5);
        }
    }

    #[test]
    fn pca_degenerate_inputs() {
        assert_eq!(pca_2d(&[], 3).unwrap(), Vec::<[f32; 2]>::new());
        assert_eq!(pca_2d(&[1.0, 2.0, 3.0], 3).unwrap(), vec![[0.0, 0.0]]);
        assert_eq!(
            pca_2d(&[4.0, 5.0, 4.0, 5.0, 4.0, 5.0], 2).unwrap(),
            vec![[0.0, 0.0]; 3]
        );
        // dim 1: x - mean, second coordinate 0.
        assert_eq!(
            pca_2d(&[1.0, 3.0, 5.0], 1).unwrap(),
            vec![[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]]
        );
        // Two points in 5-D: one direction only.
        let out = pca_2d(&[0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 4.0, 0.0, 0.0], 5).unwrap();
        assert_close(out[0], [-2.5, 0.0], 1e-6);
        assert_close(out[1], [2.5, 0.0], 1e-6);
    }

    #[test]
    fn pca_errors() {
        assert_eq!(pca_2d(&[1.0], 0), Err(ProjectionError::ZeroDim));
        assert_eq!(
            pca_2d(&[1.0, 2.0, 3.0], 2),
            Err(ProjectionError::RaggedData { len: 3, dim: 2 })
        );
        assert_eq!(
            pca_2d(&[1.0, 2.0, f32::NAN, 0.0], 2),
            Err(ProjectionError::NonFinite { row: 1, col: 0 })
        );
    }

    fn blobs(per_blob: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        // Three unit-variance Gaussian blobs with centres 10 apart.
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for blob in 0..3 {
            for _ in 0..per_blob {
                for d in 0..dim {
                    let centre = if d == blob { 10.0 } else { 0.0 };
                    data.push((centre + gaussian(&mut rng)) as f32);
                }
                labels.push(blob);
            }
        }
        (data, labels)
    }

    #[test]
    fn pca_is_sign_stable_and_odd() {
        let (data, _) = blobs(40, 10, 1);
        let a = pca_2d(&data, 10).unwrap();
        assert_eq!(a, pca_2d(&data, 10).unwrap());
        // Negating the data keeps the axes (same covariance, same sign rule)
        // and so negates the coordinates.
        let neg: Vec<f32> = data.iter().map(|x| -x).collect();
        for (p, q) in a.iter().zip(pca_2d(&neg, 10).unwrap()) {
            assert_close(*p, [-q[0], -q[1]], 1e-4);
        }
        // The blobs are separated along the two leading axes.
        let spread = a
            .iter()
            .map(|p| p[0].abs().max(p[1].abs()))
            .fold(0.0f32, f32::max);
        assert!(spread > 4.0, "{spread}");
    }

    #[test]
    fn pca_in_slices_is_the_same_to_the_bit() {
        let (data, _) = blobs(41, 10, 2); // 123 rows: a partial last group of four
        let whole = pca_2d(&data, 10).unwrap();
        for slice in [1, 4, 7, 64] {
            let mut job = Pca2d::new(&data, 10).unwrap();
            let mut calls = 1;
            while !job.advance(&data, slice) {
                calls += 1;
            }
            assert_eq!(
                calls,
                123usize.div_ceil(slice.div_ceil(4) * 4),
                "slice {slice}"
            );
            assert_eq!(job.finish(&data), whole, "slice {slice}");
        }
        // Finishing early folds in the rest.
        let mut job = Pca2d::new(&data, 10).unwrap();
        job.advance(&data, 9);
        assert_eq!(job.finish(&data), whole);
        assert!(Pca2d::new(&[f32::NAN; 4], 2).is_err());
    }

    #[test]
    fn jacobi_matches_a_hand_computed_2x2() {
        // [[2, 1], [1, 2]] has eigenvalues 3 (axis (1,1)/√2) and 1.
        let mut h = [2.0, 1.0, 1.0, 2.0];
        let (values, vectors) = jacobi_eigen(&mut h, 2);
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!((vectors[0].abs() - r).abs() < 1e-12 && (vectors[2].abs() - r).abs() < 1e-12);
        assert!(
            (vectors[0] - vectors[2]).abs() < 1e-12,
            "same sign for (1,1)"
        );
    }

    /// Share of points whose nearest other point in 2-D has the same label.
    fn neighbour_agreement(points: &[[f32; 2]], labels: &[usize]) -> f64 {
        let dist = |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
        let agree = (0..points.len())
            .filter(|&i| {
                let nearest = (0..points.len())
                    .filter(|&j| j != i)
                    .min_by(|&a, &b| {
                        dist(points[i], points[a]).total_cmp(&dist(points[i], points[b]))
                    })
                    .unwrap();
                labels[nearest] == labels[i]
            })
            .count();
        agree as f64 / points.len() as f64
    }

    #[test]
    fn tsne_separates_blobs_and_counts_steps() {
        let (data, labels) = blobs(50, 10, 42);
        // Default parameters (perplexity 30, 1000 iterations), both starts,
        // Barnes-Hut and exact repulsion.
        for (init, theta) in [
            (TsneInit::Pca, 0.5),
            (TsneInit::Random, 0.5),
            (TsneInit::Random, 0.0),
        ] {
            let params = TsneParams {
                init,
                theta,
                ..TsneParams::default()
            };
            let mut tsne = Tsne::new(&data, 10, params).unwrap();
            assert_eq!(tsne.total_iters(), 1000);
            assert_eq!(tsne.step(0), 0);
            assert_eq!(tsne.step(120), 120);
            assert_eq!(tsne.step(800), 920);
            assert!(!tsne.is_done());
            assert_eq!(tsne.step(1000), 1000);
            assert!(tsne.is_done());
            assert_eq!(tsne.iteration(), 1000);
            let layout = tsne.embedding();
            assert_eq!(tsne.step(10), 1000);
            assert_eq!(tsne.embedding(), layout, "no change once done");
            let agreement = neighbour_agreement(&layout, &labels);
            assert!(agreement > 0.95, "{params:?}: {agreement}");
            assert!(layout.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        }
    }

    #[test]
    fn tsne_is_deterministic_however_it_is_stepped() {
        let (data, _) = blobs(20, 5, 7);
        let params = TsneParams {
            perplexity: 10.0,
            iterations: 300,
            init: TsneInit::Random,
            seed: 3,
            ..TsneParams::default()
        };
        let mut a = Tsne::new(&data, 5, params).unwrap();
        a.step(300);
        let mut b = Tsne::new(&data, 5, params).unwrap();
        while !b.is_done() {
            b.step(7);
        }
        assert_eq!(a.embedding(), b.embedding());
        // Prepared a few points at a time (as the page's worker does): the same run.
        let mut prep = TsnePrep::new(&data, 5, params).unwrap();
        let mut slices = 1;
        while !prep.advance(7) {
            slices += 1;
        }
        assert_eq!(slices, 9, "60 points, 7 at a time");
        let mut d = prep.finish();
        d.step(300);
        assert_eq!(a.embedding(), d.embedding());
        let mut e = TsnePrep::new(&data, 5, params).unwrap();
        e.advance(11);
        let mut e = e.finish();
        e.step(300);
        assert_eq!(
            a.embedding(),
            e.embedding(),
            "finish completes what was not advanced"
        );
        let mut c = Tsne::new(&data, 5, TsneParams { seed: 4, ..params }).unwrap();
        c.step(300);
        assert_ne!(a.embedding(), c.embedding(), "another seed, another layout");
    }

    #[test]
    fn barnes_hut_repulsion_matches_exact_sums() {
        let mut rng = Pcg64::seed_from_u64(9);
        let mut y: Vec<[f64; 2]> = (0..300)
            .map(|_| [gaussian(&mut rng) * 5.0, gaussian(&mut rng)])
            .collect();
        y.push(y[0]); // a duplicate point
        let mut tree = QuadTree::default();
        tree.build(&y);
        let (mut err, mut norm, mut z_exact, mut z_bh, mut z_zero) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..y.len() {
            let mut exact = [0.0f64; 2];
            for (j, yj) in y.iter().enumerate() {
                if j != i {
                    let d = [y[i][0] - yj[0], y[i][1] - yj[1]];
                    let q = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
                    z_exact += q;
                    exact[0] += q * q * d[0];
                    exact[1] += q * q * d[1];
                }
            }
            let mut f0 = [0.0f64; 2];
            z_zero += tree.repulsion(&y, i, 0.0, &mut f0);
            assert!((f0[0] - exact[0]).abs() < 1e-9 && (f0[1] - exact[1]).abs() < 1e-9);
            let mut f = [0.0f64; 2];
            z_bh += tree.repulsion(&y, i, 0.5, &mut f);
            err += (f[0] - exact[0]).hypot(f[1] - exact[1]);
            norm += exact[0].hypot(exact[1]);
        }
        assert!((z_zero - z_exact).abs() < 1e-9 * z_exact);
        let mut all = vec![[0.0f64; 2]; y.len()];
        let z_all = exact_repulsion(&y, &mut all);
        assert!((z_all - z_exact).abs() < 1e-9 * z_exact);
        for (i, f) in all.iter().enumerate() {
            let mut t = [0.0f64; 2];
            tree.repulsion(&y, i, 0.0, &mut t);
            assert!((f[0] - t[0]).abs() < 1e-9 && (f[1] - t[1]).abs() < 1e-9);
        }
        assert!(
            (z_bh - z_exact).abs() < 0.01 * z_exact,
            "{z_bh} vs {z_exact}"
        );
        assert!(err < 0.05 * norm, "relative force error {}", err / norm);
    }

    #[test]
    fn input_probabilities_are_symmetric_and_calibrated() {
        let (data, _) = blobs(30, 4, 5);
        let n = 90;
        let perplexity = 10.0;
        let mut affinities = Affinities::new(&data, 4, perplexity);
        affinities.advance(usize::MAX);
        let (start, index, value) = affinities.finish();
        assert_eq!(start.len(), n + 1);
        let total: f64 = value.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        let p = |i: usize, j: u32| {
            let row = start[i]..start[i + 1];
            index[row.clone()]
                .iter()
                .position(|&c| c == j)
                .map_or(0.0, |k| value[row][k])
        };
        for i in 0..n {
            for (&j, &v) in index[start[i]..start[i + 1]]
                .iter()
                .zip(&value[start[i]..start[i + 1]])
            {
                assert_ne!(j as usize, i);
                assert!(v > 0.0 && (v - p(j as usize, i as u32)).abs() < 1e-15);
            }
        }
        // A calibrated row has entropy ln(perplexity).
        let dist: Vec<f64> = (0..30).map(|k| f64::from(k) * 0.37).collect();
        let mut probs = vec![0.0; 30];
        calibrate_row(&dist, perplexity, &mut probs);
        let entropy: f64 = probs
            .iter()
            .filter(|&&q| q > 0.0)
            .map(|&q| -q * q.ln())
            .sum();
        assert!((entropy - perplexity.ln()).abs() < 1e-4, "{entropy}");
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn tsne_validates_input() {
        let data = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let ok = TsneParams {
            perplexity: 2.0,
            ..TsneParams::default()
        };
        assert!(Tsne::new(&data, 2, ok).is_ok());
        assert_eq!(
            Tsne::new(&data[..2], 2, ok).unwrap_err(),
            ProjectionError::TooFewPoints { n: 1 }
        );
        assert_eq!(
            Tsne::new(&data, 0, ok).unwrap_err(),
            ProjectionError::ZeroDim
        );
        assert_eq!(
            Tsne::new(&data[..5], 2, ok).unwrap_err(),
            ProjectionError::RaggedData { len: 5, dim: 2 }
        );
        let mut nan = data;
        nan[3] = f32::NAN;
        assert_eq!(
            Tsne::new(&nan, 2, ok).unwrap_err(),
            ProjectionError::NonFinite { row: 1, col: 1 }
        );
        assert_eq!(
            Tsne::new(
                &data,
                2,
                TsneParams {
                    perplexity: 3.0,
                    ..ok
                }
            )
            .unwrap_err(),
            ProjectionError::PerplexityTooLarge {
                perplexity: 3.0,
                n: 3
            }
        );
        for bad in [
            TsneParams {
                perplexity: 0.0,
                ..ok
            },
            TsneParams { theta: -1.0, ..ok },
            TsneParams {
                learning_rate: Some(f32::NAN),
                ..ok
            },
            TsneParams {
                early_exaggeration: 0.0,
                ..ok
            },
        ] {
            assert!(
                matches!(
                    Tsne::new(&data, 2, bad),
                    Err(ProjectionError::InvalidParam { .. })
                ),
                "{bad:?}"
            );
        }
        // Two identical points: no variance, still runs (random start).
        let mut tiny = Tsne::new(
            &[1.0, 1.0, 1.0, 1.0],
            2,
            TsneParams {
                perplexity: 1.0,
                ..ok
            },
        )
        .unwrap();
        assert_eq!(tiny.step(usize::MAX), 1000);
        assert!(tiny.embedding().iter().flatten().all(|x| x.is_finite()));
    }

    #[test]
    fn params_deserialise_with_defaults() {
        let p: TsneParams = serde_json::from_str(r#"{"perplexity": 5, "init": "random"}"#).unwrap();
        assert_eq!(
            p,
            TsneParams {
                perplexity: 5.0,
                init: TsneInit::Random,
                ..TsneParams::default()
            }
        );
    }
}
