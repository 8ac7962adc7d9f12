//! The downloads: vecs.tsv, meta.tsv, the weights and the Projector bundle, from what the
//! session holds.

use wasm_bindgen_futures::spawn_local;

use tripletlab_core::embedding_projector::bundle;
use tripletlab_core::export::{meta_tsv_string, vecs_tsv_string};
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_protocol::{Export, Reply};

use super::io::post;
use super::session::*;

pub(super) fn export(session: SharedSession, what: Export) {
    let download = |name: &str, mime: &str, bytes: Vec<u8>| {
        post(&Reply::Download {
            name: name.into(),
            mime: mime.into(),
            bytes,
        })
    };
    let problem = |message: String| post(&Reply::Problem { message });
    match what {
        Export::Vecs | Export::Meta => {
            let Some(latest) = session.borrow().latest.clone() else {
                return problem("there are no embeddings to download yet".into());
            };
            if what == Export::Vecs {
                match vecs_tsv_string(&latest.vectors, EMBEDDING_DIM) {
                    Ok(text) => {
                        download("vecs.tsv", "text/tab-separated-values", text.into_bytes())
                    }
                    Err(e) => problem(format!("vecs.tsv: {e}")),
                }
            } else {
                download(
                    "meta.tsv",
                    "text/tab-separated-values",
                    meta_tsv_string(&latest.images.labels).into_bytes(),
                );
            }
        }
        Export::Projector => {
            let Some(latest) = session.borrow().latest.clone() else {
                return problem("there are no embeddings to download yet".into());
            };
            match bundle("tripletlab", &latest.vectors, EMBEDDING_DIM, &latest.images) {
                Ok((zip, _)) => download("projector.zip", "application/zip", zip),
                Err(e) => problem(format!("projector.zip: {e}")),
            }
        }
        Export::Weights => {
            // The last run's trainer while it is kept, else the last epoch end's copy.
            let trainer = session.borrow_mut().kept.take();
            let Some(trainer) = trainer else {
                return match session.borrow().checkpoint.clone() {
                    Some(bytes) => download("weights.safetensors", "application/octet-stream", bytes),
                    None => problem("there are no weights to download yet (they exist from the first epoch end)".into()),
                };
            };
            spawn_local(async move {
                let bytes = trainer.model().to_safetensors().await;
                {
                    let mut s = session.borrow_mut();
                    // Unless a new run started meanwhile.
                    if s.active.is_none() && s.kept.is_none() {
                        s.kept = Some(trainer);
                    }
                }
                match bytes {
                    Ok(b) => download("weights.safetensors", "application/octet-stream", b),
                    Err(e) => problem(format!("weights download failed: {e}")),
                }
            });
        }
    }
}
