//! Where the embedding errs: a confusion matrix as a heat-map table (true class down, predicted
//! across, each row shaded by its share), the accuracy of each class, a select of the matrices
//! there are (each epoch, the final kNN-1, the raw pixels), and the test images of a clicked
//! cell. The matrices themselves come from `page::confusion`.

use std::rc::Rc;

use yew::prelude::*;

use crate::page::confusion::{default_source, matrix, members, sources};
use crate::page::state::{EpochRow, Shared, class_name};
use tripletlab_core::data::Dataset;
use tripletlab_core::metrics::Metrics;

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

/// The panel.
#[function_component(ConfusionPanel)]
pub fn confusion_panel(props: &ConfusionProps) -> Html {
    let choice = use_state(|| None::<usize>);
    let cell = use_state(|| None::<(u32, u32)>);
    let strip = use_node_ref();
    let raw = props.raw_pixels.as_ref().and_then(|r| r.as_ref().ok());
    let all = sources(
        &props.rows,
        props.final_metrics.as_deref(),
        raw.map(|m| &**m),
    );
    let picked = choice
        .filter(|&i| i < all.len())
        .unwrap_or_else(|| default_source(&all));
    let labels = props.labels.clone();
    let source = all.get(picked).cloned();
    let listed: Vec<usize> = match (&source, &labels, *cell) {
        (Some(s), Some(l), Some((t, p))) => members(&l.0, s, t, p),
        _ => Vec::new(),
    };
    {
        let strip = strip.clone();
        let test = props.test.clone();
        let listed = listed.clone();
        use_effect_with(listed.clone(), move |_| {
            let Some((canvas, ctx)) = context(&strip) else {
                return;
            };
            ctx.set_fill_style_str("#ffffff");
            ctx.fill_rect(0.0, 0.0, canvas.width() as f64, canvas.height() as f64);
            let Some(test) = test else { return };
            for (k, &i) in listed.iter().take(SHOWN).enumerate() {
                if i < test.0.len() {
                    let (x, y) = ((k % PER_ROW) as f64, (k / PER_ROW) as f64);
                    draw_gray(
                        &ctx,
                        test.0.image(i),
                        test.0.rows,
                        test.0.cols,
                        x * (THUMB + 2.0),
                        y * (THUMB + 2.0),
                        THUMB,
                    );
                }
            }
        });
    }
    let (Some(source), Some(labels)) = (source, labels) else {
        return html! {
            <section class="confusion" aria-label="Confusion matrix">
                <h2>{ "Where it errs" }</h2>
                <p class="hint">{ "The confusion matrix appears after the first epoch." }</p>
            </section>
        };
    };
    let m = matrix(&labels.0, &source);
    let accuracy = m.per_class_accuracy();
    let name = |l: u32| class_name(&props.class_names, l);
    let onchange = {
        let choice = choice.clone();
        let cell = cell.clone();
        Callback::from(move |e: Event| {
            let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
            choice.set(select.value().parse().ok());
            cell.set(None);
        })
    };
    let click = |t: u32, p: u32| {
        let cell = cell.clone();
        Callback::from(move |_: MouseEvent| {
            cell.set(if *cell == Some((t, p)) {
                None
            } else {
                Some((t, p))
            })
        })
    };
    let rows_shown = listed.len().min(SHOWN).div_ceil(PER_ROW).max(1);
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
            <table class="heat" data-testid="confusion">
                <thead>
                    <tr>
                        <th scope="col" class="corner">{ "true ↓ / predicted →" }</th>
                        { for m.labels.iter().map(|&l| html! { <th scope="col">{ name(l) }</th> }) }
                        <th scope="col">{ "right" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for m.labels.iter().enumerate().map(|(ti, &t)| {
                        let row = &m.counts[ti];
                        let total: u64 = row.iter().sum();
                        html! {
                            <tr>
                                <th scope="row">{ name(t) }</th>
                                { for m.labels.iter().enumerate().map(|(pi, &p)| {
                                    let count = row[pi];
                                    let share = if total > 0 { count as f64 / total as f64 } else { 0.0 };
                                    // Right answers in blue, errors in red, in ten shades by their
                                    // share of the row (errors amplified: they are what this table
                                    // is for). Classes, not inline styles: the page's CSP allows
                                    // none.
                                    let shade = if count == 0 {
                                        None
                                    } else if ti == pi {
                                        Some(format!("right{}", (share * 9.0).round() as u32))
                                    } else {
                                        Some(format!("wrong{}", ((share * 3.0).min(1.0) * 9.0).round() as u32))
                                    };
                                    let selected = *cell == Some((t, p));
                                    html! {
                                        <td class={classes!(shade, selected.then_some("selected"))}
                                            data-cell={format!("{t}-{p}")}
                                            title={format!("{count} test images of {} predicted as {}", name(t), name(p))}>
                                            if count > 0 {
                                                <button type="button" class="cell" onclick={click(t, p)}>{ count }</button>
                                            }
                                        </td>
                                    }
                                }) }
                                <td class="acc">{ accuracy[ti].map_or("–".into(), |a| format!("{:.1}%", a * 100.0)) }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            { match *cell {
                Some((t, p)) => html! {
                    <div class="cell-images" data-testid="cell-images" data-items={listed.len().to_string()}>
                        <p>{ format!("{} test image{} of {} predicted as {}{}:", listed.len(), if listed.len() == 1 { "" } else { "s" }, name(t), name(p),
                            if listed.len() > SHOWN { format!(" (the first {SHOWN} shown)") } else { String::new() }) }</p>
                        <canvas ref={strip} width={(PER_ROW as f64 * (THUMB + 2.0)).to_string()}
                            height={(rows_shown as f64 * (THUMB + 2.0)).to_string()} role="img"
                            aria-label={format!("test images #{}", listed.iter().take(SHOWN).map(|i| i.to_string()).collect::<Vec<_>>().join(", #"))}></canvas>
                    </div>
                },
                None => html! {
                    <p class="hint">{ "Click a count to see its test images." }</p>
                },
            } }
        </section>
    }
}
