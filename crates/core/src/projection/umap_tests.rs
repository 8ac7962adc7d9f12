//! UMAP's parts against hand-computed values and umap-learn's, and the trustworthiness against
//! scikit-learn's.

use super::fuzzy::{fuzzy_sets, fuzzy_union};
use super::tests::{blobs, neighbour_agreement};
use super::*;

#[test]
fn the_curve_fit_gives_umap_learns_a_and_b() {
    // umap-learn 0.5: find_ab_params(1.0, 0.1) = (1.5769434, 0.8950608).
    let (a, b) = fit_ab(0.1);
    assert!(
        (a - 1.576_943).abs() < 2e-3 && (b - 0.895_061).abs() < 1e-3,
        "{a} {b}"
    );
    // A larger min_dist flattens the curve near 0: a smaller a·x^2b at small x.
    let (a5, b5) = fit_ab(0.5);
    assert!(a5 < a && b5 > b, "{a5} {b5}");
}

#[test]
fn fuzzy_sets_are_calibrated_and_their_union_is_symmetric() {
    // One point's neighbours at 1, 2, 3, 4 (k = 5 with itself): the nearest has membership 1,
    // the rest exp(-(d - 1)/σ), summing to log2 5.
    let rows = vec![
        vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)],
        vec![(0, 1.0), (2, 1.5), (3, 2.5), (4, 3.5)],
    ];
    let edges = fuzzy_sets(&rows, 5);
    let first: Vec<f64> = edges.iter().filter(|e| e.0 == 0).map(|e| e.2).collect();
    assert_eq!(first[0], 1.0);
    let sum: f64 = first.iter().sum();
    assert!((sum - 5f64.log2()).abs() < 1e-4, "{sum}");
    assert!(first.windows(2).all(|w| w[0] > w[1]));
    // Union: w01 = a + b - ab for the two directions; a lone direction keeps its weight.
    let union = fuzzy_union(&[(0, 1, 0.5), (1, 0, 0.4), (0, 2, 0.3)]);
    let w = |i, j| union.iter().find(|e| (e.0, e.1) == (i, j)).map(|e| e.2);
    assert_eq!(w(0, 1), Some(0.5 + 0.4 - 0.2));
    assert_eq!(w(1, 0), w(0, 1));
    assert_eq!(w(0, 2), Some(0.3));
    assert_eq!(w(2, 0), Some(0.3));
    assert_eq!(union.len(), 4);
}

#[test]
fn umap_separates_blobs_keeps_neighbourhoods_and_is_deterministic() {
    let (data, labels) = blobs(40, 10, 3);
    let mut umap = Umap::new(&data, 10, UmapParams::default()).unwrap();
    assert_eq!(umap.total_epochs(), 500);
    assert_eq!(umap.step(120), 120);
    assert!(!umap.is_done());
    assert_eq!(umap.step(1000), 500);
    assert!(umap.is_done());
    let layout = umap.embedding();
    assert_eq!(umap.step(5), 500);
    assert_eq!(umap.embedding(), layout, "no change once done");
    assert!(layout.iter().flatten().all(|v| v.is_finite()));
    let agreement = neighbour_agreement(&layout, &labels);
    assert!(agreement > 0.95, "{agreement}");
    let trust = trustworthiness(&data, 10, &layout, 10).unwrap();
    assert!(trust > 0.85, "trustworthiness {trust}");
    // Same seed, other steps: the same layout; another seed: another one.
    let mut again = Umap::new(&data, 10, UmapParams::default()).unwrap();
    for _ in 0..50 {
        again.step(10);
    }
    assert_eq!(again.embedding(), layout);
    let mut other = Umap::new(
        &data,
        10,
        UmapParams {
            seed: 1,
            ..UmapParams::default()
        },
    )
    .unwrap();
    other.step(500);
    assert_ne!(other.embedding(), layout);
    // In slices: the same run.
    let mut prep = UmapPrep::new(&data, 10, UmapParams::default()).unwrap();
    while !prep.advance(7) {}
    let mut sliced = prep.finish();
    sliced.step(500);
    assert_eq!(sliced.embedding(), layout);
}

#[test]
fn umap_validates_its_input() {
    let (data, _) = blobs(5, 4, 1);
    let bad = |p: UmapParams| Umap::new(&data, 4, p).is_err();
    assert!(bad(UmapParams {
        n_neighbors: 1,
        ..UmapParams::default()
    }));
    assert!(bad(UmapParams {
        n_neighbors: 16,
        ..UmapParams::default()
    }));
    assert!(bad(UmapParams {
        min_dist: -0.1,
        ..UmapParams::default()
    }));
    assert!(bad(UmapParams {
        min_dist: f32::NAN,
        ..UmapParams::default()
    }));
    assert!(bad(UmapParams {
        epochs: Some(0),
        ..UmapParams::default()
    }));
    assert!(!bad(UmapParams {
        n_neighbors: 15,
        epochs: Some(3),
        ..UmapParams::default()
    }));
    assert!(
        Umap::new(
            &data[..8],
            4,
            UmapParams {
                n_neighbors: 2,
                ..UmapParams::default()
            }
        )
        .is_err()
    );
    assert!(
        Umap::new(
            &[1.0, f32::NAN, 0.0, 0.0, 1.0, 1.0],
            2,
            UmapParams::default()
        )
        .is_err()
    );
}

#[test]
fn trustworthiness_matches_scikit_learn() {
    // scikit-learn 1.3.2 `trustworthiness(X, Y, n_neighbors=k)` on this helix and its distorted
    // layout: 0.725, 0.7745098039215687, 0.7380952380952381, 0.5541666666666667 for k = 1, 2, 3, 5.
    // Computed in f64 and rounded to f32, as numpy built them.
    let t: Vec<f64> = (0..12).map(f64::from).collect();
    let x: Vec<f32> = t
        .iter()
        .flat_map(|&t| [(t * 0.7).cos(), (t * 0.7).sin(), 0.3 * t].map(|v| v as f32))
        .collect();
    let y: Vec<[f32; 2]> = t
        .iter()
        .map(|&t| [(t * 0.7).cos() * (1.0 + 0.1 * (t % 3.0)), 0.3 * t * t.sin()].map(|v| v as f32))
        .collect();
    for (k, want) in [
        (1, 0.725),
        (2, 0.774_509_803_921_568_7),
        (3, 0.738_095_238_095_238_1),
        (5, 0.554_166_666_666_666_7),
    ] {
        let got = trustworthiness(&x, 3, &y, k).unwrap();
        assert!((got - want).abs() < 1e-12, "k = {k}: {got} vs {want}");
    }
    // A layout that is the data itself keeps every neighbourhood.
    let flat: Vec<f32> = y.iter().flatten().copied().collect();
    assert_eq!(trustworthiness(&flat, 2, &y, 3).unwrap(), 1.0);
    // k must stay below half the points; the layout must match the data.
    assert!(trustworthiness(&x, 3, &y, 6).is_err());
    assert!(trustworthiness(&x, 3, &y, 0).is_err());
    assert!(trustworthiness(&x, 3, &y[..11], 2).is_err());
}
