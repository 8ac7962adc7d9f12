//! [`MiningStats`]: what a step's triplet mining found, as sums that add up over steps and
//! epochs, with the fractions and means a log shows. Plain data with serde (the page's worker
//! sends it inside [`super::Event`]); `tripletlab_engine::loss` puts the values beside the loss on its
//! device (the sums over the embeddings computed there, the counts that depend on the labels
//! alone uploaded), and this file only gives them names: it knows no device and no tensor.
//!
//! The figures follow the loss's own selection exactly (TFA 0.23, see `tripletlab_engine::loss`). A *term*
//! is one summand of the loss that has a positive:
//!
//! * semi-hard mining: every ordered positive pair `(a, p)` (`label[a] == label[p]`, `a != p`);
//!   its negative is the closest negative of `a` *strictly* farther than `D[a,p]` when there is
//!   one ([`MiningStats::semi_hard`]), else the farthest negative of `a`
//!   ([`MiningStats::fallback`]); when `a` has no negative at all the loss uses the row minimum
//!   of the distance matrix instead ([`MiningStats::no_negative`]).
//! * batch-hard mining: every anchor that has a positive, with its hardest (farthest) positive
//!   and its hardest (closest) negative; [`MiningStats::semi_hard`] counts the anchors whose
//!   hardest negative is strictly farther than their hardest positive (already in order),
//!   [`MiningStats::fallback`] those whose hardest negative is not (a violated triplet), and
//!   [`MiningStats::no_negative`] those without a negative. Anchors without a positive (the loss
//!   still averages over them, with `D[a,p]` = the row minimum) are not terms.
//!
//! So `terms == semi_hard + fallback + no_negative`. A term is *active* when its loss term is
//! `> 0` (`margin + d_ap - d_an > 0`, or `softplus(d_ap - d_an) > 0` with the soft margin).
//! `sum_d_ap` adds `D[a,p]` over the terms (batch-hard: the hardest positive); `sum_d_an` adds
//! the chosen negative's distance over the terms that have a negative (the no-negative stand-in
//! is no negative distance).

use serde::{Deserialize, Serialize};

use super::Mining;

/// What `mining` calls its two kinds of term with a negative, for a person: the negative
/// strictly farther than the positive, and not ("semi-hard" and "fallback"; batch-hard: "in
/// order" and "violated").
pub fn kind_names(mining: Mining) -> (&'static str, &'static str) {
    match mining {
        Mining::SemiHard => ("semi-hard", "fallback"),
        Mining::Hard => ("in order", "violated"),
    }
}

/// A step's (or many steps') mining figures: see the module docs for their exact meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MiningStats {
    /// Loss terms with a positive: ordered positive pairs (semi-hard), anchors with a positive
    /// (batch-hard).
    pub terms: u64,
    /// Terms whose chosen negative is strictly farther than the positive.
    pub semi_hard: u64,
    /// Terms whose anchor has negatives but whose chosen one is not strictly farther (semi-hard:
    /// the farthest negative was taken).
    pub fallback: u64,
    /// Terms whose anchor has no negative in the batch.
    pub no_negative: u64,
    /// Terms whose loss term is `> 0`.
    pub active: u64,
    /// Sum of `D[a,p]` over the terms.
    pub sum_d_ap: f64,
    /// Sum of the chosen negative's `D[a,n]` over the terms that have a negative.
    pub sum_d_an: f64,
}

/// How many values a step's statistics take on the device, in the order of
/// [`MiningStats::from_device`]: terms, no-negative, semi-hard, active, sum of `D[a,p]`, sum
/// of `D[a,n]` (the fallback count is what remains of the terms).
pub const DEVICE_STATS: usize = 6;

impl MiningStats {
    /// From the [`DEVICE_STATS`] values the loss computed on the device (counts are sums of
    /// 0/1 values in f32, exact up to 2²⁴ terms).
    pub fn from_device(values: &[f32]) -> Self {
        assert_eq!(values.len(), DEVICE_STATS, "one step's mining statistics");
        let count = |v: f32| v.max(0.0).round() as u64;
        let terms = count(values[0]);
        let no_negative = count(values[1]);
        let semi_hard = count(values[2]);
        Self {
            terms,
            semi_hard,
            fallback: terms.saturating_sub(semi_hard + no_negative),
            no_negative,
            active: count(values[3]),
            sum_d_ap: f64::from(values[4]),
            sum_d_an: f64::from(values[5]),
        }
    }

    /// Adds `other`'s sums (another step's, or another epoch's).
    pub fn add(&mut self, other: &Self) {
        self.terms += other.terms;
        self.semi_hard += other.semi_hard;
        self.fallback += other.fallback;
        self.no_negative += other.no_negative;
        self.active += other.active;
        self.sum_d_ap += other.sum_d_ap;
        self.sum_d_an += other.sum_d_an;
    }

    fn fraction(&self, count: u64) -> f64 {
        count as f64 / self.terms as f64
    }

    /// Share of the terms with a strictly farther negative (NaN without terms).
    pub fn semi_hard_fraction(&self) -> f64 {
        self.fraction(self.semi_hard)
    }

    /// Share of the terms that fell back (NaN without terms).
    pub fn fallback_fraction(&self) -> f64 {
        self.fraction(self.fallback)
    }

    /// Share of the terms without a negative (NaN without terms).
    pub fn no_negative_fraction(&self) -> f64 {
        self.fraction(self.no_negative)
    }

    /// Share of the terms still active, loss term `> 0` (NaN without terms).
    pub fn active_fraction(&self) -> f64 {
        self.fraction(self.active)
    }

    /// Mean `D[a,p]` over the terms (NaN without terms).
    pub fn mean_d_ap(&self) -> f64 {
        self.sum_d_ap / self.terms as f64
    }

    /// Mean chosen `D[a,n]` over the terms that have a negative (NaN without any).
    pub fn mean_d_an(&self) -> f64 {
        self.sum_d_an / (self.terms - self.no_negative.min(self.terms)) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values_become_counts_fractions_and_means() {
        // 6 terms: 3 semi-hard, 1 without a negative, so 2 fell back; 4 active.
        let mut s = MiningStats::from_device(&[6.0, 1.0, 3.0, 4.0, 3.0, 10.0]);
        assert_eq!(
            (s.terms, s.semi_hard, s.fallback, s.no_negative, s.active),
            (6, 3, 2, 1, 4)
        );
        assert_eq!(s.semi_hard_fraction(), 0.5);
        assert_eq!(s.fallback_fraction(), 2.0 / 6.0);
        assert_eq!(s.no_negative_fraction(), 1.0 / 6.0);
        assert_eq!(s.active_fraction(), 4.0 / 6.0);
        assert_eq!(s.mean_d_ap(), 0.5);
        assert_eq!(s.mean_d_an(), 2.0, "over the 5 terms with a negative");
        s.add(&MiningStats::from_device(&[2.0, 0.0, 2.0, 0.0, 1.0, 6.0]));
        assert_eq!((s.terms, s.semi_hard, s.fallback, s.active), (8, 5, 2, 4));
        assert_eq!(s.mean_d_ap(), 0.5);
        assert_eq!(s.mean_d_an(), 16.0 / 7.0);
        assert!(MiningStats::default().semi_hard_fraction().is_nan());
        assert!(MiningStats::default().mean_d_an().is_nan());
    }
}
