//! Asking the embedding about one image (a drawn digit or a test image): its nearest training
//! examples by cosine with their kNN vote, its nearest test embeddings (to place it on a t-SNE or
//! UMAP layout at their similarity-weighted mean) and its exact place on a PCA layout. The
//! embedding itself is the caller's (the worker embeds with the trainer's current weights);
//! this module is plain data: no device, no browser, no screen. `digitize` turns a drawing into
//! an MNIST-style image.

pub mod digitize;

use serde::{Deserialize, Serialize};

use crate::projection::PcaBasis;

/// Nearest training examples shown for a query (and voting).
pub const NEIGHBOURS: usize = 8;

/// One neighbour of the query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Its row in its set.
    pub index: u32,
    /// Its label.
    pub label: u8,
    /// Cosine similarity to the query.
    pub cosine: f32,
}

/// Everything the page shows about a query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The nearest training examples, most similar first.
    pub neighbours: Vec<Match>,
    /// Their votes: `(label, count)`, most votes first (ties: the label of the nearer example).
    pub votes: Vec<(u8, u32)>,
    /// The nearest test embeddings, most similar first.
    pub test_neighbours: Vec<Match>,
    /// Its place on the PCA layout of the test embeddings, when one was given.
    pub pca: Option<[f32; 2]>,
    /// Which weights embedded it: `(epoch, step within it)` of the trainer (1-based epoch).
    pub weights_at: (usize, usize),
}

impl Answer {
    /// The vote's winner.
    pub fn predicted(&self) -> Option<u8> {
        self.votes.first().map(|&(l, _)| l)
    }
}

/// The `k` rows of `refs` (`dim` values each, with `labels`) most cosine-similar to `query`,
/// most similar first (ties: the lower row); rows that are zero or not finite are skipped.
pub fn nearest(query: &[f32], refs: &[f32], labels: &[u8], dim: usize, k: usize) -> Vec<Match> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let qn = norm(query);
    if dim == 0 || query.len() != dim || qn <= 0.0 || !qn.is_finite() {
        return Vec::new();
    }
    let mut all: Vec<Match> = refs
        .chunks_exact(dim)
        .zip(labels)
        .enumerate()
        .filter_map(|(i, (row, &label))| {
            let rn = norm(row);
            let cosine = query.iter().zip(row).map(|(a, b)| a * b).sum::<f32>() / (qn * rn);
            (rn > 0.0 && cosine.is_finite()).then_some(Match {
                index: i as u32,
                label,
                cosine,
            })
        })
        .collect();
    let k = k.min(all.len());
    let order = |a: &Match, b: &Match| b.cosine.total_cmp(&a.cosine).then(a.index.cmp(&b.index));
    if k > 0 && k < all.len() {
        all.select_nth_unstable_by(k - 1, order);
    }
    all.truncate(k);
    all.sort_by(order);
    all
}

/// The votes of `neighbours` (most similar first): `(label, count)`, most votes first, a tie
/// going to the label whose best neighbour is nearer (as the metrics' kNN vote).
pub fn vote(neighbours: &[Match]) -> Vec<(u8, u32)> {
    let mut votes: Vec<(u8, u32, usize)> = Vec::new();
    for (rank, m) in neighbours.iter().enumerate() {
        match votes.iter_mut().find(|v| v.0 == m.label) {
            Some(v) => v.1 += 1,
            None => votes.push((m.label, 1, rank)),
        }
    }
    votes.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    votes.into_iter().map(|(l, c, _)| (l, c)).collect()
}

/// The answer for the embedded `query`: its neighbours among the training embeddings `train`,
/// among the test embeddings `test` (if any), and its place under `pca` (if any).
pub fn answer(
    query: &[f32],
    train: (&[f32], &[u8]),
    test: Option<(&[f32], &[u8])>,
    pca: Option<&PcaBasis>,
    dim: usize,
    weights_at: (usize, usize),
) -> Answer {
    let neighbours = nearest(query, train.0, train.1, dim, NEIGHBOURS);
    Answer {
        votes: vote(&neighbours),
        neighbours,
        test_neighbours: test
            .map(|(v, l)| nearest(query, v, l, dim, NEIGHBOURS))
            .unwrap_or_default(),
        pca: pca.and_then(|b| b.place(query)),
        weights_at,
    }
}

/// The query's place on a layout of the test embeddings (t-SNE, UMAP) it was not part of: the
/// mean of its nearest test points' positions weighted by their (positive) cosine similarity.
/// `None` when no neighbour has a finite position and a positive similarity.
pub fn place_among(test_neighbours: &[Match], points: &[[f32; 2]]) -> Option<[f32; 2]> {
    let (mut sx, mut sy, mut sw) = (0.0f64, 0.0f64, 0.0f64);
    for m in test_neighbours {
        let Some(p) = points.get(m.index as usize) else {
            continue;
        };
        let w = f64::from(m.cosine.max(0.0));
        if w > 0.0 && p[0].is_finite() && p[1].is_finite() {
            sx += w * f64::from(p[0]);
            sy += w * f64::from(p[1]);
            sw += w;
        }
    }
    (sw > 0.0).then(|| [(sx / sw) as f32, (sy / sw) as f32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::Pca2d;

    fn at(deg: f32) -> [f32; 2] {
        let r = deg.to_radians();
        [r.cos(), r.sin()]
    }

    #[test]
    fn neighbours_by_cosine_and_their_vote() {
        // Training rows at 0°, 10°, 20°, 90°, 100°, and a zero row (skipped).
        let refs: Vec<f32> =
            [at(0.0), at(10.0), at(20.0), at(90.0), at(100.0), [0.0, 0.0]].concat();
        let labels = [1, 1, 7, 7, 7, 3];
        // Length does not matter, direction does.
        let found = nearest(
            &[2.0 * at(12.0)[0], 2.0 * at(12.0)[1]],
            &refs,
            &labels,
            2,
            4,
        );
        let order: Vec<u32> = found.iter().map(|m| m.index).collect();
        assert_eq!(order, [1, 2, 0, 3]);
        assert!((found[0].cosine - 2f32.to_radians().cos()).abs() < 1e-6);
        // 2 votes each for 1 and 7: the tie goes to the label of the nearer example (1).
        assert_eq!(vote(&found), [(1, 2), (7, 2)]);
        assert_eq!(vote(&found[1..]), [(7, 2), (1, 1)]);
        assert!(nearest(&[0.0, 0.0], &refs, &labels, 2, 4).is_empty());
        assert_eq!(nearest(&at(0.0), &refs, &labels, 2, 99).len(), 5);
    }

    #[test]
    fn the_answer_places_the_query_on_both_kinds_of_layout() {
        let test: Vec<f32> = [at(0.0), at(60.0), at(120.0), at(180.0)].concat();
        let labels = [0, 1, 2, 3];
        let (points, basis) = Pca2d::new(&test, 2).unwrap().finish_with_basis(&test);
        let q = at(60.0);
        let a = answer(
            &q,
            (&test, &labels),
            Some((&test, &labels)),
            Some(&basis),
            2,
            (2, 5),
        );
        assert_eq!(a.predicted(), Some(1));
        assert_eq!(a.neighbours.len(), 4);
        assert_eq!(a.test_neighbours[0].index, 1);
        // PCA: exactly where the same row was placed.
        assert_eq!(a.pca, Some(points[1]));
        // A layout it was not part of: the weighted mean of its neighbours' positions (cosines 1
        // and 0.5 for 60° and 0°/120°; 180° has a negative cosine and no weight).
        let layout = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [99.0, 99.0]];
        let p = place_among(&a.test_neighbours, &layout).unwrap();
        assert!(
            (p[0] - 5.0).abs() < 1e-5 && (p[1] - 2.5).abs() < 1e-5,
            "{p:?}"
        );
        assert_eq!(place_among(&a.test_neighbours[3..], &layout), None);
        assert_eq!(place_among(&a.test_neighbours, &[]), None);
    }
}
