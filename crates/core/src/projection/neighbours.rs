//! The exact Euclidean nearest neighbours of every point, a block of points at a time: the
//! input graph of t-SNE (perplexity-calibrated) and of UMAP (fuzzy simplicial set). O(n²·dim):
//! seconds for 10,000 points, so callers advance it in bounded slices.

use crate::metrics::{Neighbor, Tiled, top_k};

/// The `k` nearest neighbours (by Euclidean distance, ties to the lower index, never the point
/// itself) of each point, found a block of points at a time.
pub(super) struct Knn {
    pub(super) data: Vec<f32>,
    pub(super) dim: usize,
    k: usize,
    centred: Vec<f32>,
    sq_norm: Vec<f32>,
    tiled: Tiled,
    next: usize,
}

impl Knn {
    /// `data`: row-major, `dim` values per row, at least 2 rows; `k` is clamped to `1..n`.
    pub(super) fn new(data: &[f32], dim: usize, k: usize) -> Self {
        let n = data.len() / dim;
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
            tiled: Tiled::new(&centred, dim),
            data: data.to_vec(),
            dim,
            k: k.clamp(1, n.saturating_sub(1).max(1)),
            centred,
            sq_norm,
            next: 0,
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Neighbours per point.
    pub(super) fn k(&self) -> usize {
        self.k
    }

    /// Finds the neighbours of up to `rows` more points, calling `visit(i, neighbours,
    /// squared_distances)` for each (nearest first; exact squared distances in f64); `true`
    /// once every point is done.
    pub(super) fn advance(
        &mut self,
        rows: usize,
        mut visit: impl FnMut(usize, &[Neighbor], &[f64]),
    ) -> bool {
        let (dim, start) = (self.dim, self.next);
        let end = start.saturating_add(rows).min(self.rows());
        let mut neighbours: Vec<Neighbor> = Vec::with_capacity(self.k);
        let mut dist = vec![0.0f64; self.k];
        let Self {
            data,
            k,
            centred,
            sq_norm,
            tiled,
            ..
        } = self;
        tiled.for_each_dot_row(&centred[start * dim..end * dim], |q, row| {
            let i = start + q;
            // Ranking key: 2 x_i·x_j - |x_j|² = |x_i|² - |x_i - x_j|².
            row.iter_mut()
                .zip(sq_norm.iter())
                .for_each(|(s, &nj)| *s = 2.0 * *s - nj);
            top_k(row, *k, Some(i), &mut neighbours);
            let xi = &data[i * dim..(i + 1) * dim];
            for (d, nb) in dist.iter_mut().zip(&neighbours) {
                let xj = &data[nb.index as usize * dim..(nb.index as usize + 1) * dim];
                *d = xi
                    .iter()
                    .zip(xj)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
            }
            visit(i, &neighbours, &dist[..neighbours.len()]);
        });
        self.next = end;
        self.next == self.rows()
    }
}
