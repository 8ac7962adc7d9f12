//! The page's end of the worker: starts `tripletlab-worker` (trunk's classic-worker loader, same
//! origin, so the Content-Security-Policy needs no `blob:`), posts [`Command`]s as bincode bytes
//! in a transferred buffer (with the user's `File`s attached, never copied here), and hands each
//! decoded [`Reply`] — or the worker's crash — to the page.
//!
//! Written on `web_sys::Worker` rather than gloo-worker: gloo-worker panics when a worker
//! cannot be spawned or a message cannot be decoded, and does not expose the worker's `error`
//! event, which is how the page learns that the worker died (e.g. out of memory).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use tripletlab_protocol::js::js_error_text;
use tripletlab_protocol::{Command, Reply, decode, encode};

/// The worker's loader script, beside the page (trunk writes it; `index.html` asks for it).
pub const WORKER_SCRIPT: &str = "./tripletlab-worker_loader.js";

/// What reaches the page from the worker.
pub enum Incoming {
    /// A reply.
    Reply(Reply),
    /// The worker died (its wasm trapped, e.g. out of memory) or could not start.
    Crashed(String),
}

/// A running worker and the commands waiting for it to listen.
pub struct Bridge {
    worker: Worker,
    listening: Rc<Cell<bool>>,
    queue: Rc<RefCell<Vec<Array>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl Bridge {
    /// Starts the worker; every reply (and a crash) goes to `on_incoming`.
    pub fn spawn(on_incoming: impl Fn(Incoming) + 'static) -> Result<Bridge, String> {
        let worker = Worker::new(WORKER_SCRIPT)
            .map_err(|e| format!("the worker could not start: {}", js_error_text(&e)))?;
        let on_incoming = Rc::new(on_incoming);
        let listening = Rc::new(Cell::new(false));
        let queue: Rc<RefCell<Vec<Array>>> = Rc::default();
        let on_message = {
            let (listening, queue, worker, on_incoming) = (
                listening.clone(),
                queue.clone(),
                worker.clone(),
                on_incoming.clone(),
            );
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let bytes = Uint8Array::new(&event.data()).to_vec();
                match decode::<Reply>(&bytes) {
                    Ok(Reply::Listening) => {
                        listening.set(true);
                        for message in queue.borrow_mut().drain(..) {
                            post(&worker, &message);
                        }
                    }
                    Ok(reply) => on_incoming(Incoming::Reply(reply)),
                    Err(e) => on_incoming(Incoming::Crashed(e.to_string())),
                }
            })
        };
        let on_error = {
            let on_incoming = on_incoming.clone();
            Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
                event.prevent_default();
                let message = event.message();
                on_incoming(Incoming::Crashed(if message.is_empty() {
                    "the worker could not be loaded".into()
                } else {
                    message
                }));
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Bridge {
            worker,
            listening,
            queue,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Sends `command`, with `files` attached (held until the worker listens).
    pub fn send(&self, command: &Command, files: &[web_sys::File]) {
        let Ok(bytes) = encode(command) else {
            return;
        };
        let message = Array::new();
        message.push(&Uint8Array::from(bytes.as_slice()));
        for f in files {
            message.push(f);
        }
        if self.listening.get() {
            post(&self.worker, &message);
        } else {
            self.queue.borrow_mut().push(message);
        }
    }

    /// Ends the worker at once (its work is lost).
    pub fn terminate(&self) {
        self.worker.terminate();
    }
}

fn post(worker: &Worker, message: &Array) {
    // The command's bytes move to the worker (transferred, not copied); Files are cloned handles.
    let bytes: Uint8Array = message.get(0).unchecked_into();
    let _ = worker.post_message_with_transfer(message, &Array::of1(&bytes.buffer()));
}
