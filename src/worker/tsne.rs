//! t-SNE of the latest embeddings, prepared and iterated in slices of about 20 ms, showing its
//! layout as it converges; the latest request (or a new run) cancels it.

use wasm_bindgen_futures::spawn_local;

use crate::model::EMBEDDING_DIM;
use crate::projection::{TsneParams, TsnePrep};
use crate::protocol::{Id, Reply};

use super::io::{self, SLICE_MS, post};
use super::session::*;

/// Points whose t-SNE neighbours are found between two looks at the clock (≈ 1 ms each for
/// 10,000 points in wasm).
const TSNE_PREP_POINTS: usize = 4;

pub(super) fn tsne(session: SharedSession, id: Id) {
    let latest = {
        let mut s = session.borrow_mut();
        s.latest_tsne = id;
        s.latest.clone()
    };
    let Some(latest) = latest else {
        return post(&Reply::TsneEnded {
            id,
            error: Some("there are no embeddings yet".into()),
        });
    };
    spawn_local(async move {
        io::yield_now().await;
        let n = latest.images.len();
        let params = TsneParams {
            // t-SNE needs perplexity < n; keep the usual 30 when there are enough points.
            perplexity: 30f32.min((n.saturating_sub(1) / 3).max(1) as f32),
            ..TsneParams::default()
        };
        let mut prep = match TsnePrep::new(&latest.vectors, EMBEDDING_DIM, params) {
            Ok(p) => p,
            Err(e) => {
                return post(&Reply::TsneEnded {
                    id,
                    error: Some(e.to_string()),
                });
            }
        };
        // The neighbour search (seconds for 10,000 points), in slices of about 20 ms.
        loop {
            if io::work_a_slice(|| prep.advance(TSNE_PREP_POINTS)) {
                break;
            }
            io::yield_now().await;
            if session.borrow().latest_tsne != id {
                return post(&Reply::TsneEnded { id, error: None });
            }
        }
        let mut tsne = prep.finish();
        let total = tsne.total_iters();
        while !tsne.is_done() {
            if session.borrow().latest_tsne != id {
                return post(&Reply::TsneEnded { id, error: None });
            }
            // Bounded slices; a layout for the page about every 100 ms.
            let t0 = io::now_ms();
            while !tsne.is_done() && io::now_ms() - t0 < 100.0 {
                let t1 = io::now_ms();
                while !tsne.is_done() && io::now_ms() - t1 < SLICE_MS {
                    tsne.step(1);
                }
                io::yield_now().await;
                if session.borrow().latest_tsne != id {
                    return post(&Reply::TsneEnded { id, error: None });
                }
            }
            post(&Reply::TsneProgress {
                id,
                iter: tsne.iteration(),
                total,
                points: tsne.embedding(),
            });
        }
        post(&Reply::TsneDone {
            id,
            perplexity: params.perplexity,
            iterations: total,
        });
    });
}
