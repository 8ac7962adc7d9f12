//! The page's one reducer: every change of UI state is an [`Action`] folded into [`State`] —
//! the worker's [`Reply`]s and the page's own clicks alike. Replies that answer a superseded
//! request (an older dataset load, run or t-SNE) are dropped here.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::backend::BackendChoice;
use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::protocol::{BatchLimit, Id, Reply};
use crate::train::{Control, Event, TrainError};

use super::form::{Checked, EXTRA_KEYS, Form};

/// A shared value compared by identity (big buffers must not be compared element by element
/// on every render).
#[derive(Debug)]
pub struct Shared<T>(pub Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The root's `data-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Starting the device or loading a dataset.
    Loading,
    /// Ready to train.
    Ready,
    /// A run is in progress.
    Training,
    /// A run is paused.
    Paused,
    /// A run finished or was stopped.
    Done,
    /// Something failed (see the banner).
    Error,
}

impl Phase {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Loading => "loading",
            Phase::Ready => "ready",
            Phase::Training => "training",
            Phase::Paused => "paused",
            Phase::Done => "done",
            Phase::Error => "error",
        }
    }
}

/// How serious a banner message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Good to know.
    Info,
    /// Works, but not as well as it could (e.g. the CPU fallback).
    Warning,
    /// Something failed.
    Error,
}

/// One banner message.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// Severity.
    pub level: Level,
    /// The text.
    pub text: String,
}

impl Notice {
    /// An error message.
    pub fn error(text: String) -> Self {
        Self {
            level: Level::Error,
            text,
        }
    }
    /// A warning.
    pub fn warning(text: String) -> Self {
        Self {
            level: Level::Warning,
            text,
        }
    }
    /// Information.
    pub fn info(text: String) -> Self {
        Self {
            level: Level::Info,
            text,
        }
    }
}

/// Where the run is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressInfo {
    /// Epochs to run.
    pub epochs: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Current epoch (1-based, 0 before the first step).
    pub epoch: usize,
    /// Step within the epoch.
    pub step: usize,
    /// Steps done since the start (skipped ones included).
    pub global_step: usize,
    /// Training examples per second.
    pub examples_per_s: f64,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Training / test examples used.
    pub examples: (usize, usize),
    /// The run finished all its steps.
    pub complete: bool,
    /// Where a Stop is.
    pub stop: StopState,
}

/// A Stop, from the click to the end of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopState {
    /// No Stop asked for.
    #[default]
    None,
    /// The user pressed Stop; the worker has not answered yet.
    Requested,
    /// The worker has seen it: no new step or slice starts, the device finishes its queue.
    Seen,
}

impl StopState {
    /// For the page's `data-stop` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            StopState::None => "none",
            StopState::Requested => "requested",
            StopState::Seen => "seen",
        }
    }
}

impl ProgressInfo {
    /// All steps of the run.
    pub fn total_steps(&self) -> usize {
        self.epochs * self.steps_per_epoch
    }
}

/// The latest test-set embeddings (what the downloads export).
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// `labels.len() × 256`, row-major, test-set order.
    pub vectors: Shared<Vec<f32>>,
    /// Test labels.
    pub labels: Shared<Vec<u8>>,
    /// Epoch they were taken in.
    pub epoch: usize,
    /// Step they were taken after.
    pub global_step: usize,
}

impl Embeddings {
    /// For the downloads panel.
    pub fn note(&self) -> String {
        format!(
            "{} test embeddings from epoch {}, step {}",
            self.labels.0.len(),
            self.epoch,
            self.global_step
        )
    }
}

/// What the projection canvas shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionView {
    /// One 2-D point per test embedding.
    pub points: Shared<Vec<[f32; 2]>>,
    /// "PCA, epoch 1 step 8", "t-SNE", …
    pub kind: String,
}

/// One row of the metrics table.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub mean_loss: f32,
    /// Test-set metrics after it.
    pub metrics: Metrics,
}

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct State {
    /// The root's `data-state`.
    pub phase: Phase,
    /// The burn device exists.
    pub device_ready: bool,
    /// The largest batch the device trains (once it is ready).
    pub batch_limit: Option<BatchLimit>,
    /// Header text for the adapter.
    pub adapter: Option<String>,
    /// URL `backend=` (cpu, webgpu, or automatic).
    pub backend: BackendChoice,
    /// URL `embed_every=N`.
    pub embed_every: Option<usize>,
    /// URL keys that are not form fields, kept in the URL.
    pub extra_query: Rc<Vec<(&'static str, String)>>,
    /// The settings form.
    pub form: Form,
    /// The user's own files are loaded.
    pub custom_loaded: bool,
    /// Their description.
    pub custom_label: Option<String>,
    /// The last problem with the user's files.
    pub file_error: Option<String>,
    /// A dataset is loaded.
    pub dataset_ready: bool,
    /// The dataset's description (or what is loading).
    pub dataset_name: String,
    /// Train/test sizes.
    pub dataset_sizes: (usize, usize),
    /// Legend names for labels 0..=9.
    pub class_names: Rc<Vec<String>>,
    /// The full test set (images for the hover).
    pub test: Option<Shared<Dataset>>,
    /// An uploaded weights file that the next run starts from.
    pub weights_label: Option<String>,
    /// Banner messages.
    pub notices: Rc<Vec<Notice>>,
    /// Where the run is.
    pub progress: ProgressInfo,
    /// Batches skipped (no positive pair).
    pub skipped: usize,
    /// `(global_step, loss)` per trained step.
    pub losses: Rc<Vec<(usize, f32)>>,
    /// Mean loss per epoch.
    pub epoch_losses: Rc<Vec<f32>>,
    /// Metrics per epoch.
    pub metrics: Rc<Vec<EpochRow>>,
    /// The final metrics (kNN against the training set included).
    pub final_metrics: Option<Rc<Metrics>>,
    /// The latest embeddings.
    pub embeddings: Option<Embeddings>,
    /// What the projection shows.
    pub projection: Option<ProjectionView>,
    /// t-SNE progress `(iterations done, total)` while it runs.
    pub tsne: Option<(usize, usize)>,
    /// Weights can be downloaded (a finished run's, or the last epoch end's).
    pub weights_available: bool,
    /// The latest dataset request.
    pub load_id: Id,
    /// The run the worker started, until it ends (its events are the ones shown).
    pub run_id: Option<Id>,
    /// Runs the page asked for that the worker has not started or refused yet (a second
    /// request can be sent before the first is answered; the worker starts one at most).
    pub requested_runs: Vec<Id>,
    /// The phase before that request (restored if the worker refuses it).
    pub phase_before_request: Option<Phase>,
    /// The latest t-SNE request.
    pub tsne_id: Id,
    /// The worker died and is being replaced.
    pub worker_lost: bool,
}

impl State {
    /// Defaults overridden by the URL query.
    pub fn from_query(pairs: &[(String, String)]) -> Self {
        let form = Form::from_pairs(pairs);
        let value = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let backend = BackendChoice::from_query(value("backend").as_deref());
        let embed_every = value("embed_every").and_then(|v| v.trim().parse::<usize>().ok());
        let extra_query: Vec<(&'static str, String)> = EXTRA_KEYS
            .iter()
            .filter_map(|k| value(k).map(|v| (*k, v)))
            .collect();
        State {
            phase: Phase::Loading,
            device_ready: false,
            batch_limit: None,
            adapter: None,
            backend,
            embed_every,
            extra_query: Rc::new(extra_query),
            form,
            custom_loaded: false,
            custom_label: None,
            file_error: None,
            dataset_ready: false,
            dataset_name: String::new(),
            dataset_sizes: (0, 0),
            class_names: Rc::new((0..10).map(|i| i.to_string()).collect()),
            test: None,
            weights_label: None,
            notices: Rc::new(Vec::new()),
            progress: ProgressInfo::default(),
            skipped: 0,
            losses: Rc::new(Vec::new()),
            epoch_losses: Rc::new(Vec::new()),
            metrics: Rc::new(Vec::new()),
            final_metrics: None,
            embeddings: None,
            projection: None,
            tsne: None,
            weights_available: false,
            load_id: 0,
            run_id: None,
            requested_runs: Vec::new(),
            phase_before_request: None,
            tsne_id: 0,
            worker_lost: false,
        }
    }

    /// The header's dataset text.
    pub fn dataset_label(&self) -> String {
        if self.dataset_ready {
            format!(
                "data: {} ({} train / {} test)",
                self.dataset_name, self.dataset_sizes.0, self.dataset_sizes.1
            )
        } else if self.dataset_name.is_empty() {
            "data: none".into()
        } else {
            format!("data: loading {}…", self.dataset_name)
        }
    }

    /// The form checked against what is loaded and what the device can do.
    pub fn checked(&self) -> Checked {
        self.form
            .check(self.custom_loaded, self.batch_limit.as_ref())
    }

    fn notify(&mut self, notice: Notice) {
        let notices = Rc::make_mut(&mut self.notices);
        notices.retain(|n| n != &notice);
        notices.push(notice);
    }

    fn settle(&mut self) {
        if matches!(self.phase, Phase::Loading) && self.device_ready && self.dataset_ready {
            self.phase = Phase::Ready;
            self.worker_lost = false;
        }
    }
}

/// Everything that can happen to the page.
pub enum Action {
    /// A reply from the worker.
    Worker(Reply),
    /// A dataset was requested (bundled or the user's files) under this id.
    LoadRequested(Id),
    /// Train was pressed; the run will have this id.
    TrainRequested(Id),
    /// t-SNE was requested under this id.
    TsneRequested(Id),
    /// A form field changed.
    Field(String, String),
    /// The user's files were refused on the page (before reaching the worker).
    FileError(String),
    /// Pause / Resume / Stop pressed (the run's state changes when the worker says so).
    ControlRequested(Control),
    /// The worker died (e.g. out of memory); a fresh one is starting.
    WorkerLost(String),
    /// A banner message.
    Notice(Notice),
    /// Close banner message `i`.
    Dismiss(usize),
}

impl State {
    /// Folds one action into the state (the page's `yew::Reducible` calls this).
    pub fn reduce(mut self, action: Action) -> State {
        let s = &mut self;
        match action {
            Action::Worker(reply) => s.apply_reply(reply),
            Action::LoadRequested(id) => s.load_id = id,
            Action::TrainRequested(id) => {
                s.requested_runs.push(id);
                // Shown as training at once (the button is disabled from the click on); back to
                // where it was if the worker refuses.
                if !matches!(s.phase, Phase::Training | Phase::Paused) {
                    s.phase_before_request = Some(s.phase);
                    s.phase = Phase::Training;
                }
            }
            Action::TsneRequested(id) => {
                s.tsne_id = id;
                s.tsne = Some((0, 1));
            }
            Action::Field(key, value) => {
                s.form.set(&key, value);
            }
            Action::FileError(message) => {
                s.file_error = Some(message.clone());
                s.notify(Notice::error(message));
            }
            Action::ControlRequested(c) => {
                if c == Control::Stop
                    && matches!(s.phase, Phase::Training | Phase::Paused)
                    && s.progress.stop == StopState::None
                {
                    s.progress.stop = StopState::Requested;
                }
            }
            Action::WorkerLost(message) => {
                let was_busy =
                    matches!(s.phase, Phase::Training | Phase::Paused) || s.tsne.is_some();
                s.worker_lost = true;
                s.device_ready = false;
                s.custom_loaded = false;
                s.custom_label = None;
                s.dataset_ready = false;
                s.run_id = None;
                s.requested_runs.clear();
                s.tsne = None;
                s.weights_available = false;
                s.progress.stop = StopState::None;
                s.phase = Phase::Error;
                let kept = if s.embeddings.is_some() {
                    " The projection and metrics so far stay on screen."
                } else {
                    ""
                };
                let advice = if was_busy {
                    " It most likely ran out of memory: try a smaller batch or training subset."
                } else {
                    ""
                };
                s.notify(Notice::error(format!(
                    "The worker that trains stopped ({message}).{advice}{kept} A fresh one is starting."
                )));
            }
            Action::Notice(n) => s.notify(n),
            Action::Dismiss(i) => {
                let notices = Rc::make_mut(&mut s.notices);
                if i < notices.len() {
                    notices.remove(i);
                }
            }
        }
        self
    }
}

impl State {
    fn apply_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Listening | Reply::Download { .. } => {}
            Reply::DeviceReady {
                webgpu,
                adapter,
                fallback,
                batch_limit,
            } => {
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
            Reply::DatasetLoading { id, name } => {
                if id == self.load_id {
                    self.dataset_ready = false;
                    self.dataset_name = name;
                    if !matches!(self.phase, Phase::Training | Phase::Paused) {
                        self.phase = Phase::Loading;
                    }
                }
            }
            Reply::DatasetLoaded {
                id,
                name,
                custom,
                n_train,
                n_test,
                class_names,
                test,
            } => {
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
                if matches!(self.phase, Phase::Error)
                    && (self.progress.epochs == 0 || self.worker_lost)
                {
                    self.phase = Phase::Loading;
                }
                self.settle();
            }
            Reply::DatasetFailed { id, message } => {
                if id == self.load_id {
                    self.dataset_ready = false;
                    self.phase = Phase::Error;
                    self.notify(Notice::error(message));
                }
            }
            Reply::FilesRejected { id, message } => {
                if id == self.load_id {
                    self.file_error = Some(message.clone());
                    self.notify(Notice::error(message));
                }
            }
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
            } => {
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
            Reply::TsneProgress {
                id,
                iter,
                total,
                points,
            } => {
                if id == self.tsne_id && self.tsne.is_some() {
                    self.tsne = Some((iter, total));
                    self.projection = Some(ProjectionView {
                        points: Shared(Arc::new(points)),
                        kind: format!("t-SNE, iteration {iter} of {total}"),
                    });
                }
            }
            Reply::TsneDone { id } => {
                if id == self.tsne_id {
                    self.tsne = None;
                    if let Some(p) = &mut self.projection {
                        p.kind = "t-SNE".into();
                    }
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
            Reply::Problem { message } => self.notify(Notice::error(message)),
        }
    }

    fn apply_event(&mut self, event: Event) {
        match event {
            Event::Started {
                epochs,
                steps_per_epoch,
                train_examples,
                test_examples,
            } => {
                self.progress.epochs = epochs;
                self.progress.steps_per_epoch = steps_per_epoch;
                self.progress.examples = (train_examples, test_examples);
            }
            Event::Step {
                epoch,
                step,
                steps_per_epoch,
                global_step,
                loss,
                examples_per_s,
                elapsed_s,
            } => {
                let p = &mut self.progress;
                p.epoch = epoch;
                p.step = step;
                p.steps_per_epoch = steps_per_epoch;
                p.global_step = p.global_step.max(global_step);
                p.examples_per_s = examples_per_s;
                p.elapsed_s = elapsed_s;
                Rc::make_mut(&mut self.losses).push((global_step, loss));
            }
            Event::Skipped { epoch, step, .. } => {
                self.skipped += 1;
                let p = &mut self.progress;
                p.epoch = epoch;
                p.step = step;
                let global = (epoch - 1) * p.steps_per_epoch + step;
                p.global_step = p.global_step.max(global);
            }
            Event::Embeddings {
                epoch,
                global_step,
                vectors,
                labels,
            } => {
                self.embeddings = Some(Embeddings {
                    vectors: Shared(vectors),
                    labels: Shared(labels),
                    epoch,
                    global_step,
                });
            }
            Event::EpochEnd {
                epoch,
                mean_loss,
                metrics,
                elapsed_s,
            } => {
                self.progress.elapsed_s = elapsed_s;
                Rc::make_mut(&mut self.epoch_losses).push(mean_loss);
                Rc::make_mut(&mut self.metrics).push(EpochRow {
                    epoch,
                    mean_loss,
                    metrics,
                });
            }
            Event::Done(summary) => {
                self.phase = Phase::Done;
                self.progress.stop = StopState::None;
                self.progress.elapsed_s = summary.total_seconds;
                if summary.examples_per_s > 0.0 {
                    self.progress.examples_per_s = summary.examples_per_s;
                }
                self.skipped = summary.skipped_batches;
                if summary.stopped {
                    self.notify(Notice::info(format!(
                        "Stopped after {} steps ({} epochs complete). The weights are those at the stop; \
                         the downloads panel says which step the test embeddings are from.",
                        summary.steps, summary.epochs_completed
                    )));
                } else {
                    self.progress.complete = true;
                    self.progress.global_step = self.progress.total_steps();
                }
                // A run stopped before any epoch ended has no metrics to show.
                if !summary.stopped || summary.epochs_completed > 0 {
                    self.final_metrics = Some(Rc::new(summary.metrics));
                }
            }
            Event::Failed(error) => {
                self.phase = Phase::Error;
                self.progress.stop = StopState::None;
                let kept = if self.embeddings.is_some() {
                    " The embeddings computed so far can still be downloaded."
                } else {
                    ""
                };
                if matches!(error, TrainError::Device(_)) {
                    // The worker starts a new device; Train waits for it.
                    self.device_ready = false;
                }
                let text = match &error {
                    TrainError::Device(_) => format!(
                        "Training stopped: {error} (the GPU device was lost or reset).{kept} \
                         Download weights, when enabled, holds the weights of the last finished \
                         epoch. The next Train starts a new device."
                    ),
                    _ => format!("Training failed: {error}.{kept}"),
                };
                self.notify(Notice::error(text));
            }
        }
    }
}

/// Messages per field key, shared with the form.
pub type FieldErrors = Rc<BTreeMap<String, String>>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::TestImages;
    use crate::train::Summary;

    fn fresh() -> State {
        State::from_query(&[])
    }

    fn reply(s: State, r: Reply) -> State {
        s.reduce(Action::Worker(r))
    }

    fn loaded(id: Id, name: &str, n_train: usize) -> Reply {
        Reply::DatasetLoaded {
            id,
            name: name.into(),
            custom: false,
            n_train,
            n_test: 1,
            class_names: vec!["zero".into()],
            test: TestImages {
                images: vec![0; 4],
                labels: vec![0],
                rows: 2,
                cols: 2,
            },
        }
    }

    fn device() -> Reply {
        Reply::DeviceReady {
            webgpu: true,
            adapter: "WebGPU test".into(),
            fallback: None,
            batch_limit: BatchLimit {
                max: 2330,
                why: "on WebGPU".into(),
            },
        }
    }

    /// Device up and MNIST (load 1) loaded.
    fn ready() -> State {
        let s = fresh().reduce(Action::LoadRequested(1));
        let s = reply(reply(s, device()), loaded(1, "MNIST", 8000));
        assert_eq!(s.phase, Phase::Ready);
        s
    }

    fn step(global_step: usize, loss: f32) -> Event {
        Event::Step {
            epoch: 1,
            step: global_step,
            steps_per_epoch: 10,
            global_step,
            loss,
            examples_per_s: 100.0,
            elapsed_s: 1.0,
        }
    }

    fn summary(stopped: bool) -> Summary {
        Summary {
            stopped,
            epochs_completed: 1,
            steps: 10,
            skipped_batches: 0,
            epoch_losses: vec![0.5],
            metrics: Metrics::default(),
            examples_per_s: 100.0,
            train_seconds: 1.0,
            total_seconds: 2.0,
        }
    }

    /// Ready, then run `id` started.
    fn training(id: Id) -> State {
        let s = ready().reduce(Action::TrainRequested(id));
        let s = reply(
            s,
            Reply::TrainStarted {
                id,
                epochs: 1,
                from_weights: None,
            },
        );
        assert_eq!(s.phase, Phase::Training);
        s
    }

    fn has_notice(s: &State, level: Level, text: &str) -> bool {
        s.notices
            .iter()
            .any(|n| n.level == level && n.text.contains(text))
    }

    #[test]
    fn start_up_waits_for_both_device_and_data() {
        let s = fresh().reduce(Action::LoadRequested(1));
        assert_eq!(s.phase, Phase::Loading);
        let s = reply(
            s,
            Reply::DatasetLoading {
                id: 1,
                name: "MNIST".into(),
            },
        );
        assert_eq!(s.dataset_label(), "data: loading MNIST…");
        let s = reply(s, loaded(1, "MNIST", 8000));
        assert_eq!(s.phase, Phase::Loading, "no device yet");
        let s = reply(
            s,
            Reply::DeviceReady {
                webgpu: false,
                adapter: "CPU".into(),
                fallback: Some("No WebGPU".into()),
                batch_limit: BatchLimit {
                    max: 4096,
                    why: "the settings' limit".into(),
                },
            },
        );
        assert_eq!(s.phase, Phase::Ready);
        assert!(has_notice(&s, Level::Warning, "No WebGPU."));
        assert_eq!(s.adapter.as_deref(), Some("CPU"));
        assert_eq!(s.dataset_label(), "data: MNIST (8000 train / 1 test)");
        assert_eq!(s.class_names[0], "zero");
    }

    #[test]
    fn the_latest_dataset_request_wins_whatever_order_the_replies_come_in() {
        // Fashion (2) then MNIST (3) picked at once; Fashion's slower load lands last.
        let s = ready()
            .reduce(Action::LoadRequested(2))
            .reduce(Action::LoadRequested(3));
        let s = reply(
            s,
            Reply::DatasetLoading {
                id: 2,
                name: "Fashion-MNIST".into(),
            },
        );
        let s = reply(s, loaded(3, "MNIST", 8000));
        let s = reply(s, loaded(2, "Fashion-MNIST", 60000));
        let s = reply(
            s,
            Reply::DatasetFailed {
                id: 2,
                message: "late failure".into(),
            },
        );
        assert_eq!(s.dataset_name, "MNIST");
        assert_eq!(s.dataset_sizes, (8000, 1));
        assert_eq!(s.phase, Phase::Ready);
        assert!(s.notices.iter().all(|n| n.level != Level::Error));
        // The current request's failure does count.
        let s = reply(
            s.reduce(Action::LoadRequested(4)),
            Reply::DatasetFailed {
                id: 4,
                message: "HTTP 404".into(),
            },
        );
        assert_eq!(s.phase, Phase::Error);
        assert!(has_notice(&s, Level::Error, "HTTP 404"));
    }

    #[test]
    fn user_files_become_current_or_say_why_not() {
        let s = ready().reduce(Action::LoadRequested(2));
        let s = reply(
            s,
            Reply::FilesRejected {
                id: 2,
                message: "the file holds more than its header says".into(),
            },
        );
        assert_eq!(
            s.file_error.as_deref(),
            Some("the file holds more than its header says")
        );
        assert_eq!(s.dataset_name, "MNIST", "the current dataset stays");
        let s = s.reduce(Action::LoadRequested(3));
        let mut custom = loaded(3, "your files (60000 train / 1 test)", 60000);
        if let Reply::DatasetLoaded { custom: c, .. } = &mut custom {
            *c = true;
        }
        let s = reply(s, custom);
        assert!(s.custom_loaded && s.file_error.is_none());
        assert_eq!(s.form.get("dataset"), "custom");
        assert!(s.checked().config.is_some());
        // A size refused on the page.
        let s = s.reduce(Action::FileError("big.gz is 900 MB".into()));
        assert!(has_notice(&s, Level::Error, "900 MB"));
    }

    #[test]
    fn a_run_goes_from_started_to_done_through_its_events() {
        let s = training(7);
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: Event::Started {
                    epochs: 1,
                    steps_per_epoch: 10,
                    train_examples: 320,
                    test_examples: 1,
                },
            },
        );
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: step(1, 0.9),
            },
        );
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: step(2, 0.8),
            },
        );
        // An event of an older run is not this run's.
        let s = reply(
            s,
            Reply::Train {
                id: 6,
                event: step(3, 99.0),
            },
        );
        assert_eq!(*s.losses, vec![(1, 0.9), (2, 0.8)]);
        assert_eq!(s.progress.global_step, 2);
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: Event::Skipped {
                    epoch: 1,
                    step: 3,
                    reason: "no pair".into(),
                },
            },
        );
        assert_eq!(s.skipped, 1);
        let vectors = Arc::new(vec![0.1; 256]);
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: Event::Embeddings {
                    epoch: 1,
                    global_step: 10,
                    vectors,
                    labels: Arc::new(vec![0]),
                },
            },
        );
        let s = reply(
            s,
            Reply::Projection {
                points: vec![[1.0, 2.0]],
                kind: "PCA, epoch 1, step 10".into(),
            },
        );
        assert_eq!(s.projection.as_ref().unwrap().kind, "PCA, epoch 1, step 10");
        assert_eq!(
            s.embeddings.as_ref().unwrap().note(),
            "1 test embeddings from epoch 1, step 10"
        );
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: Event::EpochEnd {
                    epoch: 1,
                    mean_loss: 0.85,
                    metrics: Metrics::default(),
                    elapsed_s: 3.0,
                },
            },
        );
        assert_eq!(*s.epoch_losses, vec![0.85]);
        assert_eq!(s.metrics.len(), 1);
        let s = reply(
            s,
            Reply::Train {
                id: 7,
                event: Event::Done(summary(false)),
            },
        );
        assert_eq!(s.phase, Phase::Done);
        assert!(s.progress.complete);
        assert_eq!(s.progress.global_step, 10);
        assert!(s.final_metrics.is_some());
        assert!(!s.weights_available, "weights come with RunEnded");
        let s = reply(
            s,
            Reply::RunEnded {
                id: 7,
                weights: true,
            },
        );
        assert!(s.weights_available);
        assert_eq!(s.run_id, None);
    }

    #[test]
    fn pause_and_resume_change_state_when_the_worker_says_so() {
        let s = training(1).reduce(Action::ControlRequested(Control::Pause));
        assert_eq!(s.phase, Phase::Training, "the click alone does not pause");
        let s = reply(s, Reply::Paused);
        assert_eq!(s.phase, Phase::Paused);
        let s = reply(
            s.reduce(Action::ControlRequested(Control::Run)),
            Reply::Resumed,
        );
        assert_eq!(s.phase, Phase::Training);
    }

    #[test]
    fn stop_says_what_the_downloads_hold() {
        let s = training(1).reduce(Action::ControlRequested(Control::Stop));
        assert_eq!(
            s.progress.stop,
            StopState::Requested,
            "the click shows at once"
        );
        let s = reply(s, Reply::Stopping);
        assert_eq!(s.progress.stop, StopState::Seen, "and the worker's answer");
        let s = reply(s, Reply::Stopping);
        assert_eq!(s.progress.stop, StopState::Seen);
        let s = reply(
            s,
            Reply::Train {
                id: 1,
                event: Event::Done(summary(true)),
            },
        );
        assert_eq!(s.phase, Phase::Done);
        assert!(!s.progress.complete && s.progress.stop == StopState::None);
        assert!(has_notice(
            &s,
            Level::Info,
            "Stopped after 10 steps (1 epochs complete)"
        ));
        assert!(s.final_metrics.is_some());
        // The worker embeds the stopped weights after Done, before RunEnded: still this run's.
        let s = reply(
            s,
            Reply::Train {
                id: 1,
                event: Event::Embeddings {
                    epoch: 1,
                    global_step: 4,
                    vectors: Arc::new(vec![0.0; 256]),
                    labels: Arc::new(vec![1]),
                },
            },
        );
        assert_eq!(
            s.embeddings.as_ref().unwrap().note(),
            "1 test embeddings from epoch 1, step 4"
        );
        // Stopped before any epoch ended: no final metrics row.
        let mut early = summary(true);
        early.epochs_completed = 0;
        let s = reply(
            training(2),
            Reply::Train {
                id: 2,
                event: Event::Done(early),
            },
        );
        assert!(s.final_metrics.is_none());
    }

    #[test]
    fn a_refused_or_failed_run_says_why() {
        // Training from the click on; back to ready when the worker refuses.
        let s = ready().reduce(Action::TrainRequested(3));
        assert_eq!(s.phase, Phase::Training);
        let s = reply(
            s,
            Reply::TrainRefused {
                id: 3,
                reason: "the device is still starting".into(),
            },
        );
        assert_eq!(s.phase, Phase::Ready);
        assert!(has_notice(
            &s,
            Level::Error,
            "Train was refused: the device is still starting."
        ));
        // A second request sent before the first was answered: the first starts, the second
        // is refused, and the first run's events are shown.
        let s = ready()
            .reduce(Action::TrainRequested(4))
            .reduce(Action::TrainRequested(5));
        let s = reply(
            s,
            Reply::TrainStarted {
                id: 4,
                epochs: 1,
                from_weights: None,
            },
        );
        let s = reply(
            s,
            Reply::TrainRefused {
                id: 5,
                reason: "run 4 is still in progress".into(),
            },
        );
        let s = reply(
            s,
            Reply::Train {
                id: 4,
                event: step(1, 0.7),
            },
        );
        assert_eq!((s.phase, s.run_id), (Phase::Training, Some(4)));
        assert_eq!(*s.losses, vec![(1, 0.7)]);
        let s = training(1).reduce(Action::TrainRequested(2));
        let s = reply(
            s,
            Reply::TrainRefused {
                id: 2,
                reason: "run 1 is still in progress: stop it first".into(),
            },
        );
        assert_eq!(s.phase, Phase::Training, "the active run goes on");
        assert!(has_notice(&s, Level::Error, "still in progress"));
        // ... and its events are still shown.
        let s = reply(
            s,
            Reply::Train {
                id: 1,
                event: step(5, 0.4),
            },
        );
        assert_eq!(*s.losses, vec![(5, 0.4)]);
        let s = reply(
            s,
            Reply::Train {
                id: 1,
                event: Event::Failed(TrainError::NonFinite {
                    epoch: 1,
                    step: 3,
                    value: f32::NAN,
                }),
            },
        );
        assert_eq!(s.phase, Phase::Error);
        assert!(has_notice(
            &s,
            Level::Error,
            "Training failed: the loss became NaN"
        ));
        let s = reply(
            training(3),
            Reply::Train {
                id: 3,
                event: Event::Failed(TrainError::Device("lost".into())),
            },
        );
        assert!(has_notice(
            &s,
            Level::Error,
            "Training stopped: the GPU device failed: lost"
        ));
        assert!(!s.device_ready, "Train waits for the new device");
        let s = reply(
            s,
            Reply::DeviceReady {
                webgpu: true,
                adapter: "WebGPU".into(),
                fallback: None,
                batch_limit: BatchLimit {
                    max: 2330,
                    why: "on WebGPU".into(),
                },
            },
        );
        assert!(s.device_ready);
    }

    #[test]
    fn only_the_latest_tsne_draws() {
        let s = ready()
            .reduce(Action::TsneRequested(4))
            .reduce(Action::TsneRequested(5));
        assert_eq!(s.tsne, Some((0, 1)));
        let s = reply(
            s,
            Reply::TsneProgress {
                id: 4,
                iter: 10,
                total: 100,
                points: vec![[9.0, 9.0]],
            },
        );
        assert!(s.projection.is_none());
        let s = reply(s, Reply::TsneEnded { id: 4, error: None });
        assert_eq!(
            s.tsne,
            Some((0, 1)),
            "an older t-SNE's end is not this one's"
        );
        assert!(s.notices.is_empty());
        let s = reply(
            s,
            Reply::TsneProgress {
                id: 5,
                iter: 20,
                total: 100,
                points: vec![[1.0, 1.0]],
            },
        );
        assert_eq!(s.tsne, Some((20, 100)));
        assert_eq!(
            s.projection.as_ref().unwrap().kind,
            "t-SNE, iteration 20 of 100"
        );
        let s = reply(s, Reply::TsneDone { id: 5 });
        assert_eq!(s.tsne, None);
        assert_eq!(s.projection.as_ref().unwrap().kind, "t-SNE");
        let s = reply(
            s.reduce(Action::TsneRequested(6)),
            Reply::TsneEnded {
                id: 6,
                error: Some("no embeddings".into()),
            },
        );
        assert!(s.tsne.is_none() && has_notice(&s, Level::Error, "t-SNE failed: no embeddings"));
        // The latest one cancelled by a new run: said so.
        let s = reply(
            s.reduce(Action::TsneRequested(7)),
            Reply::TsneEnded { id: 7, error: None },
        );
        assert!(
            s.tsne.is_none() && has_notice(&s, Level::Info, "t-SNE was cancelled by the new run")
        );
    }

    #[test]
    fn a_lost_worker_is_an_error_with_advice_until_a_fresh_one_is_ready() {
        let s = training(1).reduce(Action::WorkerLost("RuntimeError: unreachable".into()));
        assert_eq!(s.phase, Phase::Error);
        assert!(!s.device_ready && !s.dataset_ready && s.run_id.is_none());
        assert!(has_notice(
            &s,
            Level::Error,
            "ran out of memory: try a smaller batch"
        ));
        let s = reply(
            reply(s.reduce(Action::LoadRequested(9)), device()),
            loaded(9, "MNIST", 8000),
        );
        assert_eq!(s.phase, Phase::Ready);
        assert!(!s.worker_lost);
    }

    #[test]
    fn banners_do_not_repeat_and_can_be_dismissed() {
        let s = reply(
            reply(
                fresh(),
                Reply::Problem {
                    message: "x".into(),
                },
            ),
            Reply::Problem {
                message: "x".into(),
            },
        );
        assert_eq!(s.notices.len(), 1);
        let s = reply(
            s,
            Reply::WeightsRejected {
                message: "w: not safetensors".into(),
            },
        );
        let s = s.reduce(Action::Dismiss(0)).reduce(Action::Dismiss(7));
        assert_eq!(s.notices.len(), 1);
        assert!(has_notice(&s, Level::Error, "not safetensors"));
        let s = reply(
            s,
            Reply::WeightsLoaded {
                name: "w.safetensors".into(),
            },
        );
        assert_eq!(s.weights_label.as_deref(), Some("w.safetensors"));
    }

    #[test]
    fn the_form_is_checked_against_the_device_s_batch_limit() {
        let s = ready().reduce(Action::Field("batch".into(), "4096".into()));
        assert_eq!(
            s.checked().errors["batch"],
            "this device trains batches of up to 2330 (on WebGPU)"
        );
        let s = s.reduce(Action::Field("batch".into(), "2330".into()));
        assert!(s.checked().config.is_some());
    }
}
