//! The page's questions about the embedding: one image (drawn, or a test image) embedded with
//! the current weights, its nearest training examples (the training set embedded with the same
//! weights, kept until they change), its nearest test embeddings and its place on the PCA
//! layout. During a run the run's host answers between two steps (paused or not), with the live
//! trainer; after it, a task borrows the kept trainer. Only the latest question is answered.

use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen_futures::spawn_local;

use tripletlab_core::data::Dataset;
use tripletlab_core::query::{self, digitize};
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_engine::train::{Trainer, embed_sliced};
use tripletlab_protocol::{Id, QueryImage, Reply};

use super::io::{self, post};
use super::session::SharedSession;

/// A question from the page: kept until a trainer can answer it.
pub(super) fn ask(session: &SharedSession, id: Id, image: QueryImage) {
    let run_active = {
        let mut s = session.borrow_mut();
        s.latest_query = id;
        s.pending_query = Some((id, image));
        s.active.is_some()
    };
    if run_active {
        // The run's host answers before its next step.
        return;
    }
    let session = session.clone();
    spawn_local(async move {
        let Some(trainer) = session.borrow_mut().kept.take() else {
            let pending = session.borrow_mut().pending_query.take();
            if let Some((id, _)) = pending {
                post(&Reply::QueryFailed {
                    id,
                    message: "there are no trained weights yet: train first (a query is \
                              embedded with a run's weights)"
                        .into(),
                });
            }
            return;
        };
        answer_pending(&session, &trainer).await;
        let mut s = session.borrow_mut();
        // Back where it was, unless a new run has begun meanwhile.
        if s.active.is_none() && s.kept.is_none() {
            s.kept = Some(trainer);
        }
    });
}

/// After a run: a question that came while it was ending (its host asks no more) is answered
/// with the kept trainer (or told why there is none).
pub(super) fn answer_left_over(session: &SharedSession) {
    let pending = session.borrow().pending_query.clone();
    if let Some((id, image)) = pending {
        ask(session, id, image);
    }
}

/// Answers the pending question, if any, with `trainer`'s weights.
pub(super) async fn answer_pending(session: &SharedSession, trainer: &Trainer) {
    let Some((id, image)) = session.borrow_mut().pending_query.take() else {
        return;
    };
    match answer(session, trainer, id, image).await {
        Ok(Some(reply)) => post(&reply),
        // Superseded by a newer question (answered next).
        Ok(None) => {}
        Err(message) => post(&Reply::QueryFailed { id, message }),
    }
}

/// The image a question asks about, and its label when it is a test image; refused when it
/// is not the size the net takes or names no test image.
fn pixels_of(image: QueryImage, test_set: &Dataset) -> Result<(Vec<u8>, Option<u8>), String> {
    let side = digitize::SIDE;
    if (test_set.rows, test_set.cols) != (side, side) {
        return Err(format!(
            "queries need {side} × {side} images; this dataset's are {} × {}",
            test_set.rows, test_set.cols
        ));
    }
    match image {
        QueryImage::Drawn(pixels) if pixels.len() == side * side => Ok((pixels, None)),
        QueryImage::Drawn(pixels) => Err(format!(
            "a drawing must be {} pixels, got {}",
            side * side,
            pixels.len()
        )),
        QueryImage::Test(n) => {
            let n = n as usize;
            if n >= test_set.len() {
                return Err(format!(
                    "there is no test image #{n} (the run has {})",
                    test_set.len()
                ));
            }
            Ok((test_set.image(n).to_vec(), Some(test_set.labels[n])))
        }
    }
}

/// The training set's embeddings under `trainer`'s current weights: embedded once per weights
/// (kept in the session), in slices; `None` when a newer question came meanwhile.
async fn train_refs(
    session: &SharedSession,
    trainer: &Trainer,
    id: Id,
) -> Result<Option<Arc<Vec<f32>>>, String> {
    let at = trainer.position();
    let cached = session
        .borrow()
        .query_refs
        .as_ref()
        .filter(|(key, _)| *key == at)
        .map(|(_, v)| v.clone());
    if let Some(v) = cached {
        return Ok(Some(v));
    }
    let still_latest = async || {
        io::yield_now().await;
        session.borrow().latest_query == id
    };
    let Some(v) = embed_sliced(trainer, trainer.train_set(), still_latest)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let v = Arc::new(v);
    session.borrow_mut().query_refs = Some((at, v.clone()));
    Ok(Some(v))
}

async fn answer(
    session: &SharedSession,
    trainer: &Trainer,
    id: Id,
    image: QueryImage,
) -> Result<Option<Reply>, String> {
    let (pixels, label) = pixels_of(image, trainer.test_set())?;
    let (epoch, cursor) = trainer.position();
    let Some(refs) = train_refs(session, trainer, id).await? else {
        return Ok(None);
    };
    let side = digitize::SIDE;
    let one = Dataset {
        images: pixels.clone(),
        labels: vec![0],
        rows: side,
        cols: side,
    };
    let vector = trainer
        .embed_rows(&one, 0..1)
        .await
        .map_err(|e| e.to_string())?;
    let (latest, basis) = {
        let s = session.borrow();
        (s.latest.clone(), s.pca_basis.clone())
    };
    let test = latest
        .as_ref()
        .map(|l| (l.vectors.as_slice(), l.images.labels.as_slice()));
    let answer = query::answer(
        &vector,
        (&refs, &trainer.train_set().labels),
        test,
        basis.as_deref(),
        EMBEDDING_DIM,
        (epoch + 1, cursor),
    );
    let train_set = trainer.train_set();
    let neighbour_images = answer
        .neighbours
        .iter()
        .flat_map(|m| train_set.image(m.index as usize).iter().copied())
        .collect();
    Ok(Some(Reply::QueryAnswer {
        id,
        image: pixels,
        label,
        neighbour_images,
        answer,
    }))
}

/// The basis of the PCA last shown, for placing queries on it.
pub(super) fn keep_basis(session: &SharedSession, basis: tripletlab_core::projection::PcaBasis) {
    session.borrow_mut().pca_basis = Some(Rc::new(basis));
}
