//! t-SNE's input affinities `P`: each point's `⌊3·perplexity⌋` nearest neighbours, calibrated
//! to the perplexity and symmetrised, a block of points at a time.

use super::neighbours::Knn;

/// Symmetric joint probabilities `P` (CSR: row starts, column indices, values; summing to 1)
/// from the `⌊3·perplexity⌋` nearest neighbours of every point, each row calibrated to the
/// perplexity; computed a block of points at a time ([`Affinities::advance`]), since the
/// neighbour search is O(n²·dim): seconds for 10,000 points.
pub(super) struct Affinities {
    pub(super) knn: Knn,
    perplexity: f64,
    /// `(i, j, p_{j|i})` and its transpose, for the rows done so far.
    cond: Vec<(u32, u32, f64)>,
}

impl Affinities {
    pub(super) fn new(data: &[f32], dim: usize, perplexity: f64) -> Self {
        let knn = Knn::new(data, dim, (3.0 * perplexity).floor() as usize);
        Self {
            cond: Vec::with_capacity(2 * knn.rows() * knn.k()),
            knn,
            perplexity,
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.knn.rows()
    }

    /// The conditional probabilities of up to `rows` more points; `true` once all are done.
    pub(super) fn advance(&mut self, rows: usize) -> bool {
        let mut probs = vec![0.0f64; self.knn.k()];
        let Self {
            knn,
            perplexity,
            cond,
        } = self;
        knn.advance(rows, |i, neighbours, dist| {
            let probs = &mut probs[..dist.len()];
            calibrate_row(dist, *perplexity, probs);
            for (nb, &p) in neighbours.iter().zip(probs.iter()) {
                cond.push((i as u32, nb.index, p));
                cond.push((nb.index, i as u32, p));
            }
        })
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
