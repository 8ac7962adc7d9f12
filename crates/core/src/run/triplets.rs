//! A recent batch's triplets as the loss's mining chooses them, for the page's "triplets"
//! panel: [`terms`] lists a batch's loss terms from its distance matrix (the selection of
//! `tripletlab_engine::loss`, worked on the host, so it also owns [`select_semi_hard`]), [`pick`] chooses a
//! few that show each kind of term, and a [`TripletSample`] carries them with their images.
//! Plain data: knows no device, no tensor and no screen (the trainer computes the distances).
//!
//! The kinds follow [`super::MiningStats`]: a term's negative is [`TripletKind::SemiHard`]
//! when it is strictly farther than the positive, [`TripletKind::Fallback`] when it is not
//! (semi-hard mining: no negative was farther, so the farthest was taken; batch-hard: the
//! hardest negative is closer than the hardest positive), and [`TripletKind::NoNegative`]
//! when the anchor has no negative in the batch.

use serde::{Deserialize, Serialize};

use super::Mining;
use crate::data::Dataset;

/// Triplets a [`TripletSample`] shows.
pub const SHOWN_TRIPLETS: usize = 4;

/// Examples of a batch (its first ones) that a [`TripletSample`] is mined among: the whole
/// batch up to this size (the loss's own selection), a bounded `n × n` matrix above it.
pub const TRIPLET_ROWS: usize = 256;

/// How a term's negative relates to its positive (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TripletKind {
    /// The chosen negative is strictly farther than the positive.
    SemiHard,
    /// The anchor has negatives but the chosen one is not strictly farther.
    Fallback,
    /// The anchor has no negative in the batch.
    NoNegative,
}

/// One loss term of a batch, by its rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    /// The anchor's row.
    pub anchor: usize,
    /// The positive's row (batch-hard: the hardest positive).
    pub positive: usize,
    /// The chosen negative's row; `None` when the anchor has none.
    pub negative: Option<usize>,
    /// How the negative relates to the positive.
    pub kind: TripletKind,
    /// `D[a, p]`.
    pub d_ap: f32,
    /// `D[a, n]`; without a negative, what the loss uses in its place (semi-hard: the row
    /// minimum; batch-hard: the row maximum).
    pub d_an: f32,
    /// The term's loss: `max(margin + d_ap - d_an, 0)`, or `softplus(d_ap - d_an)`.
    pub loss: f32,
}

impl Term {
    /// Whether the term adds to the loss.
    pub fn active(&self) -> bool {
        self.loss > 0.0
    }
}

/// For each (a, p): the column of the smallest `D[a, n] > D[a, p]` among the negatives of `a`
/// (lowest column on ties) and whether one exists. `dist` and `negative` are row-major `B x B`.
/// The semi-hard loss's host selection path, and [`terms`]'.
pub fn select_semi_hard(dist: &[f32], negative: &[bool], b: usize) -> (Vec<i64>, Vec<bool>) {
    let mut index = vec![0i64; b * b];
    let mut exists = vec![false; b * b];
    let mut sorted: Vec<(f32, usize)> = Vec::with_capacity(b);
    for a in 0..b {
        let row = &dist[a * b..(a + 1) * b];
        sorted.clear();
        sorted.extend((0..b).filter(|&n| negative[a * b + n]).map(|n| (row[n], n)));
        sorted.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        for p in 0..b {
            let threshold = row[p];
            // "Not farther" rather than "nearer or equal": a NaN distance is never a semi-hard
            // negative.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let first = sorted.partition_point(|&(d, _)| !(d > threshold));
            if let Some(&(_, n)) = sorted.get(first) {
                index[a * b + p] = n as i64;
                exists[a * b + p] = true;
            }
        }
    }
    (index, exists)
}

/// The loss terms of a batch: `dist` is its row-major `B x B` distance matrix, `labels` its
/// `B` labels. Semi-hard mining: one term per ordered positive pair, anchor by anchor; batch-hard:
/// one per anchor that has a positive. Each with the negative the loss chooses (exact ties go
/// to the lowest row).
pub fn terms(dist: &[f32], labels: &[u8], mining: Mining, margin: f32, soft: bool) -> Vec<Term> {
    let b = labels.len();
    assert_eq!(dist.len(), b * b, "a B × B distance matrix");
    let negative: Vec<bool> = (0..b * b).map(|i| labels[i / b] != labels[i % b]).collect();
    let loss = |d_ap: f32, d_an: f32| {
        if soft && mining == Mining::Hard {
            (d_ap - d_an).exp().ln_1p()
        } else {
            (margin + d_ap - d_an).max(0.0)
        }
    };
    let row = |a: usize| &dist[a * b..(a + 1) * b];
    let among =
        |a: usize, same: bool| (0..b).filter(move |&n| n != a && (labels[n] == labels[a]) == same);
    // The first of the extreme values (`better(x, best)`: x replaces best).
    let extreme = |a: usize, same: bool, better: fn(f32, f32) -> bool| {
        among(a, same).fold(None, |best: Option<usize>, n| match best {
            Some(m) if !better(row(a)[n], row(a)[m]) => Some(m),
            _ => Some(n),
        })
    };
    // A term of anchor `a` and positive `p` with the chosen negative, or without one the
    // distance the loss stands in for it: the kind follows from the distances.
    let term = |a: usize, p: usize, negative: Option<usize>, stand_in: f32| {
        let d_ap = row(a)[p];
        let (kind, d_an) = match negative {
            Some(n) if row(a)[n] > d_ap => (TripletKind::SemiHard, row(a)[n]),
            Some(n) => (TripletKind::Fallback, row(a)[n]),
            None => (TripletKind::NoNegative, stand_in),
        };
        Term {
            anchor: a,
            positive: p,
            negative,
            kind,
            d_ap,
            d_an,
            loss: loss(d_ap, d_an),
        }
    };
    let mut out = Vec::new();
    match mining {
        Mining::SemiHard => {
            // The closest strictly farther negative, else the farthest; the row minimum without.
            let (index, exists) = select_semi_hard(dist, &negative, b);
            for a in 0..b {
                let farthest = extreme(a, false, |x, best| x > best);
                let row_min = row(a).iter().copied().fold(f32::INFINITY, f32::min);
                for p in among(a, true) {
                    let chosen = if exists[a * b + p] {
                        Some(index[a * b + p] as usize)
                    } else {
                        farthest
                    };
                    out.push(term(a, p, chosen, row_min));
                }
            }
        }
        Mining::Hard => {
            // The hardest positive and negative; the row maximum without a negative.
            for a in 0..b {
                if let Some(p) = extreme(a, true, |x, best| x > best) {
                    let row_max = row(a).iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    out.push(term(a, p, extreme(a, false, |x, best| x < best), row_max));
                }
            }
        }
    }
    out
}

/// Up to `n` of `terms` that show what the mining does, each from a different anchor: in turn
/// the most violated active semi-hard term, the most violated fallback, the inactive term
/// nearest to the margin and a term without negative, then again while there are any (within
/// a kind, the larger `d_ap - d_an` first; exact ties by anchor, then positive).
pub fn pick(terms: &[Term], n: usize) -> Vec<Term> {
    let group = |t: &Term| match (t.kind, t.active()) {
        (TripletKind::SemiHard, true) => 0,
        (TripletKind::Fallback, _) => 1,
        (TripletKind::SemiHard, false) => 2,
        (TripletKind::NoNegative, _) => 3,
    };
    let mut groups: [Vec<&Term>; 4] = Default::default();
    for t in terms {
        groups[group(t)].push(t);
    }
    for g in &mut groups {
        g.sort_by(|x, y| {
            (y.d_ap - y.d_an)
                .total_cmp(&(x.d_ap - x.d_an))
                .then(x.anchor.cmp(&y.anchor))
                .then(x.positive.cmp(&y.positive))
        });
        g.reverse(); // popped from the end
    }
    let mut out: Vec<Term> = Vec::new();
    while out.len() < n && groups.iter().any(|g| !g.is_empty()) {
        for g in &mut groups {
            if out.len() == n {
                break;
            }
            while let Some(t) = g.pop() {
                if out.iter().all(|o| o.anchor != t.anchor) {
                    out.push(*t);
                    break;
                }
            }
        }
    }
    out
}

/// One example of a shown triplet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TripletExample {
    /// Its index in the training set.
    pub index: usize,
    /// Its label.
    pub label: u8,
    /// Its image (`rows × cols` bytes of the training set).
    pub image: Vec<u8>,
}

/// One shown triplet: its examples and figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShownTriplet {
    /// The anchor.
    pub anchor: TripletExample,
    /// The positive.
    pub positive: TripletExample,
    /// The chosen negative, when the anchor has one.
    pub negative: Option<TripletExample>,
    /// How the negative relates to the positive.
    pub kind: TripletKind,
    /// `D[a, p]`.
    pub d_ap: f32,
    /// `D[a, n]` (see [`Term::d_an`]).
    pub d_an: f32,
    /// The term's loss.
    pub loss: f32,
}

/// A few triplets of the batch of one step, re-embedded with the weights after it (dropout
/// off), mined as the loss mines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TripletSample {
    /// Epoch of the batch (1-based).
    pub epoch: usize,
    /// Step of the epoch that trained on the batch (1-based).
    pub step: usize,
    /// How the terms were mined.
    pub mining: Mining,
    /// The batch's size.
    pub batch: usize,
    /// Examples mined among: the batch's first (all of it up to [`TRIPLET_ROWS`]).
    pub mined_among: usize,
    /// Loss terms among them, and how many of each kind and how many are active.
    pub terms: usize,
    /// Terms of [`TripletKind::SemiHard`].
    pub semi_hard: usize,
    /// Terms of [`TripletKind::Fallback`].
    pub fallback: usize,
    /// Terms that add to the loss.
    pub active: usize,
    /// The [`pick`]ed triplets.
    pub shown: Vec<ShownTriplet>,
}

impl TripletSample {
    /// The sample of `terms`, mined among the training rows `rows` (a batch's first, in batch
    /// order) of a batch of `batch` examples: counts, and [`SHOWN_TRIPLETS`] picked with their
    /// images from `train`.
    pub fn of(
        (epoch, step): (usize, usize),
        mining: Mining,
        (batch, rows): (usize, &[usize]),
        terms: &[Term],
        train: &Dataset,
    ) -> Self {
        let example = |row: usize| {
            let index = rows[row];
            TripletExample {
                index,
                label: train.labels[index],
                image: train.image(index).to_vec(),
            }
        };
        let count = |kind| terms.iter().filter(|t| t.kind == kind).count();
        TripletSample {
            epoch,
            step,
            mining,
            batch,
            mined_among: rows.len(),
            terms: terms.len(),
            semi_hard: count(TripletKind::SemiHard),
            fallback: count(TripletKind::Fallback),
            active: terms.iter().filter(|t| t.active()).count(),
            shown: pick(terms, SHOWN_TRIPLETS)
                .into_iter()
                .map(|t| ShownTriplet {
                    anchor: example(t.anchor),
                    positive: example(t.positive),
                    negative: t.negative.map(example),
                    kind: t.kind,
                    d_ap: t.d_ap,
                    d_an: t.d_an,
                    loss: t.loss,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Squared distances of one-dimensional points, row-major.
    fn squared(x: &[f32]) -> Vec<f32> {
        x.iter()
            .flat_map(|a| x.iter().map(move |b| (a - b) * (a - b)))
            .collect()
    }

    /// The terms of one-dimensional points `x` under the squared L2 distance, each as
    /// (anchor, positive, negative, kind, term).
    fn worked(
        x: &[f32],
        labels: &[u8],
        mining: Mining,
        margin: f32,
    ) -> Vec<(usize, usize, Option<usize>, TripletKind, f32)> {
        terms(&squared(x), labels, mining, margin, false)
            .iter()
            .map(|t| (t.anchor, t.positive, t.negative, t.kind, t.loss))
            .collect()
    }

    #[test]
    fn semi_hard_terms_are_the_ones_worked_out_by_hand() {
        // The batch of tests/common/mining.rs' first case: x = [0, 1, 4, 2, 6], labels
        // [0, 0, 0, 1, 1], margin 9 (its comment works every term out).
        use TripletKind::*;
        let x = [0.0, 1.0, 4.0, 2.0, 6.0];
        let labels = [0, 0, 0, 1, 1];
        assert_eq!(
            worked(&x, &labels, Mining::SemiHard, 9.0),
            vec![
                (0, 1, Some(3), SemiHard, 6.0),
                (0, 2, Some(4), SemiHard, 0.0),
                (1, 0, Some(4), SemiHard, 0.0),
                (1, 2, Some(4), SemiHard, 0.0),
                // Both negatives of 2 are at 4: the fallback takes the first.
                (2, 0, Some(3), Fallback, 21.0),
                (2, 1, Some(3), Fallback, 14.0),
                (3, 4, Some(0), Fallback, 21.0),
                (4, 3, Some(1), SemiHard, 0.0),
            ]
        );
        let t = terms(&squared(&x), &labels, Mining::SemiHard, 9.0, false);
        let d_an: f32 = t.iter().map(|t| t.d_an).sum();
        assert_eq!(d_an, 127.0);
    }

    #[test]
    fn one_class_has_no_negative_and_the_row_minimum_stands_in() {
        let t = terms(
            &squared(&[0.0, 1.0, 3.0]),
            &[7, 7, 7],
            Mining::SemiHard,
            9.0,
            false,
        );
        assert_eq!(t.len(), 6);
        assert!(
            t.iter()
                .all(|t| t.kind == TripletKind::NoNegative && t.negative.is_none())
        );
        assert!(t.iter().all(|t| t.d_an == 0.0 && t.loss == 9.0 + t.d_ap));
        let hard = terms(
            &squared(&[0.0, 1.0, 3.0]),
            &[7, 7, 7],
            Mining::Hard,
            9.0,
            false,
        );
        // Batch-hard: the hardest positive, and the row maximum in place of a negative.
        assert_eq!(
            hard.iter()
                .map(|t| (t.positive, t.d_ap, t.d_an))
                .collect::<Vec<_>>(),
            vec![(2, 9.0, 9.0), (2, 4.0, 4.0), (0, 9.0, 9.0)]
        );
    }

    #[test]
    fn batch_hard_terms_are_the_ones_worked_out_by_hand() {
        // tests/common/mining.rs' batch-hard case: x = [0, 1, 5, 9, 20], labels
        // [0, 0, 1, 1, 2], margin 15. Anchor 4 has no positive: no term.
        use TripletKind::*;
        assert_eq!(
            worked(
                &[0.0, 1.0, 5.0, 9.0, 20.0],
                &[0, 0, 1, 1, 2],
                Mining::Hard,
                15.0
            ),
            vec![
                (0, 1, Some(2), SemiHard, 0.0),
                (1, 0, Some(2), SemiHard, 0.0),
                (2, 3, Some(1), Fallback, 15.0),
                (3, 2, Some(1), SemiHard, 0.0),
            ]
        );
        let soft = terms(
            &squared(&[0.0, 1.0, 5.0, 9.0, 20.0]),
            &[0, 0, 1, 1, 2],
            Mining::Hard,
            15.0,
            true,
        );
        assert!((soft[0].loss - (1.0f32 - 25.0).exp().ln_1p()).abs() < 1e-12);
    }

    #[test]
    fn pick_shows_each_kind_from_distinct_anchors() {
        use TripletKind::*;
        let term = |anchor, kind, d_ap: f32, d_an: f32| Term {
            anchor,
            positive: anchor + 100,
            negative: Some(anchor + 200),
            kind,
            d_ap,
            d_an,
            loss: (0.5 + d_ap - d_an).max(0.0),
        };
        let terms = [
            term(0, SemiHard, 1.0, 1.2), // active, gap -0.2
            term(1, SemiHard, 1.0, 1.1), // active, gap -0.1: the most violated
            term(1, Fallback, 1.0, 0.5), // anchor 1 is taken by then
            term(2, Fallback, 1.0, 0.9), // the fallback shown
            term(3, SemiHard, 1.0, 3.0), // inactive, gap -2
            term(4, SemiHard, 1.0, 2.0), // inactive, gap -1: nearer the margin
            term(5, SemiHard, 1.0, 1.3), // active, gap -0.3: second round
        ];
        let shown: Vec<usize> = pick(&terms, 4).iter().map(|t| t.anchor).collect();
        assert_eq!(shown, vec![1, 2, 4, 0]);
        let all: Vec<usize> = pick(&terms, 10).iter().map(|t| t.anchor).collect();
        assert_eq!(all, vec![1, 2, 4, 0, 3, 5]);
        assert!(pick(&[], 4).is_empty());
    }

    #[test]
    fn a_sample_carries_the_picked_examples_images() {
        let train = Dataset {
            images: (0..4u8).flat_map(|i| vec![i * 10; 4]).collect(),
            labels: vec![3, 3, 5, 5],
            rows: 2,
            cols: 2,
        };
        // Rows 0..4 of the batch are training examples 2, 0, 3, 1 (labels 5, 3, 5, 3).
        let rows = [2, 0, 3, 1];
        let dist = squared(&[0.0, 1.0, 2.0, 5.0]);
        let t = terms(&dist, &train.labels_of(&rows), Mining::SemiHard, 1.0, false);
        let s = TripletSample::of((2, 17), Mining::SemiHard, (64, &rows), &t, &train);
        assert_eq!((s.batch, s.mined_among, s.terms), (64, 4, 4));
        assert_eq!(s.semi_hard + s.fallback, 4);
        for shown in &s.shown {
            assert_eq!(shown.anchor.label, shown.positive.label);
            let n = shown.negative.as_ref().unwrap();
            assert_ne!(n.label, shown.anchor.label);
            for e in [&shown.anchor, &shown.positive, n] {
                assert_eq!(e.image, train.image(e.index));
                assert_eq!(e.label, train.labels[e.index]);
            }
        }
        assert_eq!(s.shown.len(), 4);
    }
}
