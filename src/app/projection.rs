//! The 2-D projection of the test embeddings (PCA while training, t-SNE or UMAP on demand, with
//! UMAP's fields, a progress bar and Cancel), coloured by class with a legend; hovering a point
//! shows its image, label and nearest neighbours.

use std::rc::Rc;

use yew::prelude::*;

use crate::page::layout_form::{LayoutForm, MIN_DIST, N_NEIGHBORS};
use crate::page::state::LayoutJob;
use tripletlab_core::data::Dataset;
use tripletlab_core::query;
use tripletlab_core::shape::EMBEDDING_DIM;
use tripletlab_protocol::LayoutRequest;

use super::draw::{color, context, draw_gray};
use crate::page::state::{Embeddings, Shared, class_name};

/// Props of [`Projection`].
#[derive(Properties, PartialEq)]
pub struct ProjectionProps {
    /// One point per test embedding.
    pub points: Option<Shared<Vec<[f32; 2]>>>,
    /// What the points are ("PCA, epoch 1, step 8", "t-SNE").
    pub kind: String,
    /// The embeddings the points come from.
    pub embeddings: Option<Embeddings>,
    /// The test set (for the images).
    pub test: Option<Shared<Dataset>>,
    /// Legend names for labels 0..=9.
    pub class_names: Rc<Vec<String>>,
    /// The layout under way.
    pub layout: Option<LayoutJob>,
    /// A layout may start.
    pub can_layout: bool,
    /// The UMAP fields.
    pub layout_form: LayoutForm,
    /// "Run t-SNE" or "Run UMAP" pressed (with valid fields).
    pub on_layout: Callback<LayoutRequest>,
    /// Cancel pressed.
    pub on_cancel: Callback<()>,
    /// A UMAP field changed: `(key, value)`.
    pub on_field: Callback<(String, String)>,
    /// Where the latest query lands, drawn as a ✚.
    #[prop_or_default]
    pub query_mark: Option<[f32; 2]>,
}

const W: f64 = 640.0;
const H: f64 = 480.0;
const PAD: f64 = 16.0;
const NEIGHBOURS: usize = 5;

/// Maps data coordinates to canvas pixels (same aspect ratio on both axes).
#[derive(Clone, Copy)]
struct Frame {
    cx: f64,
    cy: f64,
    scale: f64,
}

impl Frame {
    fn fit(points: &[[f32; 2]]) -> Frame {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in points
            .iter()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
        {
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

    fn to_px(self, p: [f32; 2]) -> (f64, f64) {
        (
            W / 2.0 + (p[0] as f64 - self.cx) * self.scale,
            H / 2.0 - (p[1] as f64 - self.cy) * self.scale,
        )
    }
}

/// The `k` test embeddings closest (cosine) to row `i`, with their similarities: the query's
/// search ([`query::nearest`]) with the row itself left out.
fn nearest(vectors: &[f32], labels: &[u8], i: usize, k: usize) -> Vec<(usize, f32)> {
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

/// The projection panel.
#[function_component(Projection)]
pub fn projection(props: &ProjectionProps) -> Html {
    let canvas = use_node_ref();
    let detail = use_node_ref();
    let hovered = use_state(|| None::<usize>);
    let labels: Option<Shared<Vec<u8>>> = props.embeddings.as_ref().map(|e| e.labels.clone());

    // Main canvas.
    {
        let canvas = canvas.clone();
        let points = props.points.clone();
        let labels = labels.clone();
        let hover = *hovered;
        let mark = props.query_mark;
        use_effect_with(
            (
                props.points.clone(),
                labels.clone(),
                hover,
                mark.map(|m| m.map(f32::to_bits)),
            ),
            move |_| {
                let Some((_, ctx)) = context(&canvas) else {
                    return;
                };
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
                let frame = Frame::fit(&points.0);
                for (i, p) in points.0.iter().enumerate() {
                    if !(p[0].is_finite() && p[1].is_finite()) {
                        continue;
                    }
                    let (x, y) = frame.to_px(*p);
                    ctx.set_fill_style_str(color(labels.0.get(i).copied().unwrap_or(0)));
                    ctx.fill_rect(x - 2.0, y - 2.0, 4.0, 4.0);
                }
                if let Some(i) = hover
                    && let Some(p) = points.0.get(i)
                {
                    let (x, y) = frame.to_px(*p);
                    ctx.set_stroke_style_str("#000");
                    ctx.set_line_width(2.0);
                    ctx.stroke_rect(x - 5.0, y - 5.0, 10.0, 10.0);
                }
                if let Some(m) = mark
                    && m[0].is_finite()
                    && m[1].is_finite()
                {
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
            },
        );
    }

    // Hover details: the image and its nearest neighbours.
    let neighbours: Vec<(usize, f32)> = match (*hovered, &props.embeddings) {
        (Some(i), Some(e)) => nearest(&e.vectors.0, &e.labels.0, i, NEIGHBOURS),
        _ => Vec::new(),
    };
    {
        let detail = detail.clone();
        let test = props.test.clone();
        let hover = *hovered;
        let neighbours = neighbours.clone();
        use_effect_with((hover, props.embeddings.clone()), move |_| {
            let Some((_, ctx)) = context(&detail) else {
                return;
            };
            ctx.set_fill_style_str("#ffffff");
            ctx.fill_rect(0.0, 0.0, 400.0, 64.0);
            let (Some(i), Some(test)) = (hover, test) else {
                return;
            };
            let t = &test.0;
            if i < t.len() {
                draw_gray(&ctx, t.image(i), t.rows, t.cols, 0.0, 0.0, 56.0);
            }
            for (k, (j, _)) in neighbours.iter().enumerate() {
                if *j < t.len() {
                    draw_gray(
                        &ctx,
                        t.image(*j),
                        t.rows,
                        t.cols,
                        72.0 + k as f64 * 60.0,
                        14.0,
                        42.0,
                    );
                }
            }
        });
    }

    let onmousemove = {
        let hovered = hovered.clone();
        let points = props.points.clone();
        let canvas = canvas.clone();
        Callback::from(move |e: MouseEvent| {
            let Some(points) = &points else { return };
            let Some((el, _)) = context(&canvas) else {
                return;
            };
            let rect = el.get_bounding_client_rect();
            if rect.width() <= 0.0 || rect.height() <= 0.0 {
                return;
            }
            let mx = (e.client_x() as f64 - rect.left()) * W / rect.width();
            let my = (e.client_y() as f64 - rect.top()) * H / rect.height();
            let frame = Frame::fit(&points.0);
            let mut best: Option<(usize, f64)> = None;
            for (i, p) in points.0.iter().enumerate() {
                let (x, y) = frame.to_px(*p);
                let d = (x - mx).powi(2) + (y - my).powi(2);
                if d.is_finite() && best.is_none_or(|(_, b)| d < b) {
                    best = Some((i, d));
                }
            }
            let pick = best.filter(|(_, d)| *d <= 100.0).map(|(i, _)| i);
            if *hovered != pick {
                hovered.set(pick);
            }
        })
    };
    let onmouseleave = {
        let hovered = hovered.clone();
        Callback::from(move |_: MouseEvent| hovered.set(None))
    };

    let name = |l: u8| class_name(&props.class_names, l.into());
    let hover_text = match (*hovered, &labels) {
        (Some(i), Some(labels)) => {
            let label = labels.0.get(i).copied().unwrap_or(0);
            let ns: Vec<String> = neighbours
                .iter()
                .map(|(j, s)| format!("{} ({s:.2})", name(labels.0.get(*j).copied().unwrap_or(0))))
                .collect();
            format!("test #{i}: {} — nearest: {}", name(label), ns.join(", "))
        }
        _ => "Hover a point to see its image, label and nearest neighbours.".to_string(),
    };
    let n = props.points.as_ref().map_or(0, |p| p.0.len());
    let umap = props.layout_form.umap(n);
    let errors = umap.clone().err().unwrap_or_default();
    let run = |request: Option<LayoutRequest>| {
        let cb = props.on_layout.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(r) = request {
                cb.emit(r);
            }
        })
    };
    let on_cancel = {
        let cb = props.on_cancel.clone();
        Callback::from(move |_: MouseEvent| cb.emit(()))
    };
    let field = |key: &'static str, label: &'static str, value: &str, hint: &'static str| {
        let cb = props.on_field.clone();
        let oninput = Callback::from(move |e: InputEvent| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            cb.emit((key.to_string(), input.value()));
        });
        let error = errors.get(key).cloned();
        html! {
            <label class="layout-field" title={hint}>
                { label }
                <input type="text" inputmode="decimal" size="4" name={key} value={value.to_string()}
                    aria-invalid={error.is_some().to_string()} {oninput} />
                { match error {
                    Some(e) => html! { <span class="field-error" role="alert" data-field={key}>{ e }</span> },
                    None => html! {},
                } }
            </label>
        }
    };
    let idle = props.can_layout && props.layout.is_none();
    // The points the canvas draws (the finite ones; see the main canvas effect).
    let drawn = props.points.as_ref().map_or(0, |p| {
        p.0.iter()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .count()
    });

    html! {
        <section class="projection" aria-label="Projection">
            <div class="projection-head">
                <h2>{ "Test embeddings, 2-D" }</h2>
                <span class="hint" data-testid="projection-kind">{ if props.kind.is_empty() { "no embeddings yet".to_string() } else { format!("{} · {n} points", props.kind) } }</span>
            </div>
            <div class="layout-controls" aria-label="Layouts">
                <button type="button" disabled={!idle} onclick={run(Some(LayoutRequest::Tsne))}>{ "Run t-SNE" }</button>
                <button type="button" disabled={!idle || umap.is_err()} onclick={run(umap.clone().ok())}>{ "Run UMAP" }</button>
                { field(N_NEIGHBORS, "n_neighbors", &props.layout_form.n_neighbors, "UMAP: the neighbourhood size, the point itself included (2 to the number of points)") }
                { field(MIN_DIST, "min_dist", &props.layout_form.min_dist, "UMAP: how tightly points may pack (0 to 1)") }
                { match &props.layout {
                    Some(job) => html! {
                        <>
                            <progress max={job.total.to_string()} value={job.done.to_string()}
                                aria-label={format!("{} progress", job.name)}></progress>
                            <button type="button" disabled={job.cancelling} onclick={on_cancel}>
                                { if job.cancelling { "Cancelling…" } else { "Cancel" } }
                            </button>
                        </>
                    },
                    None => html! {},
                } }
            </div>
            <canvas
                ref={canvas}
                class="projection-canvas"
                width={W.to_string()}
                height={H.to_string()}
                role="img"
                data-points={drawn.to_string()}
                aria-label={format!("2-D projection of the test embeddings ({})", if props.kind.is_empty() { "none yet" } else { props.kind.as_str() })}
                {onmousemove}
                {onmouseleave}
            ></canvas>
            <ul class="legend" aria-label="Classes">
                { for (0..10u8).map(|l| html! {
                    <li><span class={format!("swatch c{l}")}></span>{ name(l) }</li>
                }) }
            </ul>
            <div class="hover" aria-live="polite">
                <canvas ref={detail} width="400" height="64" aria-hidden="true"></canvas>
                <p>{ hover_text }</p>
            </div>
        </section>
    }
}
