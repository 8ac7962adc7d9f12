//! The raw-pixel baseline of a finished run's sets (see [`tripletlab_core::baseline`]), computed once per
//! pair of sets in slices after the run's own kNN, so the page can say what training added.

use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;

use tripletlab_core::baseline::{PAGE_BUDGET_VALUES, raw_pixels};
use tripletlab_core::data::Dataset;
use tripletlab_core::metrics::Metrics;
use tripletlab_protocol::{Id, Reply};

use super::io::{self, post};
use super::session::SharedSession;

/// kNN queries answered between two looks at the clock (each compares one 784-pixel image with
/// every training image: about 1 ms for 8,000 of them).
const QUERIES: usize = 8;

/// Which sets a baseline is of: their sizes and a hash of their labels and pixels' sums.
pub(super) fn key(train: &Dataset, test: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
    for set in [train, test] {
        eat(set.len() as u64);
        eat(set.image_len() as u64);
        for (i, &l) in set.labels.iter().enumerate() {
            eat(u64::from(l));
            let img = set.image(i);
            eat(img.iter().map(|&p| u64::from(p)).sum());
        }
    }
    h
}

/// Posts run `id`'s baseline: from the cache when these sets had one, else computed in slices
/// (a later run's request supersedes it).
pub(super) fn baseline(session: SharedSession, id: Id, train: Rc<Dataset>, test: Rc<Dataset>) {
    let key = key(&train, &test);
    if let Some((k, scores)) = &session.borrow().baseline
        && *k == key
    {
        return post(&Reply::RawPixels {
            id,
            scores: scores.clone(),
        });
    }
    session.borrow_mut().latest_baseline = id;
    spawn_local(async move {
        io::yield_now().await;
        let scores = compute(&session, id, &train, &test).await;
        let Some(scores) = scores else { return };
        session.borrow_mut().baseline = Some((key, scores.clone()));
        post(&Reply::RawPixels { id, scores });
    });
}

/// `None` when superseded.
async fn compute(
    session: &SharedSession,
    id: Id,
    train: &Dataset,
    test: &Dataset,
) -> Option<Result<Metrics, String>> {
    let mut evaluation = match raw_pixels(train, test, PAGE_BUDGET_VALUES) {
        Ok(e) => e,
        Err(e) => return Some(Err(e.to_string())),
    };
    while !io::work_a_slice(|| evaluation.advance(QUERIES)) {
        io::yield_now().await;
        if session.borrow().latest_baseline != id {
            return None;
        }
    }
    Some(Ok(evaluation.finish()))
}
