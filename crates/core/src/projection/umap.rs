//! UMAP (McInnes, Healy & Melville 2018) as umap-learn computes it with its defaults: the fuzzy
//! simplicial set of each point's `n_neighbors` nearest neighbours (Euclidean, the point itself
//! counted; `ρᵢ` the nearest distance, `σᵢ` such that `Σⱼ exp(−(dᵢⱼ − ρᵢ)/σᵢ) = log₂ n_neighbors`),
//! symmetrised by the fuzzy union `A + Aᵀ − A∘Aᵀ`, edges below `max / epochs` dropped; a PCA
//! start scaled to `[0, 10]`; then stochastic gradient descent on the fuzzy cross-entropy: each
//! edge sampled in proportion to its weight, 5 negative samples per positive one, each gradient
//! component clipped to ±4, the learning rate falling linearly from 1 to 0. The curve
//! `1 / (1 + a·d^{2b})` is fitted to `min_dist` (spread 1) by least squares, as umap-learn's
//! `find_ab_params`. umap-learn starts from a spectral layout; the PCA start is its documented
//! alternative (`init="pca"`), and needs no eigensolver.
//!
//! Like t-SNE, the neighbour search runs in slices ([`UmapPrep`]) and the optimisation an epoch
//! at a time ([`Umap::step`]), so a host can show it converge and cancel it.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::fuzzy::{fit_ab, fuzzy_sets, fuzzy_union};
use super::neighbours::Knn;
use super::pca::Pca;
use super::{ProjectionError, check_data};

/// Parameters of [`Umap`]; missing fields take umap-learn's defaults when deserialised.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct UmapParams {
    /// Size of the local neighbourhood, the point itself included (default 15; 2 to n).
    pub n_neighbors: usize,
    /// How tightly points may pack (default 0.1; 0 to 1, the spread).
    pub min_dist: f32,
    /// Epochs of the optimisation; `None` (default) is umap-learn's choice: 500 up to 10,000
    /// points, 200 above.
    pub epochs: Option<usize>,
    /// Negative samples per positive one (default 5).
    pub negative_sample_rate: usize,
    /// Seed of the negative sampling (the run is deterministic for a seed).
    pub seed: u64,
}

impl Default for UmapParams {
    fn default() -> Self {
        Self {
            n_neighbors: 15,
            min_dist: 0.1,
            epochs: None,
            negative_sample_rate: 5,
            seed: 0,
        }
    }
}

/// Largest number of epochs accepted.
pub const MAX_UMAP_EPOCHS: usize = 10_000;

impl UmapParams {
    fn validate(&self, n: usize) -> Result<(), ProjectionError> {
        let invalid = |name, value: f64, expected| {
            Err(ProjectionError::InvalidParam {
                name,
                value,
                expected,
            })
        };
        if self.n_neighbors < 2 || self.n_neighbors > n {
            return invalid(
                "n_neighbors",
                self.n_neighbors as f64,
                "at least 2 and at most the number of points",
            );
        }
        if !(0.0..=1.0).contains(&self.min_dist) {
            return invalid("min_dist", f64::from(self.min_dist), "between 0 and 1");
        }
        if let Some(e) = self.epochs
            && !(1..=MAX_UMAP_EPOCHS).contains(&e)
        {
            return invalid("epochs", e as f64, "between 1 and 10,000");
        }
        if !(1..=100).contains(&self.negative_sample_rate) {
            return invalid(
                "negative_sample_rate",
                self.negative_sample_rate as f64,
                "between 1 and 100",
            );
        }
        Ok(())
    }

    fn total_epochs(&self, n: usize) -> usize {
        self.epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 })
    }
}

/// A [`Umap`] in preparation: the neighbour search, a block of points at a time.
pub struct UmapPrep {
    params: UmapParams,
    knn: Knn,
    /// Per point: its neighbours (not itself) and their distances, nearest first.
    neighbours: Vec<Vec<(u32, f64)>>,
}

impl UmapPrep {
    /// Validates as [`Umap::new`] does.
    ///
    /// # Errors
    /// Those of [`Umap::new`].
    pub fn new(data: &[f32], dim: usize, params: UmapParams) -> Result<Self, ProjectionError> {
        let n = check_data(data, dim)?;
        if n < 3 {
            return Err(ProjectionError::TooFewPoints { n });
        }
        params.validate(n)?;
        Ok(Self {
            knn: Knn::new(data, dim, params.n_neighbors - 1),
            neighbours: Vec::with_capacity(n),
            params,
        })
    }

    /// Searches the neighbours of up to `points` more points; `true` once all are done.
    pub fn advance(&mut self, points: usize) -> bool {
        let Self {
            knn, neighbours, ..
        } = self;
        knn.advance(points, |_, nbs, d2| {
            neighbours.push(
                nbs.iter()
                    .zip(d2)
                    .map(|(nb, &d2)| (nb.index, d2.sqrt()))
                    .collect(),
            );
        })
    }

    /// The run, ready to [`Umap::step`] (finishing any points not advanced yet).
    pub fn finish(mut self) -> Umap {
        self.advance(usize::MAX);
        let n = self.knn.rows();
        let total = self.params.total_epochs(n);
        let graph = fuzzy_union(&fuzzy_sets(&self.neighbours, self.params.n_neighbors));
        let max = graph.iter().map(|e| e.2).fold(0.0f64, f64::max);
        let (mut head, mut tail, mut epochs_per_sample) = (Vec::new(), Vec::new(), Vec::new());
        for &(i, j, w) in &graph {
            // umap-learn drops the edges too weak to be sampled once in the run.
            if w >= max / total as f64 && w > 0.0 {
                head.push(i);
                tail.push(j);
                epochs_per_sample.push(max / w);
            }
        }
        let rate = self.params.negative_sample_rate as f64;
        let epochs_per_negative: Vec<f64> = epochs_per_sample.iter().map(|e| e / rate).collect();
        let (a, b) = fit_ab(self.params.min_dist);
        Umap {
            y: initial_layout(&self.knn.data, self.knn.dim),
            epoch_of_next_sample: epochs_per_sample.clone(),
            epoch_of_next_negative: epochs_per_negative.clone(),
            epochs_per_sample,
            epochs_per_negative,
            head,
            tail,
            a,
            b,
            epoch: 0,
            total,
            rng: Pcg64Mcg::seed_from_u64(self.params.seed),
        }
    }
}

/// The PCA layout, each axis scaled to `[0, 10]` (umap-learn's scaling of its start).
fn initial_layout(data: &[f32], dim: usize) -> Vec<[f32; 2]> {
    let coords = Pca::fit(data, dim).project(data);
    let mut out = vec![[0.0f32; 2]; coords.len()];
    for axis in 0..2 {
        let (lo, hi) = coords
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
                (lo.min(c[axis]), hi.max(c[axis]))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        for (o, c) in out.iter_mut().zip(&coords) {
            o[axis] = (10.0 * (c[axis] - lo) / span) as f32;
        }
    }
    out
}

/// A UMAP run: deterministic for its seed, however its epochs are split into [`Umap::step`]s.
#[derive(Debug, Clone)]
pub struct Umap {
    y: Vec<[f32; 2]>,
    head: Vec<u32>,
    tail: Vec<u32>,
    epochs_per_sample: Vec<f64>,
    epoch_of_next_sample: Vec<f64>,
    epochs_per_negative: Vec<f64>,
    epoch_of_next_negative: Vec<f64>,
    a: f64,
    b: f64,
    epoch: usize,
    total: usize,
    rng: Pcg64Mcg,
}

/// Each gradient component is clipped to this (umap-learn's `clip`).
const CLIP: f64 = 4.0;

impl Umap {
    /// Prepares a run on `data` (row-major, `dim` values per row), neighbour search included.
    ///
    /// # Errors
    /// [`ProjectionError::Shape`], [`ProjectionError::TooFewPoints`] (fewer than 3 rows) or
    /// [`ProjectionError::InvalidParam`].
    pub fn new(data: &[f32], dim: usize, params: UmapParams) -> Result<Self, ProjectionError> {
        Ok(UmapPrep::new(data, dim, params)?.finish())
    }

    /// Runs up to `epochs` more epochs; returns the epochs run so far (as [`super::Tsne::step`]
    /// returns its iterations).
    pub fn step(&mut self, epochs: usize) -> usize {
        for _ in 0..epochs.min(self.total - self.epoch) {
            self.one_epoch();
            self.epoch += 1;
        }
        self.epoch
    }

    fn one_epoch(&mut self) {
        let n = self.y.len();
        let epoch = self.epoch as f64;
        let alpha = 1.0 - epoch / self.total as f64;
        let (a, b) = (self.a, self.b);
        for e in 0..self.head.len() {
            if self.epoch_of_next_sample[e] > epoch {
                continue;
            }
            let (j, k) = (self.head[e] as usize, self.tail[e] as usize);
            let d2 = dist2(self.y[j], self.y[k]);
            if d2 > 0.0 {
                let coeff = -2.0 * a * b * d2.powf(b - 1.0) / (a * d2.powf(b) + 1.0);
                for d in 0..2 {
                    let g = (coeff * f64::from(self.y[j][d] - self.y[k][d])).clamp(-CLIP, CLIP);
                    self.y[j][d] += (g * alpha) as f32;
                    self.y[k][d] -= (g * alpha) as f32;
                }
            }
            self.epoch_of_next_sample[e] += self.epochs_per_sample[e];
            let negatives = ((epoch - self.epoch_of_next_negative[e]) / self.epochs_per_negative[e])
                .max(0.0) as usize;
            for _ in 0..negatives {
                let k = self.rng.random_range(0..n);
                if k == j {
                    continue;
                }
                let d2 = dist2(self.y[j], self.y[k]);
                if d2 <= 0.0 {
                    continue;
                }
                let coeff = 2.0 * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0));
                for d in 0..2 {
                    let g = (coeff * f64::from(self.y[j][d] - self.y[k][d])).clamp(-CLIP, CLIP);
                    self.y[j][d] += (g * alpha) as f32;
                }
            }
            self.epoch_of_next_negative[e] += negatives as f64 * self.epochs_per_negative[e];
        }
    }

    /// Epochs run so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Epochs of the whole run.
    pub fn total_epochs(&self) -> usize {
        self.total
    }

    /// Whether every epoch has run.
    pub fn is_done(&self) -> bool {
        self.epoch == self.total
    }

    /// The current layout, one `[x, y]` per input row.
    pub fn embedding(&self) -> Vec<[f32; 2]> {
        self.y.clone()
    }
}

fn dist2(p: [f32; 2], q: [f32; 2]) -> f64 {
    let (dx, dy) = (f64::from(p[0] - q[0]), f64::from(p[1] - q[1]));
    dx * dx + dy * dy
}
