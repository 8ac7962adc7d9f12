//! P×K batches: [`pk_order`] lays out one epoch of batches that each hold `P` classes × `K`
//! examples, and [`PkEpoch`] says, from the labels alone, how long such an epoch is, how much of
//! the training set it sees and why it ends. Plain data and a seeded RNG: knows no trainer, no
//! device and no screen (the shuffle buffer, the notebook's sampler, is `pipeline`'s).
//!
//! One epoch, precisely:
//!
//! 1. Every class's examples are shuffled with the RNG of `(seed, epoch)` and cut into chunks of
//!    `K` (a class's last `n mod K` examples are not used this epoch).
//! 2. The epoch has the largest number of batches `T` that `P` distinct classes a batch allow
//!    ([`PkEpoch::batches`]: the largest `T` with `Σ min(chunks of c, T) ≥ P·T`). `T` depends on
//!    the class counts only, so every epoch has the same length.
//! 3. Each batch takes the next chunk of `P` distinct classes (no class twice in a batch, no
//!    example twice in an epoch). A class with at least as many chunks left as batches left must
//!    be taken (else the epoch could not reach `T`); the other places go to the remaining classes
//!    drawn without replacement with a chance proportional to their chunks left, so the classes
//!    run out together and the epoch covers nearly the whole set.
//! 4. The epoch ends after `T` batches: then fewer than `P` classes have `K` unused examples
//!    ([`PkEnd::ClassesRanOut`]), or every example was seen once ([`PkEnd::AllSeen`], when
//!    nothing is left over).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::NUM_CLASSES;
use super::pipeline::{epoch_rng, pick};

/// Why a P×K epoch ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PkEnd {
    /// Every training example was in one batch of the epoch.
    AllSeen,
    /// Fewer than `P` classes had `K` unused examples left; the rest waits for the next epoch.
    ClassesRanOut,
}

/// The shape of every P×K epoch over a set of labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkEpoch {
    /// Classes per batch (`P`).
    pub classes: usize,
    /// Examples per class in a batch (`K`).
    pub per_class: usize,
    /// Batches per epoch (`T`).
    pub batches: usize,
    /// Examples seen per epoch (`T·P·K`).
    pub seen: usize,
    /// Examples in the training set.
    pub examples: usize,
    /// Why the epoch ends.
    pub end: PkEnd,
}

impl PkEpoch {
    /// The epoch of `P = classes` × `K = per_class` batches over `labels`; an error (one line)
    /// when not even one batch fits (fewer than `P` classes with `K` examples).
    pub fn of(labels: &[u8], classes: usize, per_class: usize) -> Result<Self, String> {
        let chunks = chunks_per_class(labels, per_class.max(1));
        let batches = longest_epoch(&chunks, classes);
        if batches == 0 || classes == 0 {
            let usable = match chunks.iter().filter(|&&c| c > 0).count() {
                1 => "1 class of the training set has".to_string(),
                n => format!("{n} classes of the training set have"),
            };
            return Err(format!(
                "{usable} {per_class} examples; a batch of {classes} classes × {per_class} needs \
                 {classes}"
            ));
        }
        let seen = batches * classes * per_class;
        Ok(Self {
            classes,
            per_class,
            batches,
            seen,
            examples: labels.len(),
            end: if seen == labels.len() {
                PkEnd::AllSeen
            } else {
                PkEnd::ClassesRanOut
            },
        })
    }

    /// One line for a person: the batches, the share of the set and the end.
    pub fn describe(&self) -> String {
        let (p, k) = (self.classes, self.per_class);
        let end = match self.end {
            PkEnd::AllSeen => "every example seen once".to_string(),
            PkEnd::ClassesRanOut => format!(
                "it ends when fewer than {p} classes have {k} unused examples: {} left for the \
                 next epoch",
                self.examples - self.seen
            ),
        };
        format!(
            "P×K batches: {p} classes × {k} examples; an epoch is {} batches over {} of {} \
             examples ({end})",
            self.batches, self.seen, self.examples
        )
    }
}

/// Chunks of `k` examples each class has.
fn chunks_per_class(labels: &[u8], k: usize) -> [usize; NUM_CLASSES] {
    let mut counts = [0usize; NUM_CLASSES];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    counts.map(|n| n / k)
}

/// The largest `T` with `Σ min(chunks_c, T) ≥ p·T`: the most batches of `p` distinct classes
/// that the chunks allow (0 when fewer than `p` classes have a chunk).
fn longest_epoch(chunks: &[usize; NUM_CLASSES], p: usize) -> usize {
    if p == 0 {
        return 0;
    }
    let total: usize = chunks.iter().sum();
    (0..=total / p)
        .rev()
        .find(|&t| chunks.iter().map(|&c| c.min(t)).sum::<usize>() >= p * t)
        .unwrap_or(0)
}

/// The example indices of epoch `epoch`, batch after batch (each `classes · per_class` long,
/// `K` consecutive indices per class); see the module docs. Empty when no batch fits.
pub fn pk_order(
    labels: &[u8],
    classes: usize,
    per_class: usize,
    seed: u64,
    epoch: usize,
) -> Vec<usize> {
    let k = per_class.max(1);
    let mut rng = epoch_rng(seed, epoch);
    // 1. Each class's examples, shuffled (Fisher–Yates), in chunks of K.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); NUM_CLASSES];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(m) = members.get_mut(l as usize) {
            m.push(i);
        }
    }
    for m in &mut members {
        for i in (1..m.len()).rev() {
            let j = pick(&mut rng, i + 1);
            m.swap(i, j);
        }
    }
    let mut left = chunks_per_class(labels, k);
    let total = longest_epoch(&left, classes);
    let mut used = [0usize; NUM_CLASSES];
    let mut order = Vec::with_capacity(total * classes * k);
    for t in 0..total {
        let remaining = total - t;
        // 3. Classes that must be taken, then the others by their chunks left.
        let mut forced: Vec<usize> = (0..NUM_CLASSES).filter(|&c| left[c] >= remaining).collect();
        let mut chosen = Vec::with_capacity(classes);
        while chosen.len() < classes && !forced.is_empty() {
            chosen.push(forced.swap_remove(pick(&mut rng, forced.len())));
        }
        let mut others: Vec<usize> = (0..NUM_CLASSES)
            .filter(|&c| left[c] > 0 && !chosen.contains(&c))
            .collect();
        while chosen.len() < classes {
            let weight: u64 = others.iter().map(|&c| left[c] as u64).sum();
            let mut ticket = rng.random_range(0..weight);
            let at = others
                .iter()
                .position(|&c| {
                    let w = left[c] as u64;
                    if ticket < w {
                        true
                    } else {
                        ticket -= w;
                        false
                    }
                })
                .expect("a ticket below the total weight");
            chosen.push(others.remove(at));
        }
        for c in chosen {
            order.extend_from_slice(&members[c][used[c]..used[c] + k]);
            used[c] += k;
            left[c] -= 1;
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `counts[c]` examples of class `c`, the classes interleaved (as a real file's are).
    fn labels(counts: &[usize]) -> Vec<u8> {
        let mut left = counts.to_vec();
        let mut out = Vec::new();
        while left.iter().any(|&n| n > 0) {
            for (c, n) in left.iter_mut().enumerate() {
                if *n > 0 {
                    out.push(c as u8);
                    *n -= 1;
                }
            }
        }
        out
    }

    /// Every promise of one epoch's order: `T` batches of `P` distinct classes × `K`
    /// consecutive examples of each, no example twice, and at the end fewer than `P` classes
    /// with `K` unused examples. Returns the epoch's shape.
    fn check_epoch(labels: &[u8], p: usize, k: usize, order: &[usize]) -> PkEpoch {
        let shape = PkEpoch::of(labels, p, k).expect("a batch fits");
        assert_eq!(order.len(), shape.batches * p * k);
        assert_eq!(order.len(), shape.seen);
        let mut used = vec![false; labels.len()];
        for &i in order {
            assert!(!std::mem::replace(&mut used[i], true), "example {i} twice");
        }
        for batch in order.chunks(p * k) {
            let classes: Vec<u8> = batch.chunks(k).map(|run| labels[run[0]]).collect();
            for (run, &c) in batch.chunks(k).zip(&classes) {
                assert!(
                    run.iter().all(|&i| labels[i] == c),
                    "a run of K mixes classes"
                );
            }
            let mut distinct = classes.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), p, "a class twice in a batch: {classes:?}");
        }
        let mut unused = [0usize; NUM_CLASSES];
        for (i, &l) in labels.iter().enumerate() {
            if !used[i] {
                unused[l as usize] += 1;
            }
        }
        let still = unused.iter().filter(|&&n| n >= k).count();
        assert!(
            still < p,
            "{still} classes still have {k} unused: {unused:?}"
        );
        let all_seen = unused.iter().all(|&n| n == 0);
        assert_eq!(shape.end == PkEnd::AllSeen, all_seen);
        shape
    }

    #[test]
    fn batches_are_p_classes_by_k_examples_and_no_example_repeats() {
        // Uneven classes, like MNIST's (the smallest has 2/3 of the largest).
        let uneven = labels(&[80, 91, 84, 78, 75, 61, 79, 87, 72, 83]);
        for (p, k) in [(8, 4), (5, 2), (10, 3), (2, 8), (3, 6)] {
            for epoch in 0..4 {
                let order = pk_order(&uneven, p, k, 11, epoch);
                let shape = check_epoch(&uneven, p, k, &order);
                // Drawn by chunks left, the classes run out together: most of the set is seen
                // (with P = every class, each batch takes each class, so the smallest decides).
                let smallest = 61 / k * k;
                let floor = if p == NUM_CLASSES {
                    NUM_CLASSES * smallest
                } else {
                    uneven.len() * 95 / 100 - p * k
                };
                assert!(shape.seen >= floor, "P {p} K {k}: {shape:?}");
            }
        }
    }

    #[test]
    fn the_same_seed_and_epoch_give_the_same_batches() {
        let set = labels(&[40, 35, 50, 42, 38, 44, 41, 39, 47, 36]);
        let a = pk_order(&set, 8, 4, 5, 2);
        assert_eq!(a, pk_order(&set, 8, 4, 5, 2));
        assert_ne!(a, pk_order(&set, 8, 4, 5, 3), "epochs must differ");
        assert_ne!(a, pk_order(&set, 8, 4, 6, 2), "seeds must differ");
        // Pinned: the orders are part of a seed's meaning (native and wasm32 alike).
        assert_eq!(
            &pk_order(&labels(&[4, 4, 4]), 2, 2, 0, 0),
            &[8, 11, 0, 9, 10, 7, 2, 5, 6, 3, 1, 4]
        );
    }

    #[test]
    fn the_epoch_ends_when_classes_run_out_or_every_example_was_seen() {
        // 10 classes of 8, K = 4: two chunks each; P = 5 makes 4 batches that use them all.
        let even = labels(&[8; 10]);
        let shape = check_epoch(&even, 5, 4, &pk_order(&even, 5, 4, 1, 0));
        assert_eq!(
            (shape.batches, shape.seen, shape.end),
            (4, 80, PkEnd::AllSeen)
        );
        assert!(
            shape.describe().ends_with("(every example seen once)"),
            "{}",
            shape.describe()
        );
        // One big class and three small ones, P = 2: the big class is in every batch, and the
        // epoch ends when the small ones run out (6 batches: 48 of 124 examples).
        let lopsided = labels(&[100, 8, 8, 8]);
        let order = pk_order(&lopsided, 2, 4, 1, 0);
        let shape = check_epoch(&lopsided, 2, 4, &order);
        assert_eq!(
            (shape.batches, shape.seen, shape.end),
            (6, 48, PkEnd::ClassesRanOut)
        );
        assert!(order.chunks(8).all(|b| b.iter().any(|&i| lopsided[i] == 0)));
        assert_eq!(
            shape.describe(),
            "P×K batches: 2 classes × 4 examples; an epoch is 6 batches over 48 of 124 \
             examples (it ends when fewer than 2 classes have 4 unused examples: 76 left for \
             the next epoch)"
        );
    }

    #[test]
    fn fewer_classes_than_p_are_refused_in_one_line() {
        // Three classes with 4 examples (the fourth has 3): no batch of 4 classes × 4.
        let set = labels(&[5, 4, 9, 3]);
        let message = PkEpoch::of(&set, 4, 4).unwrap_err();
        assert_eq!(
            message,
            "3 classes of the training set have 4 examples; a batch of 4 classes × 4 needs 4"
        );
        assert_eq!(
            PkEpoch::of(&labels(&[5, 3, 2]), 2, 4).unwrap_err(),
            "1 class of the training set has 4 examples; a batch of 2 classes × 4 needs 2"
        );
        assert!(pk_order(&set, 4, 4, 0, 0).is_empty());
        assert!(PkEpoch::of(&set, 3, 4).is_ok());
    }

    proptest! {
        #[test]
        fn every_epoch_keeps_its_promises(
            counts in proptest::collection::vec(0usize..40, 1..=NUM_CLASSES),
            p in 2usize..=NUM_CLASSES,
            k in 2usize..6,
            seed: u64,
            epoch in 0usize..100,
        ) {
            let set = labels(&counts);
            prop_assume!(PkEpoch::of(&set, p, k).is_ok());
            check_epoch(&set, p, k, &pk_order(&set, p, k, seed, epoch));
        }
    }
}
