//! UMAP's graph and curve, as umap-learn computes them: each point's fuzzy simplicial set of
//! its nearest neighbours ([`fuzzy_sets`]), their fuzzy union ([`fuzzy_union`]), and the curve
//! `1 / (1 + a·d^{2b})` fitted to `min_dist` ([`fit_ab`]). Plain numbers; the layout is
//! `umap`'s.

/// umap-learn's `find_ab_params(spread = 1, min_dist)`: the `a`, `b` of `1 / (1 + a·x^{2b})`
/// closest (least squares over 300 points of `[0, 3]`) to 1 below `min_dist` and
/// `exp(−(x − min_dist))` above; Gauss-Newton with Levenberg-Marquardt damping from (1, 1).
pub fn fit_ab(min_dist: f32) -> (f64, f64) {
    let min_dist = f64::from(min_dist);
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * i as f64 / 299.0).collect();
    let target = |x: f64| {
        if x < min_dist {
            1.0
        } else {
            (-(x - min_dist)).exp()
        }
    };
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .map(|&x| (1.0 / (1.0 + a * x.powf(2.0 * b)) - target(x)).powi(2))
            .sum()
    };
    let (mut a, mut b, mut lambda) = (1.0f64, 1.0f64, 1e-3f64);
    let mut current = cost(a, b);
    for _ in 0..200 {
        // Normal equations J'J δ = -J'r of the residuals r = f - target.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &x in &xs {
            let p = if x > 0.0 { x.powf(2.0 * b) } else { 0.0 };
            let f = 1.0 / (1.0 + a * p);
            let r = f - target(x);
            let da = -p * f * f;
            let db = if x > 0.0 {
                -a * p * 2.0 * x.ln() * f * f
            } else {
                0.0
            };
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let (maa, mbb) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
        let det = maa * mbb - jab * jab;
        if det.abs() < 1e-300 {
            break;
        }
        let step_a = -(mbb * ga - jab * gb) / det;
        let step_b = -(maa * gb - jab * ga) / det;
        let (na, nb) = (a + step_a, b + step_b);
        let next = if na > 0.0 && nb > 0.0 {
            cost(na, nb)
        } else {
            f64::INFINITY
        };
        if next < current {
            let converged = current - next < 1e-14 * current.max(1e-300);
            (a, b, current) = (na, nb, next);
            lambda *= 0.3;
            if converged {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (a, b)
}

/// Each point's fuzzy set: membership `exp(−(d − ρ)/σ)` of its neighbours (1 up to `ρ`, the
/// nearest distance), `σ` found by bisection (64 steps, umap-learn's `smooth_knn_dist`) so the
/// memberships sum to `log₂ k`, and kept above 1e-3 × the mean neighbour distance.
pub(super) fn fuzzy_sets(neighbours: &[Vec<(u32, f64)>], k: usize) -> Vec<(u32, u32, f64)> {
    let target = (k as f64).log2();
    let all_mean = {
        let (sum, count) = neighbours
            .iter()
            .flatten()
            .fold((0.0, 0usize), |(s, c), &(_, d)| (s + d, c + 1));
        sum / count.max(1) as f64
    };
    let mut edges = Vec::with_capacity(neighbours.len() * k);
    for (i, row) in neighbours.iter().enumerate() {
        let rho = row.iter().map(|e| e.1).find(|&d| d > 0.0).unwrap_or(0.0);
        let psum = |sigma: f64| -> f64 {
            row.iter()
                .map(|&(_, d)| {
                    let d = d - rho;
                    if d > 0.0 { (-d / sigma).exp() } else { 1.0 }
                })
                .sum()
        };
        let (mut lo, mut hi, mut sigma) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..64 {
            let s = psum(sigma);
            if (s - target).abs() < 1e-5 {
                break;
            }
            if s > target {
                hi = sigma;
                sigma = 0.5 * (lo + hi);
            } else {
                lo = sigma;
                sigma = if hi.is_finite() {
                    0.5 * (lo + hi)
                } else {
                    sigma * 2.0
                };
            }
        }
        let mean = if rho > 0.0 {
            row.iter().map(|e| e.1).sum::<f64>() / row.len().max(1) as f64
        } else {
            all_mean
        };
        let sigma = sigma.max(1e-3 * mean);
        for &(j, d) in row {
            let w = if d - rho > 0.0 && sigma > 0.0 {
                (-(d - rho) / sigma).exp()
            } else {
                1.0
            };
            edges.push((i as u32, j, w));
        }
    }
    edges
}

/// The fuzzy union `A + Aᵀ − A∘Aᵀ` of the directed memberships, as sorted `(i, j, w)` edges in
/// both directions.
pub(super) fn fuzzy_union(directed: &[(u32, u32, f64)]) -> Vec<(u32, u32, f64)> {
    let mut both: Vec<(u32, u32, f64, bool)> = Vec::with_capacity(2 * directed.len());
    for &(i, j, w) in directed {
        both.push((i, j, w, true));
        both.push((j, i, w, false));
    }
    both.sort_unstable_by_key(|&(i, j, _, forward)| (i, j, !forward));
    let mut out: Vec<(u32, u32, f64)> = Vec::with_capacity(both.len());
    let mut k = 0;
    while k < both.len() {
        let (i, j) = (both[k].0, both[k].1);
        let (mut a, mut at) = (0.0, 0.0);
        while k < both.len() && (both[k].0, both[k].1) == (i, j) {
            if both[k].3 {
                a = both[k].2;
            } else {
                at = both[k].2;
            }
            k += 1;
        }
        out.push((i, j, a + at - a * at));
    }
    out
}
