//! Reading JavaScript values and the clock, shared by the page and its worker (wasm32 only).

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};

/// Milliseconds on the monotonic clock of this global (a window or a worker).
pub fn now_ms() -> f64 {
    get(&js_sys::global(), "performance")
        .dyn_into::<web_sys::Performance>()
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// `target[key]`, or `undefined`.
pub fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A readable message from a thrown JS value.
pub fn js_error_text(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    let message = get(e, "message").as_string().unwrap_or_default();
    if !message.is_empty() {
        let name = get(e, "name").as_string().unwrap_or_default();
        return if name.is_empty() {
            message
        } else {
            format!("{name}: {message}")
        };
    }
    format!("{e:?}")
}
