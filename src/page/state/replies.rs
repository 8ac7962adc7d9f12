//! What each [`Reply`] of the worker does to the [`State`]; replies to a superseded request are
//! dropped here.

use std::rc::Rc;
use std::sync::Arc;

use super::*;
use crate::protocol::Reply;

impl State {
    pub(super) fn apply_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Listening | Reply::Download { .. } => {}
            Reply::DeviceReady {
                webgpu,
                adapter,
                fallback,
                batch_limit,
            } => self.device_ready(webgpu, adapter, fallback, batch_limit),
            loaded @ Reply::DatasetLoaded { .. } => self.dataset_loaded(loaded),
            other @ (Reply::DatasetLoading { .. }
            | Reply::DatasetFailed { .. }
            | Reply::FilesRejected { .. }) => self.dataset_reply(other),
            Reply::WeightsLoaded { name } => {
                self.notify(Notice::info(format!(
                    "The next run starts from the weights in {name}."
                )));
                self.weights_label = Some(name);
            }
            Reply::WeightsRejected { message } => self.notify(Notice::error(message)),
            Reply::TrainStarted {
                id,
                epochs,
                from_weights,
            } => self.run_started(id, epochs, from_weights),
            Reply::TrainRefused { id, reason } => {
                self.requested_runs.retain(|&r| r != id);
                // Nothing started and nothing else asked for: back to where the page was.
                if self.run_id.is_none()
                    && self.requested_runs.is_empty()
                    && let Some(phase) = self.phase_before_request.take()
                {
                    self.phase = phase;
                }
                self.notify(Notice::error(format!("Train was refused: {reason}.")));
            }
            Reply::Paused => {
                if self.phase == Phase::Training {
                    self.phase = Phase::Paused;
                }
            }
            Reply::Resumed => {
                if self.phase == Phase::Paused {
                    self.phase = Phase::Training;
                }
            }
            Reply::Stopping => {
                if matches!(self.phase, Phase::Training | Phase::Paused) {
                    self.progress.stop = StopState::Seen;
                }
            }
            Reply::Train { id, event } => {
                if self.run_id == Some(id) {
                    self.apply_event(event);
                }
            }
            Reply::Projection { points, kind } => {
                self.projection = Some(ProjectionView {
                    points: Shared(Arc::new(points)),
                    kind,
                });
            }
            Reply::RunEnded { id, weights } => {
                if self.run_id == Some(id) {
                    self.run_id = None;
                    self.weights_available = weights;
                }
            }
            tsne @ (Reply::TsneProgress { .. }
            | Reply::TsneDone { .. }
            | Reply::TsneEnded { .. }) => self.tsne_reply(tsne),
            Reply::Problem { message } => self.notify(Notice::error(message)),
        }
    }

    fn device_ready(
        &mut self,
        webgpu: bool,
        adapter: String,
        fallback: Option<String>,
        batch_limit: BatchLimit,
    ) {
        self.device_ready = true;
        self.batch_limit = Some(batch_limit);
        self.adapter = Some(adapter);
        if let Some(reason) = fallback {
            self.notify(Notice::warning(format!("{reason}.")));
        } else if !webgpu {
            self.notify(Notice::warning("Training runs on the CPU.".into()));
        }
        self.settle();
    }

    fn dataset_loaded(&mut self, reply: Reply) {
        let Reply::DatasetLoaded {
            id,
            name,
            custom,
            n_train,
            n_test,
            class_names,
            test,
        } = reply
        else {
            return;
        };
        if id != self.load_id {
            return;
        }
        self.dataset_ready = true;
        self.dataset_name = name.clone();
        self.dataset_sizes = (n_train, n_test);
        self.class_names = Rc::new(class_names);
        self.test = Some(Shared(Arc::new(Dataset::from(test))));
        if custom {
            self.custom_loaded = true;
            self.custom_label = Some(name);
            self.file_error = None;
            self.form.set("dataset", "custom".into());
        }
        if matches!(self.phase, Phase::Error) && (self.progress.epochs == 0 || self.worker_lost) {
            self.phase = Phase::Loading;
        }
        self.settle();
    }

    fn run_started(&mut self, id: Id, epochs: usize, from_weights: Option<String>) {
        if !self.requested_runs.contains(&id) {
            return;
        }
        self.requested_runs.retain(|&r| r != id);
        self.phase_before_request = None;
        self.run_id = Some(id);
        self.phase = Phase::Training;
        self.progress = ProgressInfo {
            epochs,
            ..ProgressInfo::default()
        };
        self.skipped = 0;
        self.losses = Rc::new(Vec::new());
        self.epoch_losses = Rc::new(Vec::new());
        self.metrics = Rc::new(Vec::new());
        self.final_metrics = None;
        self.embeddings = None;
        self.projection = None;
        self.tsne = None;
        self.weights_available = false;
        Rc::make_mut(&mut self.notices).retain(|n| n.level == Level::Warning);
        if let Some(name) = from_weights {
            self.notify(Notice::info(format!(
                "Training starts from the weights in {name}."
            )));
        }
    }

    fn tsne_reply(&mut self, reply: Reply) {
        match reply {
            Reply::TsneProgress {
                id,
                iter,
                total,
                points,
            } if id == self.tsne_id && self.tsne.is_some() => {
                self.tsne = Some((iter, total));
                self.projection = Some(ProjectionView {
                    points: Shared(Arc::new(points)),
                    kind: format!("t-SNE, iteration {iter} of {total}"),
                });
            }
            Reply::TsneDone {
                id,
                perplexity,
                iterations,
            } if id == self.tsne_id => {
                self.tsne = None;
                if let Some(p) = &mut self.projection {
                    p.kind = format!("t-SNE, perplexity {perplexity}, {iterations} iterations");
                }
            }
            Reply::TsneEnded { id, error } => {
                if let Some(message) = error {
                    self.notify(Notice::error(format!("t-SNE failed: {message}")));
                } else if id == self.tsne_id {
                    // Cancelled by the worker when a new run started.
                    self.notify(Notice::info("t-SNE was cancelled by the new run.".into()));
                }
                if id == self.tsne_id {
                    self.tsne = None;
                }
            }
            _ => {}
        }
    }

    /// A dataset request's progress or failure (only the latest request's counts).
    fn dataset_reply(&mut self, reply: Reply) {
        match reply {
            Reply::DatasetLoading { id, name } if id == self.load_id => {
                self.dataset_ready = false;
                self.dataset_name = name;
                if !matches!(self.phase, Phase::Training | Phase::Paused) {
                    self.phase = Phase::Loading;
                }
            }
            Reply::DatasetFailed { id, message } if id == self.load_id => {
                self.dataset_ready = false;
                self.phase = Phase::Error;
                self.notify(Notice::error(message));
            }
            Reply::FilesRejected { id, message } if id == self.load_id => {
                self.file_error = Some(message.clone());
                self.notify(Notice::error(message));
            }
            _ => {}
        }
    }
}
