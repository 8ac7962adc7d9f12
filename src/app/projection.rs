//! The 2-D projection of the test embeddings (PCA while training, t-SNE or UMAP on demand, with
//! UMAP's fields, a progress bar and Cancel), coloured by class with a legend; hovering a point
//! shows its image, label and nearest neighbours.

use std::rc::Rc;

use yew::prelude::*;

use crate::page::layout_form::{LayoutForm, MIN_DIST, N_NEIGHBORS};
use crate::page::plot::{self, H, W, finite};
use crate::page::state::{Embeddings, LayoutJob, Shared, class_name};
use tripletlab_core::data::Dataset;
use tripletlab_protocol::LayoutRequest;

use super::draw::context;
use super::plot::{DETAIL_H, DETAIL_W, draw_detail, draw_points};

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

/// Neighbours shown for a hovered point.
const NEIGHBOURS: usize = 5;

/// The projection panel: the layout controls, the canvas, the legend and the hovered point.
#[function_component(Projection)]
pub fn projection(props: &ProjectionProps) -> Html {
    let canvas = use_node_ref();
    let detail = use_node_ref();
    let hovered = use_state(|| None::<usize>);
    let labels: Option<Shared<Vec<u8>>> = props.embeddings.as_ref().map(|e| e.labels.clone());
    let neighbours: Vec<(usize, f32)> = match (*hovered, &props.embeddings) {
        (Some(i), Some(e)) => plot::nearest(&e.vectors.0, &e.labels.0, i, NEIGHBOURS),
        _ => Vec::new(),
    };
    use_points_drawing(
        &canvas,
        props.points.clone(),
        labels.clone(),
        *hovered,
        props.query_mark,
    );
    {
        let (detail, test, hover) = (detail.clone(), props.test.clone(), *hovered);
        let neighbours = neighbours.clone();
        use_effect_with((hover, props.embeddings.clone()), move |_| {
            if let Some((_, ctx)) = context(&detail) {
                draw_detail(&ctx, test.as_ref().map(|t| &*t.0), hover, &neighbours);
            }
        });
    }
    let onmousemove = hover_on_move(&hovered, props.points.clone(), &canvas);
    let onmouseleave = {
        let hovered = hovered.clone();
        Callback::from(move |_: MouseEvent| hovered.set(None))
    };
    let name = |l: u8| class_name(&props.class_names, l.into());
    let no_labels = Vec::new();
    let all_labels = labels.as_ref().map_or(&no_labels, |l| &l.0);
    let hover_text = plot::hover_text(*hovered, all_labels, &neighbours, name);
    let n = props.points.as_ref().map_or(0, |p| p.0.len());
    // The points the canvas draws (the finite ones).
    let drawn = props
        .points
        .as_ref()
        .map_or(0, |p| p.0.iter().filter(|p| finite(p)).count());
    let kind = if props.kind.is_empty() {
        "no embeddings yet".to_string()
    } else {
        format!("{} · {n} points", props.kind)
    };
    let canvas_label = format!(
        "2-D projection of the test embeddings ({})",
        if props.kind.is_empty() {
            "none yet"
        } else {
            props.kind.as_str()
        }
    );

    html! {
        <section class="projection" aria-label="Projection">
            <div class="projection-head">
                <h2>{ "Test embeddings, 2-D" }</h2>
                <span class="hint" data-testid="projection-kind">{ kind }</span>
            </div>
            <LayoutControls points={n} can_layout={props.can_layout} layout={props.layout.clone()}
                layout_form={props.layout_form.clone()} on_layout={props.on_layout.clone()}
                on_cancel={props.on_cancel.clone()} on_field={props.on_field.clone()} />
            <canvas ref={canvas} class="projection-canvas" width={W.to_string()} height={H.to_string()}
                role="img" data-points={drawn.to_string()} aria-label={canvas_label} {onmousemove} {onmouseleave}></canvas>
            <ul class="legend" aria-label="Classes">
                { for (0..10u8).map(|l| html! {
                    <li><span class={format!("swatch c{l}")}></span>{ name(l) }</li>
                }) }
            </ul>
            <div class="hover" aria-live="polite">
                <canvas ref={detail} width={DETAIL_W.to_string()} height={DETAIL_H.to_string()} aria-hidden="true"></canvas>
                <p>{ hover_text }</p>
            </div>
        </section>
    }
}

/// Redraws the points whenever they, their labels, the hovered point or the query's mark
/// change.
#[hook]
fn use_points_drawing(
    canvas: &NodeRef,
    points: Option<Shared<Vec<[f32; 2]>>>,
    labels: Option<Shared<Vec<u8>>>,
    hover: Option<usize>,
    mark: Option<[f32; 2]>,
) {
    let canvas = canvas.clone();
    let key = (
        points.clone(),
        labels.clone(),
        hover,
        mark.map(|m| m.map(f32::to_bits)),
    );
    use_effect_with(key, move |_| {
        if let Some((_, ctx)) = context(&canvas) {
            let points = points.as_ref().map(|p| p.0.as_slice());
            let labels = labels.as_ref().map(|l| l.0.as_slice());
            draw_points(&ctx, points, labels, hover, mark);
        }
    });
}

/// The pointer moving over the canvas: the point under it becomes the hovered one.
fn hover_on_move(
    hovered: &UseStateHandle<Option<usize>>,
    points: Option<Shared<Vec<[f32; 2]>>>,
    canvas: &NodeRef,
) -> Callback<MouseEvent> {
    let (hovered, canvas) = (hovered.clone(), canvas.clone());
    Callback::from(move |e: MouseEvent| {
        let (Some(points), Some((el, _))) = (&points, context(&canvas)) else {
            return;
        };
        let rect = el.get_bounding_client_rect();
        if rect.width() > 0.0 && rect.height() > 0.0 {
            let x = (e.client_x() as f64 - rect.left()) * W / rect.width();
            let y = (e.client_y() as f64 - rect.top()) * H / rect.height();
            let pick = plot::pick(&points.0, x, y);
            if *hovered != pick {
                hovered.set(pick);
            }
        }
    })
}

/// Props of [`LayoutControls`].
#[derive(Properties, PartialEq)]
pub struct LayoutControlsProps {
    /// Points there are to lay out (0 before the first embeddings).
    pub points: usize,
    /// A layout may start.
    pub can_layout: bool,
    /// The layout under way.
    pub layout: Option<LayoutJob>,
    /// The UMAP fields.
    pub layout_form: LayoutForm,
    /// "Run t-SNE" or "Run UMAP" pressed (with valid fields).
    pub on_layout: Callback<LayoutRequest>,
    /// Cancel pressed.
    pub on_cancel: Callback<()>,
    /// A UMAP field changed: `(key, value)`.
    pub on_field: Callback<(String, String)>,
}

/// The layout buttons, UMAP's two fields (each with its error), and the running layout's
/// progress with Cancel.
#[function_component(LayoutControls)]
fn layout_controls(props: &LayoutControlsProps) -> Html {
    let umap = props.layout_form.umap(props.points);
    let errors = umap.clone().err().unwrap_or_default();
    let run = |request: Option<LayoutRequest>| {
        let cb = props.on_layout.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(r) = request {
                cb.emit(r);
            }
        })
    };
    let on_cancel = props.on_cancel.reform(|_: MouseEvent| ());
    let field = |key: &'static str, value: &str, hint: &'static str| {
        let cb = props.on_field.clone();
        let oninput = Callback::from(move |e: InputEvent| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            cb.emit((key.to_string(), input.value()));
        });
        let error = errors.get(key).cloned();
        html! {
            <label class="layout-field" title={hint}>
                { key }
                <input type="text" inputmode="decimal" size="4" name={key} value={value.to_string()}
                    aria-invalid={error.is_some().to_string()} {oninput} />
                { for error.map(|e| html! { <span class="field-error" role="alert" data-field={key}>{ e }</span> }) }
            </label>
        }
    };
    let idle = props.can_layout && props.layout.is_none();
    let progress = props.layout.as_ref().map(|job| {
        html! {
            <>
                <progress max={job.total.to_string()} value={job.done.to_string()}
                    aria-label={format!("{} progress", job.name)}></progress>
                <button type="button" disabled={job.cancelling} onclick={on_cancel.clone()}>
                    { if job.cancelling { "Cancelling…" } else { "Cancel" } }
                </button>
            </>
        }
    });
    html! {
        <div class="layout-controls" aria-label="Layouts">
            <button type="button" disabled={!idle} onclick={run(Some(LayoutRequest::Tsne))}>{ "Run t-SNE" }</button>
            <button type="button" disabled={!idle || umap.is_err()} onclick={run(umap.clone().ok())}>{ "Run UMAP" }</button>
            { field(N_NEIGHBORS, &props.layout_form.n_neighbors, "UMAP: the neighbourhood size, the point itself included (2 to the number of points)") }
            { field(MIN_DIST, &props.layout_form.min_dist, "UMAP: how tightly points may pack (0 to 1)") }
            { for progress }
        </div>
    }
}
