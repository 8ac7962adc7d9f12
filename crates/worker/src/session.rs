//! What the worker holds between commands (device, datasets, weights, the last run's trainer,
//! the latest embeddings) and which [`Command`] goes where: datasets and weights to `loads`, runs
//! to `run`, t-SNE and UMAP to `layout`, downloads to `export`. Long work runs in `spawn_local` tasks that
//! yield between steps and slices; no `RefCell` borrow is held across an await.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use tripletlab_core::backend::{BackendChoice, BackendKind};
use tripletlab_core::data::{BundledDataset, Dataset, Split};
use tripletlab_core::run::{self, Control};
use tripletlab_engine::gpu;
use tripletlab_engine::train::Trainer;
use tripletlab_protocol::{BatchLimit, Command, Id, Reply};

use super::device::{DeviceInfo, init_device};
use super::export::export;
use super::io::post;
use super::layout::layout;
use super::loads::{load_bundled, load_files, load_weights, make_current};
use super::query::ask;
use super::run::train;

/// The latest test embeddings (what the downloads and the layouts use).
#[derive(Clone)]
pub struct Latest {
    pub vectors: Arc<Vec<f32>>,
    /// The images they embed (the run's test set), with their labels.
    pub images: Rc<Dataset>,
}

/// The training set embedded for queries, keyed by the trainer position of its weights.
pub(super) type QueryRefs = ((usize, usize), Arc<Vec<f32>>);

/// Everything the worker keeps.
#[derive(Default)]
pub struct Session {
    pub(super) backend: BackendChoice,
    pub(super) device: Option<DeviceInfo>,
    /// The current dataset and its name.
    pub(super) split: Option<(Rc<Split>, Option<BundledDataset>)>,
    /// Bundled datasets already loaded, so switching back is instant.
    pub(super) cache: Vec<(BundledDataset, Rc<Split>)>,
    /// The user's own files, once read, with their description.
    pub(super) custom: Option<(String, Rc<Split>)>,
    /// The latest dataset request; older ones are dropped when they finish.
    pub(super) latest_load: Id,
    /// An uploaded weights file for the next run.
    pub(super) weights: Option<(String, Vec<u8>)>,
    /// The active run's id and its control.
    pub active: Option<(Id, Rc<Cell<Control>>)>,
    /// The last finished run's trainer (its weights can be downloaded).
    pub(super) kept: Option<Trainer>,
    /// The weights at the last epoch end (survive a lost device).
    pub checkpoint: Option<Vec<u8>>,
    /// The latest test embeddings.
    pub latest: Option<Latest>,
    /// The latest layout request (0: none); a running one ends when this changes.
    pub(super) latest_layout: Id,
    /// The raw-pixel baseline of the last sets it was computed for: their key and the scores.
    pub(super) baseline: Option<(u64, Result<tripletlab_core::metrics::Metrics, String>)>,
    /// The run whose baseline is being computed (a later one supersedes it).
    pub(super) latest_baseline: Id,
    /// The latest question about the embedding, until a trainer answers it.
    pub(super) pending_query: Option<(Id, tripletlab_protocol::QueryImage)>,
    /// The latest question's id (an older one's work stops).
    pub(super) latest_query: Id,
    /// The training set embedded for queries, with the trainer position of its weights.
    pub(super) query_refs: Option<QueryRefs>,
    /// The basis of the PCA layout last shown.
    pub(super) pca_basis: Option<Rc<tripletlab_core::projection::PcaBasis>>,
    /// Devices started so far (a lost device is replaced by the next).
    pub(super) device_starts: usize,
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
        Command::Layout { id, request } => layout(session.clone(), id, request),
        Command::CancelLayout => session.borrow_mut().latest_layout = 0,
        Command::Query { id, image } => ask(session, id, image),
        Command::Export(what) => export(session.clone(), what),
    }
}

pub(super) fn start_device(session: SharedSession) {
    let (backend, start) = {
        let mut s = session.borrow_mut();
        s.device_starts += 1;
        (s.backend, s.device_starts - 1)
    };
    spawn_local(async move {
        let info = init_device(backend, start).await;
        post(&Reply::DeviceReady {
            webgpu: info.kind == BackendKind::Gpu,
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
        (BackendKind::Gpu, Some(max)) => BatchLimit {
            max,
            why: "on WebGPU, the largest batch whose buffers fit in this device's largest \
                  storage buffer"
                .into(),
        },
        _ => BatchLimit {
            max: run::MAX_BATCH,
            why: "the largest batch the settings allow".into(),
        },
    }
}
