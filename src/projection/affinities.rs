//! t-SNE's input affinities `P`: each point's `⌊3·perplexity⌋` nearest neighbours, calibrated
//! to the perplexity and symmetrised, a block of points at a time.

use crate::metrics::{Neighbor, top_k};

/// Symmetric joint probabilities `P` (CSR: row starts, column indices, values; summing to 1)
/// from the `⌊3·perplexity⌋` nearest neighbours of every point, each row calibrated to the
/// perplexity; computed a block of points at a time ([`Affinities::advance`]), since the
/// neighbour search is O(n²·dim): seconds for 10,000 points.
pub(super) struct Affinities {
    pub(super) data: Vec<f32>,
    pub(super) dim: usize,
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
    pub(super) fn new(data: &[f32], dim: usize, perplexity: f64) -> Self {
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

    pub(super) fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// The conditional probabilities of up to `rows` more points; `true` once all are done.
    pub(super) fn advance(&mut self, rows: usize) -> bool {
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
    pub(super) fn finish(self) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
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
pub(super) fn calibrate_row(dist: &[f64], perplexity: f64, out: &mut [f64]) {
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
