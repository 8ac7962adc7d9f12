//! The worker's side of the browser: posting replies to the page, fetching bundled files,
//! reading the user's `File`s, the clock, and yielding to the worker's event loop.
//!
//! The yield is a `MessageChannel` round trip, not a timer: timers nest-clamp to 4 ms, and a
//! page's timers are throttled in background tabs, while a worker's message tasks are not, so
//! a run in a hidden tab keeps its speed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, File, MessageChannel, MessagePort, Response};

use super::device::js_error_text;
use tripletlab_protocol::{Reply, encode};

/// Sends `reply` to the page as bincode bytes in a transferred buffer.
pub fn post(reply: &Reply) {
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else {
        return;
    };
    let bytes = match encode(reply) {
        Ok(b) => b,
        Err(e) => {
            let problem = Reply::Problem {
                message: e.to_string(),
            };
            match encode(&problem) {
                Ok(b) => b,
                Err(_) => return,
            }
        }
    };
    let array = Uint8Array::from(bytes.as_slice());
    drop(bytes);
    let _ = scope.post_message_with_transfer(&array, &Array::of1(&array.buffer()));
}

/// Copies a JS byte array into wasm memory, or says that it does not fit.
pub fn bytes_of(array: &Uint8Array, what: &str) -> Result<Vec<u8>, String> {
    let len = array.length() as usize;
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| {
        format!(
            "{what} ({} MB) does not fit in this tab's memory; close other tabs or use smaller files",
            len >> 20
        )
    })?;
    out.resize(len, 0);
    array.copy_to(&mut out);
    Ok(out)
}

/// GETs `url` (same origin) and returns the body. Bodies the server sent with
/// `Content-Encoding: gzip` arrive decompressed; the IDX loader accepts either.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let scope: DedicatedWorkerGlobalScope = js_sys::global()
        .dyn_into()
        .map_err(|_| "not in a worker".to_string())?;
    let response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: {}", js_error_text(&e)))?;
    let response: Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!(
            "{url}: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let buffer = JsFuture::from(
        response
            .array_buffer()
            .map_err(|e| format!("{url}: {}", js_error_text(&e)))?,
    )
    .await
    .map_err(|e| format!("{url}: {}", js_error_text(&e)))?;
    bytes_of(&Uint8Array::new(&buffer), url)
}

/// The contents of a file the user picked.
pub async fn file_bytes(file: &File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("{}: {}", file.name(), js_error_text(&e)))?;
    bytes_of(&Uint8Array::new(&buffer), &file.name())
}

pub use tripletlab_protocol::js::now_ms;

/// The longest piece of the worker's own long work (a projection) between two looks at its
/// command queue.
pub const SLICE_MS: f64 = 20.0;

/// Calls `advance` (which says whether the work is done) until the work is done or
/// [`SLICE_MS`] have passed; whether it is done.
pub fn work_a_slice(mut advance: impl FnMut() -> bool) -> bool {
    let t0 = now_ms();
    let mut done = false;
    while !done && now_ms() - t0 < SLICE_MS {
        done = advance();
    }
    done
}

/// One long-lived channel whose messages resolve the pending yields in order.
struct Yielder {
    port: MessagePort,
    pending: Rc<RefCell<VecDeque<Function>>>,
    _receiver: MessagePort,
    _on_message: Closure<dyn FnMut()>,
}

thread_local! {
    static YIELDER: Option<Yielder> = make_yielder();
}

fn make_yielder() -> Option<Yielder> {
    let channel = MessageChannel::new().ok()?;
    let pending: Rc<RefCell<VecDeque<Function>>> = Rc::default();
    let queue = pending.clone();
    let on_message = Closure::<dyn FnMut()>::new(move || {
        let next = queue.borrow_mut().pop_front();
        if let Some(resolve) = next {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let receiver = channel.port1();
    receiver.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    Some(Yielder {
        port: channel.port2(),
        pending,
        _receiver: receiver,
        _on_message: on_message,
    })
}

/// Lets the worker's event loop run (the page's commands arrive as its tasks).
pub async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _reject| {
        let queued = YIELDER.with(|y| match y {
            Some(y) => {
                y.pending.borrow_mut().push_back(resolve.clone());
                y.port.post_message(&JsValue::NULL).is_ok()
            }
            None => false,
        });
        if !queued {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}
