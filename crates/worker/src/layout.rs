//! A layout (t-SNE or UMAP) of the latest embeddings: its neighbour search and its optimisation
//! in slices of about 20 ms, showing the layout as it converges (about every 100 ms); the
//! latest request, a Cancel or a new run cancels it.

use wasm_bindgen_futures::spawn_local;

use tripletlab_core::projection::{Layout, LayoutPrep, LayoutRun, UmapParams};
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_protocol::{Id, LayoutRequest, Reply};

use super::io::{self, SLICE_MS, post};
use super::session::*;

/// Points whose neighbours are found between two looks at the clock (≈ 1 ms each for 10,000
/// points in wasm).
const PREP_POINTS: usize = 4;
/// How often the page gets the layout so far.
const SHOW_EVERY_MS: f64 = 100.0;

pub(super) fn layout(session: SharedSession, id: Id, request: LayoutRequest) {
    let latest = {
        let mut s = session.borrow_mut();
        s.latest_layout = id;
        s.latest.clone()
    };
    let Some(latest) = latest else {
        return post(&Reply::LayoutEnded {
            id,
            error: Some("there are no embeddings yet".into()),
        });
    };
    let layout = match request {
        LayoutRequest::Tsne => Layout::tsne_for(latest.images.len()),
        LayoutRequest::Umap {
            n_neighbors,
            min_dist,
        } => Layout::Umap(UmapParams {
            n_neighbors,
            min_dist,
            ..UmapParams::default()
        }),
    };
    let current = {
        let session = session.clone();
        move || session.borrow().latest_layout == id
    };
    spawn_local(async move {
        io::yield_now().await;
        match layout.prepare(&latest.vectors, EMBEDDING_DIM) {
            Ok(prep) => {
                if let Some(run) = search(prep, &layout, id, &current).await {
                    optimise(run, &layout, id, &current).await;
                }
            }
            Err(e) => post(&Reply::LayoutEnded {
                id,
                error: Some(e.to_string()),
            }),
        }
    });
}

/// The neighbour search (seconds for 10,000 points), in slices of about 20 ms, saying so about
/// every 100 ms; `None` when cancelled (then said).
async fn search(
    mut prep: LayoutPrep,
    layout: &Layout,
    id: Id,
    current: &impl Fn() -> bool,
) -> Option<LayoutRun> {
    let searching = layout.name().to_string() + ", finding each point's neighbours";
    let mut shown = io::now_ms();
    while !io::work_a_slice(|| prep.advance(PREP_POINTS)) {
        io::yield_now().await;
        if !current() {
            post(&Reply::LayoutEnded { id, error: None });
            return None;
        }
        if io::now_ms() - shown > SHOW_EVERY_MS {
            shown = io::now_ms();
            post(&Reply::LayoutProgress {
                id,
                done: 0,
                total: 1,
                kind: searching.clone(),
                points: Vec::new(),
            });
        }
    }
    Some(prep.finish())
}

/// The optimisation in slices, the layout so far shown about every 100 ms, then done (or
/// cancelled: said, without an error).
async fn optimise(mut run: LayoutRun, layout: &Layout, id: Id, current: &impl Fn() -> bool) {
    let total = run.total();
    while !run.is_done() {
        let t0 = io::now_ms();
        while !run.is_done() && io::now_ms() - t0 < SHOW_EVERY_MS {
            let t1 = io::now_ms();
            while !run.is_done() && io::now_ms() - t1 < SLICE_MS {
                run.step(1);
            }
            io::yield_now().await;
            if !current() {
                return post(&Reply::LayoutEnded { id, error: None });
            }
        }
        post(&Reply::LayoutProgress {
            id,
            done: run.done(),
            total,
            kind: layout.describe_progress(run.done(), total),
            points: run.embedding(),
        });
    }
    post(&Reply::LayoutDone {
        id,
        kind: layout.describe(total),
    });
}
