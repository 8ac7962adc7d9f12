//! The two leading eigenvectors of a symmetric matrix, as PCA needs them: deterministic
//! subspace iteration with Rayleigh-Ritz extraction (Jacobi on the small projected matrix), each
//! vector's sign fixed by its largest entry. Plain `f64` slices; knows nothing of the data.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::pca::{EIGEN_TOL, MAX_SUBSPACE_ITERS, SUBSPACE};

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
