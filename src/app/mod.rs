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
mod link;
pub mod loss_chart;
pub mod metrics;
pub mod mining_chart;
pub mod plot;
pub mod progress;
pub mod projection;
mod start;
pub mod triplets;

use std::rc::Rc;

use yew::prelude::*;

use crate::web::url;
use link::{Link, LinkRef, connect, download, load_bundled, open_files, start_training};
use tripletlab_core::data::BundledDataset;
use tripletlab_core::run::Control;
use tripletlab_protocol::{Command, Export, LayoutRequest, QueryImage};

pub use start::start;

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

/// What the components call back: each turns a user's action into a command to the worker,
/// an action of the reducer, or both.
struct Handlers {
    on_field: Callback<(String, String)>,
    on_files: Callback<Vec<web_sys::File>>,
    on_weights_file: Callback<web_sys::File>,
    on_train: Callback<()>,
    on_control: Callback<Control>,
    on_download: Callback<Export>,
    on_layout_download: Callback<()>,
    on_run_layout: Callback<LayoutRequest>,
    on_cancel_layout: Callback<()>,
    on_layout_field: Callback<(String, String)>,
    on_query: Callback<QueryImage>,
    on_dismiss: Callback<usize>,
}

/// A callback that sends what `command` makes of its input, with a fresh request id, after
/// telling the reducer what `requested` makes of that id.
fn request<T: 'static>(
    link: &LinkRef,
    state: &UseReducerHandle<State>,
    requested: impl Fn(tripletlab_protocol::Id, &T) -> Action + 'static,
    command: impl Fn(tripletlab_protocol::Id, T) -> Command + 'static,
) -> Callback<T> {
    let (link, dispatch) = (link.clone(), state.dispatcher());
    Callback::from(move |input: T| {
        let link = link.borrow();
        let id = link.id();
        dispatch.dispatch(requested(id, &input));
        link.send(&command(id, input));
    })
}

/// The dataset field also loads the dataset picked (a bundled one, or the user's files again).
fn on_field(link: &LinkRef, state: &UseReducerHandle<State>) -> Callback<(String, String)> {
    let (link, dispatch) = (link.clone(), state.dispatcher());
    Callback::from(move |(key, value): (String, String)| {
        if key == tripletlab_core::run::settings::DATASET.key {
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
}

/// The projection shown, as `projection.tsv`.
fn on_layout_download(state: &UseReducerHandle<State>) -> Callback<()> {
    let (projection, dispatch) = (state.projection.clone(), state.dispatcher());
    Callback::from(move |_: ()| {
        let Some(p) = &projection else { return };
        let header = format!("{}, {} points", p.kind, p.points.0.len());
        let text = tripletlab_core::embedding_projector::layout_tsv(&header, &p.points.0);
        download(
            &dispatch,
            "projection.tsv",
            text.as_bytes(),
            "text/tab-separated-values",
        );
    })
}

impl Handlers {
    fn new(state: &UseReducerHandle<State>, link: &LinkRef) -> Self {
        let dispatch = state.dispatcher();
        let send = |command: fn(Control) -> Command| {
            let (link, dispatch) = (link.clone(), dispatch.clone());
            Callback::from(move |c: Control| {
                link.borrow().send(&command(c));
                dispatch.dispatch(Action::ControlRequested(c));
            })
        };
        let (l, d) = (link.clone(), dispatch.clone());
        let on_files = Callback::from(move |files| open_files(&l.borrow(), &d, files));
        let l = link.clone();
        let on_weights_file = Callback::from(move |file: web_sys::File| {
            l.borrow()
                .send_files(&Command::LoadWeights { name: file.name() }, &[file])
        });
        let (l, st) = (link.clone(), state.clone());
        let on_train =
            Callback::from(move |_: ()| start_training(&l.borrow(), &st.dispatcher(), &st));
        let l = link.clone();
        let on_download =
            Callback::from(move |what: Export| l.borrow().send(&Command::Export(what)));
        let (l, d) = (link.clone(), dispatch.clone());
        let on_cancel_layout = Callback::from(move |_: ()| {
            d.dispatch(Action::LayoutCancelled);
            l.borrow().send(&Command::CancelLayout);
        });
        let d = dispatch.clone();
        let on_layout_field = Callback::from(move |(k, v)| d.dispatch(Action::LayoutField(k, v)));
        let d = dispatch.clone();
        Self {
            on_field: on_field(link, state),
            on_files,
            on_weights_file,
            on_train,
            on_control: send(Command::Control),
            on_download,
            on_layout_download: on_layout_download(state),
            on_run_layout: request(
                link,
                state,
                |id, r| Action::LayoutRequested(id, *r),
                |id, request| Command::Layout { id, request },
            ),
            on_cancel_layout,
            on_layout_field,
            on_query: request(
                link,
                state,
                |id, _| Action::QueryRequested(id),
                |id, image| Command::Query { id, image },
            ),
            on_dismiss: Callback::from(move |i| d.dispatch(Action::Dismiss(i))),
        }
    }
}

/// The root component: the state, the worker's link, and the page's two columns.
#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| State::from_url(&url::read_pairs()));
    let link: LinkRef = use_mut_ref(Link::default);
    // Start-up: the worker, its device, then the dataset named in the URL.
    {
        let (dispatch, link, state) = (state.dispatcher(), link.clone(), (*state).clone());
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
    let h = Handlers::new(&state, &link);
    html! {
        <div class="app" data-state={state.phase.as_str()}>
            <header class="top">
                <h1>{ "tripletlab" }</h1>
                <span class="adapter" data-testid="adapter">
                    { "adapter: " }{ state.adapter.clone().unwrap_or_else(|| "starting…".into()) }
                </span>
                <span class="dataset-status" data-testid="dataset">{ state.dataset_label() }</span>
            </header>
            <Banner notices={state.notices.clone()} on_dismiss={h.on_dismiss.clone()} />
            <main class="layout">
                { side(&state, &h) }
                { main_column(&state, &h) }
            </main>
        </div>
    }
}

/// Whether a run is under way (training or paused).
fn busy(state: &State) -> bool {
    matches!(state.phase, Phase::Training | Phase::Paused)
}

/// The left column: the settings and the downloads.
fn side(state: &State, h: &Handlers) -> Html {
    let checked = state.checked();
    let busy = busy(state);
    let can_train = checked.config.is_some() && state.dataset_ready && state.device_ready && !busy;
    html! {
        <aside class="side">
            <Controls
                form={state.form.clone()}
                errors={Rc::new(checked.errors.clone())}
                phase={state.phase}
                can_train={can_train}
                custom_label={state.custom_label.clone()}
                file_error={state.file_error.clone()}
                weights_label={state.weights_label.clone()}
                on_field={h.on_field.clone()}
                on_files={h.on_files.clone()}
                on_weights_file={h.on_weights_file.clone()}
                on_train={h.on_train.clone()}
                on_control={h.on_control.clone()}
                batch_max={state.batch_limit.as_ref().map(|l| l.max)}
                pk_note={state.pk_note()}
            />
            <Downloads
                can_download={state.embeddings.is_some()}
                can_weights={state.weights_available && !busy}
                embeddings_note={state.embeddings.as_ref().map(|e| e.note())}
                can_layout={state.projection.is_some()}
                on_download={h.on_download.clone()}
                on_layout={h.on_layout_download.clone()}
            />
        </aside>
    }
}

/// The main column: the projection, the charts and tables, the triplets, the progress, the
/// questions and the confusion matrix.
fn main_column(state: &State, h: &Handlers) -> Html {
    let proj = state.projection.clone();
    let place = state.query_place();
    let labels = state.embeddings.as_ref().map(|e| e.labels.clone());
    html! {
        <section class="main">
            <Projection
                points={proj.as_ref().map(|p| p.points.clone())}
                kind={proj.as_ref().map(|p| p.kind.clone()).unwrap_or_default()}
                embeddings={state.embeddings.clone()}
                test={state.test.clone()}
                class_names={state.class_names.clone()}
                layout={state.layout.clone()}
                can_layout={state.embeddings.is_some() && !busy(state)}
                layout_form={state.layout_form.clone()}
                on_layout={h.on_run_layout.clone()}
                on_cancel={h.on_cancel_layout.clone()}
                on_field={h.on_layout_field.clone()}
                query_mark={place.as_ref().map(|(xy, _)| *xy)}
            />
            <div class="row">
                <LossChart losses={state.losses.clone()} epoch_losses={state.epoch_losses.clone()}
                    steps_per_epoch={state.progress.steps_per_epoch} />
                <MetricsTable rows={state.metrics.clone()} final_metrics={state.final_metrics.clone()} raw_pixels={state.raw_pixels.clone()} />
            </div>
            <MiningChart steps={state.mining_steps.clone()} epochs={state.epoch_figures.clone()} mining={state.run_mining} />
            <TripletsPanel sample={state.triplets.clone()} class_names={state.class_names.clone()} />
            <Progress progress={state.progress.clone()} phase={state.phase} skipped={state.skipped} />
            <QueryPanel
                n_test={labels.as_ref().map_or(0, |l| l.0.len())}
                test={state.test.clone()}
                class_names={state.class_names.clone()}
                can_ask={state.embeddings.is_some()}
                pending={state.query_pending.is_some()}
                answer={state.query.clone()}
                placement={place.map(|(_, how)| how)}
                on_query={h.on_query.clone()}
            />
            <ConfusionPanel rows={state.metrics.clone()} final_metrics={state.final_metrics.clone()}
                raw_pixels={state.raw_pixels.clone()} {labels} test={state.test.clone()}
                class_names={state.class_names.clone()} />
        </section>
    }
}
