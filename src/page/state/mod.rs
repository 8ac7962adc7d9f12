//! The page's one reducer: every change of UI state is an [`Action`] folded into [`State`] —
//! the worker's [`Reply`]s and the page's own clicks alike. Replies that answer a superseded
//! request (an older dataset load, run or layout) are dropped here.
//!
//! `view`: the pieces the components render; `replies`: what each worker reply does; `events`:
//! what each event of a run does. This file: [`State`], [`Action`] and the reducer.

mod events;
mod replies;
#[cfg(test)]
mod tests;
mod view;

pub use view::*;

use std::collections::BTreeMap;
use std::rc::Rc;

use tripletlab_core::backend::BackendChoice;
use tripletlab_core::data::Dataset;
use tripletlab_core::metrics::Metrics;
use tripletlab_core::projection::{TSNE_NAME, UMAP_NAME};
use tripletlab_core::run::{Control, EpochFigures, Mining, MiningStats, TripletSample};
use tripletlab_protocol::{BatchLimit, Id, LayoutRequest, Reply};

use super::form::{Checked, EXTRA_KEYS, Form};
use super::layout_form::LayoutForm;

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
    /// The training set's labels (P×K batches are checked against them).
    pub train_labels: Option<Rc<Vec<u8>>>,
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
    /// `(global_step, mining statistics)` per trained step.
    pub mining_steps: Rc<Vec<(usize, MiningStats)>>,
    /// Per finished epoch: its mining statistics and the test embedding's collapse indicator.
    pub epoch_figures: Rc<Vec<EpochFigures>>,
    /// A few triplets of the latest batch, as the loss mined them.
    pub triplets: Option<Rc<TripletSample>>,
    /// How the shown run mines (names the mining chart's shares).
    pub run_mining: Mining,
    /// Metrics per epoch.
    pub metrics: Rc<Vec<EpochRow>>,
    /// The final metrics (kNN against the training set included).
    pub final_metrics: Option<Rc<Metrics>>,
    /// What the raw pixels score on the shown run's sets (after its final kNN), or why not.
    pub raw_pixels: Option<Result<Rc<Metrics>, String>>,
    /// The run whose results are shown (the latest started).
    pub shown_run: Option<Id>,
    /// The latest question about the embedding (its id) while it is being answered.
    pub query_pending: Option<Id>,
    /// The latest answer.
    pub query: Option<Rc<QueryView>>,
    /// The latest embeddings.
    pub embeddings: Option<Embeddings>,
    /// What the projection shows.
    pub projection: Option<ProjectionView>,
    /// The layout (t-SNE or UMAP) under way.
    pub layout: Option<LayoutJob>,
    /// The UMAP fields.
    pub layout_form: LayoutForm,
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
    /// The latest layout request.
    pub layout_id: Id,
    /// The worker died and is being replaced.
    pub worker_lost: bool,
}

impl State {
    /// Defaults overridden by the URL query.
    pub fn from_url(pairs: &[(String, String)]) -> Self {
        let form = Form::from_pairs(pairs);
        let value = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let backend = BackendChoice::from_url(value("backend").as_deref());
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
            train_labels: None,
            weights_label: None,
            notices: Rc::new(Vec::new()),
            progress: ProgressInfo::default(),
            skipped: 0,
            losses: Rc::new(Vec::new()),
            epoch_losses: Rc::new(Vec::new()),
            mining_steps: Rc::new(Vec::new()),
            epoch_figures: Rc::new(Vec::new()),
            triplets: None,
            run_mining: Mining::default(),
            metrics: Rc::new(Vec::new()),
            final_metrics: None,
            raw_pixels: None,
            shown_run: None,
            query_pending: None,
            query: None,
            embeddings: None,
            projection: None,
            layout: None,
            layout_form: LayoutForm::from_pairs(pairs),
            weights_available: false,
            load_id: 0,
            run_id: None,
            requested_runs: Vec::new(),
            phase_before_request: None,
            layout_id: 0,
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

    /// Where the latest query lands on the projection shown, and how it was placed, in words:
    /// exactly on a PCA (the same linear map); on a t-SNE or UMAP, which cannot place a point
    /// they were not fitted on, at its nearest test embeddings' similarity-weighted mean.
    pub fn query_place(&self) -> Option<([f32; 2], String)> {
        let q = self.query.as_ref()?;
        let p = self.projection.as_ref()?;
        if p.kind.starts_with("PCA") {
            let xy = q.answer.pca?;
            return Some((
                xy,
                "The ✚ on the PCA is its exact place (the same projection as the test \
                 embeddings)."
                    .into(),
            ));
        }
        let method = p.kind.split(',').next().unwrap_or("layout");
        let xy = tripletlab_core::query::place_among(&q.answer.test_neighbours, &p.points.0)?;
        Some((
            xy,
            format!(
                "The ✚ on the {method} is placed at the similarity-weighted mean of its {} \
                 nearest test embeddings' positions ({method} cannot place a point it was not \
                 fitted on exactly).",
                q.answer.test_neighbours.len()
            ),
        ))
    }

    /// The form checked against what is loaded and what the device can do.
    pub fn checked(&self) -> Checked {
        self.form.check(
            self.custom_loaded,
            self.batch_limit.as_ref(),
            self.train_labels.as_deref().map(Vec::as_slice),
        )
    }

    /// What the form's P×K batches make of the loaded training set (see [`Form::pk_note`]).
    pub fn pk_note(&self) -> Option<String> {
        self.form
            .pk_note(self.train_labels.as_deref().map(Vec::as_slice))
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
    /// A layout was requested under this id.
    LayoutRequested(Id, LayoutRequest),
    /// Cancel was pressed on the layout under way.
    LayoutCancelled,
    /// A UMAP field changed.
    LayoutField(String, String),
    /// A question about the embedding was sent under this id.
    QueryRequested(Id),
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
            Action::LayoutRequested(id, request) => {
                s.layout_id = id;
                s.layout = Some(LayoutJob {
                    name: match request {
                        LayoutRequest::Tsne => TSNE_NAME,
                        LayoutRequest::Umap { .. } => UMAP_NAME,
                    },
                    done: 0,
                    total: 1,
                    cancelling: false,
                });
            }
            Action::LayoutCancelled => {
                if let Some(job) = &mut s.layout {
                    job.cancelling = true;
                }
            }
            Action::LayoutField(key, value) => s.layout_form.set(&key, value),
            Action::QueryRequested(id) => s.query_pending = Some(id),
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
                    matches!(s.phase, Phase::Training | Phase::Paused) || s.layout.is_some();
                s.worker_lost = true;
                s.device_ready = false;
                s.custom_loaded = false;
                s.custom_label = None;
                s.dataset_ready = false;
                s.run_id = None;
                s.requested_runs.clear();
                s.layout = None;
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

/// Messages per field key, shared with the form.
pub type FieldErrors = Rc<BTreeMap<String, String>>;
