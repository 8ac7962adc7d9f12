//! How faithful a 2-D layout is to its input: scikit-learn's `trustworthiness` (Venna & Kaski),
//! `T(k) = 1 − 2 / (n·k·(2n − 3k − 1)) · Σᵢ Σ_{j ∈ Uᵢ} (r(i, j) − k)`, where `Uᵢ` are the `k`
//! nearest neighbours of `i` in the layout that are not among its `k` nearest in the input, and
//! `r(i, j)` is `j`'s rank (1 = nearest) among `i`'s input neighbours. Euclidean distances in
//! both spaces, as scikit-learn's default; 1 when the layout keeps every neighbourhood.

use super::{ProjectionError, check_data};
use crate::metrics::Tiled;

/// The trustworthiness of `layout` (one point per row of `data`) at `k` neighbours.
///
/// # Errors
/// [`ProjectionError::Shape`] for a bad `data` buffer, [`ProjectionError::InvalidParam`] when
/// the layout's length differs from the number of rows, a coordinate is not finite, or `k` is
/// not in `1..n/2` (scikit-learn's bound, which keeps the normalisation positive).
pub fn trustworthiness(
    data: &[f32],
    dim: usize,
    layout: &[[f32; 2]],
    k: usize,
) -> Result<f64, ProjectionError> {
    let n = check_data(data, dim)?;
    let invalid = |name, value: f64, expected| ProjectionError::InvalidParam {
        name,
        value,
        expected,
    };
    if layout.len() != n {
        return Err(invalid(
            "layout rows",
            layout.len() as f64,
            "one per input row",
        ));
    }
    if layout.iter().flatten().any(|v| !v.is_finite()) {
        return Err(invalid("layout", f64::NAN, "finite"));
    }
    if k == 0 || 2 * k >= n {
        return Err(invalid(
            "k",
            k as f64,
            "at least 1 and below half the points",
        ));
    }
    // Input distances are ranked by the f32 key |x_j|² − 2 x_i·x_j (the tiled dot products);
    // where two keys are closer than the key's rounding bound, by exact f64 distances.
    let sq_norm: Vec<f32> = data
        .chunks_exact(dim)
        .map(|r| r.iter().map(|x| x * x).sum())
        .collect();
    let max_sq = sq_norm.iter().copied().fold(0.0f32, f32::max);
    let tolerance = 4.0 * dim as f32 * f32::EPSILON * 3.0 * max_sq.max(f32::MIN_POSITIVE);
    let exact = |i: usize, j: usize| -> f64 {
        data[i * dim..(i + 1) * dim]
            .iter()
            .zip(&data[j * dim..(j + 1) * dim])
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum()
    };
    let tiled = Tiled::new(data, dim);
    let mut penalty = 0u64;
    let mut layout_near: Vec<(f64, usize)> = Vec::with_capacity(n);
    tiled.for_each_dot_row(data, |i, key| {
        key.iter_mut()
            .zip(&sq_norm)
            .for_each(|(s, &nj)| *s = nj - 2.0 * *s);
        let [xi, yi] = layout[i].map(f64::from);
        layout_near.clear();
        layout_near.extend((0..n).filter(|&j| j != i).map(|j| {
            let [x, y] = layout[j].map(f64::from);
            ((x - xi).powi(2) + (y - yi).powi(2), j)
        }));
        layout_near.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, j) in &layout_near[..k] {
            // j's input rank: 1 + the points (not i) nearer in (distance, index) order.
            let (kj, dj) = (key[j], exact(i, j));
            let rank = 1
                + (0..n)
                    .filter(|&m| m != i && m != j)
                    .filter(|&m| {
                        if (key[m] - kj).abs() > tolerance {
                            key[m] < kj
                        } else {
                            let dm = exact(i, m);
                            dm < dj || (dm == dj && m < j)
                        }
                    })
                    .count();
            penalty += rank.saturating_sub(k) as u64;
        }
    });
    let (n, k) = (n as f64, k as f64);
    Ok(1.0 - penalty as f64 * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))
}
