//! A training run in the worker: its trainer, its driver on the worker's host, and after a Stop
//! the test embeddings of the stopped weights.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen_futures::spawn_local;

use tripletlab_core::run::{Control, Event, TrainConfig, TrainError};
use tripletlab_engine::train::{Host, Trainer, embed_sliced, run};
use tripletlab_protocol::{Id, Reply};

use super::baseline::baseline;
use super::host::WorkerHost;
use super::io::{self, post};
use super::query::answer_left_over;
use super::session::*;

/// Builds the trainer of a new run, or says why it cannot start.
pub(super) fn new_trainer(s: &Session, config: &TrainConfig) -> Result<Trainer, String> {
    let device = s
        .device
        .as_ref()
        .ok_or("the device is still starting")?
        .device
        .clone();
    let (split, _) = s.split.as_ref().ok_or("no dataset is loaded yet")?;
    let weights = s.weights.as_ref().map(|(n, b)| (n.as_str(), b.as_slice()));
    Trainer::starting_from(config.clone(), split, &device, weights)
}

pub(super) fn train(session: &SharedSession, id: Id, config: TrainConfig) {
    let (mut trainer, control, from_weights) = {
        let mut s = session.borrow_mut();
        if let Some((active, _)) = &s.active {
            return post(&Reply::TrainRefused {
                id,
                reason: format!("run {active} is still in progress: stop it first"),
            });
        }
        let trainer = match new_trainer(&s, &config) {
            Ok(t) => t,
            Err(reason) => return post(&Reply::TrainRefused { id, reason }),
        };
        let control = Rc::new(Cell::new(Control::Run));
        s.active = Some((id, control.clone()));
        s.kept = None;
        s.checkpoint = None;
        s.latest = None;
        // A new run cancels a running layout (page ids start at 1).
        s.latest_layout = 0;
        // Queries embed the training set again with this run's weights.
        s.query_refs = None;
        s.pca_basis = None;
        (trainer, control, s.weights.as_ref().map(|(n, _)| n.clone()))
    };
    post(&Reply::TrainStarted {
        id,
        epochs: config.epochs,
        from_weights,
    });
    let session = session.clone();
    spawn_local(async move {
        let test_images = Rc::new(trainer.test_set().clone());
        let mut host = WorkerHost::new(session.clone(), id, control, test_images.clone());
        let result = run(&mut trainer, &mut host).await;
        let lost_device = matches!(result, Err(TrainError::Device(_)));
        let stopped = matches!(&result, Ok(summary) if summary.stopped);
        session.borrow_mut().active = None;
        if stopped && let Some((epoch, step)) = host.stale_embeddings() {
            embed_stopped(&session, &trainer, &mut host, epoch, step).await;
        }
        host.finish_pca().await;
        let baseline_train = matches!(&result, Ok(summary) if summary.metrics.knn1_acc.is_some())
            .then(|| Rc::new(trainer.train_set().clone()));
        {
            let mut s = session.borrow_mut();
            if lost_device {
                // The next Train starts a new device; the checkpoint keeps the weights.
                s.device = None;
            } else if s.active.is_none() {
                s.kept = Some(trainer);
            }
        }
        let weights = session.borrow().kept.is_some() || session.borrow().checkpoint.is_some();
        post(&Reply::RunEnded { id, weights });
        answer_left_over(&session);
        // Beside the final kNN-1, what the raw pixels score with the same sets.
        if let Some(train) = baseline_train {
            baseline(session.clone(), id, train, test_images);
        }
        if lost_device {
            start_device(session);
        }
    });
}

/// After a Stop (which ends a run at once, even mid-evaluation), the test embeddings of the
/// weights at the stop, so the downloads hold what was learnt. In slices; given up when a new
/// run starts meanwhile.
pub(super) async fn embed_stopped(
    session: &SharedSession,
    trainer: &Trainer,
    host: &mut WorkerHost,
    epoch: usize,
    step: usize,
) {
    let set = trainer.test_set();
    let no_new_run = async || {
        io::yield_now().await;
        session.borrow().active.is_none()
    };
    if let Ok(Some(vectors)) = embed_sliced(trainer, set, no_new_run).await {
        host.event(Event::Embeddings {
            epoch,
            global_step: step,
            vectors: Arc::new(vectors),
            labels: Arc::new(set.labels.clone()),
        });
    }
}
