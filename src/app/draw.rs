//! Small canvas helpers shared by the chart and the projection.

use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};
use yew::NodeRef;

/// Ten distinguishable class colours (Tableau 10).
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The colour of class `label`.
pub fn color(label: u8) -> &'static str {
    PALETTE[label as usize % PALETTE.len()]
}

/// The canvas behind `node` and its 2-D context.
pub fn context(node: &NodeRef) -> Option<(HtmlCanvasElement, CanvasRenderingContext2d)> {
    let canvas = node.cast::<HtmlCanvasElement>()?;
    let ctx = canvas
        .get_context("2d")
        .ok()
        .flatten()?
        .dyn_into::<CanvasRenderingContext2d>()
        .ok()?;
    Some((canvas, ctx))
}

/// Draws a grey-scale image (`rows × cols` bytes, 0 = black background shown as white ink on
/// black, like MNIST) at `(x, y)`, scaled to `size × size`.
pub fn draw_gray(
    ctx: &CanvasRenderingContext2d,
    pixels: &[u8],
    rows: usize,
    cols: usize,
    x: f64,
    y: f64,
    size: f64,
) {
    if pixels.len() < rows * cols || rows == 0 || cols == 0 {
        return;
    }
    let mut rgba = Vec::with_capacity(rows * cols * 4);
    for &p in &pixels[..rows * cols] {
        rgba.extend_from_slice(&[p, p, p, 255]);
    }
    let Ok(image) = ImageData::new_with_u8_clamped_array(Clamped(&rgba), cols as u32) else {
        return;
    };
    // Draw at 1:1 on a scratch canvas, then scale without smoothing.
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(scratch) = document
        .create_element("canvas")
        .ok()
        .and_then(|e| e.dyn_into::<HtmlCanvasElement>().ok())
    else {
        return;
    };
    scratch.set_width(cols as u32);
    scratch.set_height(rows as u32);
    let Some(sctx) = scratch
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let _ = sctx.put_image_data(&image, 0.0, 0.0);
    ctx.set_image_smoothing_enabled(false);
    let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&scratch, x, y, size, size);
}

/// An exponential moving average (weight 0.1 on each new value) of a per-step series: the
/// smoothed lines of the loss and mining charts.
pub fn smooth(values: &[(usize, f32)]) -> Vec<(usize, f32)> {
    let alpha = 0.1f32;
    let mut ema: Option<f32> = None;
    values
        .iter()
        .map(|&(s, v)| {
            let e = match ema {
                None => v,
                Some(e) => e + alpha * (v - e),
            };
            ema = Some(e);
            (s, e)
        })
        .collect()
}
