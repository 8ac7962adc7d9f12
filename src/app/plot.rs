//! The projection's canvas drawing (wasm32): the points coloured by class, the hovered point's
//! box, the query's ✚, and the hovered image beside its nearest neighbours. The geometry is
//! `page::plot`'s; nothing here holds state or knows a component.

use web_sys::CanvasRenderingContext2d;

use super::draw::{color, draw_gray};
use crate::page::plot::{Frame, H, W, finite};
use tripletlab_core::data::Dataset;

/// The detail strip's size in pixels.
pub const DETAIL_W: f64 = 400.0;
/// See [`DETAIL_W`].
pub const DETAIL_H: f64 = 64.0;

/// The points (class colours), the hovered one boxed, the query's landing point marked; or a
/// line saying the projection is still to come.
pub fn draw_points(
    ctx: &CanvasRenderingContext2d,
    points: Option<&[[f32; 2]]>,
    labels: Option<&[u8]>,
    hovered: Option<usize>,
    mark: Option<[f32; 2]>,
) {
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(0.0, 0.0, W, H);
    let (Some(points), Some(labels)) = (points, labels) else {
        ctx.set_fill_style_str("#666");
        ctx.set_font("14px sans-serif");
        let _ = ctx.fill_text(
            "The projection appears after the first embeddings (epoch end).",
            20.0,
            30.0,
        );
        return;
    };
    let frame = Frame::fit(points);
    for (i, p) in points.iter().enumerate().filter(|(_, p)| finite(p)) {
        let (x, y) = frame.to_px(*p);
        ctx.set_fill_style_str(color(labels.get(i).copied().unwrap_or(0)));
        ctx.fill_rect(x - 2.0, y - 2.0, 4.0, 4.0);
    }
    if let Some(p) = hovered.and_then(|i| points.get(i)) {
        let (x, y) = frame.to_px(*p);
        ctx.set_stroke_style_str("#000");
        ctx.set_line_width(2.0);
        ctx.stroke_rect(x - 5.0, y - 5.0, 10.0, 10.0);
    }
    if let Some(m) = mark.filter(finite) {
        // Drawn outside the fitted frame too (clamped to the canvas), so it is never lost.
        let (x, y) = frame.to_px(m);
        let (x, y) = (x.clamp(8.0, W - 8.0), y.clamp(8.0, H - 8.0));
        for (w, c) in [(6.0, "#fff"), (3.0, "#000")] {
            ctx.set_stroke_style_str(c);
            ctx.set_line_width(w);
            ctx.begin_path();
            ctx.move_to(x - 9.0, y);
            ctx.line_to(x + 9.0, y);
            ctx.move_to(x, y - 9.0);
            ctx.line_to(x, y + 9.0);
            ctx.stroke();
        }
    }
}

/// The hovered test image, then its neighbours' images, smaller.
pub fn draw_detail(
    ctx: &CanvasRenderingContext2d,
    test: Option<&Dataset>,
    hovered: Option<usize>,
    neighbours: &[(usize, f32)],
) {
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(0.0, 0.0, DETAIL_W, DETAIL_H);
    let (Some(i), Some(t)) = (hovered, test) else {
        return;
    };
    if i < t.len() {
        draw_gray(ctx, t.image(i), t.rows, t.cols, 0.0, 0.0, 56.0);
    }
    for (k, (j, _)) in neighbours.iter().enumerate() {
        if *j < t.len() {
            let x = 72.0 + k as f64 * 60.0;
            draw_gray(ctx, t.image(*j), t.rows, t.cols, x, 14.0, 42.0);
        }
    }
}
