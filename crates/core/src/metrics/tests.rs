//! Tests of the metrics on hand-computed cases, the sliced evaluation and the errors.

use super::*;
use rand::{Rng, SeedableRng};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Unit vector at `deg` degrees.
fn at(deg: f32) -> [f32; 2] {
    let r = deg.to_radians();
    [r.cos(), r.sin()]
}

fn flat(points: &[[f32; 2]]) -> Vec<f32> {
    points.iter().flatten().copied().collect()
}

#[test]
fn knn_with_hand_computed_votes() {
    // References at 0°, 10°, 20° (label 0) and 90°, 100° (label 1).
    let reference = flat(&[at(0.0), at(10.0), at(20.0), at(90.0), at(100.0)]);
    let ref_labels = [0, 0, 0, 1, 1];
    // Query at 80°: neighbours by angle 90(1), 100(1), 20(0), 10(0), 0(0).
    // Query at 30°, scaled by 5 (cosine ignores length): 20, 10, 0 (all 0).
    let query = [
        at(80.0)[0],
        at(80.0)[1],
        5.0 * at(30.0)[0],
        5.0 * at(30.0)[1],
    ];
    // k=1: 80° -> label 1 (right if its label is 1), 30° -> 0.
    assert!(close(
        knn_accuracy(&query, &[1, 0], &reference, &ref_labels, 2, 1).unwrap(),
        1.0
    ));
    // k=5: 80° -> three votes for 0 beat two for 1 -> wrong for label 1.
    assert!(close(
        knn_accuracy(&query, &[1, 0], &reference, &ref_labels, 2, 5).unwrap(),
        0.5
    ));
    // k=4: 2 vs 2 tie -> label 1, whose best member (90°) ranks first.
    assert!(close(
        knn_accuracy(&query, &[1, 0], &reference, &ref_labels, 2, 4).unwrap(),
        1.0
    ));
    assert!(close(
        knn_accuracy(&query, &[0, 0], &reference, &ref_labels, 2, 4).unwrap(),
        0.5
    ));
    // k larger than the reference set is clamped to 5.
    assert!(close(
        knn_accuracy(&query, &[1, 0], &reference, &ref_labels, 2, 50).unwrap(),
        0.5
    ));
}

#[test]
fn equal_similarities_rank_lower_index_first() {
    // Both references are identical to the query: the one at index 0 wins
    // the 1-NN tie, and a 2-NN 1:1 vote goes to it as well.
    let reference = [1.0, 0.0, 1.0, 0.0];
    assert!(close(
        knn_accuracy(&[1.0, 0.0], &[7], &reference, &[7, 8], 2, 1).unwrap(),
        1.0
    ));
    assert!(close(
        knn_accuracy(&[1.0, 0.0], &[8], &reference, &[7, 8], 2, 1).unwrap(),
        0.0
    ));
    assert!(close(
        knn_accuracy(&[1.0, 0.0], &[7], &reference, &[7, 8], 2, 2).unwrap(),
        1.0
    ));
    assert!(close(
        knn_accuracy(&[1.0, 0.0], &[7], &reference, &[8, 7], 2, 2).unwrap(),
        0.0
    ));
}

#[test]
fn zero_rows_have_similarity_zero() {
    // The zero query is equally (0) similar to both references: the tie
    // goes to index 0. The zero reference (sim 0) beats the reference at
    // 180° (sim -1) for the query at 0°.
    let reference = [0.0, 0.0, -1.0, 0.0];
    let labels = [3, 4];
    assert!(close(
        knn_accuracy(&[0.0, 0.0], &[3], &reference, &labels, 2, 1).unwrap(),
        1.0
    ));
    assert!(close(
        knn_accuracy(&[2.0, 0.0], &[3], &reference, &labels, 2, 1).unwrap(),
        1.0
    ));
    // A query at 180° prefers the reference at 180° (sim 1) over zero.
    assert!(close(
        knn_accuracy(&[-3.0, 0.0], &[4], &reference, &labels, 2, 1).unwrap(),
        1.0
    ));
}

#[test]
fn precision_at_1_leave_one_out() {
    // Items at 0°, 5° (label 0), 7° (label 1), 90° (label 1), 200° (label 2).
    // Nearest other: 0°->5° (0 ok), 5°->7° (1, wrong), 7°->5° (0, wrong),
    // 90°->7° (1, ok). 200° is the only label 2: skipped.
    let emb = flat(&[at(0.0), at(5.0), at(7.0), at(90.0), at(200.0)]);
    let p1 = precision_at_1_loo(&emb, &[0, 0, 1, 1, 2], 2).unwrap();
    assert!(close(p1, 2.0 / 4.0), "{p1}");
    // Duplicates of the query itself are other items and count.
    let p1 =
        precision_at_1_loo(&[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0], &[0, 0, 1, 1], 2).unwrap();
    assert!(close(p1, 1.0));
    // Nothing to score: all labels unique, or one item.
    assert_eq!(precision_at_1_loo(&emb, &[0, 1, 2, 3, 4], 2).unwrap(), 0.0);
    assert_eq!(precision_at_1_loo(&[1.0, 2.0], &[0], 2).unwrap(), 0.0);
}

#[test]
fn map_at_r_hand_computed() {
    // Label 0 at 0°, 10°, 20°, 30°; label 1 at 15°, 100°; label 2 at 250°
    // (R = 0, skipped). Neighbour orders by angular distance (ties: lower
    // index first):
    //  q0 (0°,  R=3): 10°(0) 15°(1) 20°(0)      -> (1/1 + 2/3)/3 = 5/9
    //  q1 (10°, R=3): 15°(1) 0°(0)  20°(0)      -> (1/2 + 2/3)/3 = 7/18
    //  q2 (20°, R=3): 15°(1) 10°(0) 30°(0)      -> (1/2 + 2/3)/3 = 7/18
    //  q3 (30°, R=3): 20°(0) 15°(1) 10°(0)      -> (1/1 + 2/3)/3 = 5/9
    //  q4 (15°, R=1): 10°(0) (tie with 20°, lower index) -> 0
    //  q5 (100°, R=1): 30°(0)                   -> 0
    // MAP@R = (5/9 + 7/18 + 7/18 + 5/9) / 6 = (17/9) / 6 = 17/54.
    let emb = flat(&[
        at(0.0),
        at(10.0),
        at(20.0),
        at(30.0),
        at(15.0),
        at(100.0),
        at(250.0),
    ]);
    let labels = [0, 0, 0, 0, 1, 1, 2];
    let m = map_at_r(&emb, &labels, 2).unwrap();
    assert!((m - 17.0 / 54.0).abs() < 1e-9, "{m}");
    // Precision@1 on the same data: q0 ok, q1..q2 wrong, q3 ok, q4 wrong,
    // q5 wrong (q6 skipped) -> 2/6.
    let p1 = precision_at_1_loo(&emb, &labels, 2).unwrap();
    assert!(close(p1, 2.0 / 6.0), "{p1}");
}

#[test]
fn map_at_r_single_class_worked_example() {
    // The worked example of MAP@R (Musgrave et al., "A Metric Learning
    // Reality Check", used by pytorch-metric-learning): a query with R = 4
    // whose 4 nearest others are [same, other, same, same] scores
    //   (1/4) (1/1 + 0 + 2/3 + 3/4) = 29/48
    // rather than the 3/4 of R-precision.
    // Indices 0..=4 are label 0 at 0°, 1°, 3.5°, 5°, 60°; index 5 is the
    // only label 1, at 2.2° (R = 0, so skipped as a query). No two
    // distances from a query are equal, so there are no ties:
    //   q 0°   : 1°, 2.2°*, 3.5°, 5°   -> [1,0,1,1] -> 29/48
    //   q 1°   : 0°, 2.2°*, 3.5°, 5°   -> [1,0,1,1] -> 29/48
    //   q 3.5° : 2.2°*, 5°, 1°, 0°     -> [0,1,1,1] -> (1/2 + 2/3 + 3/4)/4 = 23/48
    //   q 5°   : 3.5°, 2.2°*, 1°, 0°   -> [1,0,1,1] -> 29/48
    //   q 60°  : 5°, 3.5°, 2.2°*, 1°   -> [1,1,0,1] -> (1 + 1 + 3/4)/4 = 33/48
    // MAP@R = (29 + 29 + 23 + 29 + 33) / 48 / 5 = 143/240.
    let emb = flat(&[at(0.0), at(1.0), at(3.5), at(5.0), at(60.0), at(2.2)]);
    let labels = [0, 0, 0, 0, 0, 1];
    let m = map_at_r(&emb, &labels, 2).unwrap();
    assert!((m - 143.0 / 240.0).abs() < 1e-9, "{m}");
    // Precision@1: every label-0 query's nearest other is label 0 except
    // the one at 3.5° (nearest 2.2°) -> 4/5.
    let p1 = precision_at_1_loo(&emb, &labels, 2).unwrap();
    assert!(close(p1, 4.0 / 5.0), "{p1}");
}

#[test]
fn evaluate_matches_the_single_metrics() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    let dim = 19; // not a multiple of the kernel width
    let mut make = |n: usize| -> (Vec<f32>, Vec<u32>) {
        let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..4)).collect();
        let data = labels
            .iter()
            .flat_map(|&l| {
                (0..dim)
                    .map(|d| if d == l as usize { 2.0 } else { 0.0 })
                    .collect::<Vec<_>>()
            })
            .map(|x: f32| x + rng.random_range(-1.0..1.0f32))
            .collect();
        (data, labels)
    };
    let (train, train_labels) = make(301);
    let (test, test_labels) = make(97);
    let m = evaluate(&test, &test_labels, Some((&train, &train_labels)), dim).unwrap();
    assert_eq!(
        m.knn1_acc,
        Some(knn_accuracy(&test, &test_labels, &train, &train_labels, dim, 1).unwrap())
    );
    assert_eq!(
        m.knn5_acc,
        Some(knn_accuracy(&test, &test_labels, &train, &train_labels, dim, 5).unwrap())
    );
    assert_eq!(
        m.precision_at_1,
        precision_at_1_loo(&test, &test_labels, dim).unwrap()
    );
    assert_eq!(m.map_at_r, map_at_r(&test, &test_labels, dim).unwrap());
    // The clusters are clearly separable, so everything is high.
    assert!(m.knn1_acc.unwrap() > 0.8 && m.map_at_r > 0.5, "{m:?}");
    let without = evaluate(&test, &test_labels, None, dim).unwrap();
    assert_eq!(without.knn1_acc, None);
    assert_eq!(without.map_at_r, m.map_at_r);
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Metrics>(&json).unwrap(), m);
}

/// Straightforward reference: full sort of every similarity row.
fn brute_force_map_at_r(emb: &[f32], labels: &[u32], dim: usize) -> f64 {
    let set = Normalized::new("embeddings", emb, dim, labels.len()).unwrap();
    let (mut sum, mut queries) = (0.0, 0);
    for q in 0..set.rows {
        let r = labels.iter().filter(|&&l| l == labels[q]).count() - 1;
        if r == 0 {
            continue;
        }
        let mut ranked: Vec<Neighbor> = (0..set.rows)
            .filter(|&j| j != q)
            .map(|j| Neighbor {
                sim: seq_dot(set.row(q), set.row(j)) + 0.0,
                index: j as u32,
            })
            .collect();
        ranked.sort_by(rank_order);
        let mut hits = 0;
        let mut ap = 0.0;
        for (i, n) in ranked[..r].iter().enumerate() {
            if labels[n.index as usize] == labels[q] {
                hits += 1;
                ap += f64::from(hits) / (i + 1) as f64;
            }
        }
        sum += ap / r as f64;
        queries += 1;
    }
    sum / f64::from(queries)
}

#[test]
fn map_at_r_matches_brute_force_for_large_r() {
    // R is about 100 here, so the select_nth path of top_k is used.
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let dim = 12;
    let labels: Vec<u32> = (0..300).map(|_| rng.random_range(0..3)).collect();
    let emb: Vec<f32> = labels
        .iter()
        .flat_map(|&l| (0..dim).map(move |d| if d == l as usize { 2.0f32 } else { 0.0 }))
        .map(|x| x + rng.random_range(-1.0..1.0f32))
        .collect();
    let expected = brute_force_map_at_r(&emb, &labels, dim);
    let got = map_at_r(&emb, &labels, dim).unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    assert!(got > 0.5 && got < 1.0, "{got}");
}

#[test]
fn top_k_strategies_agree_with_a_full_sort() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    // Few distinct values so that ties are common.
    let sims: Vec<f32> = (0..500)
        .map(|_| rng.random_range(-4..=4) as f32 / 4.0)
        .collect();
    let mut full: Vec<Neighbor> = sims
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != 17)
        .map(|(j, &s)| Neighbor {
            sim: s + 0.0,
            index: j as u32,
        })
        .collect();
    full.sort_by(rank_order);
    let mut out = Vec::new();
    for k in [1, 5, SMALL_K, SMALL_K + 1, 200, 499, 600] {
        top_k(&sims, k, Some(17), &mut out);
        assert_eq!(out, full[..k.min(499)], "k = {k}");
    }
}

/// The similarity the kernel must reproduce bit for bit.
fn seq_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |s, (x, y)| s + x * y)
}

#[test]
fn blocked_similarities_match_direct_dot_products() {
    // Sizes that leave partial query groups, blocks and tiles.
    let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
    for (dim, n_query, n_ref) in [(1, 3, 5), (7, 37, 2 * TILE + 9), (33, 5, TILE)] {
        let mut make = |n: usize| {
            let data: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            Normalized::new("test", &data, dim, n).unwrap()
        };
        let (query, reference) = (make(n_query), make(n_ref));
        let mut visited = 0;
        for_each_top_k(
            &query,
            0..n_query,
            &Tiled::new(&reference.data, dim),
            false,
            |_| n_ref,
            |q, neighbours| {
                visited += 1;
                assert_eq!(neighbours.len(), n_ref);
                for n in neighbours {
                    let r = reference.row(n.index as usize);
                    assert_eq!(n.sim.to_bits(), (seq_dot(query.row(q), r) + 0.0).to_bits());
                }
                assert!(
                    neighbours
                        .windows(2)
                        .all(|w| rank_order(&w[0], &w[1]).is_lt())
                );
            },
        );
        assert_eq!(visited, n_query);
    }
}

#[test]
fn sliced_evaluation_equals_the_whole() {
    // 150 test and 300 train rows of 8 values, 5 labels: slices of 1, 32 and 40 queries
    // (rounded up to blocks of 32, a short last block) give the same metrics, bit for bit.
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let (dim, n_test, n_train) = (8, 150, 300);
    let mut data =
        |n: usize| -> Vec<f32> { (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let (test, train) = (data(n_test), data(n_train));
    let test_labels: Vec<u32> = (0..n_test as u32).map(|i| i % 5).collect();
    let train_labels: Vec<u32> = (0..n_train as u32).map(|i| (i * 7) % 5).collect();
    let whole = evaluate(&test, &test_labels, Some((&train, &train_labels)), dim).unwrap();
    assert!(whole.knn1_acc.is_some() && whole.map_at_r > 0.0);
    for queries in [1, 32, 40] {
        let mut ev =
            Evaluation::new(&test, &test_labels, Some((&train, &train_labels)), dim).unwrap();
        let mut slices = 1;
        while !ev.advance(queries) {
            slices += 1;
        }
        // kNN then leave-one-out, each in ceil(150 / block) slices.
        let block = queries.next_multiple_of(QUERY_BLOCK);
        assert_eq!(slices, 2 * n_test.div_ceil(block), "queries = {queries}");
        assert_eq!(ev.finish(), whole, "queries = {queries}");
    }
}

#[test]
fn errors_for_bad_input() {
    let two = [1.0, 0.0, 0.0, 1.0];
    assert_eq!(
        knn_accuracy(&two, &[0], &two, &[0, 1], 2, 1),
        Err(MetricsError::LabelCount {
            what: "query",
            rows: 2,
            labels: 1
        })
    );
    assert_eq!(
        knn_accuracy(&two, &[0, 1], &two[..3], &[0, 1], 2, 1),
        Err(MetricsError::Shape {
            what: "reference",
            error: ShapeError::RaggedData { len: 3, dim: 2 }
        })
    );
    assert_eq!(
        knn_accuracy(&two, &[0, 1], &two, &[0, 1], 2, 0),
        Err(MetricsError::ZeroK)
    );
    assert_eq!(
        knn_accuracy(&two, &[0, 1], &two, &[0, 1], 0, 1),
        Err(MetricsError::Shape {
            what: "query",
            error: ShapeError::ZeroDim
        })
    );
    assert_eq!(
        knn_accuracy(&[], &[], &two, &[0, 1], 2, 1),
        Err(MetricsError::Empty { what: "query" })
    );
    assert_eq!(
        map_at_r(&[1.0, f32::NAN], &[0], 2),
        Err(MetricsError::Shape {
            what: "embeddings",
            error: ShapeError::NonFinite { row: 0, col: 1 }
        })
    );
    assert_eq!(
        precision_at_1_loo(&[1.0, 0.0, 0.0, f32::INFINITY], &[0, 0], 2),
        Err(MetricsError::Shape {
            what: "embeddings",
            error: ShapeError::NonFinite { row: 1, col: 1 }
        })
    );
    assert_eq!(
        evaluate(&two, &[0, 1], Some((&two, &[0])), 2),
        Err(MetricsError::LabelCount {
            what: "train",
            rows: 2,
            labels: 1
        })
    );
    assert_eq!(
        evaluate(&two, &[0, 1, 2], None, 2),
        Err(MetricsError::LabelCount {
            what: "test",
            rows: 2,
            labels: 3
        })
    );
}

#[test]
fn huge_values_do_not_overflow_the_normalisation() {
    let emb = [3e38, 3e38, 1.0, 1.0, -3e38, 0.0, -1.0, 0.0];
    assert!(close(
        precision_at_1_loo(&emb, &[0, 0, 1, 1], 2).unwrap(),
        1.0
    ));
}

#[test]
fn knn1_confusion_counts_each_prediction() {
    // References: label 3 at 0°, label 8 at 90°, label 5 at 180°.
    // Queries: 10° (3) → 3; 80° (3) → 8; 100° (8) → 8; 170° (8) → 5; 190° (5) → 5.
    let train = flat(&[at(0.0), at(90.0), at(180.0)]);
    let test = flat(&[at(10.0), at(80.0), at(100.0), at(170.0), at(190.0)]);
    let m = evaluate(&test, &[3, 3, 8, 8, 5], Some((&train, &[3, 8, 5])), 2).unwrap();
    let c = m.knn1_confusion.clone().unwrap();
    assert_eq!(c.labels, [3, 5, 8]);
    // Rows: truth 3, 5, 8; columns: predicted 3, 5, 8.
    assert_eq!(c.counts, [[1, 0, 1], [0, 1, 0], [0, 1, 1]]);
    assert_eq!(c.per_class_accuracy(), [Some(0.5), Some(1.0), Some(0.5)]);
    let right: u64 = (0..3).map(|i| c.counts[i][i]).sum();
    assert!(close(m.knn1_acc.unwrap(), right as f64 / 5.0));
    // Each item's predictions, in order: kNN-1's, and its nearest other test item's (10° → 80°,
    // 80° → 100°, 100° → 80°, 170° → 190°; the only 5 has no other 5, so no prediction).
    assert_eq!(m.predictions.knn1.as_deref(), Some(&[3, 8, 8, 5, 5][..]));
    assert_eq!(
        m.predictions.nearest_other,
        [Some(3), Some(8), Some(3), Some(5), None]
    );
    assert!(close(m.precision_at_1, 0.25));
    let loo = Predictions::confusion(&[3, 3, 8, 8, 5], &m.predictions.nearest_other);
    assert_eq!(loo.labels, [3, 5, 8]);
    assert_eq!(loo.counts, [[1, 0, 1], [0, 0, 0], [1, 1, 0]]);
    // A label only ever predicted has no accuracy of its own.
    let only_predicted = Confusion::from_pairs([(1, 1), (1, 2)]);
    assert_eq!(only_predicted.per_class_accuracy(), [Some(0.5), None]);
    // Without references there is no kNN, so no confusion either.
    assert!(
        evaluate(&test, &[3, 3, 8, 8, 5], None, 2)
            .unwrap()
            .knn1_confusion
            .is_none()
    );
    // Sliced evaluation: the same matrix.
    let mut sliced =
        Evaluation::new(&test, &[3, 3, 8, 8, 5], Some((&train, &[3, 8, 5])), 2).unwrap();
    while !sliced.advance(1) {}
    assert_eq!(sliced.finish(), m);
}
