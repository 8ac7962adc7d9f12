//! Tests of PCA and t-SNE: known geometry, determinism, slicing, Barnes-Hut and errors.

use rand::SeedableRng;
use rand_pcg::Pcg64;

use super::eigen::*;
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
    assert_eq!(
        pca_2d(&[1.0], 0),
        Err(ProjectionError::Shape(ShapeError::ZeroDim))
    );
    assert_eq!(
        pca_2d(&[1.0, 2.0, 3.0], 2),
        Err(ProjectionError::Shape(ShapeError::RaggedData {
            len: 3,
            dim: 2
        }))
    );
    assert_eq!(
        pca_2d(&[1.0, 2.0, f32::NAN, 0.0], 2),
        Err(ProjectionError::Shape(ShapeError::NonFinite {
            row: 1,
            col: 0
        }))
    );
}

pub(super) fn blobs(per_blob: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
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
fn the_basis_places_a_new_row_where_the_fit_placed_its_rows() {
    let (data, _) = blobs(41, 10, 2);
    let (points, basis) = Pca2d::new(&data, 10).unwrap().finish_with_basis(&data);
    for (i, row) in data.chunks_exact(10).enumerate().step_by(17) {
        assert_eq!(basis.place(row), Some(points[i]), "row {i}");
    }
    // A row between two others lands between them (projection is linear).
    let mid: Vec<f32> = data[..10]
        .iter()
        .zip(&data[10..20])
        .map(|(a, b)| (a + b) / 2.0)
        .collect();
    let m = basis.place(&mid).unwrap();
    for d in 0..2 {
        assert!(
            (m[d] - (points[0][d] + points[1][d]) / 2.0).abs() < 1e-4,
            "{m:?}"
        );
    }
    assert_eq!(basis.place(&data[..9]), None);
    assert_eq!(basis.place(&[f32::NAN; 10]), None);
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
pub(super) fn neighbour_agreement(points: &[[f32; 2]], labels: &[usize]) -> f64 {
    let dist = |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let agree = (0..points.len())
        .filter(|&i| {
            let nearest = (0..points.len())
                .filter(|&j| j != i)
                .min_by(|&a, &b| dist(points[i], points[a]).total_cmp(&dist(points[i], points[b])))
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
        ProjectionError::Shape(ShapeError::ZeroDim)
    );
    assert_eq!(
        Tsne::new(&data[..5], 2, ok).unwrap_err(),
        ProjectionError::Shape(ShapeError::RaggedData { len: 5, dim: 2 })
    );
    let mut nan = data;
    nan[3] = f32::NAN;
    assert_eq!(
        Tsne::new(&nan, 2, ok).unwrap_err(),
        ProjectionError::Shape(ShapeError::NonFinite { row: 1, col: 1 })
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
