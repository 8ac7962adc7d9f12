//! The projection's geometry, without a canvas: the frame that fits the points into the
//! canvas ([`Frame`]), which point the pointer is over ([`pick`]), a point's nearest test
//! embeddings ([`nearest`]) and the line under the canvas ([`hover_text`]). The component in
//! `app::projection` and the drawing in `app::plot` use these; tested natively.

use tripletlab_core::query;
use tripletlab_core::shape::EMBEDDING_DIM;

/// The projection canvas's size in pixels.
pub const W: f64 = 640.0;
/// See [`W`].
pub const H: f64 = 480.0;
/// The margin kept free around the points.
const PAD: f64 = 16.0;
/// How far (in canvas pixels) the pointer may be from a point to pick it.
pub const PICK_RADIUS: f64 = 10.0;

/// Maps data coordinates to canvas pixels (the same scale on both axes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    cx: f64,
    cy: f64,
    scale: f64,
}

/// Whether a point has two finite coordinates (the others are not drawn).
pub fn finite(p: &[f32; 2]) -> bool {
    p[0].is_finite() && p[1].is_finite()
}

impl Frame {
    /// The frame that fits every finite point inside the canvas, less its margin.
    pub fn fit(points: &[[f32; 2]]) -> Frame {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in points.iter().filter(|p| finite(p)) {
            x0 = x0.min(p[0] as f64);
            x1 = x1.max(p[0] as f64);
            y0 = y0.min(p[1] as f64);
            y1 = y1.max(p[1] as f64);
        }
        if x0 > x1 {
            return Frame {
                cx: 0.0,
                cy: 0.0,
                scale: 1.0,
            };
        }
        let span = ((x1 - x0) / (W - 2.0 * PAD))
            .max((y1 - y0) / (H - 2.0 * PAD))
            .max(1e-12);
        Frame {
            cx: (x0 + x1) / 2.0,
            cy: (y0 + y1) / 2.0,
            scale: 1.0 / span,
        }
    }

    /// Where `p` lands on the canvas (y grows downwards).
    pub fn to_px(self, p: [f32; 2]) -> (f64, f64) {
        (
            W / 2.0 + (p[0] as f64 - self.cx) * self.scale,
            H / 2.0 - (p[1] as f64 - self.cy) * self.scale,
        )
    }
}

/// The point under the pointer at canvas pixel `(x, y)`: the nearest one within
/// [`PICK_RADIUS`], if any.
pub fn pick(points: &[[f32; 2]], x: f64, y: f64) -> Option<usize> {
    let frame = Frame::fit(points);
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in points.iter().enumerate() {
        let (px, py) = frame.to_px(*p);
        let d = (px - x).powi(2) + (py - y).powi(2);
        if d.is_finite() && best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best.filter(|(_, d)| *d <= PICK_RADIUS * PICK_RADIUS)
        .map(|(i, _)| i)
}

/// The `k` test embeddings closest (cosine) to row `i`, with their similarities: the query's
/// search ([`query::nearest`]) with the row itself left out.
pub fn nearest(vectors: &[f32], labels: &[u8], i: usize, k: usize) -> Vec<(usize, f32)> {
    let d = EMBEDDING_DIM;
    let Some(row) = vectors.get(i * d..(i + 1) * d) else {
        return Vec::new();
    };
    query::nearest(row, vectors, labels, d, k + 1)
        .into_iter()
        .filter(|m| m.index as usize != i)
        .take(k)
        .map(|m| (m.index as usize, m.cosine))
        .collect()
}

/// The line under the canvas: the hovered point's class and its neighbours' (with their
/// similarities), or how to get them.
pub fn hover_text(
    hovered: Option<usize>,
    labels: &[u8],
    neighbours: &[(usize, f32)],
    name: impl Fn(u8) -> String,
) -> String {
    let Some(i) = hovered else {
        return "Hover a point to see its image, label and nearest neighbours.".to_string();
    };
    let label = |j: usize| name(labels.get(j).copied().unwrap_or(0));
    let ns: Vec<String> = neighbours
        .iter()
        .map(|(j, s)| format!("{} ({s:.2})", label(*j)))
        .collect();
    format!("test #{i}: {} — nearest: {}", label(i), ns.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_fits_the_finite_points_inside_the_margin_at_one_scale() {
        let points = [
            [0.0, 0.0],
            [2.0, 1.0],
            [f32::NAN, 5.0],
            [1.0, f32::INFINITY],
        ];
        let frame = Frame::fit(&points);
        let (x0, y0) = frame.to_px(points[0]);
        let (x1, y1) = frame.to_px(points[1]);
        // x spans 2, y 1: x fills the width less the margins, y keeps the same scale.
        assert!(
            (x0 - PAD).abs() < 1e-9 && (x1 - (W - PAD)).abs() < 1e-9,
            "{x0} {x1}"
        );
        assert!((y0 - y1 - (x1 - x0) / 2.0).abs() < 1e-9, "{y0} {y1}");
        assert!(y1 < y0, "up is up");
        assert!(((y0 + y1) / 2.0 - H / 2.0).abs() < 1e-9, "centred");
        // No finite point: a frame that still maps.
        assert_eq!(
            Frame::fit(&[[f32::NAN, 0.0]]).to_px([0.0, 0.0]),
            (W / 2.0, H / 2.0)
        );
    }

    #[test]
    fn the_pointer_picks_the_nearest_point_within_the_radius() {
        let points = [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [f32::NAN, 0.5]];
        let frame = Frame::fit(&points);
        let (x, y) = frame.to_px([0.5, 0.5]);
        assert_eq!(pick(&points, x + 3.0, y - 3.0), Some(2));
        let (x, y) = frame.to_px([1.0, 1.0]);
        assert_eq!(pick(&points, x, y), Some(1));
        assert_eq!(pick(&points, x + PICK_RADIUS + 1.0, y), None, "too far");
        assert_eq!(pick(&[], x, y), None);
    }

    #[test]
    fn a_point_s_neighbours_leave_it_out_and_the_text_names_them() {
        let d = EMBEDDING_DIM;
        let mut vectors = vec![0.0; 3 * d];
        vectors[0] = 1.0; // row 0: e0
        vectors[d] = 0.8; // row 1: mostly e0
        vectors[d + 1] = 0.6;
        vectors[2 * d + 1] = 1.0; // row 2: e1
        let labels = [3, 3, 7];
        let n = nearest(&vectors, &labels, 0, 2);
        assert_eq!(n.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2]);
        assert!((n[0].1 - 0.8).abs() < 1e-6 && n[1].1.abs() < 1e-6, "{n:?}");
        assert!(nearest(&vectors, &labels, 3, 2).is_empty(), "no such row");
        let text = hover_text(Some(0), &labels, &n, |l| format!("digit {l}"));
        assert_eq!(
            text,
            "test #0: digit 3 — nearest: digit 3 (0.80), digit 7 (0.00)"
        );
        assert!(hover_text(None, &labels, &n, |l| l.to_string()).starts_with("Hover a point"));
    }
}
