//! The page's entry point (called by the `tripletlab` binary's `main` on wasm32): mounts
//! [`super::App`], and makes a panic visible in the page itself.

use wasm_bindgen::JsCast;

/// Mounts the page into `#app`, replacing index.html's "Loading…" placeholder.
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
            yew::Renderer::<super::App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<super::App>::new().render();
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
