//! The worker's [`Host`] for [`tripletlab_engine::train::run`]: yields to the worker's event loop before
//! every step and between the slices of every evaluation (so Pause and Stop are seen within one
//! step or slice), waits while paused, forwards every event to the page with a PCA of each
//! fresh embedding, and keeps a host copy of the weights at each epoch end.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use tripletlab_core::data::Dataset;
use tripletlab_core::projection::Pca2d;
use tripletlab_core::run::{Control, Event};
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_engine::train::{Host, Trainer};
use tripletlab_protocol::{Id, Reply};

use super::io::{self, post};
use super::query::{answer_pending, keep_basis};
use super::session::{Latest, SharedSession};

/// How often a paused run looks at its control again.
const PAUSE_POLL_MS: u32 = 20;
/// Rows folded into a PCA between two looks at the clock (well under a millisecond's work).
const PCA_ROWS: usize = 64;

/// The PCA of the latest embeddings, computed in slices between steps.
struct PendingPca {
    job: Pca2d,
    vectors: Arc<Vec<f32>>,
    kind: String,
}

/// Drives run `id` inside the worker.
pub struct WorkerHost {
    session: SharedSession,
    id: Id,
    control: Rc<Cell<Control>>,
    paused: bool,
    /// `(epoch, global step)` of the last step taken, and the global step of the last embedding.
    last_step: (usize, usize),
    embedded_at: Option<usize>,
    /// The projection of the latest embeddings, until it is done (a newer one replaces it).
    pca: Option<PendingPca>,
    /// The run's test images (what every embedding of the run embeds).
    test_images: Rc<Dataset>,
}

impl WorkerHost {
    pub fn new(
        session: SharedSession,
        id: Id,
        control: Rc<Cell<Control>>,
        test_images: Rc<Dataset>,
    ) -> Self {
        Self {
            session,
            id,
            control,
            paused: false,
            last_step: (0, 0),
            embedded_at: None,
            pca: None,
            test_images,
        }
    }

    /// Works on the pending PCA for up to [`io::SLICE_MS`]; posts it when it is done.
    fn advance_pca(&mut self) {
        let Some(pending) = &mut self.pca else { return };
        if !io::work_a_slice(|| pending.job.advance(&pending.vectors, PCA_ROWS)) {
            return;
        }
        if let Some(p) = self.pca.take() {
            let (points, basis) = p.job.finish_with_basis(&p.vectors);
            keep_basis(&self.session, basis);
            post(&Reply::Projection {
                points,
                kind: p.kind,
            });
        }
    }

    /// Finishes the pending PCA in slices once the run has ended (it no longer pulses); given
    /// up when a new run starts meanwhile (its own projections follow).
    pub async fn finish_pca(&mut self) {
        while self.pca.is_some() && self.session.borrow().active.is_none() {
            self.advance_pca();
            io::yield_now().await;
        }
    }

    /// `(epoch, global step)` of the last step, when the last test embeddings are older.
    pub fn stale_embeddings(&self) -> Option<(usize, usize)> {
        let (epoch, step) = self.last_step;
        (step > 0 && self.embedded_at.is_none_or(|at| at < step)).then_some((epoch, step))
    }

    /// Yields, then waits while paused, answering the page's questions with `trainer` when
    /// there is one; `false` when the run must stop.
    async fn gate(&mut self, trainer: Option<&Trainer>) -> bool {
        self.advance_pca();
        io::yield_now().await;
        loop {
            if let Some(trainer) = trainer {
                answer_pending(&self.session, trainer).await;
            }
            match self.control.get() {
                Control::Stop => return false,
                Control::Run => {
                    if self.paused {
                        self.paused = false;
                        post(&Reply::Resumed);
                    }
                    return true;
                }
                Control::Pause => {
                    if !self.paused {
                        self.paused = true;
                        post(&Reply::Paused);
                    }
                    io::sleep(PAUSE_POLL_MS).await;
                }
            }
        }
    }
}

impl Host for WorkerHost {
    async fn proceed(&mut self) -> bool {
        self.gate(None).await
    }

    async fn proceed_with(&mut self, trainer: &Trainer) -> bool {
        self.gate(Some(trainer)).await
    }

    async fn pulse(&mut self) -> bool {
        self.gate(None).await
    }

    async fn pulse_with(&mut self, trainer: &Trainer) -> bool {
        self.gate(Some(trainer)).await
    }

    async fn epoch_saved(&mut self, trainer: &Trainer) {
        // Survives a lost device: the weights download then still has the last epoch's.
        if let Ok(bytes) = trainer.model().to_safetensors().await {
            self.session.borrow_mut().checkpoint = Some(bytes);
        }
    }

    fn event(&mut self, event: Event) {
        match &event {
            Event::Step {
                epoch, global_step, ..
            } => self.last_step = (*epoch, *global_step),
            Event::Embeddings { global_step, .. } => self.embedded_at = Some(*global_step),
            _ => {}
        }
        if let Event::Embeddings {
            epoch,
            global_step,
            vectors,
            ..
        } = &event
        {
            self.session.borrow_mut().latest = Some(Latest {
                vectors: vectors.clone(),
                images: self.test_images.clone(),
            });
            self.pca = match Pca2d::new(vectors, EMBEDDING_DIM) {
                Ok(job) => Some(PendingPca {
                    job,
                    vectors: vectors.clone(),
                    kind: format!("PCA, epoch {epoch}, step {global_step}"),
                }),
                Err(e) => {
                    post(&Reply::Problem {
                        message: format!("PCA failed: {e}"),
                    });
                    None
                }
            };
        }
        post(&Reply::Train { id: self.id, event });
    }

    fn now_ms(&self) -> f64 {
        io::now_ms()
    }
}
