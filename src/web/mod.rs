//! The one wasm boundary: everything that touches the browser (WebGPU detection and burn device
//! start-up, fetch and file input, downloads, the clock, yielding to the event loop) and the
//! training [`host::WebHost`] that drives [`crate::train::run`] from a `spawn_local` task.
//!
//! The yew components in [`crate::app`] only call into this module; nothing else in the crate
//! knows it runs in a browser.

pub mod device;
pub mod host;
pub mod io;
pub mod query;

use wasm_bindgen::JsCast;

/// Entry point of the page (called by `main` on wasm32).
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        show_fatal(&info.to_string());
    }));
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"));
    match root {
        Some(root) => {
            // Replace the static "Loading…" placeholder of index.html.
            root.set_inner_html("");
            yew::Renderer::<crate::app::App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<crate::app::App>::new().render();
        }
    }
}

/// After a panic the wasm instance can no longer be trusted: say so in the page itself
/// (yew may not render any more) and mark the root as failed.
fn show_fatal(message: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(root) = document.query_selector("[data-state]").ok().flatten() {
        let _ = root.set_attribute("data-state", "error");
    }
    if let Some(el) = document.get_element_by_id("fatal") {
        el.set_text_content(Some(&format!(
            "Internal error, reload the page to continue: {message}"
        )));
        if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
            el.set_hidden(false);
        }
    }
}
