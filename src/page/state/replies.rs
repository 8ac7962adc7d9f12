//! What each [`Reply`] of the worker does to the [`State`]; replies to a superseded request are
//! dropped here.

use std::rc::Rc;
use std::sync::Arc;

use super::*;
use tripletlab_protocol::Reply;

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
            run @ (Reply::TrainRefused { .. }
            | Reply::Paused
            | Reply::Resumed
            | Reply::Stopping
            | Reply::RunEnded { .. }) => self.run_reply(run),
            query @ (Reply::QueryAnswer { .. } | Reply::QueryFailed { .. }) => {
                self.query_reply(query)
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
            Reply::RawPixels { id, scores } => {
                if self.shown_run == Some(id) {
                    self.raw_pixels = Some(scores.map(Rc::new));
                }
            }
            layout @ (Reply::LayoutProgress { .. }
            | Reply::LayoutDone { .. }
            | Reply::LayoutEnded { .. }) => self.layout_reply(layout),
            Reply::Problem { message } => self.notify(Notice::error(message)),
        }
    }

    /// The run's control replies: refused, paused, resumed, stopping, ended.
    fn run_reply(&mut self, reply: Reply) {
        match reply {
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
            Reply::Paused if self.phase == Phase::Training => self.phase = Phase::Paused,
            Reply::Resumed if self.phase == Phase::Paused => self.phase = Phase::Training,
            Reply::Stopping if matches!(self.phase, Phase::Training | Phase::Paused) => {
                self.progress.stop = StopState::Seen;
            }
            Reply::RunEnded { id, weights } if self.run_id == Some(id) => {
                self.run_id = None;
                self.weights_available = weights;
            }
            _ => {}
        }
    }

    /// A question's answer or failure (only the latest question's).
    fn query_reply(&mut self, reply: Reply) {
        let Some(pending) = self.query_pending else {
            return;
        };
        match reply {
            Reply::QueryAnswer {
                id,
                image,
                label,
                neighbour_images,
                answer,
            } if id == pending => {
                self.query_pending = None;
                self.query = Some(Rc::new(QueryView {
                    image,
                    label,
                    neighbour_images,
                    answer,
                }));
            }
            Reply::QueryFailed { id, message } if id == pending => {
                self.query_pending = None;
                self.notify(Notice::error(format!("The query failed: {message}")));
            }
            _ => {}
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
            train_labels,
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
        self.train_labels = Some(Rc::new(train_labels));
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
        self.mining_steps = Rc::new(Vec::new());
        self.epoch_figures = Rc::new(Vec::new());
        self.triplets = None;
        self.run_mining = self.checked().config.map_or(self.run_mining, |c| c.mining);
        self.metrics = Rc::new(Vec::new());
        self.final_metrics = None;
        self.raw_pixels = None;
        self.shown_run = Some(id);
        // Its neighbours and places belong to the weights and layouts of the run before.
        self.query = None;
        self.embeddings = None;
        self.projection = None;
        // A layout under way stays until the worker says it was cancelled (it names it).
        self.weights_available = false;
        Rc::make_mut(&mut self.notices).retain(|n| n.level == Level::Warning && !n.of_run);
        if let Some(name) = from_weights {
            self.notify(Notice::info(format!(
                "Training starts from the weights in {name}."
            )));
        }
    }

    fn layout_reply(&mut self, reply: Reply) {
        match reply {
            Reply::LayoutProgress {
                id,
                done,
                total,
                kind,
                points,
            } if id == self.layout_id => {
                let Some(job) = &mut self.layout else { return };
                (job.done, job.total) = (done, total);
                // While the neighbours are searched there is no layout yet: the one shown stays.
                if !points.is_empty() {
                    self.projection = Some(ProjectionView {
                        points: Shared(Arc::new(points)),
                        kind,
                    });
                }
            }
            Reply::LayoutDone { id, kind } if id == self.layout_id => {
                self.layout = None;
                if let Some(p) = &mut self.projection {
                    p.kind = kind;
                }
            }
            Reply::LayoutEnded { id, error } if id == self.layout_id => {
                let name = self.layout.as_ref().map_or("The layout", |j| j.name);
                if let Some(message) = error {
                    self.notify(Notice::error(format!("{name} failed: {message}")));
                } else if self.layout.as_ref().is_some_and(|j| j.cancelling) {
                    self.notify(Notice::info(format!(
                        "{name} was cancelled; the projection shows where it got to."
                    )));
                } else {
                    self.notify(Notice::info(format!(
                        "{name} was cancelled by the new run."
                    )));
                }
                self.layout = None;
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
