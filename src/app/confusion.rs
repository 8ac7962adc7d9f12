//! Where the embedding errs: a confusion matrix as a heat-map table (true class down, predicted
//! across, each row shaded by its share), the accuracy of each class, a select of the matrices
//! there are (each epoch, the final kNN-1, the raw pixels), and the test images of a clicked
//! cell. The matrices themselves come from `page::confusion`.

use std::rc::Rc;

use yew::prelude::*;

use crate::page::confusion::{cell_caption, default_source, matrix, members, shade, sources};
use crate::page::state::{EpochRow, Shared, class_name};
use tripletlab_core::data::Dataset;
use tripletlab_core::metrics::{Confusion, Metrics};

use super::draw::{context, draw_gray};

/// Props of [`ConfusionPanel`].
#[derive(Properties, PartialEq)]
pub struct ConfusionProps {
    /// One row per finished epoch.
    pub rows: Rc<Vec<EpochRow>>,
    /// The final metrics (kNN-1 against the training set).
    pub final_metrics: Option<Rc<Metrics>>,
    /// The raw pixels' scores on the same sets.
    pub raw_pixels: Option<Result<Rc<Metrics>, String>>,
    /// The test labels of the run's embeddings.
    pub labels: Option<Shared<Vec<u8>>>,
    /// The test set (for the images of a cell).
    pub test: Option<Shared<Dataset>>,
    /// Names for labels 0..=9.
    pub class_names: Rc<Vec<String>>,
}

/// Images drawn for a cell at most.
const SHOWN: usize = 60;
const THUMB: f64 = 40.0;
const PER_ROW: usize = 15;

/// The panel: the matrix select, the heat table, and a clicked cell's images.
#[function_component(ConfusionPanel)]
pub fn confusion_panel(props: &ConfusionProps) -> Html {
    let choice = use_state(|| None::<usize>);
    let cell = use_state(|| None::<(u32, u32)>);
    let raw = props.raw_pixels.as_ref().and_then(|r| r.as_ref().ok());
    let all = sources(
        &props.rows,
        props.final_metrics.as_deref(),
        raw.map(|m| &**m),
    );
    let picked = choice
        .filter(|&i| i < all.len())
        .unwrap_or_else(|| default_source(&all));
    let (Some(source), Some(labels)) = (all.get(picked).cloned(), props.labels.clone()) else {
        return html! {
            <section class="confusion" aria-label="Confusion matrix">
                <h2>{ "Where it errs" }</h2>
                <p class="hint">{ "The confusion matrix appears after the first epoch." }</p>
            </section>
        };
    };
    let listed: Vec<usize> = match *cell {
        Some((t, p)) => members(&labels.0, &source, t, p),
        None => Vec::new(),
    };
    let onchange = {
        let (choice, cell) = (choice.clone(), cell.clone());
        Callback::from(move |e: Event| {
            let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
            choice.set(select.value().parse().ok());
            cell.set(None);
        })
    };
    let on_cell = {
        let cell = cell.clone();
        Callback::from(move |tp: (u32, u32)| cell.set((*cell != Some(tp)).then_some(tp)))
    };
    let name = |l: u32| class_name(&props.class_names, l);
    let caption = cell.map(|(t, p)| cell_caption(listed.len(), &name(t), &name(p), SHOWN));
    html! {
        <section class="confusion" aria-label="Confusion matrix">
            <h2>{ "Where it errs" }</h2>
            <label>
                { "Matrix: " }
                <select {onchange} aria-label="Which confusion matrix">
                    { for all.iter().enumerate().map(|(i, s)| html! {
                        <option value={i.to_string()} selected={i == picked}>{ s.title.clone() }</option>
                    }) }
                </select>
            </label>
            <HeatTable matrix={Rc::new(matrix(&labels.0, &source))} selected={*cell}
                class_names={props.class_names.clone()} {on_cell} />
            { match caption {
                Some(caption) => html! { <CellImages items={Rc::new(listed)} {caption} test={props.test.clone()} /> },
                None => html! { <p class="hint">{ "Click a count to see its test images." }</p> },
            } }
        </section>
    }
}

/// Props of [`HeatTable`].
#[derive(Properties, PartialEq)]
struct HeatTableProps {
    matrix: Rc<Confusion>,
    /// The clicked cell: `(true, predicted)`.
    selected: Option<(u32, u32)>,
    class_names: Rc<Vec<String>>,
    /// A count clicked: its cell.
    on_cell: Callback<(u32, u32)>,
}

/// The confusion matrix as a heat-map table (true class down, predicted across) with each
/// class's accuracy; a non-empty cell is a button.
#[function_component(HeatTable)]
fn heat_table(props: &HeatTableProps) -> Html {
    let m = &props.matrix;
    let accuracy = m.per_class_accuracy();
    let name = |l: u32| class_name(&props.class_names, l);
    let row = |ti: usize, t: u32| {
        let counts = &m.counts[ti];
        let total: u64 = counts.iter().sum();
        let cells = m.labels.iter().enumerate().map(move |(pi, &p)| {
            let count = counts[pi];
            let selected = props.selected == Some((t, p));
            let onclick = props.on_cell.reform(move |_: MouseEvent| (t, p));
            html! {
                <td class={classes!(shade(count, total, ti == pi), selected.then_some("selected"))}
                    data-cell={format!("{t}-{p}")}
                    title={format!("{count} test images of {} predicted as {}", name(t), name(p))}>
                    if count > 0 {
                        <button type="button" class="cell" {onclick}>{ count }</button>
                    }
                </td>
            }
        });
        html! {
            <tr>
                <th scope="row">{ name(t) }</th>
                { for cells }
                <td class="acc">{ accuracy[ti].map_or("–".into(), |a| format!("{:.1}%", a * 100.0)) }</td>
            </tr>
        }
    };
    html! {
        <table class="heat" data-testid="confusion">
            <thead>
                <tr>
                    <th scope="col" class="corner">{ "true ↓ / predicted →" }</th>
                    { for m.labels.iter().map(|&l| html! { <th scope="col">{ name(l) }</th> }) }
                    <th scope="col">{ "right" }</th>
                </tr>
            </thead>
            <tbody>
                { for m.labels.iter().enumerate().map(|(ti, &t)| row(ti, t)) }
            </tbody>
        </table>
    }
}

/// Props of [`CellImages`].
#[derive(Properties, PartialEq)]
struct CellImagesProps {
    /// The cell's test items, in test-set order.
    items: Rc<Vec<usize>>,
    /// The line over the images.
    caption: String,
    /// The test set (for the images).
    test: Option<Shared<Dataset>>,
}

/// A cell's test images: the first [`SHOWN`], [`PER_ROW`] a row.
#[function_component(CellImages)]
fn cell_images(props: &CellImagesProps) -> Html {
    let strip = use_node_ref();
    {
        let (strip, test, items) = (strip.clone(), props.test.clone(), props.items.clone());
        use_effect_with(props.items.clone(), move |_| {
            let Some((canvas, ctx)) = context(&strip) else {
                return;
            };
            ctx.set_fill_style_str("#ffffff");
            ctx.fill_rect(0.0, 0.0, canvas.width() as f64, canvas.height() as f64);
            let Some(test) = test else { return };
            let t = &test.0;
            for (k, &i) in items
                .iter()
                .take(SHOWN)
                .enumerate()
                .filter(|(_, i)| **i < t.len())
            {
                let (x, y) = ((k % PER_ROW) as f64, (k / PER_ROW) as f64);
                draw_gray(
                    &ctx,
                    t.image(i),
                    t.rows,
                    t.cols,
                    x * (THUMB + 2.0),
                    y * (THUMB + 2.0),
                    THUMB,
                );
            }
        });
    }
    let n = props.items.len();
    let rows_shown = n.min(SHOWN).div_ceil(PER_ROW).max(1);
    let shown: Vec<String> = props
        .items
        .iter()
        .take(SHOWN)
        .map(|i| i.to_string())
        .collect();
    html! {
        <div class="cell-images" data-testid="cell-images" data-items={n.to_string()}>
            <p>{ props.caption.clone() }</p>
            <canvas ref={strip} width={(PER_ROW as f64 * (THUMB + 2.0)).to_string()}
                height={(rows_shown as f64 * (THUMB + 2.0)).to_string()} role="img"
                aria-label={format!("test images #{}", shown.join(", #"))}></canvas>
        </div>
    }
}
