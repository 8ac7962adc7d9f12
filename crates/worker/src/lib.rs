//! tripletlab-worker, the page's Web Worker (wasm32 only): it owns all the work — the burn
//! device (WebGPU or the CPU), the loaded datasets, the weights, the trainer and its driver,
//! evaluation and the projections — and speaks to the page only through
//! [`tripletlab_protocol`]. It must not know the page's components or a document: the page's
//! thread renders and sends commands, this crate answers them.
//!
//! Built by trunk as the binary `tripletlab-worker` (`index.html`), loaded by its classic-worker
//! loader script, so the page's wasm carries no burn. Natively this crate is empty.

#![cfg(target_arch = "wasm32")]

mod baseline;
pub mod device;
mod export;
mod host;
pub mod io;
mod layout;
mod loads;
mod query;
mod run;
mod session;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use session::Session;
use tripletlab_protocol::{Command, Reply, decode};

/// Entry point of the worker binary: listens for commands, then says so.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // The page shows this and starts a fresh worker: this instance is not trusted further.
        io::post(&Reply::Problem {
            message: format!("the worker failed: {info}"),
        });
    }));
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else {
        web_sys::console::error_1(&"tripletlab-worker must run in a dedicated worker".into());
        return;
    };
    let session = Rc::new(RefCell::new(Session::default()));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        // [bincode bytes of the command, attached File objects...]
        let parts = Array::from(&event.data());
        let bytes = Uint8Array::new(&parts.get(0)).to_vec();
        let attachments: Vec<web_sys::File> = (1..parts.length())
            .filter_map(|i| parts.get(i).dyn_into().ok())
            .collect();
        match decode::<Command>(&bytes) {
            Ok(command) => session::handle(&session, command, attachments),
            Err(e) => io::post(&Reply::Problem {
                message: e.to_string(),
            }),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    io::post(&Reply::Listening);
}
