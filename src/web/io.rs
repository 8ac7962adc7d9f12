//! The page's own browser work: picked files, downloads, the clock, the benchmark's stats.
//! (Fetching and reading bytes is the worker's.)

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, File, HtmlAnchorElement, Url};

use tripletlab_protocol::js::js_error_text;

fn window() -> Result<web_sys::Window, String> {
    web_sys::window().ok_or_else(|| "no window".to_string())
}

/// The files of an `<input type=file>`.
pub fn input_files(input: &web_sys::HtmlInputElement) -> Vec<File> {
    let Some(list) = input.files() else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Offers `bytes` as a download called `name`.
pub fn download(name: &str, bytes: &[u8], mime: &str) -> Result<(), String> {
    let document = window()?.document().ok_or("no document")?;
    let parts = Array::of1(&Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|e| js_error_text(&e))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|e| js_error_text(&e))?;
    let anchor: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| js_error_text(&e))?
        .dyn_into()
        .map_err(|_| "not an anchor".to_string())?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // Give the browser time to start the download before the URL is released.
    gloo_timers::callback::Timeout::new(60_000, move || {
        let _ = Url::revoke_object_url(&url);
    })
    .forget();
    Ok(())
}

pub use tripletlab_protocol::js::now_ms;

/// Publishes a finished run's timing as `window.__tripletlabStats` (read by the benchmark).
/// `marks` are `(global_step, elapsed_s)` at each loss read-back; the steady-state rate is
/// measured between the first and the last read-back, so shader compilation and the first
/// uploads are not counted. The marks themselves go out too (`marks`: `[step, elapsed_s]`, on
/// the worker's clock).
pub fn publish_stats(
    summary: &tripletlab_core::run::Summary,
    marks: &[(usize, f64)],
    batch_size: usize,
) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let stats = js_sys::Object::new();
    let set = |k: &str, v: f64| {
        let _ = js_sys::Reflect::set(&stats, &k.into(), &JsValue::from_f64(v));
    };
    set("steps", summary.steps as f64);
    set("skippedBatches", summary.skipped_batches as f64);
    set("examplesPerS", summary.examples_per_s);
    set("trainSeconds", summary.train_seconds);
    set("totalSeconds", summary.total_seconds);
    set("batchSize", batch_size as f64);
    if let (Some(first), Some(last)) = (marks.first(), marks.last())
        && last.0 > first.0
        && last.1 > first.1
    {
        let ms = (last.1 - first.1) * 1000.0 / (last.0 - first.0) as f64;
        set("steadyMsPerStep", ms);
        set("steadyExamplesPerS", batch_size as f64 * 1000.0 / ms);
    }
    let pairs = js_sys::Array::new();
    for &(step, elapsed_s) in marks {
        pairs.push(&js_sys::Array::of2(
            &(step as f64).into(),
            &elapsed_s.into(),
        ));
    }
    let _ = js_sys::Reflect::set(&stats, &"marks".into(), &pairs);
    let _ = js_sys::Reflect::set(&window, &"__tripletlabStats".into(), &stats);
}
