//! The page's end of the link to its worker: the [`Link`] (the bridge, request ids, the
//! benchmark's read-back marks), starting a worker and replacing one that dies ([`connect`]),
//! and the commands that need more than a message: loading a dataset, the user's files
//! (checked on the page first), and Train. Replies go to the reducer, except downloads and
//! the benchmark's stats. Knows no component.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use yew::prelude::*;

use crate::page::state::{self, Action, State};
use crate::web::bridge::{Bridge, Incoming};
use crate::web::io;
use tripletlab_core::data::{BundledDataset, MAX_FILE_BYTES};
use tripletlab_core::run::Event;
use tripletlab_protocol::{Command, Id, Reply};

pub type Dispatch = UseReducerDispatcher<State>;

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
    /// The next request id.
    pub fn id(&self) -> Id {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    /// Sends `command` to the worker (dropped while there is none).
    pub fn send(&self, command: &Command) {
        self.send_files(command, &[]);
    }

    /// Sends `command` with `files` attached.
    pub fn send_files(&self, command: &Command, files: &[web_sys::File]) {
        if let Some(bridge) = &self.bridge {
            bridge.send(command, files);
        }
    }
}

pub type LinkRef = Rc<RefCell<Link>>;

/// Starts a worker whose replies go to `dispatch`, then the device and the current dataset.
/// A worker that dies is replaced the same way.
pub fn connect(link: &LinkRef, dispatch: &Dispatch, state: &State) {
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

/// Asks the worker for a bundled dataset.
pub fn load_bundled(link: &Link, dispatch: &Dispatch, dataset: BundledDataset) {
    link.bundled.set(Some(dataset));
    let id = link.id();
    dispatch.dispatch(Action::LoadRequested(id));
    link.send(&Command::LoadBundled { id, dataset });
}

/// Replies that are not only state: downloads, and the benchmark's stats.
fn on_reply(link: &LinkRef, dispatch: &Dispatch, reply: Reply) {
    match &reply {
        Reply::Download { name, mime, bytes } => return download(dispatch, name, bytes, mime),
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

/// Offers `bytes` as the file `name`; a failure is a notice.
pub fn download(dispatch: &Dispatch, name: &str, bytes: &[u8], mime: &str) {
    if let Err(e) = io::download(name, bytes, mime) {
        dispatch.dispatch(Action::Notice(state::Notice::error(format!(
            "download failed: {e}"
        ))));
    }
}

/// A reply's handling (reducer and render) above this is logged.
const SLOW_REPLY_MS: f64 = 30.0;

/// Checks the user's files on the page (names and sizes, from `File.size`, before anything is
/// read), then hands them to the worker.
pub fn open_files(link: &Link, dispatch: &Dispatch, files: Vec<web_sys::File>) {
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
pub fn start_training(link: &Link, dispatch: &Dispatch, state: &State) {
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
