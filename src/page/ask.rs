//! The "Ask the embedding" panel's logic, without a browser: reading the test image number
//! typed ([`picked_test`]), the answer in words ([`summary`]), and where a pointer is on a
//! canvas drawn at another size ([`canvas_point`]). The component in `app::ask` uses these;
//! tested natively.

use super::state::QueryView;

/// The test image number typed, when it names one of the `n_test` images; else what to type.
pub fn picked_test(raw: &str, n_test: usize) -> Result<u32, String> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| (n as usize) < n_test)
        .ok_or_else(|| format!("a test image number from 0 to {}", n_test.saturating_sub(1)))
}

/// The answer in words: the vote of the nearest training examples, the verdict, the truth
/// when known and which weights answered; before an answer, what to do.
pub fn summary(answer: Option<&QueryView>, can_ask: bool, name: impl Fn(u8) -> String) -> String {
    let Some(a) = answer else {
        return if can_ask {
            "Draw a digit (it is asked when the stroke ends) or pick a test image.".into()
        } else {
            "Train first: questions are answered with a run's weights, from its first test \
             embeddings on (during the run too)."
                .into()
        };
    };
    let votes: Vec<String> = a
        .answer
        .votes
        .iter()
        .map(|(l, c)| format!("{} ×{c}", name(*l)))
        .collect();
    let verdict = a.answer.predicted().map_or("–".into(), &name);
    let truth = a
        .label
        .map_or(String::new(), |l| format!(" (it is a {})", name(l)));
    let (epoch, step) = a.answer.weights_at;
    format!(
        "kNN vote of the {} nearest training examples: {} → {verdict}{truth}. Embedded with the \
         weights at epoch {epoch}, step {step}.",
        a.answer.neighbours.len(),
        votes.join(", ")
    )
}

/// The canvas pixel under a pointer at client position `client`, for a canvas of
/// `side × side` pixels shown in the client rectangle `(left, top, width, height)`; `None`
/// while the canvas has no size on screen.
pub fn canvas_point(
    client: (f64, f64),
    rect: (f64, f64, f64, f64),
    side: f64,
) -> Option<(f64, f64)> {
    let (left, top, width, height) = rect;
    (width > 0.0 && height > 0.0).then(|| {
        (
            (client.0 - left) * side / width,
            (client.1 - top) * side / height,
        )
    })
}

#[cfg(test)]
mod tests {
    use tripletlab_core::query::{Answer, Match};

    use super::*;

    #[test]
    fn a_test_image_number_must_name_one() {
        assert_eq!(picked_test(" 7 ", 10), Ok(7));
        assert_eq!(picked_test("0", 10), Ok(0));
        assert_eq!(
            picked_test("10", 10),
            Err("a test image number from 0 to 9".into())
        );
        assert!(picked_test("-1", 10).is_err());
        assert!(picked_test("x", 10).is_err());
        assert!(picked_test("0", 0).is_err(), "no images yet");
    }

    #[test]
    fn the_summary_says_the_vote_the_verdict_the_truth_and_the_weights() {
        let m = |label| Match {
            index: 0,
            label,
            cosine: 0.9,
        };
        let view = QueryView {
            image: vec![],
            label: Some(3),
            neighbour_images: vec![],
            answer: Answer {
                neighbours: vec![m(8), m(3), m(8)],
                votes: vec![(8, 2), (3, 1)],
                test_neighbours: vec![],
                pca: None,
                weights_at: (2, 17),
            },
        };
        let name = |l: u8| format!("digit {l}");
        assert_eq!(
            summary(Some(&view), true, name),
            "kNN vote of the 3 nearest training examples: digit 8 ×2, digit 3 ×1 → digit 8 (it is \
             a digit 3). Embedded with the weights at epoch 2, step 17."
        );
        assert!(summary(None, true, name).starts_with("Draw a digit"));
        assert!(summary(None, false, name).starts_with("Train first"));
    }

    #[test]
    fn a_pointer_maps_to_the_canvas_pixels_whatever_its_size_on_screen() {
        // A 280-pixel pad shown at 140 × 140 from (10, 20).
        assert_eq!(
            canvas_point((10.0, 20.0), (10.0, 20.0, 140.0, 140.0), 280.0),
            Some((0.0, 0.0))
        );
        assert_eq!(
            canvas_point((80.0, 55.0), (10.0, 20.0, 140.0, 140.0), 280.0),
            Some((140.0, 70.0))
        );
        assert_eq!(canvas_point((1.0, 1.0), (0.0, 0.0, 0.0, 10.0), 280.0), None);
    }
}
