//! What the worker holds between commands (device, datasets, weights, the last run's trainer,
//! the latest embeddings) and how each [`Command`] acts on it. Long work runs in `spawn_local`
//! tasks that yield between steps and slices; no `RefCell` borrow is held across an await.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use crate::backend::{BackendChoice, BackendKind};
use crate::data::{BundledDataset, FileRole, MAX_FILE_BYTES, Split, load_named_files, load_split};
use crate::export::{meta_tsv_string, vecs_tsv_string};
use crate::gpu;
use crate::model::{EMBEDDING_DIM, EmbedNetConfig};
use crate::projection::{TsneParams, TsnePrep};
use crate::protocol::{BatchLimit, Command, Export, Id, Reply, TestImages};
use crate::train::{
    self, Control, Event, Host, TrainConfig, TrainError, Trainer, embed_sliced, run,
};

use super::device::{DeviceInfo, init_device};
use super::host::WorkerHost;
use super::io::{self, SLICE_MS, post};

/// Points whose t-SNE neighbours are found between two looks at the clock (≈ 1 ms each for
/// 10,000 points in wasm).
const TSNE_PREP_POINTS: usize = 4;

/// The latest test embeddings (what the downloads and t-SNE use).
#[derive(Clone)]
pub struct Latest {
    pub vectors: Arc<Vec<f32>>,
    pub labels: Arc<Vec<u8>>,
}

/// Everything the worker keeps.
#[derive(Default)]
pub struct Session {
    backend: BackendChoice,
    device: Option<DeviceInfo>,
    /// The current dataset and its name.
    split: Option<(Rc<Split>, Option<BundledDataset>)>,
    /// Bundled datasets already loaded, so switching back is instant.
    cache: Vec<(BundledDataset, Rc<Split>)>,
    /// The user's own files, once read, with their description.
    custom: Option<(String, Rc<Split>)>,
    /// The latest dataset request; older ones are dropped when they finish.
    latest_load: Id,
    /// An uploaded weights file for the next run.
    weights: Option<(String, Vec<u8>)>,
    /// The active run's id and its control.
    pub active: Option<(Id, Rc<Cell<Control>>)>,
    /// The last finished run's trainer (its weights can be downloaded).
    kept: Option<Trainer>,
    /// The weights at the last epoch end (survive a lost device).
    pub checkpoint: Option<Vec<u8>>,
    /// The latest test embeddings.
    pub latest: Option<Latest>,
    /// The latest t-SNE request (0: none); a running one ends when this changes.
    latest_tsne: Id,
    /// Devices started so far (a lost device is replaced by the next).
    device_starts: usize,
}

pub type SharedSession = Rc<RefCell<Session>>;

/// Acts on one command from the page.
pub fn handle(session: &SharedSession, command: Command, files: Vec<File>) {
    match command {
        Command::Start { backend } => {
            session.borrow_mut().backend = backend;
            start_device(session.clone());
        }
        Command::LoadBundled { id, dataset } => load_bundled(session.clone(), id, dataset),
        Command::LoadFiles { id, names, sizes } => {
            load_files(session.clone(), id, names, sizes, files)
        }
        Command::UseCustom { id } => {
            let mut s = session.borrow_mut();
            s.latest_load = id;
            match s.custom.clone() {
                Some((label, split)) => {
                    drop(s);
                    make_current(session, id, split, label, None);
                }
                None => post(&Reply::FilesRejected {
                    id,
                    message: "no files of yours are loaded yet (use Open IDX files…)".into(),
                }),
            }
        }
        Command::LoadWeights { name } => load_weights(session.clone(), name, files),
        Command::Train { id, config } => train(session, id, config),
        Command::Control(control) => {
            if let Some((_, flag)) = &session.borrow().active {
                if control == Control::Stop && flag.get() != Control::Stop {
                    // Said at once: the run itself ends when the device has caught up.
                    post(&Reply::Stopping);
                }
                flag.set(control);
            }
        }
        Command::Tsne { id } => tsne(session.clone(), id),
        Command::Export(what) => export(session.clone(), what),
    }
}

fn start_device(session: SharedSession) {
    let (backend, start) = {
        let mut s = session.borrow_mut();
        s.device_starts += 1;
        (s.backend, s.device_starts - 1)
    };
    spawn_local(async move {
        let info = init_device(backend, start).await;
        post(&Reply::DeviceReady {
            webgpu: info.kind == BackendKind::Wgpu,
            adapter: info.adapter.clone(),
            fallback: info.fallback.clone(),
            batch_limit: batch_limit(&info),
        });
        session.borrow_mut().device = Some(info);
    });
}

/// The largest batch `device` trains: on WebGPU the WGSL engine's (its buffers must fit the
/// device's largest storage binding; the page never falls back to burn's autodiff there, which
/// cannot check a step's loss before its update in a browser); on the CPU the settings' limit
/// (the e2e test trains a batch of 4,096 in the page).
fn batch_limit(device: &DeviceInfo) -> BatchLimit {
    match (device.kind, gpu::max_batch(&device.device)) {
        (BackendKind::Wgpu, Some(max)) => BatchLimit {
            max,
            why: "on WebGPU, the largest batch whose buffers fit in this device's largest \
                  storage buffer"
                .into(),
        },
        _ => BatchLimit {
            max: train::MAX_BATCH,
            why: "the largest batch the settings allow".into(),
        },
    }
}

/// Makes `split` current and tells the page (unless a later load superseded `id`).
fn make_current(
    session: &SharedSession,
    id: Id,
    split: Rc<Split>,
    name: String,
    bundled: Option<BundledDataset>,
) {
    {
        let mut s = session.borrow_mut();
        if s.latest_load != id {
            return;
        }
        s.split = Some((split.clone(), bundled));
    }
    let class_names = bundled
        .unwrap_or(BundledDataset::Mnist)
        .class_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    post(&Reply::DatasetLoaded {
        id,
        name,
        custom: bundled.is_none(),
        n_train: split.train.len(),
        n_test: split.test.len(),
        class_names,
        test: TestImages::from(&split.test),
    });
}

fn load_bundled(session: SharedSession, id: Id, which: BundledDataset) {
    let cached = {
        let mut s = session.borrow_mut();
        s.latest_load = id;
        s.cache
            .iter()
            .find(|(d, _)| *d == which)
            .map(|(_, split)| split.clone())
    };
    let name = which.display_name().to_string();
    if let Some(split) = cached {
        return make_current(&session, id, split, name, Some(which));
    }
    post(&Reply::DatasetLoading {
        id,
        name: name.clone(),
    });
    spawn_local(async move {
        let mut files: Vec<Vec<u8>> = Vec::with_capacity(4);
        for role in FileRole::ALL {
            if session.borrow().latest_load != id {
                return;
            }
            match io::fetch_bytes(&which.file_path(role)).await {
                Ok(bytes) => files.push(bytes),
                Err(e) => {
                    if session.borrow().latest_load == id {
                        post(&Reply::DatasetFailed {
                            id,
                            message: format!("could not load the bundled {name}: {e}"),
                        });
                    }
                    return;
                }
            }
        }
        if session.borrow().latest_load != id {
            return;
        }
        match load_split(&files[0], &files[1], &files[2], &files[3]) {
            Ok(split) => {
                let split = Rc::new(split);
                session.borrow_mut().cache.push((which, split.clone()));
                make_current(&session, id, split, name, Some(which));
            }
            Err(e) => post(&Reply::DatasetFailed {
                id,
                message: format!("the bundled {name} is not readable: {e}"),
            }),
        }
    });
}

fn load_files(
    session: SharedSession,
    id: Id,
    names: Vec<String>,
    sizes: Vec<u64>,
    files: Vec<File>,
) {
    session.borrow_mut().latest_load = id;
    let reject = move |message: String| post(&Reply::FilesRejected { id, message });
    if files.len() != names.len() || sizes.len() != names.len() {
        return reject("the files did not reach the worker".into());
    }
    if let Some((name, size)) = names.iter().zip(&sizes).find(|(_, s)| **s > MAX_FILE_BYTES) {
        return reject(format!(
            "{name} is {} MB; files of up to {} MB are accepted",
            size >> 20,
            MAX_FILE_BYTES >> 20
        ));
    }
    spawn_local(async move {
        let mut named: Vec<(String, Vec<u8>)> = Vec::new();
        for f in &files {
            match io::file_bytes(f).await {
                Ok(bytes) => named.push((f.name(), bytes)),
                Err(e) => return reject(e),
            }
        }
        let recognised = named
            .iter()
            .filter(|(n, _)| crate::data::role_from_file_name(n).is_some())
            .count();
        if recognised == 0 {
            return reject(format!(
                "none of {} is named like an MNIST file (expected {})",
                names.join(", "),
                FileRole::ALL.map(|r| r.file_name()).join(", ")
            ));
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
                session.borrow_mut().custom = Some((label.clone(), split.clone()));
                make_current(&session, id, split, label, None);
            }
            Err(e) => reject(format!("could not open your files: {e}")),
        }
    });
}

fn load_weights(session: SharedSession, name: String, files: Vec<File>) {
    spawn_local(async move {
        let Some(file) = files.first() else {
            return post(&Reply::WeightsRejected {
                message: format!("{name}: the file did not reach the worker"),
            });
        };
        let bytes = match io::file_bytes(file).await {
            Ok(b) => b,
            Err(e) => return post(&Reply::WeightsRejected { message: e }),
        };
        let device = session.borrow().device.as_ref().map(|d| d.device.clone());
        let Some(device) = device else {
            return post(&Reply::WeightsRejected {
                message: "the device is not ready yet".into(),
            });
        };
        match EmbedNetConfig::new().load_safetensors(&bytes, &device) {
            Ok(_) => {
                session.borrow_mut().weights = Some((name.clone(), bytes));
                post(&Reply::WeightsLoaded { name });
            }
            Err(e) => post(&Reply::WeightsRejected {
                message: format!("{name}: {e}"),
            }),
        }
    });
}

/// Builds the trainer of a new run, or says why it cannot start.
fn new_trainer(s: &Session, config: &TrainConfig) -> Result<Trainer, String> {
    let device = s
        .device
        .as_ref()
        .ok_or("the device is still starting")?
        .device
        .clone();
    let (split, _) = s.split.as_ref().ok_or("no dataset is loaded yet")?;
    match &s.weights {
        Some((name, bytes)) => EmbedNetConfig::new()
            .load_safetensors(bytes, &device)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|model| {
                Trainer::with_model(config.clone(), split, &device, model)
                    .map_err(|e| e.to_string())
            }),
        None => Trainer::new(config.clone(), split, &device).map_err(|e| e.to_string()),
    }
}

fn train(session: &SharedSession, id: Id, config: TrainConfig) {
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
        // A new run cancels a running t-SNE (page ids start at 1).
        s.latest_tsne = 0;
        (trainer, control, s.weights.as_ref().map(|(n, _)| n.clone()))
    };
    post(&Reply::TrainStarted {
        id,
        epochs: config.epochs,
        from_weights,
    });
    let session = session.clone();
    spawn_local(async move {
        let mut host = WorkerHost::new(session.clone(), id, control);
        let result = run(&mut trainer, &mut host).await;
        let lost_device = matches!(result, Err(TrainError::Device(_)));
        let stopped = matches!(&result, Ok(summary) if summary.stopped);
        session.borrow_mut().active = None;
        if stopped && let Some((epoch, step)) = host.stale_embeddings() {
            embed_stopped(&session, &trainer, &mut host, epoch, step).await;
        }
        host.finish_pca().await;
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
        if lost_device {
            start_device(session);
        }
    });
}

/// After a Stop (which ends a run at once, even mid-evaluation), the test embeddings of the
/// weights at the stop, so the downloads hold what was learnt. In slices; given up when a new
/// run starts meanwhile.
async fn embed_stopped(
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

fn tsne(session: SharedSession, id: Id) {
    let latest = {
        let mut s = session.borrow_mut();
        s.latest_tsne = id;
        s.latest.clone()
    };
    let Some(latest) = latest else {
        return post(&Reply::TsneEnded {
            id,
            error: Some("there are no embeddings yet".into()),
        });
    };
    spawn_local(async move {
        io::yield_now().await;
        let n = latest.labels.len();
        let params = TsneParams {
            // t-SNE needs perplexity < n; keep the usual 30 when there are enough points.
            perplexity: 30f32.min((n.saturating_sub(1) / 3).max(1) as f32),
            ..TsneParams::default()
        };
        let mut prep = match TsnePrep::new(&latest.vectors, EMBEDDING_DIM, params) {
            Ok(p) => p,
            Err(e) => {
                return post(&Reply::TsneEnded {
                    id,
                    error: Some(e.to_string()),
                });
            }
        };
        // The neighbour search (seconds for 10,000 points), in slices of about 20 ms.
        loop {
            let t0 = io::now_ms();
            let mut done = false;
            while !done && io::now_ms() - t0 < SLICE_MS {
                done = prep.advance(TSNE_PREP_POINTS);
            }
            if done {
                break;
            }
            io::yield_now().await;
            if session.borrow().latest_tsne != id {
                return post(&Reply::TsneEnded { id, error: None });
            }
        }
        let mut tsne = prep.finish();
        let total = tsne.total_iters();
        while !tsne.is_done() {
            if session.borrow().latest_tsne != id {
                return post(&Reply::TsneEnded { id, error: None });
            }
            // Bounded slices; a layout for the page about every 100 ms.
            let t0 = io::now_ms();
            while !tsne.is_done() && io::now_ms() - t0 < 100.0 {
                let t1 = io::now_ms();
                while !tsne.is_done() && io::now_ms() - t1 < SLICE_MS {
                    tsne.step(1);
                }
                io::yield_now().await;
                if session.borrow().latest_tsne != id {
                    return post(&Reply::TsneEnded { id, error: None });
                }
            }
            post(&Reply::TsneProgress {
                id,
                iter: tsne.iteration(),
                total,
                points: tsne.embedding(),
            });
        }
        post(&Reply::TsneDone { id });
    });
}

fn export(session: SharedSession, what: Export) {
    let download = |name: &str, mime: &str, bytes: Vec<u8>| {
        post(&Reply::Download {
            name: name.into(),
            mime: mime.into(),
            bytes,
        })
    };
    let problem = |message: String| post(&Reply::Problem { message });
    match what {
        Export::Vecs | Export::Meta => {
            let Some(latest) = session.borrow().latest.clone() else {
                return problem("there are no embeddings to download yet".into());
            };
            if what == Export::Vecs {
                match vecs_tsv_string(&latest.vectors, EMBEDDING_DIM) {
                    Ok(text) => {
                        download("vecs.tsv", "text/tab-separated-values", text.into_bytes())
                    }
                    Err(e) => problem(format!("vecs.tsv: {e}")),
                }
            } else {
                download(
                    "meta.tsv",
                    "text/tab-separated-values",
                    meta_tsv_string(&latest.labels).into_bytes(),
                );
            }
        }
        Export::Weights => {
            // The last run's trainer while it is kept, else the last epoch end's copy.
            let trainer = session.borrow_mut().kept.take();
            let Some(trainer) = trainer else {
                return match session.borrow().checkpoint.clone() {
                    Some(bytes) => download("weights.safetensors", "application/octet-stream", bytes),
                    None => problem("there are no weights to download yet (they exist from the first epoch end)".into()),
                };
            };
            spawn_local(async move {
                let bytes = trainer.model().to_safetensors().await;
                {
                    let mut s = session.borrow_mut();
                    // Unless a new run started meanwhile.
                    if s.active.is_none() && s.kept.is_none() {
                        s.kept = Some(trainer);
                    }
                }
                match bytes {
                    Ok(b) => download("weights.safetensors", "application/octet-stream", b),
                    Err(e) => problem(format!("weights download failed: {e}")),
                }
            });
        }
    }
}
