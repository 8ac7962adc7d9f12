//! The page: one root component ([`App`]) holding all state in one reducer ([`State`]), and
//! small function components for each part of the screen. Props go down, callbacks come up;
//! the browser work (device, fetch, files, downloads, the training task's host) is in
//! [`crate::web`].

pub mod banner;
pub mod controls;
pub mod downloads;
pub mod draw;
pub mod form;
pub mod loss_chart;
pub mod metrics;
pub mod progress;
pub mod projection;
pub mod state;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use burn::tensor::Device;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::backend::BackendKind;
use crate::data::{BundledDataset, FileRole, Split, load_named_files, load_split};
use crate::export::{meta_tsv_string, vecs_tsv_string};
use crate::model::{EMBEDDING_DIM, EmbedNetConfig};
use crate::projection::{Tsne, TsneParams};
use crate::train::{Event, Trainer, run};
use crate::web::host::{Control, ControlFlag, WebHost};
use crate::web::{device, io, query};

use banner::Banner;
use controls::Controls;
use downloads::Downloads;
use loss_chart::LossChart;
use metrics::MetricsTable;
use progress::Progress;
use projection::Projection;
pub use state::{Action, Phase, Shared, State};

/// What lives outside the reducer because it is not UI state: the burn device, the loaded data
/// (shared with the training task), the last trainer (for the weights download) and the flags
/// the buttons use to steer the running task.
#[derive(Default)]
pub struct Engine {
    device: Option<Device>,
    split: Option<Rc<Split>>,
    /// Bundled datasets already loaded, so switching back is instant.
    cache: Vec<(BundledDataset, Rc<Split>)>,
    /// The user's own files, once opened.
    custom: Option<(String, Rc<Split>)>,
    trainer: Option<Trainer>,
    weights: Option<(String, Vec<u8>)>,
    control: ControlFlag,
    tsne_run: u32,
}

type EngineRef = Rc<RefCell<Engine>>;
type Dispatch = UseReducerDispatcher<State>;

/// Fetches and parses a bundled dataset (cached), then makes it the current one.
fn load_bundled(engine: EngineRef, dispatch: Dispatch, which: BundledDataset) {
    let cached = engine
        .borrow()
        .cache
        .iter()
        .find(|(d, _)| *d == which)
        .map(|(_, s)| s.clone());
    if let Some(split) = cached {
        set_split(
            &engine,
            &dispatch,
            split,
            which.display_name().to_string(),
            Some(which),
        );
        return;
    }
    dispatch.dispatch(Action::DatasetLoading(which.display_name().to_string()));
    spawn_local(async move {
        let t0 = io::now_ms();
        let mut files: Vec<Vec<u8>> = Vec::with_capacity(4);
        for role in FileRole::ALL {
            match io::fetch_bytes(&which.file_path(role)).await {
                Ok(bytes) => files.push(bytes),
                Err(e) => {
                    dispatch.dispatch(Action::DatasetFailed(format!(
                        "could not load the bundled {}: {e}",
                        which.display_name()
                    )));
                    return;
                }
            }
            io::yield_now().await;
        }
        match load_split(&files[0], &files[1], &files[2], &files[3]) {
            Ok(split) => {
                let split = Rc::new(split);
                engine.borrow_mut().cache.push((which, split.clone()));
                set_split(
                    &engine,
                    &dispatch,
                    split,
                    which.display_name().to_string(),
                    Some(which),
                );
                web_sys::console::debug_1(
                    &format!(
                        "{} loaded in {:.0} ms",
                        which.display_name(),
                        io::now_ms() - t0
                    )
                    .into(),
                );
            }
            Err(e) => dispatch.dispatch(Action::DatasetFailed(format!(
                "the bundled {} is not readable: {e}",
                which.display_name()
            ))),
        }
    });
}

fn set_split(
    engine: &EngineRef,
    dispatch: &Dispatch,
    split: Rc<Split>,
    name: String,
    bundled: Option<BundledDataset>,
) {
    engine.borrow_mut().split = Some(split.clone());
    let class_names: Vec<String> = bundled
        .unwrap_or(BundledDataset::Mnist)
        .class_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    dispatch.dispatch(Action::DatasetLoaded {
        name,
        custom: bundled.is_none(),
        n_train: split.train.len(),
        n_test: split.test.len(),
        class_names: Rc::new(class_names),
        test: Shared(Arc::new(split.test.clone())),
    });
}

/// Reads the user's four IDX files; on any problem the current dataset stays.
fn open_files(engine: EngineRef, dispatch: Dispatch, files: Vec<web_sys::File>) {
    spawn_local(async move {
        let mut named: Vec<(String, Vec<u8>)> = Vec::new();
        for f in &files {
            match io::file_bytes(f).await {
                Ok(bytes) => named.push((f.name(), bytes)),
                Err(e) => {
                    dispatch.dispatch(Action::FileError(e));
                    return;
                }
            }
        }
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        let recognised = names
            .iter()
            .filter(|n| crate::data::role_from_file_name(n).is_some())
            .count();
        if recognised == 0 {
            dispatch.dispatch(Action::FileError(format!(
                "none of {} is named like an MNIST file (expected {})",
                names.join(", "),
                FileRole::ALL.map(|r| r.file_name()).join(", ")
            )));
            return;
        }
        let refs: Vec<(&str, &[u8])> = named
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        match load_named_files(&refs) {
            Ok(split) => {
                let label = format!(
                    "your files ({} train / {} test)",
                    split.train.len(),
                    split.test.len()
                );
                let split = Rc::new(split);
                engine.borrow_mut().custom = Some((label.clone(), split.clone()));
                set_split(&engine, &dispatch, split, label, None);
            }
            Err(e) => {
                dispatch.dispatch(Action::FileError(format!("could not open your files: {e}")))
            }
        }
    });
}

/// Reads an uploaded weights file and checks it loads before keeping it for the next run.
fn upload_weights(engine: EngineRef, dispatch: Dispatch, file: web_sys::File) {
    spawn_local(async move {
        let name = file.name();
        let bytes = match io::file_bytes(&file).await {
            Ok(b) => b,
            Err(e) => return dispatch.dispatch(Action::WeightsError(e)),
        };
        let device = engine.borrow().device.clone();
        let Some(device) = device else {
            return dispatch.dispatch(Action::WeightsError("the device is not ready yet".into()));
        };
        match EmbedNetConfig::new().load_safetensors(&bytes, &device) {
            Ok(_) => {
                engine.borrow_mut().weights = Some((name.clone(), bytes));
                dispatch.dispatch(Action::WeightsLoaded(name));
            }
            Err(e) => dispatch.dispatch(Action::WeightsError(format!("{name}: {e}"))),
        }
    });
}

/// Starts a training run in a `spawn_local` task.
fn start_training(engine: EngineRef, dispatch: Dispatch, state: &State) {
    let Some(mut config) = state.form.check(state.custom_loaded).config else {
        return;
    };
    let (device, split, weights, control) = {
        let e = engine.borrow();
        (
            e.device.clone(),
            e.split.clone(),
            e.weights.clone(),
            e.control.clone(),
        )
    };
    let (Some(device), Some(split)) = (device, split) else {
        return;
    };
    // Refresh the projection a few times per epoch (and at every epoch end).
    let n_train = config
        .train_limit
        .unwrap_or(usize::MAX)
        .min(split.train.len());
    let steps = n_train.div_ceil(config.batch_size.max(1));
    config.embed_every = state
        .embed_every
        .unwrap_or_else(|| if steps >= 40 { steps.div_ceil(4) } else { 0 });
    let trainer = match &weights {
        Some((name, bytes)) => EmbedNetConfig::new()
            .load_safetensors(bytes, &device)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|model| {
                Trainer::with_model(config.clone(), &split, &device, model)
                    .map_err(|e| e.to_string())
            }),
        None => Trainer::new(config.clone(), &split, &device).map_err(|e| e.to_string()),
    };
    let mut trainer = match trainer {
        Ok(t) => t,
        Err(e) => return dispatch.dispatch(Action::StartFailed(e)),
    };
    engine.borrow_mut().trainer = None;
    control.set(Control::Run);
    dispatch.dispatch(Action::TrainingRequested {
        epochs: config.epochs,
        from_weights: weights.map(|(n, _)| n),
    });
    spawn_local(async move {
        let sink_dispatch = dispatch.clone();
        let batch_size = config.batch_size;
        // (global_step, elapsed_s) at each loss read-back, for the benchmark's steady rate.
        let mut marks: Vec<(usize, f64)> = Vec::new();
        let mut host = WebHost::new(control, move |event| {
            match &event {
                Event::Step {
                    global_step,
                    elapsed_s,
                    ..
                } => match marks.last_mut() {
                    Some(m) if m.1 == *elapsed_s => m.0 = *global_step,
                    _ => marks.push((*global_step, *elapsed_s)),
                },
                Event::Done(summary) => io::publish_stats(summary, &marks, batch_size),
                _ => {}
            }
            sink_dispatch.dispatch(Action::from_event(event));
        });
        let _ = run(&mut trainer, &mut host).await;
        engine.borrow_mut().trainer = Some(trainer);
        dispatch.dispatch(Action::TrainerKept);
    });
}

/// Runs t-SNE on the latest embeddings, a few iterations per animation frame.
fn start_tsne(engine: EngineRef, dispatch: Dispatch, state: &State) {
    let Some(emb) = state.embeddings.clone() else {
        return;
    };
    let run_id = {
        let mut e = engine.borrow_mut();
        e.tsne_run += 1;
        e.tsne_run
    };
    dispatch.dispatch(Action::TsneStarted);
    spawn_local(async move {
        io::next_frame().await;
        let vectors = emb.vectors.0.clone();
        let n = vectors.len() / EMBEDDING_DIM;
        let params = TsneParams {
            // t-SNE needs perplexity < n; keep the usual 30 when there are enough points.
            perplexity: 30f32.min((n.saturating_sub(1) / 3).max(1) as f32),
            ..TsneParams::default()
        };
        let mut tsne = match Tsne::new(&vectors, EMBEDDING_DIM, params) {
            Ok(t) => t,
            Err(e) => return dispatch.dispatch(Action::TsneFailed(e.to_string())),
        };
        let total = tsne.total_iters();
        while !tsne.is_done() {
            if engine.borrow().tsne_run != run_id {
                return;
            }
            let t0 = io::now_ms();
            // About 30 ms of work per frame keeps the page responsive.
            while !tsne.is_done() && io::now_ms() - t0 < 30.0 {
                tsne.step(1);
            }
            dispatch.dispatch(Action::TsneProgress {
                iter: tsne.iteration(),
                total,
                points: Shared(Arc::new(tsne.embedding())),
            });
            io::next_frame().await;
        }
        dispatch.dispatch(Action::TsneDone);
    });
}

/// Downloads `vecs.tsv` / `meta.tsv` of the latest embeddings, or the weights.
fn download(engine: EngineRef, dispatch: Dispatch, state: &State, what: downloads::What) {
    use downloads::What;
    match what {
        What::Vecs | What::Meta => {
            let Some(emb) = &state.embeddings else { return };
            let result = match what {
                What::Vecs => vecs_tsv_string(&emb.vectors.0, EMBEDDING_DIM)
                    .map_err(|e| e.to_string())
                    .and_then(|text| {
                        io::download("vecs.tsv", text.as_bytes(), "text/tab-separated-values")
                    }),
                _ => io::download(
                    "meta.tsv",
                    meta_tsv_string(&emb.labels.0).as_bytes(),
                    "text/tab-separated-values",
                ),
            };
            if let Err(e) = result {
                dispatch.dispatch(Action::Notice(state::Notice::error(format!(
                    "download failed: {e}"
                ))));
            }
        }
        What::Weights => {
            spawn_local(async move {
                // The trainer is taken out while reading so no borrow is held across the await.
                let trainer = engine.borrow_mut().trainer.take();
                let Some(trainer) = trainer else { return };
                let bytes = trainer.model().to_safetensors().await;
                engine.borrow_mut().trainer = Some(trainer);
                let result = bytes.map_err(|e| e.to_string()).and_then(|b| {
                    io::download("weights.safetensors", &b, "application/octet-stream")
                });
                if let Err(e) = result {
                    dispatch.dispatch(Action::Notice(state::Notice::error(format!(
                        "weights download failed: {e}"
                    ))));
                }
            });
        }
    }
}

/// The root component.
#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| State::from_query(&query::read_query()));
    let engine: EngineRef = use_mut_ref(Engine::default);

    // Start-up: the device, then the dataset named in the URL.
    {
        let dispatch = state.dispatcher();
        let engine = engine.clone();
        let backend = state.backend;
        let initial = BundledDataset::from_str(state.form.get("dataset"));
        use_effect_with((), move |_| {
            spawn_local(async move {
                let info = device::init_device(backend).await;
                engine.borrow_mut().device = Some(info.device.clone());
                dispatch.dispatch(Action::DeviceReady {
                    webgpu: info.kind == BackendKind::Wgpu,
                    adapter: info.adapter,
                    fallback: info.fallback,
                });
                load_bundled(engine, dispatch, initial.unwrap_or(BundledDataset::Mnist));
            });
        });
    }

    // Keep the URL in step with the form so a run can be shared.
    {
        let form = state.form.clone();
        let extra = state.extra_query.clone();
        use_effect_with(form, move |form| {
            let mut pairs = form.to_pairs();
            pairs.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
            query::write_query(&pairs);
        });
    }

    let on_field = {
        let dispatch = state.dispatcher();
        let engine = engine.clone();
        Callback::from(move |(key, value): (String, String)| {
            if key == "dataset" {
                if let Some(which) = BundledDataset::from_str(&value) {
                    load_bundled(engine.clone(), dispatch.clone(), which);
                } else if value == "custom" {
                    let custom = engine.borrow().custom.clone();
                    if let Some((label, split)) = custom {
                        set_split(&engine, &dispatch, split, label, None);
                    }
                }
            }
            dispatch.dispatch(Action::Field(key, value));
        })
    };
    let on_files = {
        let dispatch = state.dispatcher();
        let engine = engine.clone();
        Callback::from(move |files: Vec<web_sys::File>| {
            open_files(engine.clone(), dispatch.clone(), files)
        })
    };
    let on_weights_file = {
        let dispatch = state.dispatcher();
        let engine = engine.clone();
        Callback::from(move |file: web_sys::File| {
            upload_weights(engine.clone(), dispatch.clone(), file)
        })
    };
    let on_train = {
        let engine = engine.clone();
        let state = state.clone();
        Callback::from(move |_: ()| start_training(engine.clone(), state.dispatcher(), &state))
    };
    let on_control = {
        let engine = engine.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |c: Control| {
            engine.borrow().control.set(c);
            dispatch.dispatch(Action::ControlRequested(c));
        })
    };
    let on_download = {
        let engine = engine.clone();
        let state = state.clone();
        Callback::from(move |what: downloads::What| {
            download(engine.clone(), state.dispatcher(), &state, what)
        })
    };
    let on_tsne = {
        let engine = engine.clone();
        let state = state.clone();
        Callback::from(move |_: ()| start_tsne(engine.clone(), state.dispatcher(), &state))
    };
    let on_dismiss = {
        let dispatch = state.dispatcher();
        Callback::from(move |i: usize| dispatch.dispatch(Action::Dismiss(i)))
    };

    let checked = state.form.check(state.custom_loaded);
    let phase = state.phase;
    let busy = matches!(phase, Phase::Training | Phase::Paused);
    let can_train = checked.config.is_some() && state.dataset_ready && state.device_ready && !busy;
    let can_download = state.embeddings.is_some() && !matches!(phase, Phase::Training);
    let can_weights = state.trainer_kept && !busy;
    let proj = state.projection.clone();

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
                    />
                    <Downloads
                        can_download={can_download}
                        can_weights={can_weights}
                        embeddings_note={state.embeddings.as_ref().map(|e| e.note())}
                        on_download={on_download}
                    />
                </aside>
                <section class="main">
                    <Projection
                        points={proj.as_ref().map(|p| p.points.clone())}
                        kind={proj.as_ref().map(|p| p.kind.clone()).unwrap_or_default()}
                        embeddings={state.embeddings.clone()}
                        test={state.test.clone()}
                        class_names={state.class_names.clone()}
                        tsne={state.tsne}
                        can_tsne={state.embeddings.is_some() && !busy}
                        on_tsne={on_tsne}
                    />
                    <div class="row">
                        <LossChart
                            losses={state.losses.clone()}
                            epoch_losses={state.epoch_losses.clone()}
                            steps_per_epoch={state.progress.steps_per_epoch}
                        />
                        <MetricsTable rows={state.metrics.clone()} final_metrics={state.final_metrics.clone()} />
                    </div>
                    <Progress progress={state.progress.clone()} phase={phase} skipped={state.skipped} />
                </section>
            </main>
        </div>
    }
}
