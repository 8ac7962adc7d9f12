//! The words of the "triplets" panel: what a [`TripletSample`] is, and what each shown
//! triplet's negative is and adds to the loss. Pure: the component in `app::triplets` draws
//! the images and lays these lines out.

use tripletlab_core::run::{Mining, ShownTriplet, TripletKind, TripletSample, kind_names};

/// The panel's caption: which batch, how it was embedded and mined, and its terms' kinds.
pub fn caption(s: &TripletSample) -> String {
    let (farther, not_farther) = kind_names(s.mining);
    let among = if s.mined_among < s.batch {
        format!(
            " (mined among its first {} of {} examples)",
            s.mined_among, s.batch
        )
    } else {
        String::new()
    };
    let no_negative = s.terms - s.semi_hard - s.fallback;
    let without = if no_negative > 0 {
        format!(", {no_negative} without a negative")
    } else {
        String::new()
    };
    format!(
        "The batch of epoch {}, step {}{among}, embedded again with the weights after that step \
         (dropout off) and mined as the loss mines: of its {} terms, {} {farther}, {} \
         {not_farther}{without}; {} active (adding to the loss).",
        s.epoch, s.step, s.terms, s.semi_hard, s.fallback, s.active
    )
}

/// What a shown triplet's negative is and what its term adds, in one line.
pub fn verdict(t: &ShownTriplet, mining: Mining) -> String {
    let adds = |loss: f32| {
        if loss > 0.0 {
            format!("adds {loss:.3}")
        } else {
            "adds 0".to_string()
        }
    };
    let (farther, not_farther) = kind_names(mining);
    match (t.kind, t.loss > 0.0, mining) {
        (TripletKind::SemiHard, true, _) => format!(
            "{farther}: farther than the positive, but inside the margin: {}",
            adds(t.loss)
        ),
        (TripletKind::SemiHard, false, _) => {
            "easy: farther than the positive by the margin or more: adds 0".to_string()
        }
        (TripletKind::Fallback, _, Mining::SemiHard) => format!(
            "{not_farther}: no negative is farther than the positive, so the farthest one: {}",
            adds(t.loss)
        ),
        (TripletKind::Fallback, _, Mining::Hard) => format!(
            "{not_farther}: the hardest negative is no farther than the hardest positive: {}",
            adds(t.loss)
        ),
        (TripletKind::NoNegative, _, _) => format!(
            "no negative in the batch: the loss uses {:.3} in its place: {}",
            t.d_an,
            adds(t.loss)
        ),
    }
}

/// The two distances, compared: "d(a,p) 0.412 < d(a,n) 0.455".
pub fn distances(t: &ShownTriplet) -> String {
    if t.negative.is_none() {
        return format!("d(a,p) {:.3}", t.d_ap);
    }
    let order = if t.d_an > t.d_ap {
        "<"
    } else if t.d_an < t.d_ap {
        ">"
    } else {
        "="
    };
    format!("d(a,p) {:.3} {order} d(a,n) {:.3}", t.d_ap, t.d_an)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tripletlab_core::run::TripletExample;

    fn example(label: u8) -> TripletExample {
        TripletExample {
            index: 0,
            label,
            image: vec![0; 4],
        }
    }

    fn shown(kind: TripletKind, d_ap: f32, d_an: f32, loss: f32) -> ShownTriplet {
        ShownTriplet {
            anchor: example(1),
            positive: example(1),
            negative: (kind != TripletKind::NoNegative).then(|| example(2)),
            kind,
            d_ap,
            d_an,
            loss,
        }
    }

    #[test]
    fn each_kind_says_what_its_negative_is_and_adds() {
        use TripletKind::*;
        let semi = shown(SemiHard, 0.4, 0.5, 0.1);
        assert_eq!(
            verdict(&semi, Mining::SemiHard),
            "semi-hard: farther than the positive, but inside the margin: adds 0.100"
        );
        assert_eq!(distances(&semi), "d(a,p) 0.400 < d(a,n) 0.500");
        assert!(verdict(&semi, Mining::Hard).starts_with("in order: farther"));
        let easy = shown(SemiHard, 0.1, 0.9, 0.0);
        assert!(verdict(&easy, Mining::SemiHard).starts_with("easy:"));
        let fallback = shown(Fallback, 0.6, 0.5, 0.3);
        assert_eq!(
            verdict(&fallback, Mining::SemiHard),
            "fallback: no negative is farther than the positive, so the farthest one: adds 0.300"
        );
        assert!(verdict(&fallback, Mining::Hard).starts_with("violated: the hardest negative"));
        assert_eq!(distances(&fallback), "d(a,p) 0.600 > d(a,n) 0.500");
        let alone = shown(NoNegative, 0.6, 0.0, 0.8);
        assert_eq!(distances(&alone), "d(a,p) 0.600");
        assert!(verdict(&alone, Mining::SemiHard).contains("uses 0.000 in its place: adds 0.800"));
    }

    #[test]
    fn the_caption_counts_the_terms_and_says_when_only_part_was_mined() {
        let mut s = TripletSample {
            epoch: 2,
            step: 300,
            mining: Mining::SemiHard,
            batch: 32,
            mined_among: 32,
            terms: 96,
            semi_hard: 60,
            fallback: 30,
            active: 41,
            shown: Vec::new(),
        };
        assert_eq!(
            caption(&s),
            "The batch of epoch 2, step 300, embedded again with the weights after that step \
             (dropout off) and mined as the loss mines: of its 96 terms, 60 semi-hard, 30 \
             fallback, 6 without a negative; 41 active (adding to the loss)."
        );
        s.batch = 4096;
        s.mined_among = 256;
        s.semi_hard = 66;
        assert!(caption(&s).contains("(mined among its first 256 of 4096 examples)"));
        assert!(!caption(&s).contains("without"));
    }
}
