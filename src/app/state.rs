//! The page's one reducer: every change of UI state is an [`Action`] folded into [`State`].

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use yew::Reducible;

use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::model::EMBEDDING_DIM;
use crate::projection::pca_2d;
use crate::train::{Event, TrainError};
use crate::web::device::BackendChoice;
use crate::web::host::Control;

use super::form::{EXTRA_KEYS, Form};

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
    /// The user asked to stop; the run ends after the current step.
    pub stopping: bool,
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
    /// The finished run's trainer is kept (weights can be downloaded).
    pub trainer_kept: bool,
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
            trainer_kept: false,
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

    fn notify(&mut self, notice: Notice) {
        let notices = Rc::make_mut(&mut self.notices);
        notices.retain(|n| n != &notice);
        notices.push(notice);
    }

    fn settle(&mut self) {
        if matches!(self.phase, Phase::Loading) && self.device_ready && self.dataset_ready {
            self.phase = Phase::Ready;
        }
    }
}

/// Everything that can happen to the page.
pub enum Action {
    /// The burn device is up.
    DeviceReady {
        /// On WebGPU (else the CPU).
        webgpu: bool,
        /// Header text.
        adapter: String,
        /// Why the CPU is used, when it is.
        fallback: Option<String>,
    },
    /// A bundled dataset is being fetched.
    DatasetLoading(String),
    /// A dataset is loaded and current.
    DatasetLoaded {
        /// Description.
        name: String,
        /// The user's own files.
        custom: bool,
        /// Training examples.
        n_train: usize,
        /// Test examples.
        n_test: usize,
        /// Legend names.
        class_names: Rc<Vec<String>>,
        /// The test set.
        test: Shared<Dataset>,
    },
    /// The bundled dataset could not be loaded.
    DatasetFailed(String),
    /// The user's files could not be used (the current dataset stays).
    FileError(String),
    /// A form field changed.
    Field(String, String),
    /// An uploaded weights file was accepted.
    WeightsLoaded(String),
    /// An uploaded weights file was rejected.
    WeightsError(String),
    /// A run is about to start.
    TrainingRequested {
        /// Epochs.
        epochs: usize,
        /// Name of the weights file it starts from.
        from_weights: Option<String>,
    },
    /// The run could not start.
    StartFailed(String),
    /// Pause / Resume / Stop pressed.
    ControlRequested(Control),
    /// An event of the running training (PCA already computed for embeddings).
    Train(Event, Option<Result<Vec<[f32; 2]>, String>>),
    /// The finished run's trainer is kept.
    TrainerKept,
    /// t-SNE started.
    TsneStarted,
    /// t-SNE progress.
    TsneProgress {
        /// Iterations done.
        iter: usize,
        /// Iterations in all.
        total: usize,
        /// The current layout.
        points: Shared<Vec<[f32; 2]>>,
    },
    /// t-SNE finished.
    TsneDone,
    /// t-SNE could not run.
    TsneFailed(String),
    /// A banner message.
    Notice(Notice),
    /// Close banner message `i`.
    Dismiss(usize),
}

impl Action {
    /// Wraps a training event; fresh embeddings are projected with PCA here, outside the
    /// reducer.
    pub fn from_event(event: Event) -> Self {
        let pca = match &event {
            Event::Embeddings { vectors, .. } => {
                Some(pca_2d(vectors, EMBEDDING_DIM).map_err(|e| e.to_string()))
            }
            _ => None,
        };
        Action::Train(event, pca)
    }
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = Rc::unwrap_or_clone(self);
        match action {
            Action::DeviceReady {
                webgpu,
                adapter,
                fallback,
            } => {
                s.device_ready = true;
                s.adapter = Some(adapter);
                if let Some(reason) = fallback {
                    s.notify(Notice::warning(format!("{reason}.")));
                } else if !webgpu {
                    s.notify(Notice::warning("Training runs on the CPU.".into()));
                }
                s.settle();
            }
            Action::DatasetLoading(name) => {
                s.dataset_ready = false;
                s.dataset_name = name;
                if !matches!(s.phase, Phase::Training | Phase::Paused) {
                    s.phase = Phase::Loading;
                }
            }
            Action::DatasetLoaded {
                name,
                custom,
                n_train,
                n_test,
                class_names,
                test,
            } => {
                s.dataset_ready = true;
                s.dataset_name = name.clone();
                s.dataset_sizes = (n_train, n_test);
                s.class_names = class_names;
                s.test = Some(test);
                if custom {
                    s.custom_loaded = true;
                    s.custom_label = Some(name);
                    s.file_error = None;
                    s.form.set("dataset", "custom".into());
                }
                if matches!(s.phase, Phase::Error) && s.progress.epochs == 0 {
                    s.phase = Phase::Loading;
                }
                s.settle();
            }
            Action::DatasetFailed(message) => {
                s.dataset_ready = false;
                s.phase = Phase::Error;
                s.notify(Notice::error(message));
            }
            Action::FileError(message) => {
                s.file_error = Some(message.clone());
                s.notify(Notice::error(message));
            }
            Action::Field(key, value) => {
                s.form.set(&key, value);
            }
            Action::WeightsLoaded(name) => {
                s.notify(Notice::info(format!(
                    "The next run starts from the weights in {name}."
                )));
                s.weights_label = Some(name);
            }
            Action::WeightsError(message) => s.notify(Notice::error(message)),
            Action::TrainingRequested {
                epochs,
                from_weights,
            } => {
                s.phase = Phase::Training;
                s.progress = ProgressInfo {
                    epochs,
                    ..ProgressInfo::default()
                };
                s.skipped = 0;
                s.losses = Rc::new(Vec::new());
                s.epoch_losses = Rc::new(Vec::new());
                s.metrics = Rc::new(Vec::new());
                s.final_metrics = None;
                s.embeddings = None;
                s.projection = None;
                s.tsne = None;
                s.trainer_kept = false;
                Rc::make_mut(&mut s.notices).retain(|n| n.level == Level::Warning);
                if let Some(name) = from_weights {
                    s.notify(Notice::info(format!(
                        "Training starts from the weights in {name}."
                    )));
                }
            }
            Action::StartFailed(message) => {
                s.notify(Notice::error(format!("could not start: {message}")))
            }
            Action::ControlRequested(c) => match c {
                Control::Pause if s.phase == Phase::Training => s.phase = Phase::Paused,
                Control::Run if s.phase == Phase::Paused => s.phase = Phase::Training,
                Control::Stop if matches!(s.phase, Phase::Training | Phase::Paused) => {
                    s.progress.stopping = true;
                    s.phase = Phase::Training;
                }
                _ => {}
            },
            Action::Train(event, pca) => s.apply_event(event, pca),
            Action::TrainerKept => s.trainer_kept = true,
            Action::TsneStarted => s.tsne = Some((0, 1)),
            Action::TsneProgress {
                iter,
                total,
                points,
            } => {
                s.tsne = Some((iter, total));
                s.projection = Some(ProjectionView {
                    points,
                    kind: format!("t-SNE, iteration {iter} of {total}"),
                });
            }
            Action::TsneDone => {
                s.tsne = None;
                if let Some(p) = &mut s.projection {
                    p.kind = "t-SNE".into();
                }
            }
            Action::TsneFailed(message) => {
                s.tsne = None;
                s.notify(Notice::error(format!("t-SNE failed: {message}")));
            }
            Action::Notice(n) => s.notify(n),
            Action::Dismiss(i) => {
                let notices = Rc::make_mut(&mut s.notices);
                if i < notices.len() {
                    notices.remove(i);
                }
            }
        }
        Rc::new(s)
    }
}

impl State {
    fn apply_event(&mut self, event: Event, pca: Option<Result<Vec<[f32; 2]>, String>>) {
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
                match pca {
                    Some(Ok(points)) => {
                        self.projection = Some(ProjectionView {
                            points: Shared(Arc::new(points)),
                            kind: format!("PCA, epoch {epoch}, step {global_step}"),
                        });
                    }
                    Some(Err(e)) => self.notify(Notice::error(format!("PCA failed: {e}"))),
                    None => {}
                }
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
                self.progress.stopping = false;
                self.progress.elapsed_s = summary.total_seconds;
                if summary.examples_per_s > 0.0 {
                    self.progress.examples_per_s = summary.examples_per_s;
                }
                self.skipped = summary.skipped_batches;
                if summary.stopped {
                    self.notify(Notice::info(format!(
                        "Stopped after {} steps ({} epochs complete).",
                        summary.steps, summary.epochs_completed
                    )));
                } else {
                    self.progress.complete = true;
                    self.progress.global_step = self.progress.total_steps();
                }
                self.final_metrics = Some(Rc::new(summary.metrics));
            }
            Event::Failed(error) => {
                self.phase = Phase::Error;
                self.progress.stopping = false;
                let kept = if self.embeddings.is_some() {
                    " The embeddings computed so far can still be downloaded."
                } else {
                    ""
                };
                let text = match &error {
                    TrainError::Device(_) => format!("Training stopped: {error}.{kept}"),
                    _ => format!("Training failed: {error}.{kept}"),
                };
                self.notify(Notice::error(text));
            }
        }
    }
}

/// Messages per field key, shared with the form.
pub type FieldErrors = Rc<BTreeMap<String, String>>;
