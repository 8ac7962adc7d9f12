//! The worker's [`Host`] for [`crate::train::run`]: yields to the worker's event loop before
//! every step and between the slices of every evaluation (so Pause and Stop are seen within one
//! step or slice), waits while paused, forwards every event to the page with a PCA of each
//! fresh embedding, and keeps a host copy of the weights at each epoch end.

use std::cell::Cell;
use std::rc::Rc;

use crate::model::EMBEDDING_DIM;
use crate::projection::pca_2d;
use crate::protocol::{Id, Reply};
use crate::train::{Control, Event, Host, Trainer};

use super::io::{self, post};
use super::session::{Latest, SharedSession};

/// How often a paused run looks at its control again.
const PAUSE_POLL_MS: u32 = 20;

/// Drives run `id` inside the worker.
pub struct WorkerHost {
    session: SharedSession,
    id: Id,
    control: Rc<Cell<Control>>,
    paused: bool,
    /// `(epoch, global step)` of the last step taken, and the global step of the last embedding.
    last_step: (usize, usize),
    embedded_at: Option<usize>,
}

impl WorkerHost {
    pub fn new(session: SharedSession, id: Id, control: Rc<Cell<Control>>) -> Self {
        Self {
            session,
            id,
            control,
            paused: false,
            last_step: (0, 0),
            embedded_at: None,
        }
    }

    /// `(epoch, global step)` of the last step, when the last test embeddings are older.
    pub fn stale_embeddings(&self) -> Option<(usize, usize)> {
        let (epoch, step) = self.last_step;
        (step > 0 && self.embedded_at.is_none_or(|at| at < step)).then_some((epoch, step))
    }

    /// Yields, then waits while paused; `false` when the run must stop.
    async fn gate(&mut self) -> bool {
        io::yield_now().await;
        loop {
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
        self.gate().await
    }

    async fn pulse(&mut self) -> bool {
        self.gate().await
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
        let projection = match &event {
            Event::Embeddings {
                epoch,
                global_step,
                vectors,
                labels,
            } => {
                self.session.borrow_mut().latest = Some(Latest {
                    vectors: vectors.clone(),
                    labels: labels.clone(),
                });
                Some(match pca_2d(vectors, EMBEDDING_DIM) {
                    Ok(points) => Reply::Projection {
                        points,
                        kind: format!("PCA, epoch {epoch}, step {global_step}"),
                    },
                    Err(e) => Reply::Problem {
                        message: format!("PCA failed: {e}"),
                    },
                })
            }
            _ => None,
        };
        post(&Reply::Train { id: self.id, event });
        if let Some(reply) = projection {
            post(&reply);
        }
    }

    fn now_ms(&self) -> f64 {
        io::now_ms()
    }
}
