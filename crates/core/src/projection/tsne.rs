//! Barnes-Hut t-SNE, incremental ([`Tsne::step`]) so that a browser can show it converge, with
//! its preparation in slices too ([`TsnePrep`]). The affinities and the quadtree live beside it.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::*;

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
    pub(super) fn validate(&self, n: usize) -> Result<(), ProjectionError> {
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
        let y = initial_layout(
            &self.affinities.knn.data,
            self.affinities.knn.dim,
            &self.params,
        );
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
    /// [`ProjectionError::Shape`], [`ProjectionError::TooFewPoints`]
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
    pub(super) fn iterate(&mut self) {
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
pub(super) fn exact_repulsion(y: &[[f64; 2]], force: &mut [[f64; 2]]) -> f64 {
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

/// The starting layout for `params.init`.
pub(super) fn initial_layout(data: &[f32], dim: usize, params: &TsneParams) -> Vec<[f64; 2]> {
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
pub(super) fn gaussian(rng: &mut Pcg64) -> f64 {
    // 1 - U lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
