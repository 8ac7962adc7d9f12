//! The page: one root component ([`App`]) holding all state in one reducer ([`State`]), and
//! small function components for each part of the screen. Props go down, callbacks come up.
//! Every computation is the worker's: the page sends [`Command`]s through
//! [`crate::web::bridge`] and folds the [`Reply`]s into its reducer. Nothing here links burn.

pub mod ask;
pub mod banner;
pub mod confusion;
pub mod controls;
pub mod downloads;
pub mod draw;
pub mod loss_chart;
pub mod metrics;
pub mod mining_chart;
pub mod progress;
pub mod projection;
mod start;
pub mod triplets;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use yew::prelude::*;

use crate::web::bridge::{Bridge, Incoming};
use crate::web::{io, url};
use tripletlab_core::data::{BundledDataset, MAX_FILE_BYTES};
use tripletlab_core::run::{Control, Event};
use tripletlab_protocol::{Command, Export, Id, LayoutRequest, QueryImage, Reply};

pub use start::start;

use crate::page::state;
pub use crate::page::state::{Action, Phase, Shared, State};
use ask::QueryPanel;
use banner::Banner;
use confusion::ConfusionPanel;
use controls::Controls;
use downloads::Downloads;
use loss_chart::LossChart;
use metrics::MetricsTable;
use mining_chart::MiningChart;
use progress::Progress;
use projection::Projection;
use triplets::TripletsPanel;

/// The page's reducer for yew: [`State::reduce`], which is plain Rust and tested natively.
impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        Rc::new(Rc::unwrap_or_clone(self).reduce(action))
    }
}

type Dispatch = UseReducerDispatcher<State>;

/// What the page keeps outside its reducer: the worker, the next request id, and the loss
/// read-back marks of the benchmark's stats.
#[derive(Default)]
pub struct Link {
    bridge: Option<Bridge>,
    next_id: Cell<Id>,
    /// `(global_step, elapsed_s)` at each loss read-back of the current run.
    marks: RefCell<Vec<(usize, f64)>>,
    batch_size: Cell<usize>,
    /// The bundled dataset asked for last (a replacement worker loads it again).
    bundled: Cell<Option<BundledDataset>>,
}

impl Link {
    fn id(&self) -> Id {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    fn send(&self, command: &Command) {
        self.send_files(command, &[]);
    }

    fn send_files(&self, command: &Command, files: &[web_sys::File]) {
        if let Some(bridge) = &self.bridge {
            bridge.send(command, files);
        }
    }
}

type LinkRef = Rc<RefCell<Link>>;

/// Starts a worker whose replies go to `dispatch`, then the device and the current dataset.
/// A worker that dies is replaced the same way.
fn connect(link: &LinkRef, dispatch: &Dispatch, state: &State) {
    let on_incoming = {
        let (link, dispatch) = (link.clone(), dispatch.clone());
        let backend = state.backend;
        move |incoming: Incoming| match incoming {
            Incoming::Reply(reply) => on_reply(&link, &dispatch, reply),
            Incoming::Crashed(message) => {
                let dead = link.borrow_mut().bridge.take();
                dispatch.dispatch(Action::WorkerLost(message));
                // The user's own files are gone with the worker: back to the last bundled set.
                let dataset = link.borrow().bundled.get().unwrap_or(BundledDataset::Mnist);
                dispatch.dispatch(Action::Field("dataset".into(), dataset.as_str().into()));
                let mut fresh = State::from_url(&[]);
                fresh.backend = backend;
                fresh.form.set("dataset", dataset.as_str().into());
                let (link, dispatch) = (link.clone(), dispatch.clone());
                // Later, not inside the dead bridge's own callback, which this drops.
                gloo_timers::callback::Timeout::new(0, move || {
                    if let Some(dead) = dead {
                        dead.terminate();
                    }
                    connect(&link, &dispatch, &fresh);
                })
                .forget();
            }
        }
    };
    match Bridge::spawn(on_incoming) {
        Ok(bridge) => link.borrow_mut().bridge = Some(bridge),
        Err(e) => {
            dispatch.dispatch(Action::Notice(state::Notice::error(e)));
            return;
        }
    }
    link.borrow().send(&Command::Start {
        backend: state.backend,
    });
    let dataset = state
        .form
        .get("dataset")
        .parse()
        .unwrap_or(BundledDataset::Mnist);
    load_bundled(&link.borrow(), dispatch, dataset);
}

fn load_bundled(link: &Link, dispatch: &Dispatch, dataset: BundledDataset) {
    link.bundled.set(Some(dataset));
    let id = link.id();
    dispatch.dispatch(Action::LoadRequested(id));
    link.send(&Command::LoadBundled { id, dataset });
}

/// Replies that are not only state: downloads, and the benchmark's stats.
fn on_reply(link: &LinkRef, dispatch: &Dispatch, reply: Reply) {
    match &reply {
        Reply::Download { name, mime, bytes } => {
            if let Err(e) = io::download(name, bytes, mime) {
                dispatch.dispatch(Action::Notice(state::Notice::error(format!(
                    "download failed: {e}"
                ))));
            }
            return;
        }
        Reply::Train { event, .. } => {
            let link = link.borrow();
            match event {
                Event::Step {
                    global_step,
                    elapsed_s,
                    ..
                } => {
                    let mut marks = link.marks.borrow_mut();
                    match marks.last_mut() {
                        Some(m) if m.1 == *elapsed_s => m.0 = *global_step,
                        _ => marks.push((*global_step, *elapsed_s)),
                    }
                }
                Event::Done(summary) => {
                    io::publish_stats(summary, &link.marks.borrow(), link.batch_size.get())
                }
                _ => {}
            }
        }
        _ => {}
    }
    // A reply that holds the page's thread for long is worth knowing about (the page must
    // never freeze): say which, in the console.
    let kind = reply.kind();
    let t0 = io::now_ms();
    dispatch.dispatch(Action::Worker(reply));
    let ms = io::now_ms() - t0;
    if ms > SLOW_REPLY_MS {
        web_sys::console::debug_1(
            &format!("tripletlab: {kind} took {ms:.0} ms on the page").into(),
        );
    }
}

/// A reply's handling (reducer and render) above this is logged.
const SLOW_REPLY_MS: f64 = 30.0;

/// Checks the user's files on the page (names and sizes, from `File.size`, before anything is
/// read), then hands them to the worker.
fn open_files(link: &Link, dispatch: &Dispatch, files: Vec<web_sys::File>) {
    if files.is_empty() {
        return;
    }
    if let Some(big) = files.iter().find(|f| f.size() > MAX_FILE_BYTES as f64) {
        return dispatch.dispatch(Action::FileError(format!(
            "{} is {:.0} MB; files of up to {} MB are accepted",
            big.name(),
            big.size() / (1u64 << 20) as f64,
            MAX_FILE_BYTES >> 20
        )));
    }
    let id = link.id();
    dispatch.dispatch(Action::LoadRequested(id));
    let names = files.iter().map(|f| f.name()).collect();
    let sizes = files.iter().map(|f| f.size() as u64).collect();
    link.send_files(&Command::LoadFiles { id, names, sizes }, &files);
}

/// Sends Train with the form's settings (the worker refuses it while a run is active).
fn start_training(link: &Link, dispatch: &Dispatch, state: &State) {
    let Some(mut config) = state.checked().config else {
        return;
    };
    // Refresh the projection a few times per epoch (and at every epoch end).
    let n_train = config
        .train_limit
        .unwrap_or(usize::MAX)
        .min(state.dataset_sizes.0);
    let steps = n_train.div_ceil(config.batch_size.max(1));
    config.embed_every = state
        .embed_every
        .unwrap_or_else(|| if steps >= 40 { steps.div_ceil(4) } else { 0 });
    link.marks.borrow_mut().clear();
    link.batch_size.set(config.batch_size);
    let id = link.id();
    dispatch.dispatch(Action::TrainRequested(id));
    link.send(&Command::Train { id, config });
}

/// The root component.
#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| State::from_url(&url::read_pairs()));
    let link: LinkRef = use_mut_ref(Link::default);

    // Start-up: the worker, its device, then the dataset named in the URL.
    {
        let dispatch = state.dispatcher();
        let link = link.clone();
        let state = (*state).clone();
        use_effect_with((), move |_| connect(&link, &dispatch, &state));
    }

    // Keep the URL in step with the form and the UMAP fields so a run can be shared.
    {
        let extra = state.extra_query.clone();
        use_effect_with(
            (state.form.clone(), state.layout_form.clone()),
            move |(form, layout_form)| {
                let mut pairs = form.to_pairs();
                pairs.extend(layout_form.to_pairs());
                pairs.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
                url::write_pairs(&pairs);
            },
        );
    }

    let on_field = {
        let dispatch = state.dispatcher();
        let link = link.clone();
        Callback::from(move |(key, value): (String, String)| {
            if key == "dataset" {
                let link = link.borrow();
                if let Ok(which) = value.parse::<BundledDataset>() {
                    load_bundled(&link, &dispatch, which);
                } else if value == "custom" {
                    let id = link.id();
                    dispatch.dispatch(Action::LoadRequested(id));
                    link.send(&Command::UseCustom { id });
                }
            }
            dispatch.dispatch(Action::Field(key, value));
        })
    };
    let on_files = {
        let dispatch = state.dispatcher();
        let link = link.clone();
        Callback::from(move |files: Vec<web_sys::File>| {
            open_files(&link.borrow(), &dispatch, files)
        })
    };
    let on_weights_file = {
        let link = link.clone();
        Callback::from(move |file: web_sys::File| {
            link.borrow()
                .send_files(&Command::LoadWeights { name: file.name() }, &[file]);
        })
    };
    let on_train = {
        let link = link.clone();
        let state = state.clone();
        Callback::from(move |_: ()| start_training(&link.borrow(), &state.dispatcher(), &state))
    };
    let on_control = {
        let link = link.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |c: Control| {
            link.borrow().send(&Command::Control(c));
            dispatch.dispatch(Action::ControlRequested(c));
        })
    };
    let on_download = {
        let link = link.clone();
        Callback::from(move |what: Export| link.borrow().send(&Command::Export(what)))
    };
    let on_layout = {
        let projection = state.projection.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |_: ()| {
            let Some(p) = &projection else { return };
            let header = format!("{}, {} points", p.kind, p.points.0.len());
            let text = tripletlab_core::embedding_projector::layout_tsv(&header, &p.points.0);
            if let Err(e) = io::download(
                "projection.tsv",
                text.as_bytes(),
                "text/tab-separated-values",
            ) {
                dispatch.dispatch(Action::Notice(state::Notice::error(format!(
                    "download failed: {e}"
                ))));
            }
        })
    };
    let on_run_layout = {
        let link = link.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |request: LayoutRequest| {
            let link = link.borrow();
            let id = link.id();
            dispatch.dispatch(Action::LayoutRequested(id, request));
            link.send(&Command::Layout { id, request });
        })
    };
    let on_cancel_layout = {
        let link = link.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |_: ()| {
            dispatch.dispatch(Action::LayoutCancelled);
            link.borrow().send(&Command::CancelLayout);
        })
    };
    let on_layout_field = {
        let dispatch = state.dispatcher();
        Callback::from(move |(k, v): (String, String)| dispatch.dispatch(Action::LayoutField(k, v)))
    };
    let on_query = {
        let link = link.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |image: QueryImage| {
            let link = link.borrow();
            let id = link.id();
            dispatch.dispatch(Action::QueryRequested(id));
            link.send(&Command::Query { id, image });
        })
    };
    let on_dismiss = {
        let dispatch = state.dispatcher();
        Callback::from(move |i: usize| dispatch.dispatch(Action::Dismiss(i)))
    };

    let checked = state.checked();
    let phase = state.phase;
    let busy = matches!(phase, Phase::Training | Phase::Paused);
    let can_train = checked.config.is_some() && state.dataset_ready && state.device_ready && !busy;
    let can_download = state.embeddings.is_some();
    let can_weights = state.weights_available && !busy;
    let proj = state.projection.clone();
    let place = state.query_place();

    html! {
        <div class="app" data-state={phase.as_str()}>
            <header class="top">
                <h1>{ "tripletlab" }</h1>
                <span class="adapter" data-testid="adapter">
                    { "adapter: " }{ state.adapter.clone().unwrap_or_else(|| "starting…".into()) }
                </span>
                <span class="dataset-status" data-testid="dataset">{ state.dataset_label() }</span>
            </header>
            <Banner notices={state.notices.clone()} on_dismiss={on_dismiss} />
            <main class="layout">
                <aside class="side">
                    <Controls
                        form={state.form.clone()}
                        errors={Rc::new(checked.errors.clone())}
                        phase={phase}
                        can_train={can_train}
                        custom_label={state.custom_label.clone()}
                        file_error={state.file_error.clone()}
                        weights_label={state.weights_label.clone()}
                        on_field={on_field}
                        on_files={on_files}
                        on_weights_file={on_weights_file}
                        on_train={on_train}
                        on_control={on_control}
                        batch_max={state.batch_limit.as_ref().map(|l| l.max)}
                        pk_note={state.pk_note()}
                    />
                    <Downloads
                        can_download={can_download}
                        can_weights={can_weights}
                        embeddings_note={state.embeddings.as_ref().map(|e| e.note())}
                        can_layout={proj.is_some()}
                        on_download={on_download}
                        on_layout={on_layout}
                    />
                </aside>
                <section class="main">
                    <Projection
                        points={proj.as_ref().map(|p| p.points.clone())}
                        kind={proj.as_ref().map(|p| p.kind.clone()).unwrap_or_default()}
                        embeddings={state.embeddings.clone()}
                        test={state.test.clone()}
                        class_names={state.class_names.clone()}
                        layout={state.layout.clone()}
                        can_layout={state.embeddings.is_some() && !busy}
                        layout_form={state.layout_form.clone()}
                        on_layout={on_run_layout}
                        on_cancel={on_cancel_layout}
                        on_field={on_layout_field}
                        query_mark={place.as_ref().map(|(xy, _)| *xy)}
                    />
                    <div class="row">
                        <LossChart
                            losses={state.losses.clone()}
                            epoch_losses={state.epoch_losses.clone()}
                            steps_per_epoch={state.progress.steps_per_epoch}
                        />
                        <MetricsTable rows={state.metrics.clone()} final_metrics={state.final_metrics.clone()} raw_pixels={state.raw_pixels.clone()} />
                    </div>
                    <MiningChart
                        steps={state.mining_steps.clone()}
                        epochs={state.epoch_figures.clone()}
                        mining={state.run_mining}
                    />
                    <TripletsPanel sample={state.triplets.clone()} class_names={state.class_names.clone()} />
                    <Progress progress={state.progress.clone()} phase={phase} skipped={state.skipped} />
                    <QueryPanel
                        n_test={state.embeddings.as_ref().map_or(0, |e| e.labels.0.len())}
                        test={state.test.clone()}
                        class_names={state.class_names.clone()}
                        can_ask={state.embeddings.is_some()}
                        pending={state.query_pending.is_some()}
                        answer={state.query.clone()}
                        placement={place.map(|(_, how)| how)}
                        on_query={on_query}
                    />
                    <ConfusionPanel
                        rows={state.metrics.clone()}
                        final_metrics={state.final_metrics.clone()}
                        raw_pixels={state.raw_pixels.clone()}
                        labels={state.embeddings.as_ref().map(|e| e.labels.clone())}
                        test={state.test.clone()}
                        class_names={state.class_names.clone()}
                    />
                </section>
            </main>
        </div>
    }
}
