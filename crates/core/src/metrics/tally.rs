//! The counts behind the measures, one slice of queries at a time: kNN votes against a
//! reference set, leave-one-out precision@1 and MAP@R within one set.

use super::*;

/// `k`-NN votes against a reference set, accumulated one slice of queries at a
/// time: how many queries each `k` of `ks` got right, and each query's 1-NN prediction.
pub(super) struct KnnTally {
    reference: Tiled,
    labels: Vec<u32>,
    ks: Vec<usize>,
    correct: Vec<usize>,
    /// `(truth, nearest reference's label)` per query answered.
    nearest: Vec<(u32, u32)>,
}

impl KnnTally {
    pub(super) fn new(reference: &Normalized, labels: &[u32], ks: &[usize]) -> Self {
        Self {
            reference: Tiled::new(&reference.data, reference.dim),
            labels: labels.to_vec(),
            ks: ks.to_vec(),
            correct: vec![0; ks.len()],
            nearest: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, query: &Normalized, query_labels: &[u32], rows: Range<usize>) {
        let k_max = self.ks.iter().copied().max().unwrap_or(0);
        let (ks, labels, correct, nearest) =
            (&self.ks, &self.labels, &mut self.correct, &mut self.nearest);
        for_each_top_k(
            query,
            rows,
            &self.reference,
            false,
            |_| k_max,
            |q, neighbours| {
                if let Some(first) = neighbours.first() {
                    nearest.push((query_labels[q], labels[first.index as usize]));
                }
                for (hits, &k) in correct.iter_mut().zip(ks) {
                    let k = k.min(neighbours.len());
                    if vote(&neighbours[..k], labels) == Some(query_labels[q]) {
                        *hits += 1;
                    }
                }
            },
        );
    }

    /// Each query's kNN-1 prediction, in query order.
    pub(super) fn predicted(&self) -> Vec<u32> {
        self.nearest.iter().map(|&(_, p)| p).collect()
    }

    /// The kNN-1 predictions' confusion matrix.
    pub(super) fn confusion(&self) -> Confusion {
        Confusion::from_pairs(self.nearest.iter().copied())
    }

    pub(super) fn accuracies(&self, queries: usize) -> Vec<f64> {
        self.correct
            .iter()
            .map(|&c| c as f64 / queries as f64)
            .collect()
    }
}

/// Accuracy of `k`-NN majority votes for each query in `ks`, in one pass.
pub(super) fn knn_accuracies(
    query: &Normalized,
    query_labels: &[u32],
    reference: &Normalized,
    reference_labels: &[u32],
    ks: &[usize],
) -> Vec<f64> {
    let mut tally = KnnTally::new(reference, reference_labels, ks);
    tally.add(query, query_labels, 0..query.rows);
    tally.accuracies(query.rows)
}

/// Leave-one-out scores within one set, accumulated one slice of queries at a
/// time. Queries whose label occurs nowhere else are skipped.
pub(super) struct LooTally {
    reference: Tiled,
    /// How often each label occurs.
    counts: BTreeMap<u32, usize>,
    with_map: bool,
    queries: usize,
    p1_sum: f64,
    map_sum: f64,
    /// Per item: the label of its nearest other item (`None` until answered, or when its label
    /// occurs nowhere else).
    nearest: Vec<Option<u32>>,
}

impl LooTally {
    pub(super) fn new(set: &Normalized, labels: &[u32], with_map: bool) -> Self {
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for &l in labels {
            *counts.entry(l).or_default() += 1;
        }
        Self {
            reference: Tiled::new(&set.data, set.dim),
            counts,
            with_map,
            queries: 0,
            p1_sum: 0.0,
            map_sum: 0.0,
            nearest: vec![None; labels.len()],
        }
    }

    /// Per item, the label of its nearest other item (see [`LooTally::nearest`]).
    pub(super) fn nearest_other(&self) -> Vec<Option<u32>> {
        self.nearest.clone()
    }

    pub(super) fn add(&mut self, set: &Normalized, labels: &[u32], rows: Range<usize>) {
        let Self {
            reference,
            counts,
            with_map,
            queries,
            p1_sum,
            map_sum,
            nearest,
        } = self;
        let with_map = *with_map;
        // R for each query: the number of OTHER items with its label.
        let r_of = |q: usize| counts[&labels[q]] - 1;
        let k_of = |q: usize| {
            let r = r_of(q);
            if with_map { r } else { r.min(1) }
        };
        for_each_top_k(set, rows, reference, true, k_of, |q, neighbours| {
            let label = labels[q];
            *queries += 1;
            nearest[q] = Some(labels[neighbours[0].index as usize]);
            if labels[neighbours[0].index as usize] == label {
                *p1_sum += 1.0;
            }
            if with_map {
                let r = r_of(q);
                let (mut hits, mut ap) = (0usize, 0.0f64);
                for (i, n) in neighbours.iter().take(r).enumerate() {
                    if labels[n.index as usize] == label {
                        hits += 1;
                        ap += hits as f64 / (i + 1) as f64;
                    }
                }
                *map_sum += ap / r as f64;
            }
        });
    }

    /// `(precision@1, MAP@R)`; MAP@R is 0 unless `with_map`; both 0 with no query.
    pub(super) fn scores(&self) -> (f64, f64) {
        if self.queries == 0 {
            return (0.0, 0.0);
        }
        (
            self.p1_sum / self.queries as f64,
            self.map_sum / self.queries as f64,
        )
    }
}

/// Leave-one-out scores within one set: `(precision@1, MAP@R)`. MAP@R is only
/// computed when `with_map` (otherwise 0 is returned for it). Queries whose
/// label occurs nowhere else are skipped; with no query left both are 0.
pub(super) fn loo_scores(set: &Normalized, labels: &[u32], with_map: bool) -> (f64, f64) {
    let mut tally = LooTally::new(set, labels, with_map);
    tally.add(set, labels, 0..set.rows);
    tally.scores()
}
